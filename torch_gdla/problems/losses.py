"""Loss pieces shared by problems."""
from __future__ import annotations

import abc

import torch
from torch import Tensor

from .base import Problem


def batched_mse(difference: Tensor, batch_dims: int, reduce_batch: bool = True) -> Tensor:
    """Mean of squares over each member's own entries; members are summed (not averaged) so
    each member's loss keeps its scale whatever the batch size."""
    member_dims = tuple(range(batch_dims, difference.dim()))
    per_member = difference.square().mean(dim=member_dims) if member_dims else difference.square()
    return per_member.sum() if reduce_batch else per_member


class MemberLosses(Problem):
    """A batched problem whose loss is the sum of its members' losses.  The subclass implements
    ``_loss(reduce_batch)``: the scalar sum that ``forward()`` returns (and differentiates), or
    with ``reduce_batch=False`` one loss per member, which ``losses()`` returns detached."""

    @abc.abstractmethod
    def _loss(self, reduce_batch: bool) -> Tensor:
        """The summed loss (``reduce_batch``), or the loss of every batch member."""

    def forward(self) -> Tensor:
        return self._loss(reduce_batch=True)

    @torch.no_grad()
    def losses(self) -> Tensor:
        return self._loss(reduce_batch=False)
