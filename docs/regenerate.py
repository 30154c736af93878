"""Recompute the figures README.md and the docs pages quote, print them, and check that the pages still say so.

    python docs/regenerate.py                     # the cheap figures (about a minute on 2 cores)
    python docs/regenerate.py --all               # and the slow ones (the SVD recipes, the MLP, ...)
    python docs/regenerate.py --only minimisation quick_start
    python docs/regenerate.py --list

Each figure is a function that runs what a page describes, from scratch, and returns the text
its numbers back, written exactly as the page writes it (a table row, a code comment, a
phrase).  Each figure names the pages that quote it (README.md, or a page under docs/); every
piece of text must appear in every one of them.  The script prints each piece and whether the
pages contain it; the exit status is 1 when one does not (a page has drifted: paste the printed
text in).  ``tests/test_readme_figures.py`` runs the cheap figures, so no page can drift
unnoticed.

The figures are deterministic on one machine (CPU, the pinned torch); the last digits of a
loss at rounding level may differ on another CPU.

Figures made by other scripts, each of which writes or prints them itself:

* the peers table: ``python bench/peers.py`` writes ``bench/results/peers.md``, which
  docs/performance.md copies and README.md quotes rows of (checked here: ``bench_table`` and
  ``bench_headline``, which run nothing);
* the 10-million-row streamed table: ``python bench/streamed.py``;
* the gallery's PNGs: ``torch-gdla compare --config configs/compare_inverse.yaml --output_dir docs/figures``;
* the test-suite times on docs/development.md: measured by hand with ``/usr/bin/time``.
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
    run: Callable[[], list[str]]  # -> the text its fresh numbers give
    cheap: bool                   # run by the test (the slow ones by --all)
    what: str
    pages: tuple[str, ...] = ("README.md",)  # the pages (relative to the repository) that quote it


def sci(value: float, digits: int = 1) -> str:
    """``1.1e-7`` as the README writes it (Python writes ``1.1e-07``)."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def figures() -> list[Figure]:
    import readme_problems
    import readme_solvers

    return readme_solvers.FIGURES + readme_problems.FIGURES


def bench_lines() -> list[str]:
    """The peers table of bench/results/peers.md (written by ``python bench/peers.py``), without
    the profiles under it."""
    lines = (ROOT / "bench" / "results" / "peers.md").read_text().splitlines()
    return lines[:next((i for i, line in enumerate(lines) if line.startswith("## Profiles")), len(lines))]


def bench_table() -> list[str]:
    """The performance page's peers table is bench/peers.py's output, line for line."""
    return ["\n".join(line for line in bench_lines() if line.startswith("|"))]


# The rows README.md quotes from that table, by the start of their "Problem" column.
HEADLINE = ("| 1 | SPD dense n=1000, κ=1e2, residual 1e-6: gdla.linalg.solve, assume",
            "| 5 | SVD top-k 2000x1000 k=10 randn", "| 6 | Rosenbrock d=1000",
            "| 7 | dense float32 n=2000", "| 9 | Poisson 512x512, torch CSR: time",
            "| 9 | sparse least squares 20000x2000")


def bench_headline() -> list[str]:
    """README's headline rows, each a line of bench/peers.py's table, under its header."""
    lines = bench_lines()
    rows = [line for line in lines if line.startswith(HEADLINE)]
    assert len(rows) == len(HEADLINE), f"bench/results/peers.md lacks a headline row: {HEADLINE}"
    header = [line for line in lines if line.startswith("|")][:2]
    return ["\n".join(header), *rows]


BENCH = [Figure("bench_table", bench_table, True, "Performance: the peers table = bench/results/peers.md (bench/peers.py)",
                ("docs/performance.md",)),
         Figure("bench_headline", bench_headline, True, "README's headline rows of bench/results/peers.md")]


def registry() -> dict[str, Figure]:
    return {figure.name: figure for figure in [*figures(), *BENCH]}


def read_pages(pages: tuple[str, ...] = ("README.md",)) -> dict[str, str]:
    return {page: (ROOT / page).read_text() for page in pages}


def missing(texts: list[str], pages: Optional[dict[str, str]] = None) -> list[str]:
    """The pieces of text that one of ``pages`` (name -> text; default README.md) does not contain."""
    pages = read_pages() if pages is None else pages
    return [text for text in texts if any(text not in page for page in pages.values())]


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
    drifted = 0
    for figure in chosen.values():
        started = time.perf_counter()
        texts = figure.run()
        absent = set(missing(texts, read_pages(figure.pages)))
        print(f"== {figure.name}: {figure.what}; in {', '.join(figure.pages)} ({time.perf_counter() - started:.1f} s)")
        for text in texts:
            lines = text.splitlines()
            shown = text if len(lines) <= 12 or text in absent else f"{lines[0]} (and {len(lines) - 1} more lines)"
            print(f"  {'DRIFTED' if text in absent else 'ok     '} {shown}")
        drifted += len(absent)
    if drifted:
        print(f"{drifted} piece(s) of text differ from a fresh run (marked DRIFTED): update the pages named")
    return 1 if drifted else 0


if __name__ == "__main__":
    raise SystemExit(main())
