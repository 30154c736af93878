"""Checks of ``torch-gdla fit`` arguments made before anything runs, so that a mistake Lightning
would report as a traceback (or that would only show after a long run, like an unwritable
``--output``) is one line naming the argument and the fix.  Each raises ``ArgumentError``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch

from .errors import ArgumentError
from .matrices import check_writable

__all__ = ["check_fit_arguments", "check_output"]


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_fit_arguments(config: Any) -> None:
    """Trainer and checkpoint settings of a parsed fit config (a jsonargparse Namespace)."""
    trainer = config.get("trainer") or {}
    max_steps = _int(trainer.get("max_steps"))
    if max_steps is not None and (max_steps == 0 or max_steps < -1):
        raise ArgumentError(f"--trainer.max_steps={max_steps}: give the number of optimizer steps to run, a positive "
                            "integer (or -1 for no limit, with --trainer.max_time or a tolerance to end the run)")
    every = _int((config.get("checkpoint") or {}).get("every_n_train_steps"))
    if every is not None and every < 0:
        raise ArgumentError(f"--checkpoint.every_n_train_steps={every}: give a positive number of optimizer steps "
                            "between checkpoints (or 0 for none)")
    accelerator = trainer.get("accelerator")
    if isinstance(accelerator, str):
        _check_accelerator(accelerator.lower())


def _check_accelerator(name: str) -> None:
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ArgumentError(f"--trainer.accelerator={name}: no CUDA GPU is available on this machine "
                            "(torch.cuda.is_available() is False); use --trainer.accelerator=cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ArgumentError("--trainer.accelerator=mps: Apple's MPS is not available on this machine; "
                            "use --trainer.accelerator=cpu or auto")


def _writable_directory(directory: Path) -> bool:
    if not os.access(directory, os.W_OK | os.X_OK):
        return False
    try:  # os.access says yes to root everywhere, and knows nothing of read-only mounts
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


def check_output(value: Optional[str]) -> Optional[Path]:
    """``--output``: a file ``save_solution`` can write, checked before the run rather than after
    it.  Its directory may not exist yet (it is created), but the nearest existing one must
    be a writable directory."""
    if value is None:
        return None
    if Path(value).is_dir():
        raise ArgumentError(f"--output {value} is a directory; give a file in it, e.g. --output {Path(value) / 'solution.pt'}")
    path = check_writable(value, "--output")
    if path.exists() and not os.access(path, os.W_OK):
        raise ArgumentError(f"--output {value}: the file exists and is not writable; choose another path")
    existing = path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ArgumentError(f"--output {value}: {existing} is a file, not a directory; choose another path")
    if not _writable_directory(existing):
        raise ArgumentError(f"--output {value}: cannot write in directory {existing} (no permission or read-only); "
                            "choose another path")
    return path
