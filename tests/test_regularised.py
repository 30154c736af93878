"""Weighted, ridge, lasso and non-negative least squares against independent references."""
import functools

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

import torch_gdla as gdla


def _data(m=40, n=10, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, n, generator=g, dtype=dtype), torch.randn(m, generator=g, dtype=dtype)


def _solve(problem, **kwargs):
    # the problem's own default (ProximalGradient for l1/nonnegative), as gdla.solve picks it
    return gdla.solve(problem, optimizer=lambda params: problem.default_optimizer(), **kwargs)


def test_ridge_equals_closed_form_default_optimizer():
    A, b = _data()
    w = torch.rand(40, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.1
    problem = gdla.LinearSystem(A, b, weights=w, l2=0.7)
    assert problem.quadratic  # exact-step CG applies
    result = gdla.solve(problem)
    W = torch.diag(w)
    closed = torch.linalg.solve(A.T @ W @ A + 0.7 * torch.eye(10, dtype=A.dtype), A.T @ W @ b)
    assert result.converged and result.residual <= 1e-8
    assert torch.allclose(result.solution, closed, rtol=0, atol=1e-9)
    assert torch.allclose(problem.reference(), closed, atol=1e-12)
    # the residual is the relative gradient of the regularised objective
    g = A.T @ W @ (A @ result.solution - b) + 0.7 * result.solution
    assert result.residual == pytest.approx(float(g.norm() / (A.T @ W @ b).norm()), rel=1e-6, abs=1e-15)


def test_ridge_with_adam_float32():
    A, b = _data(dtype=torch.float32)
    problem = gdla.LinearSystem(A, b, l2=2.0)
    result = gdla.solve(problem, functools.partial(torch.optim.Adam, lr=0.05), residual_tol=1e-4, max_steps=5000)
    closed = torch.linalg.solve(A.T @ A + 2.0 * torch.eye(10), A.T @ b)
    assert result.converged and result.solution.dtype == torch.float32
    assert torch.allclose(result.solution, closed, atol=1e-3)


def test_weighted_equals_scaled_lstsq_with_several_right_hand_sides():
    A, _ = _data(30, 6)
    B = torch.randn(30, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    w = torch.linspace(0.2, 3.0, 30, dtype=torch.float64)
    result = gdla.solve(gdla.LinearSystem(A, B, weights=w))
    s = w.sqrt().unsqueeze(-1)
    expected = torch.linalg.lstsq(s * A, s * B).solution
    assert torch.allclose(result.solution, expected, atol=1e-9)
    unweighted = torch.linalg.lstsq(A, B).solution
    assert (unweighted - expected).abs().max() > 1e-2  # the weights matter


def test_nnls_equals_scipy():
    A, b = _data(50, 12, seed=3)
    problem = gdla.LinearSystem(A, b, nonnegative=True)
    assert not problem.quadratic
    result = _solve(problem)
    expected, _ = nnls(A.numpy(), b.numpy())
    assert result.converged, result.reason
    assert (result.solution >= 0).all()
    assert int((expected == 0).sum()) >= 3  # constraints active: unconstrained lstsq differs
    assert np.allclose(result.solution.numpy(), expected, atol=1e-7)
    # residual = projected gradient (KKT), relative to ‖Aᵀb‖
    x = result.solution
    g = A.T @ (A @ x - b)
    pg = torch.where(x > 0, g, g.clamp_max(0))
    assert result.residual == pytest.approx(float(pg.norm() / (A.T @ b).norm()), rel=1e-6, abs=1e-15)


def test_nnls_residual_flags_a_wrong_point():
    A, b = _data(50, 12, seed=3)
    problem = gdla.LinearSystem(A, b, nonnegative=True)
    unconstrained = torch.linalg.lstsq(A, b.unsqueeze(-1)).solution.squeeze(-1)
    with torch.no_grad():
        problem.x.copy_(unconstrained.clamp_min(0))  # feasible but not optimal
    assert problem.residual() > 1e-2
    expected, _ = nnls(A.numpy(), b.numpy())
    with torch.no_grad():
        problem.x.copy_(torch.from_numpy(expected))
    assert problem.residual() < 1e-12
    with torch.no_grad():
        problem.x[expected.argmin()] = -1e-3  # infeasible: never "converged"
    assert problem.residual() >= 1


def test_lasso_orthonormal_design_is_soft_thresholding():
    g = torch.Generator().manual_seed(4)
    Q, _ = torch.linalg.qr(torch.randn(60, 15, generator=g, dtype=torch.float64))
    b = torch.randn(60, generator=g, dtype=torch.float64)
    l1 = 0.3
    result = _solve(gdla.LinearSystem(Q, b, l1=l1))
    z = Q.T @ b
    expected = torch.sign(z) * (z.abs() - l1).clamp_min(0)
    assert int((expected == 0).sum()) >= 3
    assert result.converged and torch.allclose(result.solution, expected, atol=1e-10)
    assert torch.equal(result.solution == 0, expected == 0)  # exact zeros from the proximal step


def _coordinate_descent(A, b, l1, sweeps=5000):
    x, r, norms = np.zeros(A.shape[1]), b.copy(), (A ** 2).sum(0)
    for _ in range(sweeps):
        largest = 0.0
        for j in range(A.shape[1]):
            rho = A[:, j] @ r + norms[j] * x[j]
            new = np.sign(rho) * max(abs(rho) - l1, 0.0) / norms[j]
            if new != x[j]:
                r -= A[:, j] * (new - x[j])
                largest = max(largest, abs(new - x[j]))
                x[j] = new
        if largest < 1e-15:
            break
    return x


def test_lasso_general_design_equals_coordinate_descent():
    g = torch.Generator().manual_seed(5)
    A = torch.randn(80, 20, generator=g, dtype=torch.float64)
    truth = torch.zeros(20, dtype=torch.float64)
    truth[:5] = 3 * torch.randn(5, generator=g, dtype=torch.float64)
    b = A @ truth + torch.randn(80, generator=g, dtype=torch.float64)
    problem = gdla.LinearSystem(A, b, l1=4.0)
    result = _solve(problem, residual_tol=1e-10)
    expected = _coordinate_descent(A.numpy(), b.numpy(), 4.0)
    assert (expected == 0).sum() >= 3
    assert result.converged and np.allclose(result.solution.numpy(), expected, atol=1e-8)
    assert np.array_equal(result.solution.numpy() == 0, expected == 0)


def test_nonnegative_lasso_and_batched():
    A, b = _data(40, 8, seed=6)
    A2, b2 = _data(40, 8, seed=7)
    batch = gdla.LinearSystem(torch.stack([A, A2]), torch.stack([b, b2]), l1=0.5, nonnegative=True)
    result = _solve(batch)
    assert result.converged and result.residuals.shape == (2,)
    for member, (M, v) in enumerate(((A, b), (A2, b2))):
        # x ≥ 0 with ½‖Mx − v‖² + 0.5·Σx is NNLS on the normal equations shifted by 0.5:
        # checked through the KKT conditions with scipy's nnls on an equivalent system
        x = result.solution[member]
        g = M.T @ (M @ x - v) + 0.5
        assert (x >= 0).all() and (g >= -1e-7).all() and (x * g).abs().max() < 1e-7
        # and against the same problem solved as NNLS with an augmented right-hand side
        shift = torch.linalg.solve(M.T @ M, torch.full((8,), 0.5, dtype=M.dtype))
        expected, _ = nnls(M.numpy(), (v - M @ shift).numpy())
        assert np.allclose(x.numpy(), expected, atol=1e-6)


def test_default_solve_picks_proximal_gradient_when_wired():
    A, b = _data(30, 6, seed=8)
    problem = gdla.LinearSystem(A, b, nonnegative=True)
    assert isinstance(problem.default_optimizer(), gdla.optim.ProximalGradient)
    assert isinstance(gdla.LinearSystem(A, b, l2=1.0).default_optimizer(), gdla.optim.Krylov)  # quadratic: CGLS
    result = gdla.solve(problem)  # gdla.solve asks problem.default_optimizer()
    expected, _ = nnls(A.numpy(), b.numpy())
    assert result.converged and np.allclose(result.solution.numpy(), expected, atol=1e-7)


def test_proximal_gradient_in_a_plain_torch_loop():
    A, b = _data(40, 10, seed=9)
    x = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    L = float(torch.linalg.matrix_norm(A, ord=2)) ** 2
    optimizer = gdla.optim.ProximalGradient([x], lr=1 / L, l1=1.0, nonnegative=True)

    def closure():
        optimizer.zero_grad()
        loss = 0.5 * (A @ x - b).square().sum() + 1.0 * x.abs().sum()
        loss.backward()
        return loss

    for _ in range(2000):
        optimizer.step(closure)
    with torch.no_grad():
        g = A.T @ (A @ x - b) + 1.0
    assert (x >= 0).all() and (torch.where(x > 0, g, g.clamp_max(0))).abs().max() < 1e-8


@pytest.mark.parametrize("kwargs, match", [
    (dict(l2=-1.0), "l2 must be a finite number >= 0"),
    (dict(l1=float("nan")), "l1 must be a finite number >= 0"),
    (dict(weights=torch.ones(5)), r"weights must have shape \(40,\)"),
    (dict(weights=-torch.ones(40)), "weights must be >= 0"),
    (dict(weights=torch.zeros(40)), "weights are all zero"),
    (dict(nonnegative="yes"), "nonnegative must be True or False"),
])
def test_clear_errors(kwargs, match):
    A, b = _data()
    with pytest.raises((ValueError, TypeError), match=match):
        gdla.LinearSystem(A, b, **kwargs)


def test_no_closed_form_for_lasso_and_optimizer_errors():
    A, b = _data()
    with pytest.raises(NotImplementedError, match="scipy.optimize.nnls"):
        gdla.LinearSystem(A, b, l1=1.0).reference()
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        gdla.optim.ProximalGradient([torch.zeros(2, requires_grad=True)], lr=0)
    with pytest.raises(ValueError, match="spd"):
        gdla.LinearSystem(A.T @ A, A.T @ b, assume="spd", l2=1.0)


# -- the shipped configs, run in-process through the CLI --------------------------------------
@pytest.mark.parametrize("config", ["ridge.yaml", "lasso.yaml", "nnls.yaml"])
def test_configs(config, tmp_path):
    from test_cli import run_cli

    cli = run_cli(config, tmp_path)
    problem, result = cli.model.problem, cli.model.result
    A, b = problem.A.numpy(), problem.b.numpy()
    x = result.solution.numpy()
    assert result.converged and result.residual <= 1e-8
    if config == "ridge.yaml":
        expected = np.linalg.solve(A.T @ A + 10.0 * np.eye(20), A.T @ b)
    elif config == "nnls.yaml":
        expected, _ = nnls(A, b)
    else:
        expected = _coordinate_descent(A, b, 10.0)
        assert 0 < int((expected != 0).sum()) < 20  # a sparse, non-trivial answer
    assert np.allclose(x, expected, atol=1e-8)
