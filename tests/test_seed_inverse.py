"""The matrix-operations tutorial: matrix inverse by SGD(0.9, 0.9) — the same numbers in plain PyTorch, solve()
and the CLI."""
import pytest
import torch

import torch_gdla as gdla
from conftest import sgd

# (initial loss, first step with loss < 1e-8, first step with loss < 1e-12), as the tutorial measured.
RANDOM = (0.7897, 499, 783)
DIAGONAL = (1.6650, 166, 253)


def first_below(history: torch.Tensor, level: float) -> int:
    return int((history < level).nonzero()[0])


def check_seed_numbers(history: torch.Tensor, expected) -> None:
    initial, below_8, below_12 = expected
    assert history[0].item() == pytest.approx(initial, abs=1e-4)
    assert abs(first_below(history, 1e-8) - below_8) <= 5
    assert abs(first_below(history, 1e-12) - below_12) <= 5


def plain_loop(problem, steps=10_000):
    opt = torch.optim.SGD(problem.parameters(), lr=0.9, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = problem()
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return torch.tensor(losses)


def test_initial_guess_is_the_seed_notebooks(M1):
    inv = gdla.MatrixInverse(M1)
    torch.manual_seed(314)
    assert torch.equal(inv.X.detach(), torch.rand(4, 4))


@pytest.mark.parametrize("matrix, expected", [("M1", RANDOM), ("M2", DIAGONAL)])
def test_plain_pytorch_reproduces_seed(matrix, expected, request):
    M = request.getfixturevalue(matrix)
    inv = gdla.MatrixInverse(M, side="left")
    history = plain_loop(inv)
    check_seed_numbers(history, expected)
    assert torch.allclose(inv.solution @ M, torch.eye(4), atol=1e-4)
    assert inv.residual() < 1e-5


@pytest.mark.parametrize("matrix, expected", [("M1", RANDOM), ("M2", DIAGONAL)])
def test_solve_reproduces_seed(matrix, expected, request):
    M = request.getfixturevalue(matrix)
    inv = gdla.MatrixInverse(M)
    result = gdla.solve(inv, optimizer=sgd(0.9, 0.9), tol=0, max_steps=10_000)
    assert result.steps == 10_000 and len(result.history) == 10_000
    assert result.evaluations == 10_000
    check_seed_numbers(result.history, expected)
    assert torch.allclose(result.solution @ M, torch.eye(4), atol=1e-4)
    # identical to the plain loop, step for step
    reference = plain_loop(gdla.MatrixInverse(M), steps=300)
    assert torch.allclose(result.history[:300].float(), reference, rtol=1e-5, atol=0)
    # the problem holds the returned solution
    assert torch.equal(inv.solution, result.solution)


def test_solve_stops_at_tol_step(M1):
    result = gdla.solve(gdla.MatrixInverse(M1), optimizer=sgd(0.9, 0.9), tol=1e-12, max_steps=10_000)
    assert result.converged and result.reason.startswith("tol reached")
    below = first_below(result.history, 1e-12 + 1e-30)
    assert result.steps == below + 1  # stopped at the very step the loss first met tol
    assert result.loss <= 1e-12
    assert abs(below - RANDOM[2]) <= 5
