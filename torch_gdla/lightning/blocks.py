"""How many optimizer steps one Lightning ``training_step`` runs, and what it is fed."""
from __future__ import annotations

import time
from typing import Iterator, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import IterableDataset


class NoData(IterableDataset):
    """An endless stream of empty tensors: a solver has no dataset, and each item is one block
    of optimizer steps.  (``None`` items would make Lightning skip ``training_step``.)"""

    def __iter__(self) -> Iterator[Tensor]:
        empty = torch.empty(0)
        while True:
            yield empty


class BlockSize:
    """Optimizer steps per ``training_step``: ``fixed``, or adapted so a block takes about
    ``SECONDS`` of this process's CPU time (then Lightning's per-block work — logging, progress
    bar — costs ~1 % whatever the problem size), changing by at most 10x at a time and never
    below ``MIN`` steps.  CPU time, not wall-clock time: on a loaded machine the wall clock runs
    on while this process waits, which would shrink the blocks and multiply the per-block cost
    (a GPU's asynchronous work is timed by the wall clock, where it is this process's time).
    Blocks end on every checkpoint interval: Lightning checks ``global_step % n == 0`` only
    between training_steps, so a block that jumped over a multiple would skip that save."""

    FIRST = 10
    MIN = 10
    SECONDS = 0.1
    MAX = 10_000

    def __init__(self, fixed: Optional[int] = None) -> None:
        self.fixed = fixed
        self.size = fixed or self.FIRST
        self.intervals: list[int] = []
        self.clock = time.process_time  # the caller sets time.perf_counter for a GPU

    def align_to(self, intervals: Sequence[int]) -> None:
        self.intervals = [every for every in intervals if every > 0]

    def budget(self, steps: int) -> int:
        """Steps for the next block, after ``steps`` steps."""
        budget = self.size
        for every in self.intervals:
            budget = min(budget, every - steps % every)
        return budget

    def adapt(self, steps: int, seconds: float) -> None:
        if self.fixed is not None or steps <= 0:
            return
        per_step = max(seconds, 1e-9) / steps
        target = self.SECONDS / per_step
        self.size = int(min(max(target, self.size / 10, self.MIN), self.size * 10, self.MAX))
