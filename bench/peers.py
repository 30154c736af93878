"""The peers table of the time-to-solution issue: torch_gdla against scipy and torch.linalg.

    python bench/peers.py                       # the full table (about 15-20 minutes on 2 loaded CPU cores)
    python bench/peers.py --quick               # a smoke run with small sizes (~1 minute)
    python bench/peers.py --out bench/results   # where peers.md and peers.json go (the default)
    python bench/peers.py --only spd tiny       # some rows only (names: see --help)

Times are CPU time (``time.process_time``) on one thread: ``torch.set_num_threads(1)``, and the
BLAS of numpy/scipy pinned to one thread before numpy is imported.  The compared calls run in
rounds (``--rounds``, at least 3), the order reversed every other round; a fast call repeats
within a round so that a timing lasts about 50 ms.  A row gives the median (and min) over rounds
of the per-call time and of the per-round ratio torch_gdla / peer; a goal is judged on the
median.  Residuals of both sides are recomputed from the data in float64.  Every unmet goal gets
a profile of the torch_gdla call (cProfile, aten op counts, torch.profiler), written under the
table.  A call slower than 30 s is timed once; the slowest rows' calls are stopped after 150 s
of CPU time (the engine returns status "interrupted"), and the row says so.
"""
# ruff: noqa: E402
from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy (and torch) load their BLAS

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]  # run from a clean checkout without installing

import numpy as np
import scipy
import torch
from peer_common import ROWS, Row, add
from peer_rows_dense import rows_batched, rows_float32, rows_inverse, rows_spd, rows_tiny
from peer_rows_lightning import rows_lightning
from peer_rows_sparse import memory_child, rows_inverse_counts, rows_jacobi, rows_lstsq, rows_poisson
from peer_rows_svd_minimize import rows_rosenbrock, rows_svd

import torch_gdla as gdla


# -- output ------------------------------------------------------------------------------------------------
def write(out: Path, args: argparse.Namespace, elapsed: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    environment = {"python": platform.python_version(), "torch": torch.__version__, "scipy": scipy.__version__,
                   "numpy": np.__version__, "torch_gdla": gdla.__version__, "machine": platform.machine(),
                   "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                   "load_average": os.getloadavg(), "rounds": args.rounds, "quick": args.quick,
                   "seconds": round(elapsed, 1)}
    (out / "peers.json").write_text(json.dumps({"environment": environment, "rows": [asdict(r) for r in ROWS]},
                                               indent=1, default=str))
    lines = [f"`python bench/peers.py{' --quick' if args.quick else ''}` on the CPU ({environment['cpu_count']} "
             f"cores), 1 torch thread and single-threaded BLAS; torch {environment['torch']}, scipy "
             f"{environment['scipy']}, numpy {environment['numpy']}; CPU time (process_time), median (min) over "
             f"{args.rounds} interleaved rounds; the table took {elapsed / 60:.1f} min.",
             "", "Ratios are torch_gdla / peer; goals are judged on the median; residuals are recomputed from the "
             "data in float64 for both sides.", "",
             "| # | Problem | Peer: figure | torch_gdla: iterations, applications, time | Ratio | Goal | Met |",
             "|---|---------|--------------|---------------------------------------------|-------|------|-----|"]
    for r in ROWS:
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        cells = [str(c).replace("|", "\\|") for c in (r.number, r.problem, r.peer, r.gdla, r.ratio, r.goal, met)]
        lines.append("| " + " | ".join(cells) + " |")
    profiled = [r for r in ROWS if r.profile]
    if profiled:
        lines += ["", "## Profiles (the torch_gdla call of each unmet goal)", ""]
        for r in profiled:
            lines += [f"### {r.number}. {r.problem}", "", "```", r.profile, "```", ""]
    (out / "peers.md").write_text("\n".join(lines) + "\n")


GROUPS: dict[str, Callable[[argparse.Namespace], None]] = {
    "spd": lambda a: rows_spd(a, "1", 300 if a.quick else 1000, {"spd": 1.2, "default": 2.0}),
    "spd200": lambda a: rows_spd(a, "2", 100 if a.quick else 200, {"spd": 3.0, "default": 3.0}),
    "tiny": rows_tiny, "inverse": rows_inverse, "svd": rows_svd, "rosenbrock": rows_rosenbrock,
    "float32": rows_float32, "batched": rows_batched, "poisson": rows_poisson, "jacobi": rows_jacobi,
    "lstsq": rows_lstsq, "inverse_counts": rows_inverse_counts, "lightning": rows_lightning,
}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and 3 rounds: a smoke run (~1 minute)")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (at least 3; the slow rows take 3)")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="folder for peers.md and peers.json")
    parser.add_argument("--only", nargs="*", choices=list(GROUPS), help="run only these rows")
    parser.add_argument("--memory-child", choices=["scipy", "csr", "operator"], help=argparse.SUPPRESS)
    parser.add_argument("--memory-n", type=int, default=512, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.memory_child:
        memory_child(args.memory_child, args.memory_n)
        return 0
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (rows report the min and median of the rounds)")
    args.rounds = 3 if args.quick else args.rounds
    start = time.perf_counter()
    for name, group in GROUPS.items():
        if args.only and name not in args.only:
            continue
        print(f"[{name}]", flush=True)
        began = time.perf_counter()
        try:
            group(args)
        except Exception as error:  # a call that raises is a row of the table
            add(Row(name, f"the {name} rows", "", f"FAILED: {type(error).__name__}: {str(error)[:300]}", "", "", False))
        print(f"[{name}: {time.perf_counter() - began:.0f} s]", flush=True)
    elapsed = time.perf_counter() - start
    write(args.out, args, elapsed)
    print(f"wrote {args.out / 'peers.md'} and peers.json ({elapsed / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
