"""Problem contract: loss variants, residuals, least squares, dtypes, devices, warm starts."""
import math

import pytest
import torch

import torch_gdla as gdla
from conftest import LINEAR_SYSTEM_TUTORIAL_A, LINEAR_SYSTEM_TUTORIAL_B, sgd


def random_matrix(shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("side", ["left", "right", "both"])
def test_inverse_loss_variants(side, M1):
    M = M1.double()
    inv = gdla.MatrixInverse(M, side=side)
    X = inv.X.detach()
    I = torch.eye(4, dtype=torch.float64)
    left, right = ((X @ M - I) ** 2).mean(), ((M @ X - I) ** 2).mean()
    expected = {"left": left, "right": right, "both": (left + right) / 2}[side]
    assert inv().item() == pytest.approx(expected.item(), rel=1e-12)
    r_left = torch.linalg.matrix_norm(X @ M - I) / 2
    r_right = torch.linalg.matrix_norm(M @ X - I) / 2
    expected_residual = {"left": r_left, "right": r_right, "both": max(r_left, r_right)}[side]
    assert inv.residual() == pytest.approx(float(expected_residual), rel=1e-12)
    # the loss bounds the residual, so stopping on residual_tol never claims too much
    assert inv.residual() <= inv.residual_bound(inv().item()) * (1 + 1e-12)
    result = gdla.solve(inv, residual_tol=1e-10)
    assert result.converged, result.reason
    assert torch.allclose(result.solution, torch.linalg.inv(M), atol=1e-8)
    assert inv.residual() <= 1e-10


def test_linear_system_tutorial_plain_and_solve():
    A = torch.tensor(LINEAR_SYSTEM_TUTORIAL_A).float()
    b = torch.tensor(LINEAR_SYSTEM_TUTORIAL_B).float()
    expected = torch.tensor([1.0, 2.0, 3.0, 4.0])
    ls = gdla.LinearSystem(A, b)
    assert torch.equal(ls.x.detach(), torch.zeros(4))
    loss = ls()
    assert loss.item() == pytest.approx(torch.nn.functional.mse_loss(A @ torch.zeros(4), b).item())
    opt = torch.optim.SGD(ls.parameters(), lr=0.01, momentum=0.9)
    for _ in range(1000):
        opt.zero_grad()
        ls().backward()
        opt.step()
    assert torch.allclose(ls.solution, expected, atol=5e-5)
    result = gdla.solve(gdla.LinearSystem(A, b), optimizer=sgd(0.01, 0.9), tol=0, max_steps=1000)
    assert torch.allclose(result.solution, expected, atol=5e-5)
    assert torch.allclose(result.solution, ls.solution, atol=1e-6)
    assert result.residual < 1e-5


def test_overdetermined_least_squares_matches_lstsq():
    A, b = random_matrix((50, 5), 1), random_matrix((50,), 2)
    ls = gdla.LinearSystem(A, b)
    assert ls.least_squares
    result = gdla.solve(ls, residual_tol=1e-9, max_steps=2000)
    assert result.converged, result.reason
    reference = torch.linalg.lstsq(A, b.unsqueeze(-1)).solution.squeeze(-1)
    assert torch.allclose(result.solution, reference, atol=1e-8)
    normal = torch.linalg.norm(A.T @ (A @ result.solution - b)) / torch.linalg.norm(A.T @ b)
    assert ls.residual() == pytest.approx(normal.item(), rel=1e-9)
    assert ls.residual() <= 1e-9


def test_underdetermined_reaches_minimum_norm_solution():
    A, b = random_matrix((3, 6), 3), random_matrix((3, 2), 4)
    ls = gdla.LinearSystem(A, b)
    result = gdla.solve(ls, optimizer=sgd(0.05, 0.9), residual_tol=1e-10, max_steps=20_000)
    assert result.converged, result.reason
    minimum_norm = torch.linalg.pinv(A) @ b
    assert torch.allclose(result.solution, minimum_norm, atol=1e-8)
    # a random start converges to a different solution: zero start is what gives the minimum norm
    other = gdla.solve(gdla.LinearSystem(A, b, init="uniform"), optimizer=sgd(0.05, 0.9), residual_tol=1e-10, max_steps=20_000)
    assert torch.allclose(A @ other.solution, b, atol=1e-7)
    assert torch.linalg.norm(other.solution) > torch.linalg.norm(minimum_norm) + 1e-3


def test_multiple_right_hand_sides_and_square_residual():
    A = random_matrix((6, 6), 5) + 6 * torch.eye(6, dtype=torch.float64)
    B = random_matrix((6, 3), 6)
    ls = gdla.LinearSystem(A, B)
    assert ls.solution.shape == (6, 3)
    result = gdla.solve(ls)
    assert result.converged
    assert torch.allclose(result.solution, torch.linalg.solve(A, B), atol=1e-7)
    assert ls.residual() == pytest.approx((torch.linalg.norm(A @ ls.solution - B) / torch.linalg.norm(B)).item(), rel=1e-9)


def test_dtype_follows_input_and_to_moves_everything(M1):
    inv32 = gdla.MatrixInverse(M1)
    assert inv32.X.dtype == torch.float32 and inv32.M.dtype == torch.float32
    inv64 = gdla.MatrixInverse(M1.double())
    assert inv64.X.dtype == torch.float64
    moved = inv32.to(torch.float64)
    assert moved.X.dtype == moved.M.dtype == moved.identity.dtype == torch.float64
    result = gdla.solve(moved, residual_tol=1e-12)
    assert result.solution.dtype == torch.float64 and result.converged


def test_seed_and_warm_start(M1):
    a, b = gdla.MatrixInverse(M1, seed=1), gdla.MatrixInverse(M1, seed=1)
    assert torch.equal(a.X, b.X)
    assert not torch.equal(a.X, gdla.MatrixInverse(M1, seed=2).X)
    exact = torch.linalg.inv(M1)
    warm = gdla.MatrixInverse(M1, init=exact)
    assert torch.equal(warm.X.detach(), exact)
    result = gdla.solve(warm, residual_tol=1e-4)
    assert result.converged and result.steps == 1  # already there: one step confirms it
    with pytest.raises(ValueError, match="init must have the unknown's shape"):
        gdla.MatrixInverse(M1, init=torch.zeros(3, 3))


def test_plain_pytorch_with_lbfgs_closure(M1):
    inv = gdla.MatrixInverse(M1.double())
    opt = torch.optim.LBFGS(inv.parameters(), line_search_fn="strong_wolfe", max_iter=50)

    def closure():
        opt.zero_grad()
        loss = inv()
        loss.backward()
        return loss

    opt.step(closure)
    assert inv.residual() < 1e-5
