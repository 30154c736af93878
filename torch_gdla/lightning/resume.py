"""Checkpoints of a ``SolverModule`` run: what they carry besides Lightning's own state (the
problem's fingerprint, the engine's state, the optimizer's iterate) and the refusal of a
checkpoint that belongs to another problem."""
from __future__ import annotations

import warnings
from typing import Any, Optional

import pytorch_lightning as pl

from ..checkpoints import ITERATION_KEY, CheckpointError
from ..engine import Iteration
from ..fingerprints import FINGERPRINT_KEY, UnverifiedCheckpointWarning, difference, fingerprint
from ..problems.base import Problem


class ResumableSolver(pl.LightningModule):
    """The checkpoint hooks of ``SolverModule``: it sets ``problem`` and ``iteration``; a loaded
    checkpoint's engine state waits in ``_resume_state`` until the fit starts and restores it."""

    problem: Problem
    iteration: Optional[Iteration]
    _resume_state: Optional[dict]

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
