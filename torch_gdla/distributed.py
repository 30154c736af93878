"""torch.distributed in one place: which process this is, and sums across processes."""
from __future__ import annotations

import torch
from torch import Tensor


def initialized() -> bool:
    """True inside an initialised ``torch.distributed`` process group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank_and_world_size() -> tuple[int, int]:
    """(this process's rank, the number of processes); (0, 1) without a process group."""
    if initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over every process in place (nothing to do in a single process)."""
    if rank_and_world_size()[1] > 1:
        torch.distributed.all_reduce(tensor)
    return tensor
