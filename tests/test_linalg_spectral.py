"""gdla.linalg.eigh and sqrtm: answers and gradients against torch.linalg.eigh (float64)."""
from __future__ import annotations

import pytest
import torch

import torch_gdla as gdla
from torch_gdla.errors import NotConvergedError, UnsupportedInputError
from torch_gdla.problems.eigen import sign_normalised


def symmetric(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    return (A + A.mT) / 2


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def torch_pairs(M: torch.Tensor, k: int, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    values, vectors = torch.linalg.eigh(M)
    if largest:
        values, vectors = values.flip(-1), vectors.flip(-1)
    return values[..., :k], sign_normalised(vectors[..., :k])[0]


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [3, 30])
def test_eigh_gradients_match_torch(k, largest):
    A = symmetric(30)
    g = torch.Generator().manual_seed(1)
    weights, directions = torch.randn(k, generator=g, dtype=torch.float64), torch.randn(30, k, generator=g,
                                                                                      dtype=torch.float64)

    def loss(pairs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return (pairs[0] * weights).sum() + (pairs[1] * directions).sum()

    M, reference = A.clone().requires_grad_(True), A.clone().requires_grad_(True)
    pairs = gdla.linalg.eigh(M, k=k, largest=largest, residual_tol=1e-13)
    expected = torch_pairs(reference, k, largest)
    assert torch.allclose(pairs.eigenvalues, expected[0], rtol=1e-12, atol=1e-12)
    assert torch.allclose(pairs.eigenvectors, expected[1], atol=1e-10)
    (grad,) = torch.autograd.grad(loss(pairs), M)
    (grad_ref,) = torch.autograd.grad(loss(expected), reference)
    assert relative(grad, grad_ref) <= 1e-6
    # eigenvalues alone: no complement solve is needed, and the gradient is the same
    (values_grad,) = torch.autograd.grad(gdla.linalg.eigh(M, k=k, largest=largest).eigenvalues.sum(), M)
    (values_ref,) = torch.autograd.grad(torch_pairs(reference, k, largest)[0].sum(), reference)
    assert relative(values_grad, values_ref) <= 1e-6


def test_eigh_gradient_of_a_batch():
    A = torch.stack([symmetric(12, 1), symmetric(12, 2)])
    M, reference = A.clone().requires_grad_(True), A.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(gdla.linalg.eigh(M, k=2, residual_tol=1e-13).eigenvectors[..., 0, :].sum(), M)
    (grad_ref,) = torch.autograd.grad(torch_pairs(reference, 2, True)[1][..., 0, :].sum(), reference)
    assert relative(grad, grad_ref) <= 1e-6


@pytest.mark.parametrize("inverse", [False, True], ids=["sqrtm", "inverse"])
def test_sqrtm_and_its_gradient_match_the_eigh_reference(inverse):
    A = gdla.matrices.Conditioned(25, cond=1e3, kind="spd").tensor()
    g = torch.Generator().manual_seed(2)
    weights = torch.randn(25, 25, generator=g, dtype=torch.float64)
    M, reference = A.clone().requires_grad_(True), A.clone().requires_grad_(True)
    X = gdla.linalg.sqrtm(M, inverse=inverse, residual_tol=1e-13)
    values, vectors = torch.linalg.eigh(reference)
    expected = (vectors * (values.rsqrt() if inverse else values.sqrt())) @ vectors.mT
    assert relative(X, expected) <= 1e-11
    (grad,) = torch.autograd.grad((X * weights).sum(), M)
    (grad_ref,) = torch.autograd.grad((expected * weights).sum(), reference)
    assert relative(grad, grad_ref) <= 1e-6


def test_eigh_of_sparse_and_operator_inputs_and_their_limits():
    M = symmetric(40)
    expected = torch.linalg.eigvalsh(M)[:2]
    assert torch.allclose(gdla.linalg.eigh(M.to_sparse_csr(), k=2, largest=False).eigenvalues, expected, rtol=1e-7)
    with pytest.raises(UnsupportedInputError, match=r"pass M\.detach\(\)"):
        gdla.linalg.eigh(M.to_sparse_coo().requires_grad_(True), k=2)
    with pytest.raises(NotConvergedError, match=r"gdla.linalg.eigh did not converge.*eigh_ex"):
        gdla.linalg.eigh(M, k=2, max_steps=1, residual_tol=1e-14)
    (values, _), result = gdla.linalg.eigh_ex(M, k=2, max_steps=1, residual_tol=1e-14)
    assert not result.converged and values.shape == (2,)


def test_sqrtm_ex_reports_the_run_and_init_warm_starts_eigh():
    S = gdla.matrices.Conditioned(10, cond=1e6, kind="spd").tensor()
    X, result = gdla.linalg.sqrtm_ex(S)
    # converged says the default tolerance (1e-8) holds: recomputed here from X
    assert "residual_tol 1e-08" in result.reason
    assert torch.linalg.matrix_norm(X @ X - S) / torch.linalg.matrix_norm(S) <= 1e-8
    assert result.converged and result.stats["matrix products"] == 3 * result.steps
    M = symmetric(50)
    first = gdla.linalg.eigh_ex(M, k=2)[1]
    pairs = gdla.linalg.eigh(M + 1e-8 * symmetric(50, 3), k=2)
    warm = gdla.linalg.eigh_ex(M + 1e-8 * symmetric(50, 3), k=2, init=pairs.eigenvectors)[1]
    assert warm.steps < first.steps


def test_gradcheck_of_eigh_and_sqrtm():
    A = symmetric(6, 4)

    def pairs(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(gdla.linalg.eigh((W + W.mT) / 2, k=2, residual_tol=1e-14))

    assert torch.autograd.gradcheck(pairs, (A.clone().requires_grad_(True),), atol=1e-6)
    S = gdla.matrices.Conditioned(5, cond=20.0, kind="spd").tensor()
    for inverse in (False, True):
        def root(W: torch.Tensor, inverse: bool = inverse) -> torch.Tensor:
            return gdla.linalg.sqrtm((W + W.mT) / 2, inverse=inverse, residual_tol=1e-14)

        assert torch.autograd.gradcheck(root, (S.clone().requires_grad_(True),), atol=1e-6)


def test_float32_eigh_and_sqrtm():
    M = symmetric(20).float()
    values, vectors = gdla.linalg.eigh(M, k=2, residual_tol=1e-5)
    assert values.dtype == vectors.dtype == torch.float32
    assert torch.allclose(values, torch.linalg.eigvalsh(M.double()).flip(0)[:2].float(), rtol=1e-5)
    S = gdla.matrices.Conditioned(20, cond=100.0, kind="spd").tensor().float()
    X = gdla.linalg.sqrtm(S, residual_tol=1e-5)
    assert X.dtype == torch.float32 and float(torch.linalg.matrix_norm(X @ X - S) / torch.linalg.matrix_norm(S)) <= 1e-5


def test_a_repeated_eigenvalue_gives_the_exact_gradient_of_its_eigenspace():
    """Eigenvalues 10, 9, 9, 7: the projector onto the eigenspace of 9 is a smooth function of M
    (its vectors individually are not); its gradient is checked by central differences."""
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    values = torch.cat([torch.tensor([10.0, 9.0, 9.0, 7.0], dtype=torch.float64), torch.linspace(-5, 5, 36)])
    A = (Q * values) @ Q.mT
    A = (A + A.mT) / 2
    W = torch.randn(40, 40, generator=g, dtype=torch.float64)
    D = torch.randn(40, 40, generator=g, dtype=torch.float64)
    D = (D + D.mT) / 2

    def projected(pairs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        V = pairs[1][:, 1:3]
        return ((V @ V.mT) * W).sum() + pairs[0].sum()

    def reference(M: torch.Tensor) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(M)
        return projected((values.flip(0)[:4], vectors.flip(-1)[:, :4]))

    M = A.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(projected(gdla.linalg.eigh(M, k=4, residual_tol=1e-14)), M)
    h = 1e-5
    central = (reference(A + h * D) - reference(A - h * D)) / (2 * h)
    assert torch.isfinite(grad).all()
    assert abs(float((grad * D).sum()) - float(central)) <= 1e-6 * abs(float(central))
