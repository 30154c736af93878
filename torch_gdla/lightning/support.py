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
