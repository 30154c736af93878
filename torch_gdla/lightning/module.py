"""``SolverModule``: any problem, trained by a Lightning ``Trainer`` through the engine."""
from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Iterable, Optional

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..checkpoints import ITERATION_KEY, CheckpointError
from ..engine import Criteria, Iteration, build_optimizer
from ..errors import ArgumentError, ArgumentTypeError
from ..fingerprints import FINGERPRINT_KEY, UnverifiedCheckpointWarning, difference, fingerprint
from ..problems.base import Problem
from ..result import Result, Status
from ..validation import check_optimizer_factory, check_positive_int
from .blocks import BlockSize, NoData
from .support import checkpoint_step_intervals, count_optimizer_steps, max_time_set

OptimizerCallable = Callable[[Iterable], torch.optim.Optimizer]


class SolverModule(pl.LightningModule):
    """Trains a :class:`~torch_gdla.problems.base.Problem` with Lightning.

    Manual optimization: each ``training_step`` runs a block of up to ``steps_per_block``
    optimizer steps through an :class:`~torch_gdla.engine.Iteration` (Lightning's per-step costs
    are paid once per block), whose stopping rules are checked after every optimizer step, so the
    run stops at the exact step a tolerance is met.  ``Trainer(max_steps=...)`` counts optimizer
    steps and is never overshot.  The loss and the problem's quality measures are logged once
    per block.

    Args:
        problem: the problem to solve (its parameters are the unknown).
        optimizer: callable taking the parameters and returning a ``torch.optim.Optimizer``
            (a ``functools.partial``, or LightningCLI's optimizer callable); None = library default.
        criteria: the stopping rules (:class:`~torch_gdla.engine.Criteria`: tol, residual_tol,
            rtol, ...); None: the default tolerance for the problem's dtype.  In a config:
            ``criteria: {tol: 0}``.
        steps_per_block: optimizer steps per ``training_step`` (and per log row); for a
            data-driven problem, batches per log row.  None: adaptive, so a block takes about
            ``BlockSize.SECONDS`` and Lightning's per-block work costs ~1 %.
        reference_metrics: also log the error against the direct ``torch.linalg`` answer
            (one direct solve, done once).
        direct_steps: with plain 32/64-bit precision and a standard strategy, step the raw
            optimizer and count the steps into Lightning per block (bare-loop speed; callbacks'
            ``on_before_optimizer_step`` is then not called per step).
        deferred_checks: keep losses on the device and read them once per block; None
            (default): deferred off the CPU only.

    After ``fit``, ``module.result`` holds the :class:`~torch_gdla.result.Result`.
    """

    def __init__(
        self,
        problem: Problem,
        optimizer: Optional[OptimizerCallable] = None,
        criteria: Optional[Criteria] = None,
        steps_per_block: Optional[int] = None,
        reference_metrics: bool = False,
        direct_steps: bool = True,
        deferred_checks: Optional[bool] = None,
    ) -> None:
        super().__init__()
        if not isinstance(problem, Problem):
            raise ArgumentTypeError(
                f"problem must be a torch_gdla Problem (e.g. gdla.MatrixInverse(M)); got {type(problem).__name__}")
        if optimizer is not None:
            check_optimizer_factory(optimizer)
        if criteria is not None and not isinstance(criteria, Criteria):
            raise ArgumentTypeError(f"criteria must be a gdla.Criteria(tol=..., residual_tol=...) or None; got "
                                    f"{type(criteria).__name__}")
        self.automatic_optimization = False
        self.problem = problem
        self.optimizer_factory = optimizer
        self.criteria = criteria or Criteria()
        self.block = BlockSize(check_positive_int(steps_per_block, "steps_per_block", allow_none=True,
                                                  meaning="None adapts it"))
        self.reference_metrics = reference_metrics
        self.direct_steps = direct_steps
        self.deferred_checks = deferred_checks
        self.quality = torch.nn.ModuleDict()
        self.iteration: Optional[Iteration] = None
        self.result: Optional[Result] = None
        self._optimizer: Optional[torch.optim.Optimizer] = None
        self._resume_state: Optional[dict] = None

    def forward(self) -> Tensor:
        return self.problem()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Built here so Lightning saves and restores its state with every checkpoint.
        self._optimizer = build_optimizer(self.optimizer_factory, self.problem)
        return self._optimizer

    def train_dataloader(self) -> Any:
        # Data-driven problems bring their own rows (unless fit() is given a datamodule);
        # the others get an endless stream of empty batches, one per block of steps.
        if self.problem.uses_data:
            return self.problem.train_dataloader()
        return DataLoader(NoData(), batch_size=None)

    def on_fit_start(self) -> None:
        trainer = self.trainer
        max_steps = trainer.max_steps if trainer.max_steps is not None and trainer.max_steps >= 0 else None
        # A data-driven problem's epochs end; a data-free one's single epoch never does.
        if max_steps is None and not max_time_set(trainer) and not self.problem.uses_data:
            raise ArgumentError(
                "Trainer(max_steps=...) is required: a solver has no dataset and no epochs, so without max_steps "
                "(or max_time) a run that never meets its tolerance would never end")
        from ..metrics import WorstMember

        self.result = None
        self._measures = self.problem.measures(reference=self.reference_metrics)
        self.quality = torch.nn.ModuleDict({name: WorstMember() for name in self._measures}).to(self.device)
        self._direct = self.direct_steps and _plain_steps(trainer)
        # Direct steps need no precision scaling or DDP gradient averaging; otherwise
        # Lightning's manual_backward does both.
        self.iteration = Iteration(self.problem, self._optimizer or trainer.optimizers[0], self.criteria,
                                   max_steps=max_steps, backward=None if self._direct else self.manual_backward,
                                   deferred=self.deferred_checks)
        self.block.align_to(checkpoint_step_intervals(trainer))
        self.block.clock = time.process_time if self.problem.device.type == "cpu" else time.perf_counter
        if self._resume_state is not None:
            self.iteration.load_state_dict(self._resume_state)
            self._resume_state = None
            if self.iteration.remaining == 0 or self.iteration.status is not None:
                # Restored at or past its end: Lightning runs no step (and so no on_train_end).
                self._finish(self.iteration.status)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        iteration = self.iteration
        assert iteration is not None
        data = batch if self.problem.uses_data else None
        # One optimizer step per batch of rows; otherwise a block, ended on checkpoint intervals.
        budget = 1 if data is not None else self.block.budget(iteration.steps)
        clock = self.block.clock
        started, before = clock(), iteration.steps
        try:
            step = iteration.optimizer.step if self._direct else self.optimizers().step
            status = iteration.run(budget, step, batch=data)
        finally:
            if self._direct:
                count_optimizer_steps(self.trainer, iteration.steps - before)
        if data is None:
            self.block.adapt(iteration.steps - before, clock() - started)
        if data is None or batch_idx % (self.block.fixed or 100) == 0:
            self.log_dict(self._log_values(), on_step=True, prog_bar=True, batch_size=1)
        if status is not None:
            self._finish(status)
            self.trainer.should_stop = True

    def _log_values(self) -> dict[str, float]:
        assert self.iteration is not None
        values = {"loss": self.iteration.last_loss, **self._quality(), "step": float(self.iteration.steps)}
        return values

    @torch.no_grad()
    def _quality(self) -> dict[str, float]:
        # forward() is torchmetrics' per-step value: update on this point alone, then compute.
        return {name: float(metric(self._measures[name]())) for name, metric in self.quality.items()}

    def _finish(self, status: Optional[Status]) -> None:
        if self.result is not None or self.iteration is None:
            return
        trainer = self.trainer
        epochs_ended = (status is None and self.problem.uses_data and trainer.max_epochs is not None
                        and trainer.current_epoch + 1 >= trainer.max_epochs > 0)
        self.result = self.iteration.finish(status)
        if epochs_ended and self.result.status is Status.MAX_STEPS:
            self.result.reason = (f"max_epochs reached: {trainer.max_epochs} passes over the data "
                                  f"({self.result.steps} steps); add epochs or set a tolerance to stop on")
        elif epochs_ended and self.result.status is Status.COMPLETED:
            self.result.reason = (f"completed: ran the {trainer.max_epochs} passes over the data configured "
                                  f"({self.result.steps} steps; no tolerance was set, so none was checked)")
        self.result.metrics = {k: v for k, v in self._quality().items() if k != "residual"}

    def request_interrupt(self) -> None:
        """Stop after the current optimizer step with reason "interrupted" (what Ctrl-C does in solve())."""
        if self.iteration is not None:
            self.iteration.interrupt_requested = True

    def on_train_end(self) -> None:
        # The Trainer stopped on its own (max_time, a callback, epochs): the result still comes out.
        self._finish(None)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # What problem this checkpoint belongs to: a resume into another one is refused on load.
        checkpoint[FINGERPRINT_KEY] = fingerprint(self.problem)
        if self.iteration is None:
            return
        checkpoint[ITERATION_KEY] = self.iteration.state_dict()
        if self.iteration.iterate is not None:
            # Saved after the run ended (Ctrl-C): the parameters hold the returned solution, but a
            # resume must continue from the optimizer's own point, which its state belongs to.
            names = [f"problem.{name}" for name, p in self.problem.named_parameters() if p.requires_grad]
            for name, iterate in zip(names, self.iteration.iterate):
                checkpoint["state_dict"][name] = iterate.clone()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another problem (class, dtype, shapes or values of the given
        tensors differ) with a :class:`~torch_gdla.checkpoints.CheckpointError`, before Lightning
        loads its state over this problem's data; a checkpoint without a fingerprint (written
        before they existed) is resumed with an :class:`UnverifiedCheckpointWarning`."""
        try:
            where = self.trainer.ckpt_path or "the checkpoint"
        except RuntimeError:  # not attached to a Trainer
            where = "the checkpoint"
        saved = checkpoint.get(FINGERPRINT_KEY)
        if saved is None:
            warnings.warn(f"{where} carries no problem fingerprint (written by an older torch_gdla): resuming without "
                          "checking that it belongs to this problem", UnverifiedCheckpointWarning, stacklevel=2)
        else:
            differs = difference(saved, fingerprint(self.problem))
            if differs is not None:
                raise CheckpointError(f"{where} is a checkpoint of a different problem: {differs}; fit without "
                                      "ckpt_path, or pass a checkpoint of this problem")
        self._resume_state = checkpoint.get(ITERATION_KEY)


def _plain_steps(trainer: pl.Trainer) -> bool:
    # Lightning's wrapped optimizer step runs callback hooks, profiler contexts and a closure
    # wrapper on every optimizer step.  With plain 32/64-bit precision and a strategy that does
    # not override optimizer_step, those do nothing for us, so the raw optimizer is stepped and
    # Lightning's step counter is advanced per block instead (same global_step, no per-step cost).
    from pytorch_lightning.plugins.precision import Precision
    from pytorch_lightning.strategies import Strategy

    return type(trainer.precision_plugin) is Precision and type(trainer.strategy).optimizer_step is Strategy.optimizer_step
