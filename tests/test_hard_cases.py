"""Hard cases get honest results (issue 6): a singular matrix, divergence, max_steps and a
tolerance below the dtype's precision floor are reported as such, never as converged."""
import functools
import re

import pytest
import torch

import torch_gdla as gdla
from torch_gdla import Status

# Rank 2: the second row is twice the first.
SINGULAR = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]


def sgd(lr, momentum=0.0):
    return functools.partial(torch.optim.SGD, lr=lr, momentum=momentum)


def reported_condition(reason: str) -> float:
    match = re.search(r"condition number ([0-9.e+\-]+|inf|nan)", reason)
    assert match, f"no condition number in {reason!r}"
    return float(match.group(1))


def assert_singular(result, max_steps=None):
    assert result.converged is False
    assert result.status is Status.SINGULAR
    assert result.reason.startswith("matrix looks singular")
    assert "gradient vanishes" in result.reason
    if max_steps is not None:
        assert result.steps < max_steps  # stopped on the plateau, not by running out of steps


# --- singular and numerically singular matrices -----------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_singular_inverse_is_not_converged_and_says_why(dtype):
    M = torch.tensor(SINGULAR, dtype=dtype)
    result = gdla.solve(gdla.MatrixInverse(M), max_steps=5000)
    assert_singular(result, 5000)
    eps = torch.finfo(dtype).eps
    assert reported_condition(result.reason) * eps > 1e-2  # cond of the order of 1/eps (or more)
    assert "1/eps of " + str(dtype).replace("torch.", "") in result.reason
    assert result.residual > 0.1  # no "solution" exists: X M = I fails by a wide margin


def test_singular_inverse_is_not_converged_with_a_learning_rate_either():
    result = gdla.solve(gdla.MatrixInverse(torch.tensor(SINGULAR, dtype=torch.float64)),
                        optimizer=sgd(0.1, 0.9), max_steps=5000)
    assert_singular(result, 5000)


def test_numerically_singular_hilbert_inverse_and_system():
    H = gdla.matrices.Hilbert(14).tensor()  # float64, cond ~ 1e18 > 1/eps
    true_cond = float(torch.linalg.cond(H))
    assert true_cond > 1e17
    result = gdla.solve(gdla.MatrixInverse(H), max_steps=5000)
    assert_singular(result, 5000)
    assert reported_condition(result.reason) > 1e15
    b = torch.rand(14, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    system = gdla.solve(gdla.LinearSystem(H, b), max_steps=3000)
    assert_singular(system, 3000)
    assert reported_condition(system.reason) > 1e15


def test_zero_matrix_reports_an_infinite_condition_number():
    result = gdla.solve(gdla.MatrixInverse(torch.zeros(3, 3, dtype=torch.float64)), max_steps=2000)
    assert_singular(result, 2000)
    assert reported_condition(result.reason) == float("inf")


def test_one_singular_member_of_a_batch():
    Ms = torch.stack([torch.tensor(SINGULAR, dtype=torch.float64), 2 * torch.eye(3, dtype=torch.float64)])
    result = gdla.solve(gdla.MatrixInverse(Ms), max_steps=5000)
    assert_singular(result, 5000)
    assert result.member_converged.tolist() == [False, True]
    assert torch.allclose(result.solution[1], 0.5 * torch.eye(3, dtype=torch.float64), atol=1e-8)


def test_inconsistent_singular_square_system_ends_at_the_minimum_norm_least_squares_point():
    """No x solves A x = b: the run says the matrix looks singular, and from the zero start the
    returned x is the minimum-norm least-squares solution pinv(A) b."""
    A = torch.tensor(SINGULAR, dtype=torch.float64)
    b = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # not in range(A): b₂ ≠ 2 b₁
    result = gdla.solve(gdla.LinearSystem(A, b), max_steps=5000)
    assert_singular(result, 5000)
    assert torch.allclose(result.solution, torch.linalg.pinv(A) @ b, atol=1e-10)


def test_consistent_singular_square_system_converges_to_the_minimum_norm_solution():
    A = torch.tensor(SINGULAR, dtype=torch.float64)
    b = A @ torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)  # b in range(A): infinitely many solutions
    result = gdla.solve(gdla.LinearSystem(A, b))
    assert result.converged and result.status is Status.RESIDUAL_TOL
    assert torch.linalg.norm(A @ result.solution - b) <= 1e-8 * torch.linalg.norm(b)
    assert torch.allclose(result.solution, torch.linalg.pinv(A) @ b, atol=1e-10)
    # the minimum-norm one, not the x used to build b
    assert torch.linalg.norm(result.solution) < torch.linalg.norm(torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64))


@pytest.mark.parametrize("m, n", [(8, 5), (5, 8)])
@pytest.mark.parametrize("k", [None, 2])
def test_rank_deficient_least_squares_reaches_the_minimum_norm_solution(m, n, k):
    """Rank 3 < min(m, n): the least-squares solutions form an affine set; from the zero start the
    iterates stay in the row space of A, so the limit is the minimum-norm one, pinv(A) b."""
    generator = torch.Generator().manual_seed(6)
    A = torch.randn(m, 3, generator=generator, dtype=torch.float64) @ torch.randn(3, n, generator=generator, dtype=torch.float64)
    b = torch.randn(m, generator=generator, dtype=torch.float64) if k is None else torch.randn(m, k, generator=generator, dtype=torch.float64)
    assert torch.linalg.matrix_rank(A) == 3
    result = gdla.solve(gdla.LinearSystem(A, b))
    assert result.converged, result.reason
    expected = torch.linalg.pinv(A) @ b
    assert torch.allclose(result.solution, expected, atol=1e-9 * float(expected.norm()))
    # a different least-squares solution (a null-space component added) fits equally well
    null = torch.linalg.svd(A).Vh[-1]
    other = expected + (null if k is None else null[:, None])
    assert torch.allclose(A @ other, A @ expected, atol=1e-10)


def test_rank_deficient_least_squares_from_another_start_keeps_its_null_space_part():
    """The minimum-norm statement holds for the zero start (the default); a start with a
    null-space component keeps that component, which the docs say."""
    generator = torch.Generator().manual_seed(7)
    A = torch.randn(6, 2, generator=generator, dtype=torch.float64) @ torch.randn(2, 4, generator=generator, dtype=torch.float64)
    b = torch.randn(6, generator=generator, dtype=torch.float64)
    null = torch.linalg.svd(A).Vh[-1]
    result = gdla.solve(gdla.LinearSystem(A, b, init=null.clone()))
    assert result.converged
    assert torch.allclose(result.solution, torch.linalg.pinv(A) @ b + null, atol=1e-9)


def test_rtol_does_not_call_a_singular_matrix_converged():
    result = gdla.solve(gdla.MatrixInverse(torch.tensor(SINGULAR, dtype=torch.float64)), rtol=1e-6)
    assert result.residual > 0.5  # the loss plateau is far from X M = I ...
    assert result.converged is False  # ... so it must not be called converged
    assert result.status is Status.SINGULAR


# --- divergence -------------------------------------------------------------------------------------------


def test_divergence_stops_at_the_first_non_finite_loss_with_the_best_solution():
    generator = torch.Generator().manual_seed(1)
    M = torch.rand(4, 4, generator=generator, dtype=torch.float64) + torch.eye(4, dtype=torch.float64)
    result = gdla.solve(gdla.MatrixInverse(M), optimizer=sgd(50.0), max_steps=1000)
    assert result.status is Status.DIVERGED and result.converged is False
    finite = torch.isfinite(result.history)
    assert not finite[-1] and finite[:-1].all()  # stopped at once: the first non-finite loss is the last
    assert result.reason.startswith(f"diverged: loss became {result.history[-1].item()} at step {result.steps - 1}")
    assert "lower the learning rate" in result.reason
    assert result.loss == pytest.approx(float(result.history[finite].min()))  # the best point seen
    assert torch.isfinite(result.solution).all()
    assert float(gdla.MatrixInverse(M, init=result.solution)()) == pytest.approx(result.loss)


def test_overflowing_start_diverges_at_step_zero_and_returns_the_start():
    start = torch.full((3, 3), 1e30)
    result = gdla.solve(gdla.MatrixInverse(torch.eye(3), init=start), optimizer=sgd(1.0), max_steps=100)
    assert result.status is Status.DIVERGED and not result.converged
    assert result.steps == 1
    assert result.reason.startswith("diverged: the loss is inf at the starting point")
    assert "init=" in result.reason and "the starting point is returned" in result.reason
    assert "learning rate" not in result.reason  # no step was to blame
    assert torch.equal(result.solution, start)


# --- max_steps, precision floor, tol=0 -------------------------------------------------------------------


def test_max_steps_says_so_and_suggests_a_fix():
    generator = torch.Generator().manual_seed(2)
    M = torch.rand(4, 4, generator=generator)
    result = gdla.solve(gdla.MatrixInverse(M), optimizer=sgd(0.01), max_steps=50)
    assert result.status is Status.MAX_STEPS and not result.converged and result.steps == 50
    assert re.match(r"max_steps reached: increase max_steps \(now 50\) or change optimizer; best loss [0-9.e+-]+$", result.reason)


@pytest.mark.parametrize("setting", [{"residual_tol": 1e-9}, {"tol": 1e-20}])
def test_float32_tolerance_below_the_precision_floor_names_the_floor(setting):
    generator = torch.Generator().manual_seed(3)
    M = torch.rand(4, 4, generator=generator) + torch.eye(4)
    result = gdla.solve(gdla.MatrixInverse(M), max_steps=5000, **setting)
    assert result.status is Status.PRECISION and not result.converged
    assert result.steps < 5000
    floor = re.search(r"precision floor about eps ([0-9.e-]+) x condition number ([0-9.e+]+) = ([0-9.e+-]+)", result.reason)
    assert floor, result.reason
    eps, cond, value = map(float, floor.groups())
    assert eps == pytest.approx(torch.finfo(torch.float32).eps, rel=0.05)
    assert cond == pytest.approx(float(torch.linalg.cond(M)), rel=0.05)
    assert value == pytest.approx(eps * cond, rel=0.05)
    assert result.reason.startswith("tolerance below what float32 can reach")
    assert "use float64 or a tolerance above the floor" in result.reason
    # the advice works: the same problem in float64 meets the tolerance
    assert gdla.solve(gdla.MatrixInverse(M.double()), max_steps=5000, **setting).converged


def test_tol_zero_takes_every_step_even_at_an_exact_solution():
    result = gdla.solve(gdla.MatrixInverse(torch.eye(3), init=torch.eye(3)), tol=0, max_steps=50)
    assert result.steps == 50
    assert torch.all(result.history == 0)  # the loss is exactly 0 from the start
    assert result.status is Status.COMPLETED and not result.converged
    assert result.reason == "completed: ran the 50 steps configured (no tolerance was set, so none was checked)"
    assert result.summary().startswith("converged:   n/a (no tolerance was set)")
    assert torch.equal(result.solution, torch.eye(3))


def test_exact_start_with_a_tolerance_stops_after_one_step():
    result = gdla.solve(gdla.MatrixInverse(torch.eye(3), init=torch.eye(3)), max_steps=50)
    assert result.converged and result.steps == 1


def test_an_ill_conditioned_float32_system_is_called_a_precision_floor_quickly():
    # κ = 1e5 in float32: κ·eps ≈ 0.01, far above the default residual_tol 1e-4 — an honest
    # PRECISION verdict within a few hundred steps, not max_steps and not "singular".
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64))
    A = ((U * torch.logspace(0, -5, 200, dtype=torch.float64)) @ V.T).float()
    x, result = gdla.linalg.solve_ex(A, torch.randn(200, generator=g))
    assert result.status is Status.PRECISION and result.steps < 1000
    assert "use float64" in result.reason and "normal equations" in result.reason
    # in float64 the floor (κ·eps ≈ 2e-11) is below the tolerance: no such verdict, the run goes on
    in_float64 = gdla.linalg.solve_ex(A.double(), torch.randn(200, generator=g, dtype=torch.float64), max_steps=500)[1]
    assert in_float64.status is Status.MAX_STEPS
