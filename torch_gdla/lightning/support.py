"""Lightning-only helpers: silence Lightning's chatter in library calls, turn Ctrl-C into a
request to stop after the current optimizer step, and read the Trainer state a solver needs
(``max_time_set``, ``checkpoint_step_intervals``, ``count_optimizer_steps``)."""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from pytorch_lightning.plugins import TorchCheckpointIO

from ..checkpoints import atomic_save

_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric")


@contextlib.contextmanager
def quiet_lightning(enabled: bool = True) -> Iterator[None]:
    """Silence Lightning's banners, tips and set-up warnings (a library call prints nothing)."""
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"(pytorch_)?lightning.*")
            warnings.filterwarnings("ignore", message=r".*(does not have many workers|GPU available|LOCAL_RANK).*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def interrupt_as_request(module: Any) -> Iterator[None]:
    """Ctrl-C asks the run to stop after the current step (reason "interrupted", best solution
    kept) instead of unwinding through Lightning, which would exit the process.  A second
    Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, previous if callable(previous) else signal.default_int_handler)
        module.request_interrupt()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# -- Lightning state without a public API -------------------------------------------------------
# SolverModule needs three facts about the Trainer.  Each is read here and nowhere else, so a
# Lightning release that moves one breaks one function, and tests/test_lightning_support.py says
# which attribute moved instead of a solver silently skipping checkpoints or miscounting steps.


def _moved(attribute: str, helper: str, error: BaseException) -> RuntimeError:
    import pytorch_lightning as pl

    return RuntimeError(
        f"pytorch_lightning {pl.__version__} has no {attribute} (renamed or moved; {type(error).__name__}: {error}); "
        f"torch_gdla.lightning.support.{helper} reads it and needs updating for this Lightning version"
    )


def max_time_set(trainer: Any) -> bool:
    """Whether a ``Timer`` callback (``Trainer(max_time=...)``) bounds the run's time.

    Public API: ``Timer.time_remaining()`` is None exactly when no duration was given."""
    from pytorch_lightning.callbacks import Timer

    return any(isinstance(cb, Timer) and cb.time_remaining() is not None for cb in trainer.callbacks)


def checkpoint_step_intervals(trainer: Any) -> list[int]:
    """The ``every_n_train_steps`` of the trainer's ``ModelCheckpoint`` callbacks that save by step.

    No public API: ``ModelCheckpoint`` keeps the value only as ``_every_n_train_steps`` (it has a
    public ``every_n_epochs`` property, none for steps).  A solver needs it to end its blocks of
    steps on the save points, because Lightning checks ``global_step % n == 0`` only between
    training steps."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    intervals = []
    for callback in trainer.checkpoint_callbacks:
        if not isinstance(callback, ModelCheckpoint):
            continue  # other Checkpoint callbacks choose their own moments
        try:
            every = callback._every_n_train_steps
        except AttributeError as error:
            raise _moved("ModelCheckpoint._every_n_train_steps", "checkpoint_step_intervals", error) from error
        if every and every > 0:
            intervals.append(int(every))
    return intervals


def count_optimizer_steps(trainer: Any, n: int) -> None:
    """Count ``n`` optimizer steps, taken on the raw optimizer, into ``trainer.global_step``.

    No public API: with manual optimization Lightning counts a step only when its
    ``LightningOptimizer`` wrapper steps (``global_step`` is the manual loop's
    ``optim_step_progress.total.completed``).  A solver that steps the raw optimizer for speed
    advances that counter itself, once per block."""
    if n <= 0:
        return
    try:
        progress = trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        increment_by = progress.increment_by
    except AttributeError as error:
        raise _moved("trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.increment_by",
                     "count_optimizer_steps", error) from error
    increment_by(n)  # ready and completed, total and current: what n wrapped steps would add


# -- checkpoint writing ---------------------------------------------------------------------------
class AtomicCheckpointIO(TorchCheckpointIO):
    """A Lightning ``CheckpointIO`` plugin (``Trainer(plugins=[...])``, a public API) that writes
    each checkpoint to a temporary file beside its target and renames it into place, so a
    failed write (a full disk) never replaces the previous checkpoint with a partial file.

    With ``on_error``, a failed write is reported to it and the run goes on (a checkpoint is a
    safety net, not the result); checkpoints are then not deleted until a write succeeds again,
    since the older ones may be the only intact copies.  Without it the ``OSError`` is raised."""

    def __init__(self, on_error: Optional[Callable[[Path, OSError], None]] = None) -> None:
        super().__init__()
        self.on_error = on_error
        self.failed = False  # the last write failed

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's own path
            return super().save_checkpoint(checkpoint, path, storage_options)
        try:
            atomic_save(checkpoint, Path(path))
        except OSError as error:
            self.failed = True
            if self.on_error is None:
                raise
            self.on_error(Path(path), error)
        else:
            self.failed = False

    def remove_checkpoint(self, path: Any) -> None:
        if not self.failed:
            super().remove_checkpoint(path)
