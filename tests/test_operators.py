"""Sparse and matrix-free operators in the linear problems: the same answers as dense, one
operator application per conjugate-gradient step (one A and one Aᵀ per least-squares step),
preconditioning, and clear errors for every combination that cannot work — without ever
densifying a sparse input."""
from __future__ import annotations

import functools

import pytest
import torch

import torch_gdla as gdla
from torch_gdla.operators import LinearOperator, aslinearoperator

F64 = torch.float64


def _random(m: int, n: int, seed: int = 0, density: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, n, generator=g, dtype=F64) * (torch.rand(m, n, generator=g, dtype=F64) < density)
    if m == n:
        A = A + n * torch.eye(n, dtype=F64)  # nonsingular
    return A


def _spd(n: int, seed: int = 0) -> torch.Tensor:
    A = _random(n, n, seed)
    return A @ A.mT / n + torch.eye(n, dtype=F64)


LAYOUTS = {
    "coo": lambda A: A.to_sparse(),
    "csr": lambda A: A.to_sparse_csr(),
    "csc": lambda A: A.to_sparse_csc(),
    "operator": lambda A: aslinearoperator(A),
    "function": lambda A: LinearOperator(tuple(A.shape), lambda v: A @ v, lambda u: A.mT @ u, dtype=A.dtype),
}


def _solve(problem: gdla.Problem, max_steps: int = 2000) -> gdla.Result:
    iteration = gdla.Iteration(problem, problem.default_optimizer(), gdla.Criteria(residual_tol=1e-10),
                               max_steps=max_steps)
    iteration.run(max_steps)
    return iteration.finish()


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("shape", [(30, 30), (40, 12), (12, 40)])
def test_sparse_and_operator_inputs_agree_with_dense(layout, shape):
    A = _random(*shape)
    b = torch.randn(shape[0], generator=torch.Generator().manual_seed(1), dtype=F64)
    dense = _solve(gdla.LinearSystem(A, b))
    other = _solve(gdla.LinearSystem(LAYOUTS[layout](A), b))
    assert dense.converged and other.converged, (dense.reason, other.reason)
    expected = torch.linalg.pinv(A) @ b  # the solution, least-squares or minimum-norm one
    assert torch.allclose(other.solution, expected, atol=1e-8)
    assert torch.allclose(other.solution, dense.solution, atol=1e-8)


@pytest.mark.parametrize("layout", ["csr", "operator"])
@pytest.mark.parametrize("options", [{"assume": "spd"}, {"l2": 0.5}, {"weights": "rows"}, {"l1": 0.05},
                                     {"nonnegative": True}])
def test_every_linear_variant_takes_sparse_and_operators(layout, options):
    A = _spd(20)
    b = torch.randn(20, generator=torch.Generator().manual_seed(2), dtype=F64)
    if options.get("weights") == "rows":
        options = {"weights": torch.linspace(0.5, 2.0, 20, dtype=F64)}
    operand = LAYOUTS[layout](A)
    if layout == "operator" and "assume" in options:
        operand = LinearOperator((20, 20), lambda v: A @ v, dtype=F64, symmetric=True)
    dense = gdla.solve(gdla.LinearSystem(A, b, **options), max_steps=5000)
    other = gdla.solve(gdla.LinearSystem(operand, b, **options), max_steps=5000)
    assert dense.converged and other.converged, (dense.reason, other.reason)
    assert torch.allclose(other.solution, dense.solution, atol=1e-7)


def test_conjugate_gradient_applies_the_operator_once_per_step():
    A = _spd(50)
    operator = LinearOperator((50, 50), lambda v: A @ v, dtype=F64, symmetric=True)
    problem = gdla.LinearSystem(operator, torch.ones(50, dtype=F64), assume="spd")
    result = _solve(problem)
    assert result.converged
    assert result.stats == {"matvecs": result.steps, "rmatvecs": 0}  # from x = 0: no start-up application
    # the operator's own count adds only the fixed verification of the answer from the data
    # (the confirmed residual, which is also the one reported, and the loss), whatever the step count
    assert operator.matvecs - result.steps == 2


def test_least_squares_applies_a_and_its_transpose_once_per_step():
    A = _random(60, 20, density=0.5)
    counted = aslinearoperator(A)
    result = _solve(gdla.LinearSystem(counted, torch.ones(60, dtype=F64)))
    assert result.converged
    # the start's r₀ = Aᵀb is one more Aᵀ, as in scipy's lsqr
    assert result.stats == {"matvecs": result.steps, "rmatvecs": result.steps + 1}
    # + Aᵀb once more for the residual's scale, and the fixed verification of the answer (as above)
    assert counted.matvecs - result.steps == 2 and counted.rmatvecs - (result.steps + 1) == 1 + 1


def test_the_default_finds_a_symmetric_matrix_and_uses_conjugate_gradient():
    A = _spd(40).to_sparse_csr()
    result = _solve(gdla.LinearSystem(A, torch.ones(40, dtype=F64)))
    assert result.converged and result.stats["rmatvecs"] == 0  # no Aᵀ: CG, not CGLS


def test_an_indefinite_symmetric_matrix_falls_back_to_least_squares():
    Q, _ = torch.linalg.qr(torch.randn(20, 20, generator=torch.Generator().manual_seed(3), dtype=F64))
    A = (Q * torch.linspace(-2, 3, 20, dtype=F64)) @ Q.T  # symmetric, indefinite, nonsingular
    result = _solve(gdla.LinearSystem(A, torch.ones(20, dtype=F64)))
    assert result.converged
    assert torch.allclose(result.solution, torch.linalg.solve(A, torch.ones(20, dtype=F64)), atol=1e-8)


def test_assume_spd_on_an_indefinite_large_matrix_is_caught_by_the_iteration():
    n = 600  # positive diagonal: only the iteration can tell (the check up front does not factorise)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(4), dtype=F64))
    A = (Q * torch.linspace(-1, 3, n, dtype=F64)) @ Q.T
    A = (A + A.T) / 2 + 2.5 * torch.eye(n, dtype=F64) * 0  # symmetric, positive diagonal, indefinite
    A.diagonal().clamp_(min=0.1)
    problem = gdla.LinearSystem(A, torch.ones(n, dtype=F64), assume="spd")
    with pytest.raises(gdla.errors.NotConvergedError, match=r"not positive definite.*Drop assume=\"spd\""):
        gdla.solve(problem)


def _badly_scaled_spd(n: int = 200) -> torch.Tensor:
    scale = torch.logspace(0, 2, n, dtype=F64)  # a diagonal scaling spanning 1e4 in the matrix
    return scale[:, None] * _spd(n, seed=5) * scale[None, :]


def test_jacobi_preconditioning_cuts_iterations_and_matches_scipy():
    scipy_cg = pytest.importorskip("scipy.sparse.linalg").cg
    A = _badly_scaled_spd()
    b = torch.ones(200, dtype=F64)
    plain = _solve(gdla.LinearSystem(A, b, assume="spd"))
    jacobi = _solve(gdla.LinearSystem(A, b, assume="spd", preconditioner="jacobi"))
    assert plain.converged and jacobi.converged
    assert torch.allclose(jacobi.solution, plain.solution, rtol=1e-7)
    assert jacobi.steps * 5 <= plain.steps, (jacobi.steps, plain.steps)
    steps = []
    x, info = scipy_cg(A.numpy(), b.numpy(), M=torch.diag(1 / A.diagonal()).numpy(), rtol=1e-10,
                       callback=lambda xk: steps.append(1))
    assert info == 0 and abs(jacobi.steps - len(steps)) <= 0.05 * len(steps) + 1, (jacobi.steps, len(steps))


@pytest.mark.parametrize("preconditioner", ["jacobi", "callable", "operator"])
def test_preconditioned_least_squares_reaches_the_same_answer(preconditioner):
    A = _random(80, 30, density=0.6) * torch.logspace(0, 3, 30, dtype=F64)  # badly scaled columns
    b = torch.randn(80, generator=torch.Generator().manual_seed(6), dtype=F64)
    inverse = 1 / A.square().sum(0)
    given = {"jacobi": "jacobi", "callable": lambda P: P * inverse[:, None],
             "operator": LinearOperator((30, 30), lambda v: v * (inverse if v.dim() == 1 else inverse[:, None]),
                                        dtype=F64, symmetric=True)}[preconditioner]
    plain = _solve(gdla.LinearSystem(A, b), max_steps=5000)
    scaled = _solve(gdla.LinearSystem(A.to_sparse_csr(), b, preconditioner=given), max_steps=5000)
    assert plain.converged and scaled.converged
    assert torch.allclose(scaled.solution, torch.linalg.lstsq(A, b.unsqueeze(-1)).solution.squeeze(-1), rtol=1e-6)
    assert scaled.steps < plain.steps


def test_a_huge_sparse_matrix_is_never_densified():
    # 10⁶ × 10⁶ dense would be 8 TB: building, validating and solving must stay O(nnz).
    n = 1_000_000
    index = torch.arange(n)
    D = torch.sparse_coo_tensor(torch.stack([index, index]), torch.linspace(1, 2, n, dtype=F64), (n, n)).to_sparse_csr()
    b = torch.ones(n, dtype=F64)
    result = gdla.solve(gdla.LinearSystem(D, b, assume="spd", preconditioner="jacobi"), residual_tol=1e-10)
    assert result.converged and result.steps <= 2
    assert torch.allclose(result.solution, 1 / torch.linspace(1, 2, n, dtype=F64))


def test_the_lightning_path_takes_an_operator():
    A = _spd(30)
    op = LinearOperator((30, 30), lambda v: A @ v, lambda u: A.T @ u, dtype=F64)
    result = gdla.solve(gdla.LinearSystem(op, torch.ones(30, dtype=F64)), residual_tol=1e-10)
    assert result.converged
    assert torch.allclose(result.solution, torch.linalg.solve(A, torch.ones(30, dtype=F64)), atol=1e-8)


def test_any_torch_optimizer_still_trains_an_operator_problem():
    A = _spd(10)
    op = aslinearoperator(A)
    problem = gdla.LinearSystem(op, torch.ones(10, dtype=F64))
    lbfgs = functools.partial(torch.optim.LBFGS, line_search_fn="strong_wolfe", tolerance_grad=0, tolerance_change=0)
    result = gdla.solve(problem, lbfgs, residual_tol=1e-8, max_steps=200)
    assert result.converged and op.rmatvecs > 0  # autograd's backward applied Aᵀ


# -- what cannot work says so, in one clear error --------------------------------------------------
def test_unsupported_combinations_are_clear_errors():
    S = torch.eye(4, dtype=F64).to_sparse_csr()
    op = LinearOperator((4, 4), lambda v: v, dtype=F64)
    with pytest.raises(gdla.errors.UnsupportedInputError, match=r"the inverse of a sparse matrix is dense.*LinearSystem"):
        gdla.MatrixInverse(S)
    with pytest.raises(gdla.errors.UnsupportedInputError, match=r"M is a LinearOperator.*LinearSystem\(M, B\)"):
        gdla.MatrixInverse(op)
    with pytest.raises(gdla.errors.UnsupportedInputError, match=r"takes dense matrices only.*to_dense"):
        gdla.SVD(S)
    with pytest.raises(ValueError, match=r"sparse with shape \(2, 4, 4\).*2-D"):
        gdla.LinearSystem(torch.stack([torch.eye(4, dtype=F64)] * 2).to_sparse(), torch.ones(2, 4, dtype=F64))
    with pytest.raises(gdla.errors.UnsupportedInputError, match=r"no rmatvec.*least squares"):
        gdla.solve(gdla.LinearSystem(LinearOperator((6, 4), lambda v: torch.ones(6, dtype=F64) * v.sum(),
                                                    dtype=F64), torch.ones(6, dtype=F64)))
    with pytest.raises(gdla.errors.UnsupportedInputError, match=r"does not know its diagonal"):
        gdla.LinearSystem(LinearOperator((4, 4), lambda v: v, dtype=F64, symmetric=True), torch.ones(4, dtype=F64),
                          preconditioner="jacobi").default_optimizer()
    with pytest.raises(ValueError, match=r"not built with symmetric=True"):
        gdla.LinearSystem(op, torch.ones(4, dtype=F64), assume="spd")
    with pytest.raises(gdla.errors.UnsupportedInputError, match=r"direct reference.*scipy.sparse.linalg"):
        gdla.LinearSystem(S, torch.ones(4, dtype=F64)).reference()
    with pytest.raises(ValueError, match=r"preconditioner must be None, 'jacobi'"):
        gdla.LinearSystem(S, torch.ones(4, dtype=F64), preconditioner="ilu")


def test_jacobi_on_a_symmetric_operator_with_a_diagonal_and_assume_spd():
    # CG on an energy form never switches to CGLS, so the operator's diagonal is all Jacobi needs.
    n = 50
    A = torch.diag(torch.logspace(0, 4, n, dtype=torch.float64)) + 0.1 * torch.ones(n, n, dtype=torch.float64)
    op = gdla.LinearOperator((n, n), matvec=lambda v: A @ v, dtype=torch.float64, symmetric=True, diagonal=A.diagonal())
    b = torch.ones(n, dtype=torch.float64)
    x, res = gdla.linalg.solve_ex(op, b, assume="spd", preconditioner="jacobi")
    _, plain = gdla.linalg.solve_ex(op, b, assume="spd")
    assert res.converged and res.steps * 5 <= plain.steps
    torch.testing.assert_close(x, torch.linalg.solve(A, b), rtol=1e-8, atol=0)
