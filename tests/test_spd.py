"""assume="spd": the energy loss of a symmetric positive definite matrix (condition κ, not κ²)."""
import functools

import pytest
import torch

import torch_gdla as gdla


def spd(n, cond, dtype=torch.float64, seed=0):
    """Q diag(log-spaced eigenvalues in [1, cond]) Qᵀ."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eigenvalues = torch.logspace(0, torch.log10(torch.tensor(float(cond))).item(), n, dtype=torch.float64)
    M = (Q * eigenvalues) @ Q.mT
    return ((M + M.mT) / 2).to(dtype)


def rhs(n, k=None, seed=1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if k is None else (n, k)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def autograd_cg(params):
    """Conjugate gradient through the loss's autograd gradient (any quadratic loss): the loss's
    own conditioning decides its iteration count."""
    return gdla.optim.ConjugateGradient(params, quadratic=True)


def test_inverse_spd_same_solution_fewer_evaluations():
    M = spd(50, 100.0)
    mse = gdla.solve(gdla.MatrixInverse(M), optimizer=autograd_cg)
    energy = gdla.solve(gdla.MatrixInverse(M, assume="spd"), optimizer=autograd_cg)
    assert mse.converged and energy.converged
    reference = torch.linalg.inv(M)
    assert torch.allclose(energy.solution, reference, rtol=0, atol=1e-7)
    assert torch.allclose(energy.solution, mse.solution, rtol=0, atol=1e-7)
    assert energy.residual <= 1e-8
    # the energy's condition is κ instead of the mse's κ²: measured 130 vs 350 evaluations here
    assert energy.evaluations <= 0.6 * mse.evaluations, (energy.evaluations, mse.evaluations)
    # the default method finds M symmetric and runs conjugate gradient on it either way
    default, spd_default = gdla.solve(gdla.MatrixInverse(M)), gdla.solve(gdla.MatrixInverse(M, assume="spd"))
    assert default.converged and spd_default.converged
    assert default.steps <= 2 * spd_default.steps, (default.steps, spd_default.steps)
    assert default.stats["matvecs"] == default.steps * 50 + 50  # one M application per step (+ the start)


@pytest.mark.parametrize("k", [None, 3])
def test_linear_system_spd_same_solution_fewer_evaluations(k):
    M = spd(50, 100.0)
    b = rhs(50, k)
    mse = gdla.solve(gdla.LinearSystem(M, b), optimizer=autograd_cg)
    energy = gdla.solve(gdla.LinearSystem(M, b, assume="spd"), optimizer=autograd_cg)
    assert mse.converged and energy.converged
    reference = torch.linalg.solve(M, b)
    assert torch.allclose(energy.solution, reference, rtol=0, atol=1e-7)
    assert torch.allclose(energy.solution, mse.solution, rtol=0, atol=1e-7)
    assert energy.residual <= 1e-8
    assert energy.evaluations <= 0.6 * mse.evaluations, (energy.evaluations, mse.evaluations)
    default, spd_default = gdla.solve(gdla.LinearSystem(M, b)), gdla.solve(gdla.LinearSystem(M, b, assume="spd"))
    assert default.converged and spd_default.converged
    assert torch.allclose(default.solution, reference, rtol=0, atol=1e-7)
    assert default.steps <= 2 * spd_default.steps, (default.steps, spd_default.steps)


@pytest.mark.parametrize("side", ["left", "right", "both"])
def test_inverse_spd_every_side(side):
    M = spd(8, 10.0)
    result = gdla.solve(gdla.MatrixInverse(M, side=side, assume="spd"))
    assert result.converged
    assert torch.allclose(result.solution, torch.linalg.inv(M), rtol=0, atol=1e-8)


def test_energy_gradient_is_the_residual():
    M = spd(6, 10.0)
    problem = gdla.MatrixInverse(M, assume="spd")
    problem().backward()
    expected = (problem.X.detach() @ M - torch.eye(6, dtype=M.dtype)) / 36
    assert torch.allclose(problem.X.grad, expected, rtol=0, atol=1e-14)
    b = rhs(6)
    system = gdla.LinearSystem(M, b, init="uniform", assume="spd")
    system().backward()
    assert torch.allclose(system.x.grad, (M @ system.x.detach() - b) / 6, rtol=0, atol=1e-14)


def test_residual_keeps_its_meaning_and_the_loss_bounds_nothing():
    M = spd(10, 10.0)
    problem = gdla.MatrixInverse(M, assume="spd")
    assert problem.quadratic
    expected = torch.linalg.matrix_norm(problem.X.detach() @ M - torch.eye(10, dtype=M.dtype)) / 10 ** 0.5
    assert problem.residual() == pytest.approx(float(expected), rel=1e-12)
    # an arbitrary loss value implies no bound on the residual
    assert problem.residual_bound(-1.0) is None
    # the residual of an evaluated point is what residual_bound returns for its loss
    loss = float(problem().detach())
    assert problem.residual_bound(loss) == pytest.approx(problem.residual(), rel=1e-12)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-8)])
def test_spd_float32_and_float64(dtype, tol):
    M = spd(20, 50.0, dtype=dtype)
    b = rhs(20, dtype=dtype)
    for problem in (gdla.MatrixInverse(M, assume="spd"), gdla.LinearSystem(M, b, assume="spd")):
        result = gdla.solve(problem)
        assert result.converged, result.reason
        assert result.solution.dtype == dtype
        assert result.residual <= tol
        assert problem.residual() <= tol


def test_spd_batched_equals_one_by_one():
    Ms = torch.stack([spd(6, c, seed=s) for s, c in enumerate([2.0, 30.0, 1000.0])])
    Ms[1] *= 50.0  # members keep their own scale
    starts = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    sgd = functools.partial(torch.optim.SGD, lr=0.05)  # stable: lr < 2n²/λmax = 0.072, so monotone
    batched = gdla.solve(gdla.MatrixInverse(Ms[[0, 2]], init=starts[[0, 2]], assume="spd"), optimizer=sgd, tol=0,
                         max_steps=50)
    for j, i in enumerate([0, 2]):
        single = gdla.solve(gdla.MatrixInverse(Ms[i], init=starts[i], assume="spd"), optimizer=sgd, tol=0, max_steps=50)
        assert torch.allclose(batched.solution[j], single.solution, rtol=0, atol=1e-12)
    # default optimizer: per-member CG, every member converges to its own inverse
    result = gdla.solve(gdla.MatrixInverse(Ms, init=starts, assume="spd"))
    assert result.converged and result.member_converged.all()
    assert torch.allclose(result.solution, torch.linalg.inv(Ms), rtol=1e-7, atol=1e-9)
    b = rhs(6, 2).expand(3, 6, 2)
    system = gdla.solve(gdla.LinearSystem(Ms, b, assume="spd"))
    assert system.converged
    assert torch.allclose(system.solution, torch.linalg.solve(Ms, b), rtol=1e-7, atol=1e-9)


def test_spd_default_stays_mse():
    M = spd(5, 10.0)
    assert gdla.MatrixInverse(M).assume is None
    problem = gdla.MatrixInverse(M)
    X = problem.X.detach()
    assert float(problem().detach()) == pytest.approx(float((X @ M - torch.eye(5, dtype=M.dtype)).square().mean()))


def test_spd_refusals():
    with pytest.raises(ValueError, match=r"assume must be None or 'spd'"):
        gdla.MatrixInverse(spd(4, 2.0), assume="symmetric")
    nonsymmetric = spd(4, 2.0)
    nonsymmetric[0, 1] += 0.1
    with pytest.raises(ValueError, match=r'assume="spd".*not symmetric'):
        gdla.MatrixInverse(nonsymmetric, assume="spd")
    with pytest.raises(ValueError, match=r'assume="spd".*not symmetric'):
        gdla.LinearSystem(nonsymmetric, torch.ones(4, dtype=torch.float64), assume="spd")
    indefinite = torch.diag(torch.tensor([1.0, 2.0, -1.0, 3.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r'assume="spd".*diagonal has 1 entries <= 0.*Drop assume="spd"'):
        gdla.MatrixInverse(indefinite, assume="spd")
    batch = torch.stack([spd(4, 2.0), indefinite])
    with pytest.raises(ValueError, match=r"batch member 1"):
        gdla.MatrixInverse(batch, assume="spd")
    with pytest.raises(ValueError, match=r'assume="spd" needs a square A'):
        gdla.LinearSystem(torch.rand(5, 3, dtype=torch.float64), torch.ones(5, dtype=torch.float64), assume="spd")
    # rounding-level asymmetry (A.T @ A computed in floating point) is accepted
    A = torch.rand(30, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    gdla.MatrixInverse(A.mT @ A + torch.eye(30), assume="spd")


def test_a_small_indefinite_matrix_with_a_positive_diagonal_is_caught_by_conjugate_gradient():
    # no factorisation up front: the diagonal passes, and CG meets pᵀAp <= 0 and says so
    A = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)  # eigenvalues 3, -1
    problem = gdla.LinearSystem(A, torch.tensor([1.0, 0.0], dtype=torch.float64), assume="spd")
    with pytest.raises(gdla.errors.NotConvergedError, match=r'not positive definite.*Drop assume="spd"'):
        gdla.linalg.solve(A, torch.tensor([1.0, 0.0], dtype=torch.float64), assume="spd")
    assert problem.residual() > 0  # the problem itself was built: only the iteration refuses


def test_the_finiteness_check_catches_nan_and_inf_and_accepts_huge_finite_entries():
    for bad in (float("nan"), float("inf"), -float("inf")):
        A = spd(4, 2.0)
        A[1, 2] = A[2, 1] = bad
        with pytest.raises(ValueError, match=r"A contains 2 NaN or Inf entries"):
            gdla.LinearSystem(A, torch.ones(4, dtype=torch.float64))
    huge = torch.full((3, 3), 1e308, dtype=torch.float64)  # finite, but its sum overflows
    gdla.LinearSystem(huge, torch.ones(3, dtype=torch.float64))
