"""The peers table's shared machinery: rows, interleaved CPU timing, residuals from the data, the peers' own loops."""
from __future__ import annotations

import argparse
import math
import signal
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse.linalg as sla
import torch
from run import timed  # bench/run.py

BENCH = Path(__file__).resolve().parent
CPU, F64 = torch.device("cpu"), torch.float64
SLOW = 30.0  # seconds: a call slower than this is timed once
BUDGET = 150.0  # CPU seconds at most for one torch_gdla call of the slow rows (SVD, Rosenbrock, float32)

__all__ = ["BENCH", "BUDGET", "CPU", "F64", "SLOW", "Prepared", "RESULTS", "ROWS", "Row", "add", "argparse",
           "budgeted", "counted_cg", "ended", "f64", "figure", "fmt_ratio", "fmt_time", "fmt_times", "math", "measure",
           "median", "normal_residual", "ratios", "relative_residual", "timed", "torch_cg"]


# -- rows ------------------------------------------------------------------------------------------
@dataclass
class Row:
    number: str
    problem: str
    peer: str  # the peer and its figure
    gdla: str  # torch_gdla's figure: iterations, operator applications, time, residual
    ratio: str  # CPU-time ratio torch_gdla / peer: median (min)
    goal: str
    met: Optional[bool]  # None: context, no goal
    raw: dict[str, Any] = field(default_factory=dict)
    profile: str = ""


ROWS: list[Row] = []


def add(row: Row) -> Row:
    ROWS.append(row)
    mark = {True: "met", False: "NOT MET", None: ""}[row.met]
    print(f"  {row.number} {row.problem}: {row.gdla} | {row.peer} | {row.ratio} | {row.goal} {mark}", flush=True)
    return row


def budgeted(fn: Callable[[], Any], seconds: float = BUDGET) -> Callable[[], Any]:
    """fn, interrupted after ``seconds`` of CPU time by a KeyboardInterrupt (SIGPROF), which the
    engine turns into status "interrupted" with the best point so far."""
    def call() -> Any:
        def handler(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGPROF, handler)
        signal.setitimer(signal.ITIMER_PROF, seconds)
        try:
            return fn()
        except KeyboardInterrupt:
            raise RuntimeError(f"the bench's {seconds:.0f} s CPU budget ran out outside the iterations") from None
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, previous)
    return call


def ended(result: Any) -> str:
    """'' for a converged run, else how it ended (an interrupt is the bench's budget)."""
    if result.converged:
        return ""
    if result.status.value == "interrupted":
        return f", **stopped by the bench's {BUDGET:.0f} s CPU budget**"
    return f", **{result.status.value}**"


# -- timing ----------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """A timed call whose input is built untimed, once per call (e.g. a fresh Iteration)."""

    setup: Callable[[], Any]
    call: Callable[[Any], Any]


def _timing(fn: Any, k: int) -> tuple[float, Any]:
    """(CPU time per call, the last call's return value) of k calls."""
    out: list[Any] = [None]
    if isinstance(fn, Prepared):
        states = [fn.setup() for _ in range(k)]
        t = timed(lambda: [out.__setitem__(0, fn.call(s)) for s in states], CPU)
    else:
        t = timed(lambda: [out.__setitem__(0, fn()) for _ in range(k)], CPU)
    return t / k, out[0]


RESULTS: dict[str, Any] = {}  # the latest measure()'s return values, by name


def measure(fns: dict[str, Any], rounds: int, target: float = 0.05) -> dict[str, list[float]]:
    """Per-call CPU times of each fn over ``rounds`` rounds, the order reversed every other round
    (RESULTS keeps each fn's last return value).  The first call is a warm-up; a call slower than
    SLOW keeps that time as its only timing."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    repeat: dict[str, int] = {}
    RESULTS.clear()
    for name, fn in fns.items():
        once, RESULTS[name] = _timing(fn, 1)
        if once > SLOW:
            times[name].append(once)
        else:  # a second, warm call sets how often a fast call repeats within a timing
            repeat[name] = 1 if once >= target else min(2000, math.ceil(target / max(_timing(fn, 1)[0], 1e-7)))
    items = [(name, fn) for name, fn in fns.items() if name in repeat]
    for round_ in range(rounds):
        for name, fn in (items if round_ % 2 == 0 else items[::-1]):
            t, RESULTS[name] = _timing(fn, repeat[name])
            times[name].append(t)
    return times


def ratios(ours: list[float], peer: list[float]) -> list[float]:
    if len(ours) != len(peer):  # one side timed once: against each round of the other
        ours, peer = (ours * len(peer), peer) if len(ours) == 1 else (ours, peer * len(ours))
    return [a / b for a, b in zip(ours, peer)]


def fmt_time(t: float) -> str:
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def fmt_times(ts: list[float]) -> str:
    return f"{fmt_time(ts[0])} (timed once)" if len(ts) == 1 else \
        f"{fmt_time(median(ts))} (min {fmt_time(min(ts))})"


def fmt_ratio(rs: list[float]) -> str:
    return f"{median(rs):.2f}x (min {min(rs):.2f}x)"



# -- residuals from the data in float64, and the peers -------------------------------------------------
def f64(t: Any) -> np.ndarray:
    return t.detach().to(F64).numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)


def relative_residual(A: Any, x: Any, b: Any) -> float:
    """‖Ax − b‖/‖b‖ (A a float64 ndarray or scipy sparse matrix)."""
    b = f64(b)
    return float(np.linalg.norm(A @ f64(x) - b) / np.linalg.norm(b))


def normal_residual(A: Any, x: Any, b: Any) -> float:
    """‖Aᵀ(Ax − b)‖/‖Aᵀb‖: the least-squares optimality measure."""
    b = f64(b)
    return float(np.linalg.norm(A.T @ (A @ f64(x) - b)) / np.linalg.norm(A.T @ b))


def counted_cg(A: Any, b: np.ndarray, **options: Any) -> tuple[np.ndarray, int]:
    steps = [0]
    x, _ = sla.cg(A, b, callback=lambda _: steps.__setitem__(0, steps[0] + 1), **options)
    return x, steps[0]


def torch_cg(A: torch.Tensor, b: torch.Tensor, rtol: float, maxiter: int) -> tuple[torch.Tensor, int]:
    """The hand-written peer: textbook conjugate gradient in torch, one A·p per iteration and
    ‖r‖ read once per iteration; stops at ‖r‖ < rtol·‖b‖ as scipy's cg does."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = float(torch.dot(r, r))
    stop = (rtol * float(torch.linalg.vector_norm(b))) ** 2
    k = 0
    while rr >= stop and k < maxiter:
        q = A @ p
        alpha = rr / float(torch.dot(p, q))
        x.add_(p, alpha=alpha)
        r.add_(q, alpha=-alpha)
        rr_new = float(torch.dot(r, r))
        p.mul_(rr_new / rr).add_(r)
        rr = rr_new
        k += 1
    return x, k


def figure(result: Any, t: list[float], residual: Optional[float] = None) -> str:
    applied = ", ".join(f"{v} {k}" for k, v in result.stats.items()) if result.stats else "no stats"
    shown = "" if residual is None else f", residual {residual:.2g}"
    return f"{result.steps} it, {applied}, {fmt_times(t)}{shown}{ended(result)}"

