"""Minimize's stationarity measure and its default optimizer, gdla.optim.LBFGS (one iteration per step)."""
import numpy as np
import pytest
import scipy.optimize
import torch

import torch_gdla as gdla
from torch_gdla.engine import Criteria, Iteration
from torch_gdla.optim import LBFGS


def shifted(x):
    return (x - 3).square().sum() + 1e10


def test_a_large_constant_does_not_make_a_wrong_point_stationary():
    # The former measure ‖∇f‖ / max(1, |f|) was 13.42 / 1e10 at x = −3.71: "converged" far away.
    problem = gdla.Minimize(shifted, torch.tensor([-47.0], dtype=torch.float64))
    assert problem.gradient_scale == pytest.approx(100.0)  # |f'(−47)| = 2·50
    with torch.no_grad():
        problem.x.fill_(-3.71)
    assert problem.residual() == pytest.approx(2 * 6.71 / 100)
    with torch.no_grad():
        problem.x.fill_(-47.0)
    result = gdla.solve(problem, residual_tol=1e-8)
    assert result.converged and abs(float(result.solution) - 3) <= 1e-8 * 100 / 2


def test_the_measure_ignores_constants_and_units_and_a_stationary_start():
    x0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    problems = [gdla.Minimize(f, x0) for f in (gdla.functions.rosenbrock, lambda x: gdla.functions.rosenbrock(x) + 7e8,
                                                lambda x: 1e-6 * gdla.functions.rosenbrock(x))]
    point = torch.tensor([0.9, 0.8, 0.7], dtype=torch.float64)
    residuals = []
    for problem in problems:
        with torch.no_grad():
            problem.x.copy_(point)
        residuals.append(problem.residual())
    assert residuals[1] == pytest.approx(residuals[0], rel=1e-12) and residuals[2] == pytest.approx(residuals[0], rel=1e-12)
    at_minimum = gdla.Minimize("rosenbrock", torch.ones(3, dtype=torch.float64))
    assert at_minimum.gradient_scale == 1.0 and at_minimum.residual() == 0.0  # documented fallback
    assert gdla.solve(at_minimum).converged
    with pytest.raises(ValueError, match="gradient_scale must be a finite number > 0"):
        gdla.Minimize("sphere", [1.0], gradient_scale=0.0)


def rosenbrock_start(d):
    x = np.empty(d)
    x[0::2], x[1::2] = -1.2, 1.0
    return x


@pytest.mark.parametrize("d", [2, 100])
def test_rosenbrock_default_needs_about_the_evaluations_of_l_bfgs_b(d):
    # Same gradient tolerance: ‖∇f‖ ≤ 1e-8 (ours: the 2-norm; scipy's gtol: the ∞-norm, weaker).
    peer = scipy.optimize.minimize(lambda x: (scipy.optimize.rosen(x), scipy.optimize.rosen_der(x)),
                                   rosenbrock_start(d), jac=True, method="L-BFGS-B",
                                   options=dict(gtol=1e-8, ftol=0.0, maxiter=10_000, maxfun=10_000))
    problem = gdla.Minimize("rosenbrock", torch.from_numpy(rosenbrock_start(d)), gradient_scale=1.0)
    result = gdla.solve(problem, residual_tol=1e-8, max_steps=10_000)
    assert result.status is gdla.Status.RESIDUAL_TOL
    assert np.linalg.norm(scipy.optimize.rosen_der(result.solution.numpy())) <= 1e-8
    assert np.allclose(result.solution.numpy(), 1.0, atol=1e-7)
    assert result.evaluations <= 1.2 * peer.nfev  # measured: 49 vs 46 (d=2), 639 vs 639 (d=100)
    assert result.steps <= 1.2 * peer.nit


def test_plain_loop_on_a_quadratic_reaches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    B = torch.randn(8, 8, generator=g, dtype=torch.float64)
    A, b = B @ B.mT + torch.eye(8, dtype=torch.float64), torch.randn(8, generator=g, dtype=torch.float64)
    x = torch.nn.Parameter(torch.zeros(8, dtype=torch.float64))
    optimizer = LBFGS([x])

    def closure():
        optimizer.zero_grad()
        loss = 0.5 * x @ A @ x - b @ x
        loss.backward()
        return loss

    for _ in range(40):
        optimizer.step(closure)
    torch.testing.assert_close(x.detach(), torch.linalg.solve(A, b), rtol=0, atol=1e-10)


def test_state_dict_round_trip_continues_identically():
    def run(steps, state=None):
        problem = gdla.Minimize("rosenbrock", torch.from_numpy(rosenbrock_start(6)))
        optimizer = LBFGS(problem.parameters(), history_size=4)
        if state is not None:
            problem.load_state_dict(state[0])
            optimizer.load_state_dict(state[1])

        def closure():
            optimizer.zero_grad()
            loss = problem()
            loss.backward()
            return loss

        for _ in range(steps):
            optimizer.step(closure)
        return problem, optimizer

    problem, optimizer = run(12)
    saved = ({k: v.clone() for k, v in problem.state_dict().items()}, optimizer.state_dict())
    straight, _ = run(20)
    resumed, _ = run(8, state=saved)  # 12 + 8 steps, through a state dict
    assert torch.equal(resumed.x, straight.x)


def test_converges_on_the_gradient_where_the_loss_cannot_resolve_the_steps():
    # float32 resolves 1e10 + (x − 3)² only in steps of ~1e3: every decrease the steps make is
    # invisible in the loss; the approximate Wolfe test (on the gradient) still takes them.
    result = gdla.solve(gdla.Minimize(shifted, torch.tensor([-47.0])), residual_tol=1e-6, max_steps=5000)
    assert result.converged and float(result.solution) == 3.0
    # a quadratic with a non-zero minimum: full accuracy, not √eps
    problem = gdla.Minimize(lambda x: (x - 0.25).square().sum() + 4, torch.tensor([3.0, -1.0], dtype=torch.float64))
    result = gdla.solve(problem, residual_tol=1e-14)
    assert result.converged and torch.allclose(result.solution, torch.full((2,), 0.25, dtype=torch.float64), rtol=0,
                                               atol=1e-14)


def test_no_progress_ends_honestly():
    # |x| has no gradient that vanishes: the search fails at the kink and the run says so,
    # without a learning rate to blame.
    problem = gdla.Minimize(lambda x: x.abs().sum(), torch.tensor([1.5, -2.5], dtype=torch.float64))
    result = gdla.solve(problem, residual_tol=1e-8, max_steps=5000)
    assert result.status is gdla.Status.STALLED and result.steps < 1000
    assert "LBFGS (which has no learning rate to tune)" in result.reason
    assert result.residual == pytest.approx(1.0)  # ‖sign(x)‖ / ‖∇f(x0)‖


def test_arguments():
    x = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="0 < c1 < c2 < 1"):
        LBFGS([x], c1=0.5, c2=0.4)
    with pytest.raises(ValueError, match="history_size"):
        LBFGS([x], history_size=0)
    with pytest.raises(RuntimeError, match="needs a closure"):
        LBFGS([x]).step()
    # one iteration per step: the engine's rules see every iteration
    problem = gdla.Minimize("rosenbrock", torch.from_numpy(rosenbrock_start(2)))
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(residual_tol=1e-30, stall_steps=0),
                          max_steps=7)
    iteration.run(7)
    assert iteration.steps == 7 and iteration.evaluations <= 7 * 2
