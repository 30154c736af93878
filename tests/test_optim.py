"""gdla.optim.ConjugateGradient: the torch.optim contract and its convergence."""
import pytest
import torch

import torch_gdla as gdla
from torch_gdla.optim import ConjugateGradient


def closure_for(problem, optimizer):
    def closure():
        optimizer.zero_grad()
        loss = problem()
        loss.backward()
        return loss
    return closure


def test_quadratic_cg_solves_spd_system_in_at_most_n_iterations():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(12, 12, generator=g, dtype=torch.float64)
    A = A @ A.T + torch.eye(12, dtype=torch.float64)
    b = torch.randn(12, generator=g, dtype=torch.float64)
    ls = gdla.LinearSystem(A, b)
    opt = ConjugateGradient(ls.parameters(), quadratic=True)
    closure = closure_for(ls, opt)
    for _ in range(12 + 6):  # n iterations in exact arithmetic; rounding costs a few more at κ(AᵀA) ≈ 1e3
        opt.step(closure)
    assert torch.allclose(ls.solution, torch.linalg.solve(A, b), rtol=1e-9, atol=1e-10)


def test_nonlinear_cg_minimises_rosenbrock_like_function():
    x = torch.nn.Parameter(torch.tensor([-1.2, 1.0], dtype=torch.float64))
    opt = ConjugateGradient([x])

    def closure():
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss

    for _ in range(200):
        opt.step(closure)
    assert torch.allclose(x.detach(), torch.tensor([1.0, 1.0], dtype=torch.float64), atol=1e-6)


def test_state_dict_round_trip_continues_identically(M1):
    def run(resume_after=None):
        inv = gdla.MatrixInverse(M1.double())
        opt = ConjugateGradient(inv.parameters(), quadratic=True)
        closure = closure_for(inv, opt)
        for i in range(3):
            opt.step(closure)
        if resume_after:
            state = opt.state_dict()
            opt = ConjugateGradient(inv.parameters(), quadratic=True)
            opt.load_state_dict(state)
            closure = closure_for(inv, opt)
        opt.step(closure)
        return inv.solution

    assert torch.equal(run(), run(resume_after=True))
    opt = ConjugateGradient([torch.nn.Parameter(torch.zeros(2))], quadratic=True)
    assert opt.param_groups[0]["quadratic"] is True and "batch_dims" in opt.param_groups[0]


def test_closure_is_required_and_arguments_checked():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(RuntimeError, match="closure"):
        ConjugateGradient([p]).step()
    with pytest.raises(ValueError, match="lr"):
        ConjugateGradient([p], lr=0)
    with pytest.raises(ValueError, match="batch_dims"):
        ConjugateGradient([p], batch_dims=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_default_optimizer_needs_few_evaluations(M1, dtype):
    result = gdla.solve(gdla.MatrixInverse(M1.to(dtype)), tol=1e-12 if dtype == torch.float64 else 1e-10)
    assert result.converged
    assert result.evaluations <= 25  # the tutorial's recipe needs 783 SGD steps for 1e-12
