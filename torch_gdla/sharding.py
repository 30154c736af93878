"""Sharding of full-batch problems whose unknown splits into independent pieces.

A problem that splits says so through three hooks of the problem contract: ``num_pieces``,
``split(indices)`` (the problem of those pieces alone) and ``join(pieces)`` (the solution
from every piece's solution, stacked along the last dimension).  ``MatrixInverse`` splits into
the rows of X (``side="left"``: row i solves ``x_i M = e_i``) or its columns (``side="right"``),
a ``LinearSystem`` with several right-hand sides into the columns of b; this module only calls
the hooks.  Process ``r`` of ``world_size`` takes pieces ``r, r + world_size, r + 2·world_size,
…`` as one smaller problem, solves it with no communication at all, and the pieces are gathered
at the end::

    part = gdla.sharding.shard(problem, rank, world_size)      # e.g. a LinearSystem
    gdla.solve(part)                                          # any optimizer, one device
    X = gdla.sharding.gather(problem, part.solution)          # all_gather under torch.distributed
    # or, with the parts in hand: gdla.sharding.assemble(problem, [part_0, part_1, ...])

The parts given to ``assemble``/``gather`` may be the shard problems themselves, their
``Result``s, or their solution tensors.  Use it in processes started by
``torchrun``/``torch.multiprocessing`` (with an initialised process group for ``gather``), or
in separate jobs whose parts are assembled afterwards.  It is *not* meant for Lightning's
``strategy="ddp"``: DDP averages gradients across processes, which is right for data
parallelism (rows of ``StreamedLeastSquares``) but wrong for processes that hold different
unknowns.  ``run_shard`` does the three steps in one call.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
from torch import Tensor

from .distributed import initialized, rank_and_world_size
from .errors import ArgumentError, ArgumentTypeError
from .problems.base import Problem
from .result import Result
from .validation import check_int

__all__ = ["shard_indices", "shard", "assemble", "gather", "run_shard"]

Part = Union[Tensor, Problem, Result]


def _rank_world(rank: Optional[int], world_size: Optional[int]) -> tuple[int, int]:
    # Defaults: this process in the torch.distributed group, or rank 0 of 1 without one.
    default_rank, default_world = rank_and_world_size()
    rank = default_rank if rank is None else rank
    world_size = default_world if world_size is None else world_size
    check_int(rank, "rank")
    check_int(world_size, "world_size")
    if world_size <= 0 or not 0 <= rank < world_size:
        raise ArgumentError(f"need 0 <= rank < world_size; got rank={rank}, world_size={world_size}")
    return rank, world_size


def shard_indices(problem: Problem, rank: Optional[int] = None, world_size: Optional[int] = None) -> list[int]:
    """The pieces (e.g. rows of an inverse, right-hand sides of a system) that ``rank`` solves:
    ``rank, rank + world_size, …`` below ``problem.num_pieces``."""
    rank, world_size = _rank_world(rank, world_size)
    return list(range(rank, problem.num_pieces, world_size))


def shard(problem: Problem, rank: Optional[int] = None, world_size: Optional[int] = None) -> Problem:
    """This process's share of ``problem``: ``problem.split(shard_indices(...))``, a new problem
    holding a copy of the data it needs (``MatrixInverse``: a ``LinearSystem`` whose solution is
    the rows' transpose or the columns; ``LinearSystem``: the same variant with those columns
    of b, weights/l2/l1/nonnegative/assume carried over).  rank/world_size default to
    torch.distributed's (rank 0 of 1 without a process group)."""
    rank, world_size = _rank_world(rank, world_size)
    indices = shard_indices(problem, rank, world_size)
    if not indices:
        raise ArgumentError(f"rank {rank} of {world_size} gets no piece: the problem has only {problem.num_pieces}; "
                            "use fewer processes")
    return problem.split(indices)


def _solution(part: Any, rank: int) -> Tensor:
    """A part's solution tensor: a shard problem's ``solution``, a Result's, or the tensor."""
    if isinstance(part, (Problem, Result)):
        part = part.solution
    if not isinstance(part, Tensor):
        raise ArgumentTypeError(f"part {rank} must be a shard problem, its Result or its solution tensor; "
                                f"got {type(part).__name__}")
    return part.detach()


def assemble(problem: Problem, parts: Sequence[Part]) -> Tensor:
    """The full solution from every rank's part, in rank order (``len(parts)`` is the world
    size).  A part is a shard problem (``shard(...)``), its ``Result``, or its solution."""
    world_size = len(parts)
    if world_size == 0:
        raise ArgumentError("assemble needs at least one part (one per rank, in rank order)")
    solutions = [_solution(part, rank) for rank, part in enumerate(parts)]
    first = solutions[0]
    full = first.new_empty((*first.shape[:-1], problem.num_pieces))
    for rank, part in enumerate(solutions):
        indices = shard_indices(problem, rank, world_size)
        if part.shape[-1] != len(indices) or part.shape[:-1] != first.shape[:-1]:
            raise ArgumentError(f"part {rank} has shape {tuple(part.shape)}: rank {rank} of {world_size} should have "
                                f"{(*first.shape[:-1], len(indices))} ({len(indices)} pieces; parts must be in rank order)")
        full[..., indices] = part.to(full.device)
    return problem.join(full)


def gather(problem: Problem, part: Part) -> Tensor:
    """All-gather every rank's part (torch.distributed must be initialised) and assemble them."""
    if not initialized():
        raise RuntimeError("gather needs an initialised torch.distributed process group; without one use assemble")
    rank, world_size = rank_and_world_size()
    solution = _solution(part, rank)
    parts: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(parts, solution.cpu())
    return assemble(problem, parts).to(solution.device)


def run_shard(problem: Problem, rank: Optional[int] = None, world_size: Optional[int] = None,
              **solve_kwargs: Any) -> tuple[Tensor, Any]:
    """Shard, solve this rank's part with ``gdla.solve(**solve_kwargs)``, gather: returns
    ``(full solution, this rank's Result)``.  Needs an initialised process group."""
    from .solve import solve

    part = shard(problem, rank, world_size)
    result = solve(part, **solve_kwargs)
    return gather(problem, result.solution), result
