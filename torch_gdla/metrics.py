"""Solution-quality metrics as ``torchmetrics.Metric`` subclasses.

Each metric's ``update`` takes the problem itself, so the SolverModule can log any problem's
metrics without naming the operation: ``problem.metrics()`` says which apply.  States declare
their distributed reduction; nothing but ``add_state`` / ``update`` / ``compute`` is used.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["RelativeResidual"]


class RelativeResidual(Metric):
    """``problem.residual()``: the worst relative residual over the batch members seen."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("worst", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="max")

    def update(self, problem) -> None:  # type: ignore[override]
        residuals = problem.residuals().detach().to(torch.float64)
        self.worst = torch.maximum(self.worst, residuals.max().to(self.worst.device))

    def compute(self) -> Tensor:
        return self.worst
