"""Lightning-only helpers: silence Lightning's chatter in library calls, and turn Ctrl-C into a
request to stop after the current optimizer step."""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import warnings
from typing import Any, Iterator

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


# -- the Lightning internals SolverModule needs ------------------------------------------------------
def max_time_set(trainer: Any) -> bool:
    """True when a ``Timer`` callback (``Trainer(max_time=...)``) limits the run."""
    from pytorch_lightning.callbacks import Timer

    return any(isinstance(cb, Timer) and cb._duration is not None for cb in trainer.callbacks)


def checkpoint_step_intervals(trainer: Any) -> list[int]:
    """``every_n_train_steps`` of every ModelCheckpoint (0s left out)."""
    return [cb._every_n_train_steps for cb in trainer.checkpoint_callbacks if getattr(cb, "_every_n_train_steps", 0)]


def count_optimizer_steps(trainer: Any, steps: int) -> None:
    """Advance ``trainer.global_step`` by ``steps`` optimizer steps taken on the raw optimizer."""
    progress = trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
    for _ in range(steps):
        progress.increment_ready()
        progress.increment_completed()
