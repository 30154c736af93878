"""Loss pieces shared by problems."""
from __future__ import annotations

from torch import Tensor


def batched_mse(difference: Tensor, batch_dims: int, reduce_batch: bool = True) -> Tensor:
    """Mean of squares over each member's own entries; members are summed (not averaged) so
    each member's loss keeps its scale whatever the batch size."""
    member_dims = tuple(range(batch_dims, difference.dim()))
    per_member = difference.square().mean(dim=member_dims) if member_dims else difference.square()
    return per_member.sum() if reduce_batch else per_member
