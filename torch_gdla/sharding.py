"""Row sharding of full-batch problems whose unknown splits into independent pieces.

The rows of an inverse (``X M = I``: row i of X solves ``x_i M = e_i``; with ``side="right"``
the columns of X solve ``M x_j = e_j``) and the columns of a linear system's right-hand sides
(``A X = B``: column j of X solves ``A x_j = b_j``) are independent problems.  Process ``r``
of ``world_size`` takes pieces ``r, r + world_size, r + 2·world_size, …`` as one smaller
``LinearSystem`` with several right-hand sides, solves it with no communication at all, and
the pieces are gathered at the end::

    part = gdla.sharding.shard(problem, rank, world_size)      # a LinearSystem
    gdla.solve(part)                                          # any optimizer, one device
    X = gdla.sharding.gather(problem, part.solution)          # all_gather under torch.distributed
    # or, with the parts in hand: gdla.sharding.assemble(problem, [part_0, part_1, ...])

Use it in processes started by ``torchrun``/``torch.multiprocessing`` (with an initialised
process group for ``gather``), or in separate jobs whose parts are assembled afterwards.  It is
*not* meant for Lightning's ``strategy="ddp"``: DDP averages gradients across processes, which
is right for data parallelism (rows of ``StreamedLeastSquares``) but wrong for processes that
hold different unknowns.  ``run_shard`` does the three steps in one call.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError
from .problems.base import Problem
from .problems.inverse import MatrixInverse
from .problems.linear_system import LinearSystem
from .validation import check_int

__all__ = ["shard_indices", "shard", "assemble", "gather", "run_shard"]


def _rank_world(rank: Optional[int], world_size: Optional[int]) -> tuple[int, int]:
    if rank is None or world_size is None:
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            raise ArgumentError("pass rank and world_size, or initialise torch.distributed first")
        rank = torch.distributed.get_rank() if rank is None else rank
        world_size = torch.distributed.get_world_size() if world_size is None else world_size
    check_int(rank, "rank")
    check_int(world_size, "world_size")
    if world_size <= 0 or not 0 <= rank < world_size:
        raise ArgumentError(f"need 0 <= rank < world_size; got rank={rank}, world_size={world_size}")
    return rank, world_size


def _pieces(problem: Problem) -> int:
    """How many independent pieces ``problem`` splits into."""
    if isinstance(problem, MatrixInverse):
        if problem.side == "both":
            raise ArgumentError('MatrixInverse(side="both") couples rows and columns; shard side="left" or "right"')
        return problem.M.shape[-1]
    if isinstance(problem, LinearSystem):
        if problem.vector_rhs:
            raise ArgumentError("a LinearSystem with one right-hand side has nothing independent to split; "
                             "shard a system with b of shape (m, k), k > 1")
        if getattr(problem, "assume", None) is not None:
            raise ArgumentError('sharding a LinearSystem with assume="spd" is not supported; drop assume')
        return problem.b.shape[-1]
    raise ArgumentTypeError(f"shard takes a MatrixInverse or a LinearSystem with several right-hand sides; "
                    f"got {type(problem).__name__}")


def shard_indices(problem: Problem, rank: Optional[int] = None, world_size: Optional[int] = None) -> list[int]:
    """The pieces (rows of an inverse, columns of X = right-hand sides) that ``rank`` solves."""
    rank, world_size = _rank_world(rank, world_size)
    return list(range(rank, _pieces(problem), world_size))


def shard(problem: Problem, rank: Optional[int] = None, world_size: Optional[int] = None) -> LinearSystem:
    """This process's share of ``problem`` as a ``LinearSystem`` (a copy of the data it needs).

    ``MatrixInverse(M, side="left")``: rows ``i`` of X, posed as ``Mᵀ Y = I[:, i]`` (Y = X[i]ᵀ);
    ``side="right"``: columns of X, ``M Y = I[:, j]``; ``LinearSystem(A, B)``: columns of B
    (weights, l2, l1 and nonnegative carry over).  rank/world_size default to torch.distributed's.
    """
    indices = shard_indices(problem, rank, world_size)
    if not indices:
        raise ArgumentError(f"rank {rank} of {world_size} gets no piece: the problem has only {_pieces(problem)}; "
                         "use fewer processes")
    index = torch.tensor(indices, device=problem.device)
    if isinstance(problem, MatrixInverse):
        M = problem.M
        n = M.shape[-1]
        identity = torch.eye(n, dtype=M.dtype, device=M.device).index_select(-1, index)
        identity = identity.expand(*M.shape[:-2], n, len(indices))
        matrix = M.mT if problem.side == "left" else M
        return LinearSystem(matrix.detach().clone(), identity.clone())
    system: LinearSystem = problem  # type: ignore[assignment]
    sqrt_w = getattr(system, "_sqrt_w", None)
    extra: dict[str, Any] = {}
    if getattr(system, "regularised", False):
        extra = dict(weights=None if sqrt_w is None else sqrt_w.square().squeeze(-1), l2=system.l2, l1=system.l1,
                     nonnegative=system.nonnegative)
    return LinearSystem(system.A.detach().clone(), system.b.index_select(-1, index).clone(), **extra)


def assemble(problem: Problem, parts: Sequence[Tensor]) -> Tensor:
    """The full solution from every rank's ``shard(...).solution``, in rank order."""
    world_size = len(parts)
    n_pieces = _pieces(problem)
    first = parts[0]
    full_shape = (*first.shape[:-1], n_pieces)
    full = torch.empty(full_shape, dtype=first.dtype, device=first.device)
    for rank, part in enumerate(parts):
        indices = shard_indices(problem, rank, world_size)
        if part.shape[-1] != len(indices):
            raise ArgumentError(f"part {rank} has {part.shape[-1]} pieces; rank {rank} of {world_size} should have "
                             f"{len(indices)} (parts must be in rank order)")
        full[..., indices] = part.to(full.device)
    # pieces are columns of Y; an inverse's rows (side="left") are Yᵀ
    if isinstance(problem, MatrixInverse) and problem.side == "left":
        return full.mT.contiguous()
    return full


def gather(problem: Problem, part: Tensor) -> Tensor:
    """All-gather every rank's part (torch.distributed must be initialised) and assemble them."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise RuntimeError("gather needs an initialised torch.distributed process group; without one use assemble")
    parts: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, part.detach().cpu())
    return assemble(problem, parts).to(part.device)


def run_shard(problem: Problem, rank: Optional[int] = None, world_size: Optional[int] = None,
              **solve_kwargs: Any) -> tuple[Tensor, Any]:
    """Shard, solve this rank's part with ``gdla.solve(**solve_kwargs)``, gather: returns
    ``(full solution, this rank's Result)``.  Needs an initialised process group."""
    from .solve import solve

    part = shard(problem, rank, world_size)
    result = solve(part, **solve_kwargs)
    return gather(problem, result.solution), result
