"""MatrixSqrt and the Newton–Schulz method: roots of SPD matrices up to κ = 10⁶ against the
eigh-based root, SPD checks, the gradient path, and the problem contract."""
from __future__ import annotations

import functools

import pytest
import torch
from conformance import check_caller_tensors_untouched, check_problem

import torch_gdla as gdla
from torch_gdla.engine import Criteria, Iteration
from torch_gdla.errors import ArgumentError


def spd(n: int, cond: float, seed: int = 314) -> torch.Tensor:
    return gdla.matrices.Conditioned(n, cond=cond, kind="spd", seed=seed).tensor()


def eigh_root(M: torch.Tensor, inverse: bool) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(M)
    return (vectors * (values.rsqrt() if inverse else values.sqrt()).unsqueeze(-2)) @ vectors.mT


def run(problem: gdla.Problem, residual_tol: float = 1e-10, max_steps: int = 200, optimizer=None) -> gdla.Result:
    iteration = Iteration(problem, optimizer or problem.default_optimizer(), Criteria(residual_tol=residual_tol),
                          max_steps=max_steps)
    iteration.run(max_steps)
    return iteration.finish()


@pytest.mark.parametrize("inverse", [False, True], ids=["root", "inverse root"])
@pytest.mark.parametrize("cond", [1e2, 1e4, 1e6])
def test_roots_of_spd_matrices_up_to_cond_1e6(cond, inverse):
    M = spd(120, cond)
    problem = gdla.MatrixSqrt(M, inverse=inverse)
    result = run(problem)
    assert result.converged and result.residual <= 1e-10, result.reason
    X = result.solution
    if inverse:  # ‖XMX − I‖/√n, here formed directly
        assert torch.linalg.matrix_norm(X @ M @ X - torch.eye(120, dtype=torch.float64)) / 120 ** 0.5 <= 1e-9
    else:
        assert torch.linalg.matrix_norm(X @ X - M) / torch.linalg.matrix_norm(M) <= 1e-10
    reference = eigh_root(M, inverse)
    assert torch.linalg.matrix_norm(X - reference) / torch.linalg.matrix_norm(reference) <= 1e-9 * cond ** 0.5
    assert result.steps <= 30 and result.stats["matrix products"] == 3 * result.steps


def test_scaling_takes_fewer_steps_than_the_plain_iteration():
    scaled = run(gdla.MatrixSqrt(spd(80, 1e6)))
    problem = gdla.MatrixSqrt(spd(80, 1e6))
    plain = run(problem, optimizer=gdla.optim.NewtonSchulz([problem.X], problem.root_form(), scaled=False))
    assert scaled.converged and plain.converged and scaled.steps < 0.7 * plain.steps
    assert torch.allclose(scaled.solution, plain.solution, rtol=0, atol=1e-10)


def test_an_optimizer_built_on_another_problems_parameters_is_refused():
    first, second = gdla.MatrixSqrt(spd(8, 10.0)), gdla.MatrixSqrt(spd(8, 10.0))
    with pytest.raises(ArgumentError, match="not parameters of this problem"):
        Iteration(second, gdla.optim.NewtonSchulz([first.X], first.root_form()))


def test_a_matrix_that_is_not_positive_definite_is_refused_naming_its_smallest_eigenvalue():
    values = torch.tensor([4.0, 2.0, 1.0, -0.25], dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    M = (Q * values) @ Q.mT
    with pytest.raises(ArgumentError, match=r"smallest eigenvalue is -0\.25 .*Shift it"):
        gdla.MatrixSqrt((M + M.mT) / 2)
    with pytest.raises(ArgumentError, match="symmetric"):
        gdla.MatrixSqrt(torch.tensor([[2.0, 1.0], [0.0, 2.0]]))


def test_batched_members_and_float32():
    M = torch.stack([spd(20, 10.0, seed=1), spd(20, 1e3, seed=2)])
    result = run(gdla.MatrixSqrt(M))
    assert result.converged and result.residuals.shape == (2,)
    assert torch.allclose(result.solution, eigh_root(M, False), atol=1e-12)
    single = run(gdla.MatrixSqrt(M[0].float()), residual_tol=1e-5)
    assert single.converged and single.solution.dtype == torch.float32


def test_a_gradient_method_also_finds_the_root():
    M = spd(8, 10.0)
    problem = gdla.MatrixSqrt(M)
    # the loss is the squared residual: LBFGS's default tolerance_change (1e-9) would end each
    # step before a residual of 1e-9 (a loss of 1e-18) is reached
    lbfgs = functools.partial(torch.optim.LBFGS, line_search_fn="strong_wolfe", max_iter=20, tolerance_grad=0,
                              tolerance_change=0)
    result = run(problem, residual_tol=1e-9, optimizer=lbfgs(problem.parameters()))
    assert result.converged and torch.allclose(result.solution, eigh_root(M, False), atol=1e-8)


def test_solve_with_lightning_is_differentiable():
    A = spd(10, 50.0)
    M = A.clone().requires_grad_(True)
    result = gdla.solve(gdla.MatrixSqrt(M, inverse=True), residual_tol=1e-12)
    (grad,) = torch.autograd.grad(result.solution.trace(), M)
    reference = A.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(eigh_root(reference, True).trace(), reference)
    assert torch.allclose(grad, expected, rtol=1e-8, atol=1e-10)


def test_sqrtm_config(tmp_path, capsys):
    from test_cli import run_cli

    cli = run_cli("sqrtm.yaml", tmp_path)
    result, M = cli.model.result, cli.model.problem.M
    assert result.converged and result.residual <= 1e-10 and result.steps == 12
    assert torch.linalg.matrix_norm(result.solution @ result.solution - M) / torch.linalg.matrix_norm(M) <= 1e-10
    assert torch.linalg.cond(M) == pytest.approx(1e6, rel=1e-6)
    assert "reference_error:" in capsys.readouterr().out


@pytest.mark.parametrize("inverse", [False, True])
def test_conforms(inverse):
    check_problem(lambda d: gdla.MatrixSqrt(spd(6, 20.0).to(d), inverse=inverse))


def test_a_solve_leaves_the_callers_matrix_alone():
    check_caller_tensors_untouched(lambda W: gdla.MatrixSqrt(W @ W.mT + torch.eye(5, dtype=W.dtype)), spd(5, 3.0))
