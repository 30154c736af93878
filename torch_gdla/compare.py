"""``torch-gdla compare``: run several configs (or one config with overrides) and plot them together.

    torch-gdla compare --config configs/compare_inverse.yaml
    torch-gdla compare --config configs/compare_inverse.yaml --output_dir docs/figures

A comparison file lists comparisons; each names a base config, overrides common to its runs,
the runs (each a name, a legend label, optionally its own config and overrides) and the figure
to write::

    save_dir: runs/compare                 # logs: SAVE_DIR/COMPARISON/RUN/version_N
    comparisons:
      - name: random_vs_diagonal
        title: "How fast does it converge?"
        output: inverse_random_vs_diagonal.png
        config: inverse_random.yaml        # relative to this file
        set: {trainer.max_steps: 1000, model.steps_per_block: 1}
        runs:
          - {name: random, label: "random 4×4"}
          - {name: diagonal, label: "diag(1, 2, 3, 4)", config: inverse_diagonal.yaml}

Overrides are dotted keys of the ``fit`` command (``model.optimizer``, ``trainer.max_steps``,
``model.problem.init_args.M``); a value may be a mapping (``{class_path: ..., init_args: ...}``)
and ``null`` (e.g. ``model.optimizer: null``: the library default optimizer).  Config paths are
relative to the comparison file; ``save_dir`` to the working directory, like the ``save_dir`` of
the configs' loggers.  The figure goes beside the comparison's logs, to
``SAVE_DIR/COMPARISON/<output's file name>``, so running a comparison never overwrites files
elsewhere (such as committed figures); ``--output_dir DIR`` writes every figure to
``DIR/<output's file name>`` instead, and an absolute ``output`` path is used as given.  Each run
is an ordinary ``torch-gdla fit``, run in-process with a CSVLogger, no checkpoints and no
progress bar.
"""
from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from .errors import ArgumentError

__all__ = ["Run", "Comparison", "load_comparisons", "run_comparison", "main"]

_FILE_KEYS = {"save_dir", "comparisons"}
_COMPARISON_KEYS = {"name", "title", "output", "config", "set", "runs", "metrics"}
_RUN_KEYS = {"name", "label", "config", "set"}
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass
class Run:
    name: str
    label: str
    config: Path
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Comparison:
    name: str
    output: Path
    runs: list[Run]
    title: Optional[str] = None
    metrics: list[str] = field(default_factory=lambda: ["loss", "residual"])


def _check_keys(entry: Any, allowed: set[str], where: str) -> dict:
    if not isinstance(entry, dict):
        raise ArgumentError(f"{where} must be a mapping with keys {', '.join(sorted(allowed))}; got {type(entry).__name__}")
    unknown = set(entry) - allowed
    if unknown:
        raise ArgumentError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
    return entry


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ArgumentError(f"{where}.name must be a directory-safe name (letters, digits, _ . -); got {value!r}")
    return value


def _named_entries(value: Any, where: str, allowed: set[str], empty: str) -> Iterator[tuple[str, dict, str]]:
    """The entries of the list ``value`` (refused with the message ``empty`` unless it is a
    non-empty list), each checked in turn to be a mapping of ``allowed`` keys with a
    directory-safe name: (its location for messages, the entry, its name)."""
    if not isinstance(value, list) or not value:
        raise ArgumentError(empty)
    for index, entry in enumerate(value):
        at = f"{where}[{index}]"
        yield at, _check_keys(entry, allowed, at), _name(entry.get("name"), at)


def _config(value: Any, base: Path, where: str) -> Path:
    if not isinstance(value, str):
        raise ArgumentError(f"{where}.config must be the path of a fit config (relative to the comparison file); got {value!r}")
    path = (base / value) if not Path(value).is_absolute() else Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"{where}.config: {str(path)!r} does not exist (config paths are relative to the comparison file)")
    return path


def _overrides(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ArgumentError(f"{where}.set must map dotted keys (e.g. trainer.max_steps) to values; got {value!r}")
    return dict(value)


def _figure(output: str, name: str, save_dir: Path, output_dir: Optional[str | Path]) -> Path:
    if output_dir is not None:
        return Path(output_dir) / Path(output).name
    if Path(output).is_absolute():
        return Path(output)
    return save_dir / name / Path(output).name  # beside the comparison's logs


def load_comparisons(path: str | Path, output_dir: Optional[str | Path] = None,
                     save_dir: Optional[str | Path] = None) -> tuple[list[Comparison], Path]:
    """Parse a comparison file.  Returns the comparisons and the log directory (``save_dir``
    if given, else the file's, else runs/compare).  Each figure goes to
    ``SAVE_DIR/COMPARISON/<output's file name>``, or to ``output_dir`` (keeping its file name),
    or to ``output`` itself when that is an absolute path."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"comparison file {str(path)!r} does not exist")
    document = _check_keys(yaml.safe_load(path.read_text()), _FILE_KEYS, str(path))
    logs = Path(save_dir) if save_dir is not None else Path(document.get("save_dir", "runs/compare"))
    comparisons = []
    entries = _named_entries(document.get("comparisons"), "comparisons", _COMPARISON_KEYS,
                             f"{str(path)!r} must list at least one entry under 'comparisons'")
    for where, entry, name in entries:
        if not isinstance(entry.get("output"), str):
            raise ArgumentError(f"{where}.output must be the figure file to write (e.g. {name}.png)")
        output = _figure(entry["output"], name, logs, output_dir)
        shared = _overrides(entry.get("set"), where)
        default_config = entry.get("config")
        runs = []
        for run_where, run, run_name in _named_entries(entry.get("runs"), f"{where}.runs", _RUN_KEYS,
                                                       f"{where}.runs must list at least one run"):
            config = run.get("config", default_config)
            if config is None:
                raise ArgumentError(f"{run_where} has no config: give one for the comparison or for the run")
            runs.append(Run(name=run_name, label=str(run.get("label", run_name)), config=_config(config, path.parent, run_where),
                            overrides={**shared, **_overrides(run.get("set"), run_where)}))
        if len({r.name for r in runs}) != len(runs):
            raise ArgumentError(f"{where}: run names must be unique (each gets its own log directory)")
        metrics = entry.get("metrics", ["loss", "residual"])
        comparisons.append(Comparison(name=name, output=output, runs=runs, title=entry.get("title"), metrics=list(metrics)))
    return comparisons, logs


def _argument(key: str, value: Any) -> str:
    # jsonargparse reads JSON on the command line: mappings, lists, null, true/false and numbers.
    text = value if isinstance(value, str) else json.dumps(value)
    return f"--{key}={text}"


def fit_arguments(run: Run, save_dir: Path) -> list[str]:
    """The ``fit`` command line of one run."""
    logger = {"class_path": "pytorch_lightning.loggers.CSVLogger", "init_args": {"save_dir": str(save_dir), "name": run.name}}
    return ["fit", "--config", str(run.config), *(_argument(k, v) for k, v in run.overrides.items()),
            _argument("trainer.logger", logger), "--trainer.enable_checkpointing=false",
            "--trainer.enable_progress_bar=false"]


def run_comparison(comparison: Comparison, save_dir: Path) -> Path:
    """Fit every run of ``comparison`` and plot them; returns the figure's path."""
    from .fit_cli import GdlaCLI
    from .lightning.support import quiet_lightning
    from .plot import plot_runs, read_run

    logs = []
    for run in comparison.runs:
        print(f"== {comparison.name} / {run.name}: {run.label}")
        with quiet_lightning():
            cli = GdlaCLI(args=fit_arguments(run, save_dir / comparison.name))
        logger: Any = cli.trainer.logger  # the CSVLogger fit_arguments configures
        logs.append(read_run(logger.log_dir, name=run.label))
    plot_runs(logs, comparison.output, title=comparison.title, metrics=comparison.metrics)
    print(f"wrote {comparison.output}")
    return comparison.output


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="torch-gdla compare",
                                     description="Run the comparisons of a comparison file and plot each into its figure.")
    parser.add_argument("--config", required=True, help="comparison file, e.g. configs/compare_inverse.yaml")
    parser.add_argument("--save_dir", default=None, help="log directory (default: the file's save_dir, else runs/compare)")
    parser.add_argument("--output_dir", default=None,
                        help="write the figures here (default: beside each comparison's logs, SAVE_DIR/COMPARISON/)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="run only the comparisons with these names")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> list[Path]:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        comparisons, save_dir = load_comparisons(args.config, args.output_dir, args.save_dir)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    if args.only:
        unknown = set(args.only) - {c.name for c in comparisons}
        if unknown:
            parser.error(f"--only: no comparison named {', '.join(sorted(unknown))} in {args.config} "
                         f"(it has {', '.join(c.name for c in comparisons)})")
        comparisons = [c for c in comparisons if c.name in args.only]
    return [run_comparison(comparison, save_dir) for comparison in comparisons]
