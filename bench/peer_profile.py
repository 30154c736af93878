"""The profile written under the peers table for each unmet goal: where a call's time goes per iteration."""
from __future__ import annotations

import cProfile
import io
import pstats
import re
from collections import Counter
from typing import Any, Callable, Optional

import torch
from peer_common import CPU, Row, fmt_time, timed
from torch.utils._python_dispatch import TorchDispatchMode


class OpCounter(TorchDispatchMode):
    """Counts the aten ops a call dispatches (``_local_scalar_dense``: a tensor value read on the host)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def _stat_lines(stats: pstats.Stats, sort: str, *restrict: Any) -> list[str]:
    stream = io.StringIO()
    stats.stream = stream  # type: ignore[attr-defined]
    stats.sort_stats(sort).print_stats(*restrict)
    return [re.sub(r"\S*/(site-packages|wt-[^/]+|main)/", "", line) for line in stream.getvalue().splitlines()
            if re.match(r"\s+\d", line) and "function calls" not in line]


def profile(fn: Callable[[], Any], iterations: int, applications: str = "", floor: Optional[float] = None,
            unit: str = "iteration") -> str:
    """Where a call's time goes per iteration: Python calls (cProfile), aten ops and host reads of
    a tensor value (item/float/bool: a device synchronisation off the CPU), torch.profiler's
    heaviest ops, and the share of the operator applications alone (``floor`` per iteration)."""
    total = timed(fn, CPU)
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler)
    with OpCounter() as counter:
        fn()
    ops, reads, per = sum(counter.counts.values()), counter.counts["aten._local_scalar_dense"], max(iterations, 1)
    lines = [f"{fmt_time(total)} per profiled call, {iterations} {unit}s, {fmt_time(total / per)} per {unit}"
             + (f"; {applications}" if applications else "")]
    if floor is not None:
        share = 100 * floor * per / total
        lines.append(f"the operator applications alone: {fmt_time(floor)} per {unit} ({share:.0f} % "
                     "of the call); the rest is the method's vector work, stopping checks and Python")
    lines.append(f"per {unit}: {stats.total_calls / per:.0f} Python function calls, {ops / per:.0f} aten ops, "
                 f"{reads / per:.1f} host reads of a tensor value (item/float/bool)")
    lines.append(f"aten ops per {unit}, most frequent: "
                 + ", ".join(f"{name[5:]} {count / per:.1f}" for name, count in counter.counts.most_common(8)))
    if ops <= 30_000:  # torch.profiler keeps every event: only for calls of few ops
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            fn()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:6]
        lines.append("torch.profiler, self CPU time (a step's record_function: its Python between ops): " + ", ".join(
            f"{e.key} {e.count}x {e.self_cpu_time_total / 1e3:.1f} ms" for e in events))
    return "\n".join([*lines, "cProfile by own time (ncalls tottime percall cumtime percall):",
                      *_stat_lines(stats, "tottime", 10), "cProfile, torch_gdla by cumulative time:",
                      *_stat_lines(stats, "cumulative", "torch_gdla", 10)])


def attach_profile(row: Row, fn: Callable[[], Any], iterations: int, applications: str = "",
                   floor: Optional[float] = None, unit: str = "iteration", force: bool = False) -> None:
    """Profile ``fn`` when the row's goal is unmet (or ``force``).  A slow row passes a run capped
    at fewer steps: the profile is per iteration, and the first iterations show it."""
    if row.met is False or force:
        try:
            row.profile = profile(fn, iterations, applications, floor, unit)
        except Exception as error:
            row.profile = f"profile failed: {type(error).__name__}: {error}"
        print("    " + row.profile.replace("\n", "\n    "), flush=True)

