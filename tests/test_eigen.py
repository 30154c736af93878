"""SymmetricEigen: extreme eigenpairs against torch.linalg.eigh and closed forms, the thin Stiefel
frame, clusters named, warm starts, inputs refused, the L-BFGS path's loss floor."""
from __future__ import annotations

import functools

import pytest
import torch
from conformance import check_caller_tensors_untouched, check_problem

import torch_gdla as gdla
from torch_gdla.engine import Criteria, Iteration
from torch_gdla.errors import ArgumentError, ShapeError
from torch_gdla.parametrizations import orthonormal_map, seeded_orthogonal
from torch_gdla.problems.eigen import sign_normalised
from torch_gdla.problems.frames import frame_map
from torch_gdla.result import Status


def with_spectrum(values: list[float] | torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A symmetric matrix Q diag(values) Qᵀ with a seeded random orthogonal Q (float64)."""
    values = torch.as_tensor(values, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(len(values), len(values), generator=g, dtype=torch.float64))
    M = (Q * values) @ Q.mT
    return (M + M.mT) / 2


def gapped(n: int = 200) -> torch.Tensor:
    """Top three 10, 9, 8 and bottom three −10, −9, −8 well apart from the rest, in [−5, 5]."""
    return with_spectrum(torch.cat([torch.tensor([10.0, 9.0, 8.0, -10.0, -9.0, -8.0]),
                                    torch.linspace(-5, 5, n - 6, dtype=torch.float64)]))


def symmetric(n: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    return ((A + A.mT) / 2).to(dtype)


def run(problem: gdla.Problem, residual_tol: float = 1e-12, max_steps: int = 2000, optimizer=None) -> gdla.Result:
    iteration = Iteration(problem, optimizer or problem.default_optimizer(), Criteria(residual_tol=residual_tol),
                          max_steps=max_steps)
    iteration.run(max_steps)
    return iteration.finish()


@pytest.mark.parametrize("largest", [True, False])
def test_three_extreme_pairs_of_a_gapped_200x200_matrix(largest):
    M = gapped()
    problem = gdla.SymmetricEigen(M, k=3, largest=largest)
    result = run(problem, residual_tol=1e-11)
    assert result.converged and result.residual <= 1e-10
    values, vectors = result.solution
    reference = torch.linalg.eigh(M)
    expected = reference.eigenvalues.flip(0)[:3] if largest else reference.eigenvalues[:3]
    assert torch.allclose(values, expected, rtol=1e-10, atol=0)
    assert (vectors.mT @ vectors - torch.eye(3, dtype=torch.float64)).abs().max() <= 1e-12
    columns = reference.eigenvectors.flip(-1)[:, :3] if largest else reference.eigenvectors[:, :3]
    assert torch.allclose(vectors, sign_normalised(columns)[0], atol=1e-9)
    assert torch.allclose(problem.reference().eigenvalues, expected, rtol=1e-12)
    assert float(problem.measures()["unseparated"]()) == 0 and "repeated" not in result.reason


def test_poisson_laplacian_smallest_four_match_the_closed_form():
    poisson = gdla.matrices.Poisson2D(100)  # 10 000 unknowns, sparse CSR; λ₂ = λ₃ (a repeated pair)
    problem = gdla.SymmetricEigen(poisson.tensor(), k=4, largest=False)
    result = run(problem, residual_tol=1e-10, max_steps=5000)
    assert result.converged
    assert torch.allclose(result.solution.eigenvalues, poisson.eigenvalues()[:4], rtol=1e-8, atol=0)
    # the repeated pair is found whole, and named: its vectors are one basis of its eigenspace
    assert "eigenvalues 1 (0.00483624), 2 (0.00483624) are repeated or clustered" in result.reason


def test_a_repeated_eigenvalue_is_found_as_a_subspace_and_named():
    M = with_spectrum(torch.cat([torch.tensor([10.0, 9.0, 9.0, 7.0]), torch.linspace(-5, 5, 96, dtype=torch.float64)]))
    problem = gdla.SymmetricEigen(M, k=4)
    result = run(problem)
    assert result.converged and torch.allclose(result.solution.eigenvalues,
                                               torch.tensor([10.0, 9.0, 9.0, 7.0], dtype=torch.float64), atol=1e-11)
    # the eigenspace of 9 is found (projectors agree), though no single vector of it is determined
    _, Q = torch.linalg.eigh(M)
    expected, found = Q[:, -3:-1], result.solution.eigenvectors[:, 1:3]
    assert torch.allclose(found @ found.mT, expected @ expected.mT, atol=1e-10)
    measures = {name: float(measure()) for name, measure in problem.measures().items()}
    assert measures["unseparated"] == 2 and measures["vector_bound"] == 1.0
    assert "eigenvalues 1 (9), 2 (9) are repeated or clustered" in result.reason
    assert "determined only together, as the subspace they span" in result.reason


def test_a_cluster_across_the_kth_eigenvalue_asks_for_more_pairs():
    M = with_spectrum(torch.cat([torch.tensor([10.0, 9.0, 9.0]), torch.linspace(-5, 5, 97, dtype=torch.float64)]))
    result = run(gdla.SymmetricEigen(M, k=2))
    assert result.converged
    assert "eigenvalue 1 (9) is not separated from the next one beyond the 2 asked for" in result.reason
    assert "ask for more pairs (k > 2)" in result.reason


def test_warm_start_from_previous_eigenvectors_takes_fewer_steps():
    M = gapped(120)
    cold = run(gdla.SymmetricEigen(M, k=3))
    perturbed = M + 1e-6 * symmetric(120)
    warm = run(gdla.SymmetricEigen(perturbed, k=3, init=cold.solution.eigenvectors))
    fresh = run(gdla.SymmetricEigen(perturbed, k=3))
    assert warm.converged and warm.steps < fresh.steps
    assert torch.allclose(warm.solution.eigenvalues, fresh.solution.eigenvalues, rtol=1e-12)


def test_float32_pairs_and_an_honest_verdict_below_float32s_reach():
    M = gapped().float()
    expected = torch.linalg.eigvalsh(M.double()).flip(0)[:3]
    result = run(gdla.SymmetricEigen(M, k=3), residual_tol=1e-5, max_steps=300)
    values, vectors = result.solution
    assert result.converged and values.dtype == vectors.dtype == torch.float32
    assert torch.allclose(values.double(), expected, rtol=1e-6, atol=0)
    assert (vectors.mT @ vectors - torch.eye(3)).abs().max() <= 1e-6
    # 1e-8 is below what float32 vectors can resolve: not converged, and the reason says why
    tight = run(gdla.SymmetricEigen(M, k=3), residual_tol=1e-8, max_steps=100)
    assert not tight.converged and tight.status is Status.PRECISION and "float32" in tight.reason


def test_eigen_config(tmp_path, capsys):
    from test_cli import run_cli

    cli = run_cli("eigen.yaml", tmp_path)
    result, M = cli.model.result, cli.model.problem.M
    assert result.converged and result.residual <= 1e-12
    assert torch.allclose(result.solution.eigenvalues, torch.linalg.eigvalsh(M).flip(0)[:3], rtol=1e-12, atol=0)
    assert result.steps == 9 and result.stats["matvecs"] == 22  # as the config's "Expected:" says
    out = capsys.readouterr().out
    for field in ("eigenvalues:", "eigenvectors:", "orthogonality:", "unseparated:", "reference_error:"):
        assert field in out


def test_sparse_and_operator_inputs_give_the_dense_answer():
    M = symmetric(60)
    expected = torch.linalg.eigvalsh(M)[:2]
    operator = gdla.LinearOperator((60, 60), lambda V: M @ V, symmetric=True, dtype=torch.float64, matmat=True)
    for given in (M.to_sparse_csr(), operator):
        result = run(gdla.SymmetricEigen(given, k=2, largest=False), residual_tol=1e-11)
        assert result.converged and torch.allclose(result.solution.eigenvalues, expected, rtol=1e-10)
    assert operator.matvecs >= result.stats["matvecs"]  # every application counted


def test_batched_members_are_solved_independently():
    M = torch.stack([symmetric(30, seed=1), symmetric(30, seed=2)])
    result = run(gdla.SymmetricEigen(M, k=2))
    assert result.converged and result.residuals.shape == (2,)
    assert torch.allclose(result.solution.eigenvalues, torch.linalg.eigvalsh(M).flip(-1)[..., :2], rtol=1e-10)


def test_inputs_refused_with_clear_errors():
    with pytest.raises(ArgumentError, match=r"needs a symmetric M, but ‖M − Mᵀ‖_F / ‖M‖_F = .* symmetrise it"):
        gdla.SymmetricEigen(torch.randn(5, 5, dtype=torch.float64), k=2)
    with pytest.raises(ArgumentError, match="symmetric=True"):
        gdla.SymmetricEigen(gdla.LinearOperator((4, 4), lambda v: v), k=2)
    with pytest.raises(ShapeError, match="square"):
        gdla.SymmetricEigen(torch.zeros(4, 3), k=1)
    with pytest.raises(ArgumentError, match="k must be an integer from 1 to n = 5"):
        gdla.SymmetricEigen(symmetric(5), k=6)
    with pytest.raises(ArgumentError, match="linearly independent"):
        gdla.SymmetricEigen(symmetric(5), k=2, init=torch.ones(5, 2, dtype=torch.float64))
    with pytest.raises(ArgumentError, match="M is zero"):
        gdla.SymmetricEigen(torch.zeros(3, 3), k=1)


def test_lbfgs_on_the_brockett_loss_converges_and_names_its_floor():
    M = with_spectrum([5.0, 3.0, 1.0, 0.5, 0.0, -1.0])
    lbfgs = functools.partial(torch.optim.LBFGS, line_search_fn="strong_wolfe", max_iter=20, tolerance_grad=0,
                              tolerance_change=0, history_size=50)
    problem = gdla.SymmetricEigen(M, k=2)
    result = run(problem, residual_tol=1e-6, max_steps=200, optimizer=lbfgs(problem.parameters()))
    assert result.converged and torch.allclose(result.solution.eigenvalues,
                                               torch.tensor([5.0, 3.0], dtype=torch.float64), atol=1e-9)
    problem = gdla.SymmetricEigen(M, k=2)
    stalled = run(problem, residual_tol=1e-15, max_steps=2000, optimizer=lbfgs(problem.parameters()))
    assert stalled.status is Status.PRECISION and "a floor of the loss itself" in stalled.reason
    assert problem.residual_floor() == pytest.approx(torch.finfo(torch.float64).eps ** 0.5)


def test_frame_map_is_the_svds_stiefel_map_on_a_thin_frame():
    g = torch.Generator().manual_seed(0)
    for n, k in ((12, 3), (5, 3), (30, 1)):
        Q = seeded_orthogonal(torch.Size((n, n)), g, torch.zeros((), dtype=torch.float64))
        G = torch.randn(n, k, generator=g, dtype=torch.float64)
        V = frame_map(Q[:, :k], G)
        assert torch.allclose(V, orthonormal_map(Q, Q.mT @ G), atol=1e-13)
        assert torch.allclose(V.mT @ V, torch.eye(k, dtype=torch.float64), atol=1e-13)


def test_rayleigh_ritz_is_a_torch_optim_optimizer_in_a_plain_loop():
    M = gapped(80)
    problem = gdla.SymmetricEigen(M, k=2)
    optimizer = problem.default_optimizer()
    losses = [float(optimizer.step()) for _ in range(40)]
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:]))  # Ritz values move monotonically
    assert problem.residual() < 1e-10 and torch.equal(problem.generator, torch.zeros_like(problem.generator))
    assert set(optimizer.state_dict()["state"][0]) >= {"V", "AV", "H", "Z"}


def test_solve_with_lightning_is_differentiable_in_a_dense_M():
    A = symmetric(20)
    M = A.clone().requires_grad_(True)
    result = gdla.solve(gdla.SymmetricEigen(M, k=2), residual_tol=1e-12)
    (grad,) = torch.autograd.grad(result.solution.eigenvalues.sum(), M)
    reference = A.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(torch.linalg.eigvalsh(reference)[-2:].sum(), reference)
    assert torch.allclose(grad, expected, atol=1e-9)


@pytest.mark.parametrize("make", [
    lambda d: gdla.SymmetricEigen(symmetric(5, d), k=2),
    lambda d: gdla.SymmetricEigen(symmetric(40, d), k=3, largest=False),
    lambda d: gdla.SymmetricEigen(torch.stack([symmetric(6, d, 1), symmetric(6, d, 2)]), k=2),
], ids=["small", "krylov smallest", "batched"])
def test_conforms(make):
    check_problem(make)


def test_a_solve_leaves_the_callers_matrix_alone():
    check_caller_tensors_untouched(lambda W: gdla.SymmetricEigen((W + W.mT) / 2, k=2), symmetric(6))
