"""Recompute the figures README.md quotes, print them, and check that README.md still says so.

    python docs/regenerate.py                     # the cheap figures (about a minute on 2 cores)
    python docs/regenerate.py --all               # and the slow ones (the SVD recipes, the MLP, ...)
    python docs/regenerate.py --only minimisation quick_start
    python docs/regenerate.py --list

Each figure is a function that runs what the README describes, from scratch, and returns the
README text its numbers back, written exactly as the README writes it (a table row, a code
comment, a phrase).  The script prints each piece and whether README.md contains it; the exit
status is 1 when one does not (the README has drifted: paste the printed text in).
``tests/test_readme_figures.py`` runs the cheap figures, so the README cannot drift unnoticed.

The figures are deterministic on one machine (CPU, the pinned torch); the last digits of a
loss at rounding level may differ on another CPU.

Figures made by other scripts, each of which writes or prints them itself:

* the Benchmarks table: ``python bench/run.py`` writes ``bench/results/results.md``, which the
  README copies (checked here: ``bench_table``, which runs nothing);
* the 10-million-row streamed table: ``python bench/streamed.py``;
* the gallery's PNGs: ``torch-gdla compare --config configs/compare_inverse.yaml --output_dir docs/figures``;
* the test-suite time under "Tests": measured by hand with ``/usr/bin/time python -m pytest -q``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
README = ROOT / "README.md"
for path in (str(ROOT), str(DOCS)):
    if path not in sys.path:
        sys.path.insert(0, path)


class Figure(NamedTuple):
    name: str
    run: Callable[[], list[str]]  # -> the README text its fresh numbers give
    cheap: bool                   # run by the test (the slow ones by --all)
    what: str


def sci(value: float, digits: int = 1) -> str:
    """``1.1e-7`` as the README writes it (Python writes ``1.1e-07``)."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def figures() -> list[Figure]:
    import readme_problems
    import readme_solvers

    return readme_solvers.FIGURES + readme_problems.FIGURES


def bench_table() -> list[str]:
    """The README's benchmark table is bench/run.py's output, line for line."""
    lines = (ROOT / "bench" / "results" / "results.md").read_text().splitlines()
    return [lines[0], "\n".join(line for line in lines if line.startswith("|"))]


BENCH = Figure("bench_table", bench_table, True, "Benchmarks: README = bench/results/results.md (bench/run.py)")


def registry() -> dict[str, Figure]:
    return {figure.name: figure for figure in [*figures(), BENCH]}


def missing(texts: list[str], readme: Optional[str] = None) -> list[str]:
    """The pieces of README text that README.md does not contain."""
    readme = README.read_text() if readme is None else readme
    return [text for text in texts if text not in readme]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also the slow figures")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these figures only (see --list)")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    args = parser.parse_args(argv)
    chosen = registry()
    if args.list:
        for figure in chosen.values():
            print(f"{figure.name:<22} {'cheap' if figure.cheap else 'slow '}  {figure.what}")
        return 0
    if args.only:
        unknown = sorted(set(args.only) - set(chosen))
        if unknown:
            parser.error(f"unknown figure {', '.join(unknown)}; --list shows them")
        chosen = {name: chosen[name] for name in args.only}
    elif not args.all:
        chosen = {name: figure for name, figure in chosen.items() if figure.cheap}
    readme, drifted = README.read_text(), 0
    for figure in chosen.values():
        started = time.perf_counter()
        texts = figure.run()
        absent = set(missing(texts, readme))
        print(f"== {figure.name}: {figure.what} ({time.perf_counter() - started:.1f} s)")
        for text in texts:
            lines = text.splitlines()
            shown = text if len(lines) <= 12 or text in absent else f"{lines[0]} (and {len(lines) - 1} more lines)"
            print(f"  {'DRIFTED' if text in absent else 'ok     '} {shown}")
        drifted += len(absent)
    if drifted:
        print(f"{drifted} piece(s) of README text differ from a fresh run (marked DRIFTED): update README.md")
    return 1 if drifted else 0


if __name__ == "__main__":
    raise SystemExit(main())
