"""The loss of every optimizer step, and the best loss after it."""
from __future__ import annotations

import torch
from torch import Tensor


class LossHistory:
    """Two preallocated float64 buffers written through NumPy views: the loss of every step and
    the lowest-so-far loss after it (for the stall rules).  A tensor ``__setitem__`` costs
    microseconds per step; a NumPy store costs nanoseconds."""

    INITIAL = 256

    def __init__(self) -> None:
        self._losses = torch.empty(self.INITIAL, dtype=torch.float64)
        self._loss_view = self._losses.numpy()
        self._best_view = self._loss_view.copy()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more steps (doubling, so appends stay amortised O(1))."""
        needed = self._size + extra
        if needed <= len(self._loss_view):
            return
        capacity = len(self._loss_view)
        while capacity < needed:
            capacity *= 2
        losses = torch.empty(capacity, dtype=torch.float64)
        losses[: self._size] = self._losses[: self._size]
        best = losses.numpy().copy()
        best[: self._size] = self._best_view[: self._size]
        self._losses, self._loss_view, self._best_view = losses, losses.numpy(), best

    def append(self, loss: float, best: float) -> None:
        """Record a finished step (room grows by doubling when needed)."""
        if self._size == len(self._loss_view):
            self.reserve(1)
        self._loss_view[self._size] = loss
        self._best_view[self._size] = best
        self._size += 1

    def loss(self, step: int) -> float:
        return float(self._loss_view[step])

    def best(self, step: int) -> float:
        return float(self._best_view[step])

    def losses(self) -> Tensor:
        """A copy of the recorded losses (1-D, one per step)."""
        return self._losses[: self._size].clone()

    def load(self, losses: Tensor) -> None:
        """Restore from a checkpoint's losses (the best-so-far curve is their running minimum)."""
        self._size = 0
        self.reserve(max(len(losses), self.INITIAL))
        self._losses[: len(losses)] = losses
        self._best_view[: len(losses)] = torch.cummin(losses, 0).values.numpy()
        self._size = len(losses)
