"""Batched problems: one module, one optimizer, independent members, per-member results."""
import functools

import pytest
import torch

import torch_gdla as gdla


def spd_batch(batch, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(batch, n, n, generator=g, dtype=torch.float64)
    return A @ A.mT / n + torch.eye(n, dtype=torch.float64)


def test_batched_inverse_equals_one_by_one_with_sgd():
    Ms = spd_batch(3, 4)
    starts = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sgd = functools.partial(torch.optim.SGD, lr=0.1)  # monotone, so the best point is the last one
    batched = gdla.solve(gdla.MatrixInverse(Ms, init=starts), optimizer=sgd, tol=0, max_steps=200)
    for i in range(3):
        single = gdla.solve(gdla.MatrixInverse(Ms[i], init=starts[i]), optimizer=sgd, tol=0, max_steps=200)
        # the summed loss separates, so SGD takes exactly the one-by-one steps
        assert torch.allclose(batched.solution[i], single.solution, rtol=0, atol=1e-12)


def test_batched_members_converge_independently_of_scale():
    Ms = spd_batch(8, 5, seed=2)
    Ms[3] *= 100.0
    Ms[5] /= 50.0
    result = gdla.solve(gdla.MatrixInverse(Ms))
    assert result.converged
    assert result.residuals.shape == (8,) and result.member_converged.all()
    assert torch.allclose(result.solution, torch.linalg.inv(Ms), rtol=1e-7, atol=1e-9)
    # every member runs its own CG: as few steps as one 5x5 problem needs
    single = gdla.solve(gdla.MatrixInverse(Ms[0]))
    assert result.steps <= single.steps + 2


def test_batched_linear_system_many_right_hand_sides():
    A = spd_batch(4, 6, seed=3)
    b = torch.randn(4, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    B = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x = gdla.solve(gdla.LinearSystem(A, b)).solution
    assert x.shape == (4, 6)
    assert torch.allclose(x, torch.linalg.solve(A, b.unsqueeze(-1)).squeeze(-1), atol=1e-8)
    X = gdla.solve(gdla.LinearSystem(A, B)).solution
    assert torch.allclose(X, torch.linalg.solve(A, B), atol=1e-8)


def test_stopping_waits_for_the_worst_member():
    Ms = spd_batch(4, 4, seed=6)
    sgd = functools.partial(torch.optim.SGD, lr=0.05)
    result = gdla.solve(gdla.MatrixInverse(Ms), optimizer=sgd, residual_tol=1e-6, max_steps=20_000)
    assert result.converged
    assert float(result.residuals.max()) <= 1e-6
    # a run cut short reports which members made it
    short = gdla.solve(gdla.MatrixInverse(Ms * torch.tensor([1.0, 1.0, 1.0, 0.2], dtype=torch.float64).view(4, 1, 1)),
                       optimizer=sgd, residual_tol=1e-6, max_steps=2000)
    assert not short.converged
    assert short.member_converged.tolist() == (short.residuals <= 1e-6).tolist()
    assert short.member_converged.any() and not short.member_converged.all()
