"""Peers rows 5 and 6: the SVD and Rosenbrock cases of bench/peers_svd_minimize.py as rows of the peers table.

That module measures (four spectra per size; scipy on the same torch function for Rosenbrock); this one
judges each case against the goal on the median per-round ratio and profiles the unmet ones.
"""
# ruff: noqa: F405
from __future__ import annotations

from typing import Any

import peers_svd_minimize as svdmin
import torch
from peer_common import *  # noqa: F403
from peer_profile import attach_profile

import torch_gdla as gdla
from torch_gdla.engine import Criteria, Iteration


def _ms(values: list[float]) -> list[float]:
    return [v / 1e3 for v in values]


def rows_svd(args: argparse.Namespace) -> None:
    sizes = ((200, 100, 5),) if args.quick else svdmin.SVD_SIZES
    for case in svdmin.bench_svd(min(args.rounds, 3) if not args.quick else 3, sizes):
        ours, theirs = _ms(case["ours_ms"]), _ms(case["scipy_ms"])
        rs = ratios(ours, theirs)
        converged = case["ours_status"].startswith("residual_tol")
        row = add(Row("5", f"SVD top-k {case['case']} (gap σk/σk+1 {case['gap']:.3f}), residual 1e-8: gdla.SVD default",
                      f"svds(tol={case['scipy_tol']:g}): {case['scipy_columns']} products (columns), "
                      f"{fmt_times(theirs)}, residual {case['scipy_residual']:.1e}",
                      f"{case['ours_steps']} it, {case['ours_columns']} products, {fmt_times(ours)}, residual "
                      f"{case['ours_residual']:.1e}, {case['ours_status']}",
                      f"{fmt_ratio(rs)}; products {case['ratio_columns']:.2f}", "<= 5x svds (time and products)",
                      converged and median(rs) <= 5 and case["ratio_columns"] <= 5, {**case, "ratios": rs}))
        size, rank, spectrum = case["case"].split(" ", 2)  # "200x100 k=5 randn"
        (m, n), k = (int(v) for v in size.split("x")), int(rank[2:])
        if row.met is False:
            M = svdmin.svd_matrices(m, n)[spectrum]
            attach_profile(row, lambda M=M, k=k: svdmin.ours_svd(M, k), case["ours_steps"],
                           f"{case['ours_columns'] / max(case['ours_steps'], 1):.0f} product columns per iteration")


def _capped_minimize(d: int, steps: int) -> Any:
    problem = gdla.Minimize(svdmin.rosenbrock, torch.from_numpy(svdmin.start(d)), gradient_scale=1.0)
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(residual_tol=svdmin.TOL), max_steps=steps)
    iteration.run(steps)
    return iteration.finish()


def rows_rosenbrock(args: argparse.Namespace) -> None:
    dimensions = (2, 10) if args.quick else svdmin.DIMENSIONS
    for case in svdmin.bench_minimize(3, dimensions):
        ours, theirs = _ms(case["ours_ms"]), _ms(case["scipy_ms"])
        rs = ratios(ours, theirs)
        converged = case["ours_status"].startswith("residual_tol")
        row = add(Row("6", f"{case['case']} from (−1.2, 1, …) to ‖∇f‖ <= 1e-8: gdla.Minimize default",
                      f"L-BFGS-B on the same torch function: {case['scipy_iterations']} it, {case['scipy_calls']} "
                      f"f-calls, {fmt_times(theirs)}, ‖∇f‖ {case['scipy_gradient']:.1e} (on NumPy's rosen: "
                      f"{fmt_times(_ms(case['scipy_numpy_ms']))})",
                      f"{case['ours_steps']} it, {case['ours_calls']} f-calls, {fmt_times(ours)}, ‖∇f‖ "
                      f"{case['ours_gradient']:.1e}, {case['ours_status']}",
                      f"{fmt_ratio(rs)}; f-calls {case['ratio_calls']:.2f}", "<= 1.2x L-BFGS-B (f-calls and time)",
                      converged and median(rs) <= 1.2 and case["ratio_calls"] <= 1.2, {**case, "ratios": rs}))
        d, steps = int(case["case"].split("=")[1]), min(case["ours_steps"], 300)
        attach_profile(row, lambda d=d, steps=steps: _capped_minimize(d, steps), steps,
                       f"{case['ours_calls'] / max(case['ours_steps'], 1):.2f} f-calls per iteration; the first "
                       f"{steps} iterations profiled")
