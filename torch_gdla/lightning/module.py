"""Lightning side of torch_gdla: ``SolverModule`` trains any problem.  Lightning is imported
here only, so ``import torch_gdla`` stays as cheap as ``import torch``."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Iterator, Optional

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from ..errors import ArgumentError, ArgumentTypeError
from ..iteration import Criteria, Iteration, build_optimizer
from ..problems.base import Problem
from ..result import Result, Status
from ..validation import check_optimizer_factory, check_positive_int

OptimizerCallable = Callable[[Iterable], torch.optim.Optimizer]


class _NoData(IterableDataset):
    """An endless stream of empty tensors: a solver has no dataset, and each item is one block
    of optimizer steps.  (``None`` items would make Lightning skip ``training_step``.)"""

    def __iter__(self) -> Iterator[Tensor]:
        empty = torch.empty(0)
        while True:
            yield empty


class SolverModule(pl.LightningModule):
    """Trains a :class:`~torch_gdla.problems.base.Problem` with Lightning.

    Manual optimization: each ``training_step`` runs a block of up to ``steps_per_block``
    optimizer steps (Lightning's per-step costs are paid once per block), while the stopping
    rules of ``Criteria`` are checked after every optimizer step, so the run stops at the exact
    step a tolerance is met.  ``Trainer(max_steps=...)`` counts optimizer steps and is never
    overshot.  The loss, the residual and the problem's metrics are logged once per block.

    Args:
        problem: the problem to solve (its parameters are the unknown).
        optimizer: callable taking the parameters and returning a ``torch.optim.Optimizer``
            (a ``functools.partial``, or LightningCLI's optimizer callable); None = library default.
        tol, residual_tol, rtol, rtol_every, residual_every, stall_steps: see
            :class:`~torch_gdla.iteration.Criteria`.
        steps_per_block: optimizer steps per Lightning ``training_step`` (and per log row); for a
            data-driven problem (one step per batch), batches per log row.  None (default):
            adaptive, so that a block takes about ``BLOCK_SECONDS`` (0.1 s): Lightning's
            per-block work (logging, progress bar) then costs ~1 % whatever the problem size.
        reference_metrics: also log metrics against the direct ``torch.linalg`` answer
            (costs one direct solve, done once).
        direct_steps: with plain 32/64-bit precision and a standard strategy, step the raw
            optimizer and count the steps into Lightning per block (bare-loop speed; callbacks'
            ``on_before_optimizer_step`` is then not called per step).  False: every step goes
            through Lightning's wrapped optimizer.
        deferred_checks: keep losses on the device and read them once per block (no host
            synchronisation per step); the stop step for ``tol`` and divergence stays exact.
            None (default): deferred off the CPU, per step on the CPU (where reading is free).
    After ``fit``, ``module.result`` holds the :class:`~torch_gdla.result.Result`.
    """

    FIRST_BLOCK = 10
    BLOCK_SECONDS = 0.1
    MAX_BLOCK = 10_000

    def __init__(
        self,
        problem: Problem,
        optimizer: Optional[OptimizerCallable] = None,
        tol: Optional[float] = None,
        residual_tol: Optional[float] = None,
        rtol: Optional[float] = None,
        rtol_every: int = 10,
        residual_every: int = 10,
        stall_steps: int = 200,
        steps_per_block: Optional[int] = None,
        reference_metrics: bool = False,
        direct_steps: bool = True,
        deferred_checks: Optional[bool] = None,
    ) -> None:
        super().__init__()
        if not isinstance(problem, Problem):
            raise ArgumentTypeError(f"problem must be a torch_gdla Problem (e.g. gdla.MatrixInverse(M)); got {type(problem).__name__}")
        if optimizer is not None:
            check_optimizer_factory(optimizer)
        self.automatic_optimization = False
        self.problem = problem
        self.optimizer_factory = optimizer
        self.criteria = Criteria(tol=tol, residual_tol=residual_tol, rtol=rtol, rtol_every=rtol_every,
                                 residual_every=residual_every, stall_steps=stall_steps)
        check_positive_int(steps_per_block, "steps_per_block", allow_none=True, meaning="None adapts it")
        self.steps_per_block = steps_per_block
        self._block = steps_per_block or self.FIRST_BLOCK
        self._step_grid: list[int] = []
        self.reference_metrics = reference_metrics
        self.direct_steps = direct_steps
        self.deferred_checks = deferred_checks
        self.quality = torch.nn.ModuleDict()
        self.iteration: Optional[Iteration] = None
        self.result: Optional[Result] = None
        self._resume_state: Optional[dict] = None

    def forward(self) -> Tensor:
        return self.problem()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer(self.optimizer_factory, self.problem)

    def train_dataloader(self) -> Any:
        # Data-driven problems bring their own rows (unless fit() is given a datamodule);
        # the others get an endless stream of empty batches, one per block of steps.
        if self.problem.uses_data:
            return self.problem.train_dataloader()
        return DataLoader(_NoData(), batch_size=None)

    def on_fit_start(self) -> None:
        trainer = self.trainer
        timed = any(isinstance(cb, pl.callbacks.Timer) and cb._duration is not None for cb in trainer.callbacks)
        # A data-driven problem's epochs end; a data-free one's single epoch never does.
        if (trainer.max_steps is None or trainer.max_steps < 0) and not timed and not self.problem.uses_data:
            raise ArgumentError(
                "Trainer(max_steps=...) is required: a solver has no dataset and no epochs, so without max_steps "
                "(or max_time) a run that never meets its tolerance would never end"
            )
        self.result = None
        from ..metrics import WorstMember

        self._measures = self.problem.measures(reference=self.reference_metrics)
        self.quality = torch.nn.ModuleDict({name: WorstMember() for name in self._measures}).to(self.device)
        self._direct = self._direct_steps()
        # Direct steps (plain precision, standard strategy) need no precision scaling or DDP
        # gradient averaging; otherwise Lightning's manual_backward does both.
        backward = Tensor.backward if self._direct else self.manual_backward
        criteria = self.criteria
        if self.problem.stochastic and criteria.tol is None and criteria.residual_tol is None and criteria.rtol is None:
            # Mini-batch runs: each residual() is a pass over the data, and one batch's loss
            # proves nothing, so there is no default tolerance; the run ends by max_steps/epochs.
            criteria = Criteria(tol=0.0, rtol_every=criteria.rtol_every, residual_every=criteria.residual_every,
                                stall_steps=criteria.stall_steps)
        self.iteration = Iteration(self.problem, trainer.optimizers[0], criteria, backward=backward,
                                   deferred=self.deferred_checks)
        self._step_grid = [cb._every_n_train_steps for cb in trainer.checkpoint_callbacks
                           if getattr(cb, "_every_n_train_steps", 0)]
        if self._resume_state is not None:
            self.iteration.load_state_dict(self._resume_state)
            self._resume_state = None

    def _budget(self) -> int:
        steps = self.iteration.steps
        budget = self._block
        # End blocks on every checkpoint interval: Lightning checks `global_step % n == 0` only
        # between training_steps, so a block that jumped over a multiple would skip that save.
        for every in self._step_grid:
            budget = min(budget, every - steps % every)
        max_steps = self.trainer.max_steps
        if max_steps is None or max_steps < 0:
            return budget
        return max(0, min(budget, max_steps - steps))

    def _adapt_block(self, steps: int, seconds: float) -> None:
        # Aim the next block at BLOCK_SECONDS, changing by at most 10x at a time.
        if self.steps_per_block is not None or steps <= 0:
            return
        per_step = max(seconds, 1e-9) / steps
        target = self.BLOCK_SECONDS / per_step
        self._block = int(min(max(target, self._block / 10, 1), self._block * 10, self.MAX_BLOCK))

    def _direct_steps(self) -> bool:
        # Lightning's wrapped optimizer step runs callback hooks, profiler contexts and a closure
        # wrapper on every optimizer step.  With plain 32/64-bit precision and a strategy that does
        # not override optimizer_step, those do nothing for us, so the raw optimizer is stepped and
        # Lightning's step counter is advanced per block instead (same global_step, no per-step cost).
        from pytorch_lightning.plugins.precision import Precision
        from pytorch_lightning.strategies import Strategy

        trainer = self.trainer
        return (self.direct_steps and type(trainer.precision_plugin) is Precision
                and type(trainer.strategy).optimizer_step is Strategy.optimizer_step)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        iteration = self.iteration
        budget = self._budget()
        status = None
        data = batch if self.problem.uses_data else None
        if data is not None:
            budget = min(budget, 1)  # one optimizer step per batch of rows
        started, before = time.perf_counter(), iteration.steps
        if budget > 0:
            if self._direct:
                try:
                    status = iteration.run(budget, iteration.optimizer.step, batch=data)
                finally:
                    progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
                    for _ in range(iteration.steps - before):
                        progress.increment_ready()
                        progress.increment_completed()
            else:
                status = iteration.run(budget, self.optimizers().step, batch=data)
        if data is None:
            self._adapt_block(iteration.steps - before, time.perf_counter() - started)
        if data is None or batch_idx % (self.steps_per_block or 100) == 0:
            self.log_dict(self._log_values(), on_step=True, prog_bar=True, batch_size=1)
        max_steps = self.trainer.max_steps
        if status is None and max_steps is not None and 0 <= max_steps <= iteration.steps:
            status = Status.MAX_STEPS
        if status is not None:
            self._finish(status)
            self.trainer.should_stop = True

    def _log_values(self) -> dict[str, float]:
        iteration = self.iteration
        values = {"loss": iteration.last_loss}
        values.update(self._quality())
        values["step"] = float(iteration.steps)
        return values

    @torch.no_grad()
    def _quality(self) -> dict[str, float]:
        values = {}
        for name, metric in self.quality.items():
            values[name] = float(metric(self._measures[name]()))  # the value at the current point
        return values

    def _finish(self, status: Optional[Status]) -> None:
        if self.result is None and self.iteration is not None:
            epochs_ended = (status is None and self.problem.uses_data and self.trainer.max_epochs is not None
                            and self.trainer.current_epoch + 1 >= self.trainer.max_epochs > 0)
            self.result = self.iteration.finish(status, max_steps=self.trainer.max_steps)
            if epochs_ended and self.result.status is Status.MAX_STEPS:
                self.result.reason = (f"max_epochs reached: {self.trainer.max_epochs} passes over the data "
                                      f"({self.result.steps} steps); add epochs or set a tolerance to stop on")
            self.result.metrics = {k: v for k, v in self._quality().items() if k != "residual"}

    def request_interrupt(self) -> None:
        """Stop after the current optimizer step with reason "interrupted" (what Ctrl-C does in solve())."""
        if self.iteration is not None:
            self.iteration.interrupt_requested = True

    def on_train_end(self) -> None:
        # The Trainer stopped on its own (max_steps, max_time, a callback): the result still comes out.
        self._finish(None)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.iteration is not None:
            checkpoint["torch_gdla_iteration"] = self.iteration.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resume_state = checkpoint.get("torch_gdla_iteration")
