"""The checkpoint side of the ``torch-gdla fit`` command (:class:`CheckpointedCLI`): where
checkpoints go, which one ``--ckpt_path`` resumes (checked against this config's problem), a
failed write reported once per directory, and the state saved on Ctrl-C."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningCLI

from .checkpoints import CheckpointError, CheckpointInfo, check_resume
from .cli_messages import note, usage_error
from .fingerprints import fingerprint
from .lightning.support import AtomicCheckpointIO


class CheckpointedCLI(LightningCLI):
    """Checkpoint handling of ``GdlaCLI``, which sets ``_checkpoint_io`` (an
    :class:`~torch_gdla.lightning.support.AtomicCheckpointIO` reporting to
    :meth:`_checkpoint_write_failed`) and ``_write_failures`` before building the Trainer."""

    _checkpoint_io: AtomicCheckpointIO
    _write_failures: set[Path]

    def after_instantiate_classes(self) -> None:
        # Checkpoints go to <save_dir>/<name>/checkpoints, shared by every version of the
        # experiment, so `--ckpt_path last` finds the previous run's last.ckpt.
        logger = self.trainer.logger
        for callback in self._model_checkpoints():
            if callback.dirpath is None and logger is not None and logger.save_dir is not None:
                callback.dirpath = os.path.join(logger.save_dir, str(logger.name or ""), "checkpoints")

    def _model_checkpoints(self) -> list[ModelCheckpoint]:
        return [cb for cb in self.trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]

    def _resume_point(self) -> Optional[CheckpointInfo]:
        ckpt_path = self.config.get("ckpt_path")
        if ckpt_path is None:
            return None
        directories = [Path(cb.dirpath) if cb.dirpath else Path(self.trainer.default_root_dir) / "checkpoints"
                       for cb in self._model_checkpoints()]
        try:
            info = check_resume(ckpt_path, directories, self.model.state_dict(), fingerprint(self.model.problem))
        except CheckpointError as error:
            usage_error(str(error))
        if info is not None and info.fingerprint is None:
            note(f"warning: {info.path} carries no problem fingerprint (written by an older torch_gdla): resuming "
                 "without checking that it belongs to this config's problem")
        if info is None:
            where = ", ".join(str(d) for d in directories) or "this run (checkpointing is off)"
            print(f"--ckpt_path last: no checkpoint in {where} yet; starting from step 0")
        return info

    def _checkpoint_write_failed(self, path: Path, error: OSError) -> None:
        if path.parent not in self._write_failures:  # one line per directory, not one per save
            self._write_failures.add(path.parent)
            note(f"could not write checkpoints in {path.parent}: {error.strerror or error}; the run goes on, "
                 "and the checkpoints already there are kept intact")

    def _save_interrupted(self) -> None:
        for callback in self._model_checkpoints():
            if callback.save_last and callback.dirpath:
                path = os.path.join(callback.dirpath, "last.ckpt")
                self.trainer.save_checkpoint(path)
                if not self._checkpoint_io.failed:
                    print(f"interrupted: state saved to {path}; resume with --ckpt_path last")
