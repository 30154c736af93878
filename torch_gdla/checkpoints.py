"""Checkpoints of ``torch-gdla fit`` runs: find the one ``--ckpt_path`` names, check that it is an
intact torch_gdla checkpoint of this problem before Lightning loads it, and write checkpoints so
that a failed write (a full disk) never replaces a good file with a partial one.

A failed check is a :class:`CheckpointError` whose message is the one line the CLI prints.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch

from .errors import ArgumentError
from .fingerprints import FINGERPRINT_KEY, difference

__all__ = ["CheckpointError", "CheckpointInfo", "read_checkpoint", "intact_checkpoints", "find_last", "check_resume",
           "atomic_save", "ITERATION_KEY"]

# What SolverModule.on_save_checkpoint stores: a checkpoint without it was not written by a solver run.
ITERATION_KEY = "torch_gdla_iteration"
_LAST = re.compile(r"last(-v\d+)?\.ckpt")  # Lightning's save_last names: last.ckpt, last-v1.ckpt, ...
_START_AFRESH = "start without --ckpt_path or point at another checkpoint"


class CheckpointError(ArgumentError):
    """A checkpoint that cannot be resumed from; the message says what to do instead."""


@dataclass
class CheckpointInfo:
    path: Path
    step: int  # the Trainer's global_step: optimizer steps taken
    shapes: dict[str, tuple[int, ...]]  # the module's state_dict: name -> shape
    fingerprint: Optional[dict[str, Any]] = None  # the problem it belongs to; None: written before fingerprints


def read_checkpoint(path: str | os.PathLike) -> CheckpointInfo:
    """Read the step and state shapes of a torch_gdla checkpoint without loading its tensors.

    Raises :class:`CheckpointError` for a file that is corrupt (random bytes, truncated) or is
    not a torch_gdla checkpoint.  The load is ``weights_only`` (no code runs from the file) and
    memory-mapped (a large checkpoint costs no copy)."""
    path = Path(path)
    not_ours = f"not a torch_gdla checkpoint / file is corrupt: {path}"
    if not path.is_file():
        raise CheckpointError(f"{not_ours} (no such file)")
    # Lightning writes zip-format files; anything else (random bytes, a truncated file whose
    # central directory is gone, a plain pickle) is refused here, before torch.load sees it.
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{not_ours} (not a complete torch zip file)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # noqa: BLE001 - any failure to read means the same to the user
        # Only the exception's type: torch's own text suggests unsafe loading options.
        raise CheckpointError(f"{not_ours} ({type(error).__name__} while reading it)") from None
    if not isinstance(checkpoint, dict) or ITERATION_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"{not_ours} (it holds no solver state: written by something else)")
    step = checkpoint.get("global_step")
    if not isinstance(step, int):
        raise CheckpointError(f"{not_ours} (it has no global_step)")
    shapes = {name: tuple(value.shape) for name, value in checkpoint["state_dict"].items() if isinstance(value, torch.Tensor)}
    return CheckpointInfo(path=path, step=step, shapes=shapes, fingerprint=checkpoint.get(FINGERPRINT_KEY))


def intact_checkpoints(directory: Path, exclude: Iterable[Path] = ()) -> list[CheckpointInfo]:
    """The readable torch_gdla checkpoints in ``directory``, the furthest step first."""
    excluded = {Path(p).resolve() for p in exclude}
    found = []
    for path in sorted(directory.glob("*.ckpt")) if directory.is_dir() else []:
        if path.resolve() in excluded:
            continue
        try:
            found.append(read_checkpoint(path))
        except CheckpointError:
            continue
    return sorted(found, key=lambda info: info.step, reverse=True)


def _offer(directory: Path, exclude: Iterable[Path]) -> str:
    intact = intact_checkpoints(directory, exclude)
    if not intact:
        return _START_AFRESH
    best = intact[0]
    return (f"an intact checkpoint at step {best.step} is {best.path}: resume with --ckpt_path {best.path}, "
            "or start without --ckpt_path")


def find_last(directories: Iterable[Path]) -> Optional[Path]:
    """What ``--ckpt_path last`` means, as Lightning resolves it: the newest ``last*.ckpt`` in the
    checkpoint directories.  None when no directory holds a checkpoint at all (a first run:
    start from step 0).  Raises :class:`CheckpointError` when there is no ``last*.ckpt`` but
    other checkpoints sit there, rather than silently starting again."""
    directories = [d for d in directories if d.is_dir()]
    lasts = [p for d in directories for p in d.iterdir() if _LAST.fullmatch(p.name) and p.is_file()]
    if lasts:
        return max(lasts, key=lambda p: p.stat().st_mtime)
    others = sorted(p for d in directories for p in d.glob("*.ckpt"))
    if others:
        listing = ", ".join(p.name for p in others)
        raise CheckpointError(f"--ckpt_path last: no last.ckpt in {others[0].parent} (it holds {listing}); "
                              f"pass one of them with --ckpt_path {others[-1]}, or start without --ckpt_path")
    return None


def check_resume(ckpt_path: str, directories: Iterable[Path], state: dict[str, Any],
                 fingerprint: Optional[dict[str, Any]] = None) -> Optional[CheckpointInfo]:
    """Check the checkpoint ``--ckpt_path`` names before Lightning loads it.

    ``directories`` are the run's checkpoint directories (for ``last``); ``state`` is the
    module's ``state_dict()``, whose tensors must have the checkpoint's shapes; ``fingerprint``
    is this problem's (:func:`torch_gdla.fingerprints.fingerprint`), which must match the
    checkpoint's when it has one.  Returns None for ``last`` with no checkpoint yet; raises
    :class:`CheckpointError` when the checkpoint cannot be resumed into this problem."""
    if ckpt_path == "last":
        path = find_last(list(directories))
        if path is None:
            return None
    else:
        path = Path(ckpt_path)
        if not path.exists():
            raise CheckpointError(f"--ckpt_path {ckpt_path}: no such file; {_offer(path.parent, [])}")
    try:
        info = read_checkpoint(path)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; {_offer(path.parent, [path])}") from None
    differs = None if fingerprint is None or info.fingerprint is None else difference(info.fingerprint, fingerprint)
    if differs is not None:
        raise CheckpointError(f"{path} is a checkpoint of a different problem: {differs.replace('this one', 'this config')}; "
                              "start without --ckpt_path (under another --trainer.logger.init_args.name to keep that "
                              "run's checkpoints), or point at a checkpoint of this problem")
    for name, value in state.items():
        saved = info.shapes.get(name)
        if isinstance(value, torch.Tensor) and saved is not None and saved != tuple(value.shape):
            raise CheckpointError(f"{path} is a checkpoint of a different problem: {name} has shape {saved} there and "
                                  f"{tuple(value.shape)} in this config; {_START_AFRESH}")
    missing = [name for name, value in state.items() if isinstance(value, torch.Tensor) and name not in info.shapes]
    if missing:
        raise CheckpointError(f"{path} is a checkpoint of a different problem: it has no {', '.join(missing)}; {_START_AFRESH}")
    return info


# -- writing ---------------------------------------------------------------------------------------
def _write(obj: Any, file: Any) -> None:
    torch.save(obj, file)


def atomic_save(obj: Any, path: Path, save: Optional[Callable[[Any, Any], None]] = None) -> None:
    """Write ``obj`` to a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic on one filesystem, so ``path`` holds either the previous file or the
    complete new one; a failed write (``OSError``, e.g. a full disk) leaves no temporary file.
    (Lightning's own save writes a temporary file in /tmp and moves it, which across
    filesystems is a copy that can leave a partial file in place of the previous one.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            (save or _write)(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
