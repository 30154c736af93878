"""A reusable check that a problem honours the torch_gdla problem contract.

Run any problem — built-in or your own — through it::

    from conformance import check_problem
    check_problem(lambda dtype: MyProblem(data.to(dtype)))

``make(dtype)`` must build a fresh problem in that dtype, the same one every call (seeded).
The checks: the loss is a finite scalar of the unknown's dtype; ``residuals()`` has the batch
shape, is finite and ≥ 0, and ``residual()`` is its worst member; ``losses()`` sum to the loss;
``.to(dtype)`` moves data and unknowns alike; two builds are identical (seeded starts);
``state_dict`` round-trips; the default optimizer runs in both dtypes; a converged run's
residual holds at the returned point (converged ⇒ residual ≤ tol); and a solve leaves the
given tensors and their ``.grad`` alone.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

import torch_gdla as gdla

Make = Callable[[torch.dtype], gdla.Problem]


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """torch.equal, also for sparse buffers (a sparse matrix's state; torch.equal has no sparse kernel)."""
    if a.layout != b.layout:
        return False
    if a.layout != torch.strided:
        a, b = a.to_dense(), b.to_dense()
    return torch.equal(a, b)


def _tensors(solution) -> list[torch.Tensor]:
    return list(solution) if isinstance(solution, tuple) else [solution]


def _batches(problem: gdla.Problem):
    """What to call the loss on: no argument, or each batch of a data-driven problem's rows."""
    if not problem.uses_data:
        while True:
            yield None
    while True:
        yield from problem.train_dataloader()


def _loss(problem: gdla.Problem) -> torch.Tensor:
    batch = next(_batches(problem))
    return problem() if batch is None else problem(batch)


def check_shapes_and_dtype(make: Make, dtype: torch.dtype) -> None:
    problem = make(dtype)
    assert isinstance(problem, gdla.Problem)
    assert problem.dtype == dtype, f"the unknown has dtype {problem.dtype}, built for {dtype}"
    loss = _loss(problem)
    assert loss.dim() == 0 and loss.dtype == dtype and torch.isfinite(loss), loss
    residuals = problem.residuals()
    assert residuals.shape == problem.batch_shape, (residuals.shape, problem.batch_shape)
    assert bool(torch.isfinite(residuals).all()) and bool((residuals >= 0).all()), residuals
    assert problem.residual() == float(residuals.max())
    losses = problem.losses()
    assert losses.shape == problem.batch_shape or (losses.dim() == 0 and problem.batch_shape == torch.Size())
    if not problem.uses_data:  # a data-driven problem's losses() is over all rows, its loss over one batch
        assert torch.allclose(losses.sum(), loss.detach(), rtol=1e-5, atol=1e-6)
    for t in _tensors(problem.solution):
        assert not t.requires_grad and t.dtype == dtype


def check_to(make: Make) -> None:
    problem = make(torch.float32).to(torch.float64)
    assert problem.dtype == torch.float64
    for name, buffer in problem.named_buffers():
        if buffer.is_floating_point():
            assert buffer.dtype == torch.float64, f"buffer {name} did not follow .to(float64)"
    assert _loss(problem).dtype == torch.float64


def check_reproducible(make: Make) -> None:
    first, second = make(torch.float64).state_dict(), make(torch.float64).state_dict()
    assert first.keys() == second.keys()
    for key in first:
        assert _equal(first[key], second[key]), f"{key} differs between two builds: seed the start"


def check_state_dict_round_trip(make: Make) -> None:
    trained = make(torch.float64)
    optimizer = torch.optim.SGD(trained.parameters(), lr=1e-3)
    _loss(trained).backward()
    optimizer.step()
    fresh = make(torch.float64)
    fresh.load_state_dict(trained.state_dict())
    assert torch.equal(_loss(fresh).detach(), _loss(trained).detach())
    for a, b in zip(_tensors(fresh.solution), _tensors(trained.solution)):
        assert _equal(a, b)


def check_honest_solve(make: Make, dtype: torch.dtype, residual_tol: Optional[float], max_steps: int) -> gdla.Result:
    """The default optimizer through the engine: converged ⇒ every member's residual holds."""
    problem = make(dtype)
    given = {name: b.clone() for name, b in problem.named_buffers()}
    iteration = gdla.Iteration(problem, problem.default_optimizer(), gdla.Criteria(residual_tol=residual_tol),
                               max_steps=max_steps)
    for batch in _batches(problem):
        if iteration.run(max_steps if batch is None else 1, batch=batch) is not None:
            break
    result = iteration.finish()
    residuals = problem.residuals()
    if result.converged:
        assert float(residuals.max()) <= iteration.criteria.residual_tol, (result, residuals)
    if result.member_converged is not None:
        assert not bool((result.member_converged & ~(residuals <= iteration.criteria.residual_tol)).any())
    assert result.steps <= max_steps and len(result.history) == result.steps
    for name, b in problem.named_buffers():
        assert _equal(b, given[name]), f"the solve changed the given tensor {name}"
    return result


def check_caller_tensors_untouched(make_from: Callable[[torch.Tensor], gdla.Problem], data: torch.Tensor) -> None:
    """Given data that requires grad (an nn.Parameter of the caller's model): a solve neither
    changes it nor writes its .grad."""
    parameter = torch.nn.Parameter(data.clone())
    before = parameter.detach().clone()
    problem = make_from(parameter)
    iteration = gdla.Iteration(problem, problem.default_optimizer(), gdla.Criteria(residual_tol=1e-6), max_steps=50)
    iteration.run(50)
    iteration.finish()
    assert parameter.grad is None, "the solve wrote into the caller's .grad"
    assert torch.equal(parameter.detach(), before)


def check_problem(make: Make, *, residual_tol: Optional[float] = 1e-6, max_steps: int = 500,
                  dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64)) -> None:
    """Every check above; ``residual_tol``/``max_steps`` size the solve (float64 is solved)."""
    for dtype in dtypes:
        check_shapes_and_dtype(make, dtype)
    check_to(make)
    check_reproducible(make)
    check_state_dict_round_trip(make)
    check_honest_solve(make, torch.float64, residual_tol, max_steps)
