"""``torch-gdla plot``: loss (and residual) curves of one or many runs, from the logs Lightning wrote.

    torch-gdla plot runs/inverse_random runs/inverse_diagonal -o loss.png --title "..."

A run is a log directory: a CSVLogger version directory holding ``metrics.csv`` (the default
logger), a logger directory whose newest ``version_*`` is used, the ``metrics.csv`` itself, or a
TensorBoard log directory (read only when the ``tensorboard`` package is installed).  The x axis
is the optimizer step (``SolverModule`` logs ``step`` once per block of ``steps_per_block``
steps); the y axes are logarithmic.  matplotlib is imported on first use, with the headless Agg
backend, so it stays an optional dependency (``pip install torch-gdla[plot]``).
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import ArgumentError

__all__ = ["RunLog", "read_run", "plot_runs", "main"]

# Metrics drawn when present, each in its own panel, with its axis label.
METRICS = {"loss": "loss (mean squared error)", "residual": "relative residual"}


@dataclass
class RunLog:
    """The curves of one run: metric name -> (optimizer steps, values)."""

    name: str
    path: Path
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    skipped: list[Path] = field(default_factory=list)  # newer version_* directories without metrics


def _version_number(path: Path) -> int:
    match = re.fullmatch(r"version_(\d+)", path.name)
    return int(match.group(1)) if match else -1


def _has_logs(path: Path) -> bool:
    metrics = path / "metrics.csv"
    if metrics.is_file():
        with metrics.open() as handle:  # a header and at least one row
            handle.readline()
            return bool(handle.readline().strip())
    return any(path.glob("events.out.tfevents.*"))


def _resolve(path: Path) -> tuple[Path, list[Path]]:
    """The file or directory that holds the logs of the run given by ``path``, and the newer
    ``version_*`` directories passed over because they hold no metrics (a run that logged
    nothing: it failed at the start, or resumed a run that had already finished)."""
    if not path.exists():
        raise FileNotFoundError(f"run {str(path)!r} does not exist (pass a log directory such as runs/inverse_random "
                                f"or runs/inverse_random/version_0, relative to {os.getcwd()!r})")
    if path.is_file() or _has_logs(path):
        return path, []
    versions = sorted((p for p in path.glob("version_*") if p.is_dir()), key=_version_number)
    logged = [v for v in versions if _has_logs(v)]
    if logged:  # the newest run of a logger directory that logged something
        newest = logged[-1]
        return newest, [v for v in versions if _version_number(v) > _version_number(newest)]
    searched = f"{str(path)!r} or its version_* subdirectories" if versions else repr(str(path))
    raise FileNotFoundError(
        f"no metrics.csv with rows (CSVLogger) or events.out.tfevents.* (TensorBoardLogger) found in run directory "
        f"{searched}; was the run logged (trainer.logger not false)?"
    )


def _default_name(path: Path, resolved: Path) -> str:
    directory = resolved.parent if resolved.is_file() else resolved
    if re.fullmatch(r"version_\d+", directory.name):
        return directory.parent.name
    return directory.name or str(path)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _read_csv(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "step" not in rows[0]:
        raise ArgumentError(f"{str(path)!r} is not a CSVLogger metrics file with a 'step' column (it has no rows or no header)")
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for name in rows[0]:
        if name == "step":
            continue
        steps, values = [], []
        for row in rows:
            value, step = _number(row.get(name) or ""), _number(row.get("step") or "")
            if not math.isnan(value) and not math.isnan(step):
                steps.append(step)
                values.append(value)
        if steps:
            curves[name] = (steps, values)
    return curves


def _read_tensorboard(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import (
            EventAccumulator,
        )
    except ImportError:
        raise ImportError(
            f"{str(path)!r} holds TensorBoard logs; reading them needs the tensorboard package: pip install tensorboard "
            "(or log with the default CSVLogger)"
        ) from None
    accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})  # 0 = keep every point
    accumulator.Reload()
    # Lightning uses the module's logged "step" as the event step, i.e. the optimizer step.
    return {tag: ([float(e.step) for e in accumulator.Scalars(tag)], [float(e.value) for e in accumulator.Scalars(tag)])
            for tag in accumulator.Tags().get("scalars", [])}


def read_run(path: str | os.PathLike, name: Optional[str] = None) -> RunLog:
    """Read the logged curves of one run (see the module docstring for what ``path`` may be)."""
    path = Path(path)
    resolved, skipped = _resolve(path)
    if resolved.is_dir() and (resolved / "metrics.csv").is_file():
        curves = _read_csv(resolved / "metrics.csv")
    elif resolved.suffix == ".csv":
        curves = _read_csv(resolved)
    elif resolved.is_dir() or resolved.name.startswith("events.out.tfevents."):
        curves = _read_tensorboard(resolved)
    else:
        raise ArgumentError(f"cannot read {str(resolved)!r}: pass a run directory, a metrics.csv or a TensorBoard event file")
    if "loss" not in curves:
        raise ArgumentError(f"run {str(path)!r} logged no 'loss' values (found: {', '.join(curves) or 'nothing'})")
    return RunLog(name=name or _default_name(path, resolved), path=resolved, curves=curves, skipped=skipped)


def _positive(steps: list[float], values: list[float]) -> tuple[list[float], list[float]]:
    # A log axis cannot show 0 (a loss can reach exactly 0 in floating point): those points are left out.
    kept = [(s, v) for s, v in zip(steps, values) if v > 0 and math.isfinite(v)]
    return [s for s, _ in kept], [v for _, v in kept]


def plot_runs(
    runs: Sequence[str | os.PathLike | RunLog],
    output: str | os.PathLike,
    labels: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
    metrics: Sequence[str] = ("loss", "residual"),
) -> Any:
    """Draw ``metrics`` of ``runs`` on log axes, one panel per metric that any run logged, one
    curve per run, and save the figure to ``output`` (format by extension: .png, .pdf, .svg).

    Returns the matplotlib ``Figure`` (already saved; callers may inspect its axes).
    """
    if not runs:
        raise ArgumentError("plot needs at least one run directory")
    if labels is not None and len(labels) != len(runs):
        raise ArgumentError(f"got {len(labels)} labels for {len(runs)} runs; give one label per run (or none)")
    logs = [run if isinstance(run, RunLog) else read_run(run) for run in runs]
    if labels is not None:
        for log, label in zip(logs, labels):
            log.name = label
    panels = [m for m in metrics if any(m in log.curves for log in logs)]
    if not panels:
        raise ArgumentError(f"none of the runs logged {', '.join(metrics)}")

    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed, and never opens a window
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.8), squeeze=False)
    for axis, metric in zip(axes[0], panels):
        for log in logs:
            if metric in log.curves:
                steps, values = _positive(*log.curves[metric])
                axis.plot(steps, values, label=log.name, linewidth=1.6)
        axis.set_yscale("log")
        axis.set_xlabel("optimizer step")
        axis.set_ylabel(METRICS.get(metric, metric))
        axis.grid(True, which="major", alpha=0.4)
    # One legend below the panels (the runs are the same in each), so it never hides a curve.
    handles, names = [], []
    for axis in axes[0]:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in names:
                handles.append(handle)
                names.append(label)
    columns = 1 if len(panels) == 1 else 2
    figure.legend(handles, names, loc="lower center", ncol=columns, fontsize="medium", frameon=False)
    rows = -(-len(names) // columns)
    if title:
        figure.suptitle(title, fontsize="large")
    figure.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    output = Path(output)
    if output.parent and not output.parent.exists():
        output.parent.mkdir(parents=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return figure


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torch-gdla plot",
        description="Plot the loss (and residual) of one or many runs on log axes, from their Lightning logs.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="log directory of a run (runs/NAME or runs/NAME/version_N), or its metrics.csv")
    parser.add_argument("-o", "--output", default="loss.png", help="figure file to write (default: loss.png)")
    parser.add_argument("--title", default=None, help="figure title (use \\n for a second line)")
    parser.add_argument("--label", action="append", default=None, dest="labels",
                        help="legend entry of each run, in order (repeat once per run; default: the run directory's name)")
    parser.add_argument("--metrics", nargs="+", default=["loss", "residual"],
                        help="logged metrics to draw, one panel each (default: loss residual)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    title = args.title.replace("\\n", "\n") if args.title else None
    try:
        logs = [read_run(run) for run in args.runs]
        plot_runs(logs, args.output, labels=args.labels, title=title, metrics=args.metrics)
    except (FileNotFoundError, ValueError, ImportError) as error:
        parser.error(str(error))  # a one-line message and exit status 2, not a traceback
    for log in logs:
        for version in log.skipped:
            print(f"skipped {version}: it holds no metrics (the run logged nothing); plotted {log.path.name} instead")
    print(f"wrote {args.output}")
