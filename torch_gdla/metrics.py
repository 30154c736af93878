"""Solution-quality metrics as torchmetrics.

A problem declares its quality measures (``problem.measures()``: name -> a function giving one
value per batch member, e.g. the residual, an SVD's orthogonality error); the Lightning side
wraps each in a :class:`WorstMember` metric, whose ``update`` takes those values as a tensor and
whose ``compute`` is the worst member seen since the last ``reset()`` (reduced with ``max``
across processes).  Imported only by the Lightning side, so torchmetrics stays off the plain path.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["WorstMember"]


class WorstMember(Metric):
    """The largest per-member value given to ``update`` since the last ``reset()``."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False
    worst: Tensor  # a torchmetrics state (add_state), reduced by max across processes

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("worst", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="max")

    def update(self, values: Tensor) -> None:
        values = values.detach().to(device=self.worst.device, dtype=torch.float64)
        self.worst = torch.maximum(self.worst, values.max())

    def compute(self) -> Tensor:
        return self.worst
