"""gdla.linalg's fast path for small dense systems (torch_gdla/linalg/_small.py) returns what the
engine returns — same steps, answer, residual, status, error estimate, operator counts — and
hands every case it cannot vouch for back to the engine, whose errors and diagnoses stay."""
from __future__ import annotations

import pytest
import torch

import torch_gdla as gdla
from torch_gdla.errors import ArgumentError, NotConvergedError
from torch_gdla.linalg import _small, solvers

F64 = torch.float64


def _rand(*shape: int, seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


def _cases(dtype: torch.dtype) -> list[tuple[str, torch.Tensor, torch.Tensor, dict]]:
    general = _rand(5, 5, seed=0) + 3 * torch.eye(5, dtype=F64)
    spd = general @ general.mT + torch.eye(5, dtype=F64)
    tall, wide = _rand(7, 4, seed=2), _rand(3, 6, seed=3)
    b5, b7, b3 = _rand(5, seed=4), _rand(7, seed=5), _rand(3, seed=6)
    cases = [("general", general, b5, {}), ("symmetric", spd, b5, {}), ("spd", spd, b5, {"assume": "spd"}),
             ("warm", spd, b5, {"assume": "spd", "init": torch.linalg.solve(spd, b5) + 0.01 * b5}),
             ("tall lstsq", tall, b7, {"lstsq": True}), ("wide lstsq", wide, b3, {"lstsq": True}),
             ("loose", general, b5, {"residual_tol": 1e-3})]
    return [(name, A.to(dtype), b.to(dtype), {k: v.to(dtype) if isinstance(v, torch.Tensor) else v
                                              for k, v in kwargs.items()}) for name, A, b, kwargs in cases]


def _run(A: torch.Tensor, b: torch.Tensor, kwargs: dict):
    kwargs = dict(kwargs)
    function = gdla.linalg.lstsq_ex if kwargs.pop("lstsq", False) else gdla.linalg.solve_ex
    return function(A, b, **kwargs)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_fast_path_returns_what_the_engine_returns(dtype, monkeypatch):
    def no_engine(*args, **kwargs):
        raise AssertionError("the engine ran: the fast path handed this case back")

    for name, A, b, kwargs in _cases(dtype):
        with monkeypatch.context() as patch:
            patch.setattr(solvers, "run", no_engine)
            fast_x, fast = _run(A, b, kwargs)
        with monkeypatch.context() as patch:
            patch.setattr(_small, "SMALL_ORDER", 0)  # every system goes through the engine
            slow_x, slow = _run(A, b, kwargs)
        assert fast.converged and slow.converged, name
        assert fast.status is slow.status and fast.steps == slow.steps, (name, fast, slow)
        assert fast.evaluations == slow.evaluations, name
        # a recurrence that ends at its rounding floor restarts once from the true residual (one
        # more A, and Aᵀ for CGLS); whether the floor is met can differ by the last bit
        assert 0 <= slow.stats["matvecs"] - fast.stats["matvecs"] + 1 <= 2, (name, fast.stats, slow.stats)
        assert abs(slow.stats["rmatvecs"] - fast.stats["rmatvecs"]) <= 1, (name, fast.stats, slow.stats)
        assert fast.residual_meaning == slow.residual_meaning, name
        # the two paths round differently (a vector against a column of the unknown): residuals
        # and losses agree to rounding of the working precision
        scale, floor = (1e-6, 1e-11) if dtype == F64 else (1e-3, 1e-5)
        assert float((fast_x - slow_x).norm()) <= scale * float(slow_x.norm()), name
        assert fast.residual == pytest.approx(slow.residual, rel=1e-2, abs=floor), name
        assert fast.loss == pytest.approx(slow.loss, rel=scale, abs=floor ** 2), name
        assert torch.allclose(fast.history, slow.history, rtol=scale, atol=floor ** 2), name
        # the same condition estimate (Lanczos coefficients, or cond(A) after one step)
        assert fast.error_estimate / fast.residual == pytest.approx(slow.error_estimate / slow.residual, rel=scale)
        assert fast_x.dtype == dtype
        assert fast.residual <= (1e-3 if name == "loose" else 1e-8 if dtype == F64 else 1e-4), name
        # the answer is checked independently of both paths
        reference = torch.linalg.lstsq(A.double(), b.double().unsqueeze(-1)).solution.squeeze(-1)
        if kwargs.get("residual_tol") is None:
            assert float((fast_x.double() - reference).norm()) <= 1e-3 * float(reference.norm()), name


def test_fast_path_hands_failures_to_the_engine():
    A = _rand(4, 4, seed=0) + 4 * torch.eye(4, dtype=F64)
    b = _rand(4, seed=1)
    with pytest.raises(Exception, match="A"):  # the engine's validation names the argument
        gdla.linalg.solve(torch.where(torch.eye(4, dtype=torch.bool), torch.nan, A), b)
    with pytest.raises(Exception, match="b"):
        gdla.linalg.solve(A, torch.tensor([1.0, torch.inf, 0.0, 0.0], dtype=F64))
    indefinite = torch.diag(torch.tensor([1.0, -2.0, 3.0, 4.0], dtype=F64))
    with pytest.raises(ArgumentError, match="positive definite"):
        gdla.linalg.solve(indefinite, b, assume="spd")
    # symmetric indefinite without assume: CG meets negative curvature, the engine switches to CGLS
    x = gdla.linalg.solve(indefinite, b)
    assert torch.allclose(x, torch.linalg.solve(indefinite, b), atol=1e-8)
    singular = torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=F64)
    with pytest.raises(NotConvergedError, match="singular"):
        gdla.linalg.solve(singular, torch.tensor([1.0, 0.0], dtype=F64))
    _, result = gdla.linalg.solve_ex(A, b, max_steps=2)  # a budget below the steps needed
    assert not result.converged and result.steps == 2 and "max_steps" in result.reason
    zero_x, zero = gdla.linalg.solve_ex(A, torch.zeros(4, dtype=F64))
    assert zero.converged and not bool(zero_x.any())


def test_fast_path_leaves_the_callers_tensors_alone_and_differentiates():
    A = _rand(4, 4, seed=0) + 4 * torch.eye(4, dtype=F64)
    b, init = _rand(4, seed=1), _rand(4, seed=2)
    copies = (A.clone(), b.clone(), init.clone())
    x = gdla.linalg.solve(A, b, init=init)
    assert all(torch.equal(t, c) for t, c in zip((A, b, init), copies))
    x.add_(1.0)  # the answer is the caller's own tensor, not a view of an input
    assert torch.equal(init, copies[2])
    A_leaf, b_leaf = A.clone().requires_grad_(True), b.clone().requires_grad_(True)
    gdla.linalg.solve(A_leaf, b_leaf, residual_tol=1e-13).sum().backward()
    A_ref, b_ref = A.clone().requires_grad_(True), b.clone().requires_grad_(True)
    torch.linalg.solve(A_ref, b_ref).sum().backward()
    assert torch.allclose(A_leaf.grad, A_ref.grad, rtol=1e-8) and torch.allclose(b_leaf.grad, b_ref.grad, rtol=1e-8)
