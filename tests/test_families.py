"""Problem families: the public constructors build one class per variant, with unchanged numbers."""
import copy
import io
import math

import pytest
import torch

import torch_gdla as gdla
from torch_gdla.problems.energy import energy_floor
from torch_gdla.problems.svd import svd_optimizer


def spd(n, cond, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eigenvalues = torch.logspace(0, math.log10(cond), n, dtype=torch.float64)
    M = (Q * eigenvalues) @ Q.mT
    return ((M + M.mT) / 2).to(dtype)


def data(m=12, n=5, k=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    b_shape = (m,) if k is None else (m, k)
    return torch.randn(m, n, generator=g, dtype=torch.float64), torch.randn(b_shape, generator=g, dtype=torch.float64)


def same_numbers(p, q):
    """Same parameters, same loss and gradient, same residuals, bit for bit."""
    assert [name for name, _ in p.named_parameters()] == [name for name, _ in q.named_parameters()]
    for (_, a), (_, b) in zip(p.named_parameters(), q.named_parameters()):
        assert torch.equal(a, b)
    lp, lq = p(), q()
    lp.backward()
    lq.backward()
    assert torch.equal(lp, lq)
    for a, b in zip(p.parameters(), q.parameters()):
        # SVD's points (U_base, V_base) are parameters without a gradient: both None
        assert (a.grad is None and b.grad is None and not a.requires_grad) or torch.equal(a.grad, b.grad)
    assert torch.equal(p.residuals(), q.residuals())


M = torch.rand(5, 4, generator=torch.Generator().manual_seed(314))
A, b = data()
S6 = spd(6, 10.0)
MASK = torch.rand(5, 4, generator=torch.Generator().manual_seed(2)) < 0.8

CASES = [
    (lambda: gdla.MatrixInverse(S6), gdla.MatrixInverse, lambda: gdla.MatrixInverse(S6)),
    (lambda: gdla.MatrixInverse(S6, side="right", assume="spd"), gdla.SPDMatrixInverse,
     lambda: gdla.SPDMatrixInverse(S6, side="right")),
    (lambda: gdla.LinearSystem(A, b), gdla.LinearSystem, lambda: gdla.LinearSystem(A, b)),
    (lambda: gdla.LinearSystem(S6, b[:6], init="uniform", assume="spd"), gdla.SPDLinearSystem,
     lambda: gdla.SPDLinearSystem(S6, b[:6], init="uniform")),
    (lambda: gdla.LinearSystem(A, b, l1=0.3, nonnegative=True), gdla.RegularisedLeastSquares,
     lambda: gdla.RegularisedLeastSquares(A, b, l1=0.3, nonnegative=True)),
    (lambda: gdla.LinearSystem(A, b, weights=torch.linspace(0.5, 2, 12, dtype=torch.float64), l2=0.7),
     gdla.RegularisedLeastSquares,
     lambda: gdla.RegularisedLeastSquares(A, b, weights=torch.linspace(0.5, 2, 12, dtype=torch.float64), l2=0.7)),
    (lambda: gdla.SVD(M), gdla.SVD, lambda: gdla.SVD(M)),
    (lambda: gdla.SVD(M, 3, "penalty", 7, 0.1), gdla.PenaltySVD, lambda: gdla.PenaltySVD(M, rank=3, seed=7, penalty=0.1)),
    (lambda: gdla.SVD(M, rank=2, mask=MASK), gdla.MatrixCompletion, lambda: gdla.MatrixCompletion(M, 2, mask=MASK)),
]


@pytest.mark.parametrize("family_call, cls, direct", CASES)
def test_family_constructor_builds_the_variant(family_call, cls, direct):
    p = family_call()
    assert type(p) is cls
    root = {gdla.SPDMatrixInverse: gdla.MatrixInverse, gdla.SPDLinearSystem: gdla.LinearSystem,
            gdla.RegularisedLeastSquares: gdla.LinearSystem, gdla.PenaltySVD: gdla.SVD,
            gdla.MatrixCompletion: gdla.SVD}.get(cls, cls)
    assert isinstance(p, root) and isinstance(p, gdla.Problem)
    same_numbers(p, direct())
    # copies and pickles keep the class (construction is not re-run)
    buffer = io.BytesIO()
    torch.save(p, buffer)
    buffer.seek(0)
    for other in (copy.deepcopy(p), torch.load(buffer, weights_only=False)):
        assert type(other) is cls and torch.equal(other().detach(), p().detach())


def test_variant_attributes():
    assert gdla.MatrixInverse(S6).assume is None and gdla.MatrixInverse(S6, assume="spd").assume == "spd"
    assert gdla.LinearSystem(S6, b[:6], assume="spd", l2=0.0, nonnegative=False).assume == "spd"  # defaults select nothing
    lasso = gdla.LinearSystem(A, b, l1=1.0)
    assert not lasso.quadratic and lasso.last_iterate and lasso.l1 == 1.0
    assert gdla.LinearSystem(A, b, l2=1.0).quadratic
    assert gdla.PenaltySVD(M).penalty == 0.01 and gdla.SVD(M, method="orthogonal").rank == 4


def test_unknown_or_missing_arguments_name_the_class():
    with pytest.raises(TypeError, match=r"LinearSystem\(\): got an unexpected keyword argument 'bogus'"):
        gdla.LinearSystem(A, b, bogus=1)
    with pytest.raises(TypeError, match=r"SVD\(\): missing a required argument: 'M'"):
        gdla.SVD()


def test_a_subclass_of_the_root_is_built_as_itself_and_refuses_other_variants():
    class Mine(gdla.MatrixInverse):
        pass

    assert type(Mine(S6)) is Mine
    with pytest.raises(ValueError, match=r"Mine derives from MatrixInverse, but assume='spd' selects SPDMatrixInverse"):
        Mine(S6, assume="spd")

    class MySystem(gdla.LinearSystem):
        pass

    with pytest.raises(ValueError, match=r"l1=1.0 selects RegularisedLeastSquares"):
        MySystem(A, b, l1=1.0, l2=0.0)

    class MySVD(gdla.SVD):
        pass

    with pytest.raises(ValueError, match=r"method='penalty' selects PenaltySVD"):
        MySVD(M, method="penalty")


def test_variant_specific_refusals():
    with pytest.raises(ValueError, match="MatrixCompletion needs mask= .* or weights="):
        gdla.MatrixCompletion(M, rank=2)
    with pytest.raises(ValueError, match="penalty must be a finite number > 0"):
        gdla.PenaltySVD(M, penalty=-1.0)
    with pytest.raises(ValueError, match=r'assume="spd".*not symmetric'):
        gdla.SPDLinearSystem(A[:5], b[:5])
    with pytest.raises(ValueError, match="assume must be None or 'spd'"):
        gdla.LinearSystem(A, b, assume="symmetric", l2=1.0)


def test_lipschitz_is_the_loss_own():
    A6 = S6
    plain, energy, ridge = gdla.LinearSystem(A6, b[:6]), gdla.SPDLinearSystem(A6, b[:6]), gdla.LinearSystem(A6, b[:6], l2=2.0)
    norm = float(torch.linalg.matrix_norm(A6, ord=2))
    assert plain.lipschitz() == pytest.approx(2 / 6 * norm ** 2)
    assert ridge.lipschitz() == pytest.approx(2 / 6 * (norm ** 2 + 2.0))
    assert energy.lipschitz() == pytest.approx(norm / 6)  # gradient (Ax − b)/n


# -- residual floors ----------------------------------------------------------------------------
def test_only_the_energy_forms_report_a_floor():
    M8 = spd(8, 10.0)
    for p in (gdla.MatrixInverse(M8), gdla.LinearSystem(M8, b[:8]), gdla.LinearSystem(A, b), gdla.LinearSystem(A, b, l1=1.0),
              gdla.SVD(M), gdla.SVD(M, method="penalty")):
        assert p.residual_floor() is None
    for dtype in (torch.float32, torch.float64):
        eps = torch.finfo(dtype).eps
        for p in (gdla.MatrixInverse(M8.to(dtype), assume="spd"), gdla.LinearSystem(M8.to(dtype), b[:8].to(dtype), assume="spd")):
            floor = p.residual_floor()
            assert math.sqrt(eps) <= floor <= math.sqrt(eps * 10.0)  # between √eps and √(eps·κ)


def test_energy_floor_special_cases():
    eye = torch.eye(4, dtype=torch.float64)
    # A = I: the energy resolves exactly √eps; b = 0 has minimum 0 and no floor
    assert energy_floor(eye, torch.ones(4, 1, dtype=torch.float64)) == pytest.approx(math.sqrt(torch.finfo(torch.float64).eps))
    assert energy_floor(eye, torch.zeros(4, 1, dtype=torch.float64)) is None
    # b along the top eigenvector resolves to √eps; with κ beyond 1/√eps, eps·κ is the larger
    # limit, so the loss sets no floor of its own
    diagonal = torch.diag(torch.logspace(0, 4, 6))
    top = torch.zeros(6, 1)
    top[-1] = 1.0
    assert energy_floor(diagonal, top) is None
    assert energy_floor(diagonal.double(), top.double()) == pytest.approx(math.sqrt(torch.finfo(torch.float64).eps))


@pytest.mark.parametrize("n", [20, 40])
def test_energy_stalls_near_its_floor_where_the_mse_goes_on(n):
    # L-BFGS's line search compares loss values, so it stops where the loss stops resolving.
    M_n = spd(n, 10.0)
    rhs = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def run(problem):
        optimizer = svd_optimizer(problem.parameters())

        def closure():
            optimizer.zero_grad()
            loss = problem()
            loss.backward()
            return loss

        for _ in range(60):
            optimizer.step(closure)
        return problem.residual()

    energy = gdla.LinearSystem(M_n, rhs, assume="spd")
    floor = energy.residual_floor()
    stalled = run(energy)
    assert floor / 20 <= stalled <= 2 * floor, (stalled, floor)  # measured 0.17 and 0.45 × floor
    assert run(gdla.LinearSystem(M_n, rhs)) <= floor / 10  # measured 0.007 and 0.03 × floor
