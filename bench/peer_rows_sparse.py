"""Peers rows 9 (the operators issue): Poisson 2-D through CSR and a LinearOperator (time, counts, peak memory),
Jacobi preconditioning, sparse least squares against lsqr, and the dense SPD inverse's operator counts."""
# ruff: noqa: F405
from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg as sla
import torch
from peer_common import *  # noqa: F403
from peer_profile import attach_profile
from run import spd_matrix  # bench/run.py

import torch_gdla as gdla
from torch_gdla.operators import matmul, rmatmul

ENTRY = BENCH / "peers.py"  # the memory child runs through the one entry point


# == 9. sparse matrices and operators (the operators issue) ===================================================
def poisson(n: int) -> tuple[torch.Tensor, Any]:
    A = gdla.matrices.Poisson2D(n).tensor()
    As = scipy.sparse.csr_matrix((A.values().numpy().copy(), A.col_indices().numpy().copy(),
                                  A.crow_indices().numpy().copy()), shape=tuple(A.shape))  # nothing shared
    return A, As


def operator_of(A: torch.Tensor) -> gdla.LinearOperator:
    return gdla.LinearOperator(tuple(A.shape), lambda v: A @ v, dtype=F64, symmetric=True, matmat=True)


def memory_child(side: str, n: int) -> None:
    """In a fresh interpreter: the peak RSS growth (VmHWM − VmRSS before) of one Poisson solve."""
    def status(key: str) -> int:  # kiB
        return int(re.search(key + r":\s+(\d+)", Path("/proc/self/status").read_text()).group(1))

    def solve(size: int) -> Any:
        A, As = poisson(size)
        b = torch.ones(A.shape[0], dtype=F64)
        if side == "scipy":
            return lambda: sla.cg(As, b.numpy(), rtol=1e-8, atol=0.0, maxiter=100 * size)
        operand = A if side == "csr" else operator_of(A)
        return lambda: gdla.linalg.solve_ex(operand, b, residual_tol=1e-8, max_steps=100 * size)

    solve(8)()  # warm-up: code paths loaded, not counted
    run = solve(n)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap pages back to the system: RSS = live data
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = status("VmRSS")
    run()
    print(json.dumps({"delta_kib": status("VmHWM") - before}))


# Large blocks (>= 128 KiB) mapped and unmapped one by one: glibc's default raises that threshold
# after a large free, and blocks then come from freed heap that is already resident (no growth).
MALLOC_ENV = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))


def rows_poisson(args: argparse.Namespace) -> None:
    n = 64 if args.quick else 512
    A, As = poisson(n)
    b = torch.ones(A.shape[0], dtype=F64)
    bn, op = b.numpy(), operator_of(A)
    fns = {"scipy": lambda: sla.cg(As, bn, rtol=1e-8, atol=0.0, maxiter=100 * n),
           "csr": lambda: gdla.linalg.solve_ex(A, b, residual_tol=1e-8, max_steps=100 * n),
           "operator": lambda: gdla.linalg.solve_ex(op, b, residual_tol=1e-8, max_steps=100 * n)}
    times = measure(fns, min(args.rounds, 3))
    results = dict(RESULTS)
    x_s, it_s = counted_cg(As, bn, rtol=1e-8, atol=0.0, maxiter=100 * n)
    peer = (f"scipy cg (CSR): {it_s} it = {it_s} A·v, {fmt_times(times['scipy'])}, residual "
            f"{relative_residual(As, x_s, bn):.2g}")
    floor = timed(lambda: [A @ b for _ in range(50)], CPU) / 50
    for side, label in (("csr", "torch CSR"), ("operator", "gdla.LinearOperator(symmetric=True)")):
        x, result = results[side]
        counts = result.stats.get("matvecs", 0) / max(it_s, 1)
        met = result.converged and abs(counts - 1) <= 0.05 and abs(result.steps / it_s - 1) <= 0.05
        add(Row("9", f"Poisson 2-D {n}x{n} grid ({n * n} unknowns, CSR), b = ones, residual 1e-8, {label}: "
                "iterations and applications", peer, figure(result, times[side], relative_residual(As, x, bn)),
                f"{counts:.3f} (applications)", "within 5 % of scipy cg", met,
                {"steps": result.steps, "stats": result.stats, "cg": it_s}))
        rs = ratios(times[side], times["scipy"])
        row = add(Row("9", f"Poisson {n}x{n}, {label}: time", peer, figure(result, times[side]), fmt_ratio(rs),
                      "<= 1.3x scipy cg", result.converged and median(rs) <= 1.3, {"times": times, "ratios": rs}))
        attach_profile(row, fns[side], result.steps, "1 A·p per iteration (stats)", floor)
    memory: dict[str, list[int]] = {side: [] for side in ("scipy", "csr", "operator")}
    sides = list(memory)
    for round_ in range(1 if args.quick else 3):
        for side in (sides if round_ % 2 == 0 else sides[::-1]):
            out = subprocess.run([sys.executable, str(ENTRY), "--memory-child", side, "--memory-n", str(n)],
                                 capture_output=True, text=True, check=True, env=MALLOC_ENV)
            memory[side].append(json.loads(out.stdout.strip().splitlines()[-1])["delta_kib"])
    for side, label in (("csr", "torch CSR"), ("operator", "gdla.LinearOperator")):
        rs = ratios([float(v) for v in memory[side]], [max(float(v), 1.0) for v in memory["scipy"]])
        add(Row("9", f"Poisson {n}x{n}, {label}: peak memory of the solve (VmHWM − RSS before; a fresh process each)",
                f"scipy cg: {median(memory['scipy']) / 1024:.1f} MiB",
                f"{median(memory[side]) / 1024:.1f} MiB (min {min(memory[side]) / 1024:.1f})",
                fmt_ratio(rs), "<= 1.5x scipy's", median(rs) <= 1.5, {"kib": memory}))


def rows_jacobi(args: argparse.Namespace) -> None:
    n = 300 if args.quick else 2000
    R = torch.randn(n, n, generator=torch.Generator().manual_seed(5), dtype=F64)
    scale = torch.logspace(0, 2, n, dtype=F64)  # the matrix's entries span 1e4
    A = scale[:, None] * (R @ R.mT / n + torch.eye(n, dtype=F64)) * scale[None, :]
    b = torch.ones(n, dtype=F64)
    An, bn = A.numpy(), b.numpy()
    Mi = scipy.sparse.diags(1 / np.diag(An))
    fns = {"scipy": lambda: sla.cg(An, bn, M=Mi, rtol=1e-8, atol=0.0, maxiter=100 * n),
           "jacobi": lambda: gdla.linalg.solve_ex(A, b, assume="spd", preconditioner="jacobi", residual_tol=1e-8)}
    times = measure(fns, args.rounds)
    x, jacobi = RESULTS["jacobi"]
    x_s, it_s = counted_cg(An, bn, M=Mi, rtol=1e-8, atol=0.0, maxiter=100 * n)
    _, plain = gdla.linalg.solve_ex(A, b, assume="spd", residual_tol=1e-8, max_steps=100 * n)
    cut, rs = plain.steps / max(jacobi.steps, 1), ratios(times["jacobi"], times["scipy"])
    add(Row("9", f"badly scaled SPD n={n} (diagonal scaling spanning 1e4), residual 1e-8: preconditioner=\"jacobi\"",
            f"scipy cg, M = the same diagonal: {it_s} it, {fmt_times(times['scipy'])}, residual "
            f"{relative_residual(An, x_s, bn):.2g}",
            f"{jacobi.steps} it with Jacobi vs {plain.steps} without ({cut:.1f}x fewer), {fmt_times(times['jacobi'])}, "
            f"residual {relative_residual(An, x, bn):.2g}", f"{fmt_ratio(rs)} (time, context)",
            "cuts iterations >= 5x; within 5 % of scipy's", jacobi.converged and cut >= 5 and
            abs(jacobi.steps / it_s - 1) <= 0.05,
            {"jacobi": jacobi.steps, "plain": plain.steps, "scipy": it_s, "times": times, "ratios": rs}))


def rows_lstsq(args: argparse.Namespace) -> None:
    m, n = (1000, 100) if args.quick else (20_000, 2000)
    g = np.random.default_rng(14)
    rows, cols = np.repeat(np.arange(m), 10), g.integers(0, n, size=10 * m)
    As = scipy.sparse.csr_matrix((g.standard_normal(10 * m), (rows, cols)), shape=(m, n))
    As = (As @ scipy.sparse.diags(np.logspace(0, -3, n))).tocsr()  # column scales spanning 1e3
    As.sum_duplicates()  # canonical (sorted) now: scipy sorts a matrix's arrays in place when it likes
    singular = np.sqrt(np.linalg.eigvalsh((As.T @ As).toarray()))
    cond, bn = singular[-1] / singular[0], g.standard_normal(m)
    A = torch.sparse_csr_tensor(torch.tensor(As.indptr, dtype=torch.long), torch.tensor(As.indices, dtype=torch.long),
                                torch.tensor(As.data), size=(m, n))  # copies: nothing shared with scipy's arrays
    b = torch.tensor(bn)
    # lsqr stops at ‖Aᵀr‖/(‖A‖‖r‖) <= atol (‖A‖ its estimate); we stop at ‖Aᵀr‖/‖Aᵀb‖ <= 1e-8:
    # start from the bound ‖r‖ <= ‖b‖ and adjust atol until lsqr's answer meets ours, not far below
    atol = 1e-8 * np.linalg.norm(As.T @ bn) / (scipy.sparse.linalg.norm(As) * np.linalg.norm(bn))
    for _ in range(6):
        residual = normal_residual(As, sla.lsqr(As, bn, atol=atol, btol=0.0, conlim=0.0, iter_lim=100 * n)[0], bn)
        if 0.5e-8 <= residual <= 1e-8:
            break
        atol *= 1e-8 / residual * (0.95 if residual > 1e-8 else 0.9)
    applied: Counter[str] = Counter()  # lsqr's A and Aᵀ applications, counted
    counting = sla.LinearOperator(As.shape, dtype=As.dtype, matvec=lambda v: applied.update("A") or As @ v,
                                  rmatvec=lambda u: applied.update("T") or As.T @ u)
    x_l, _, itn = sla.lsqr(counting, bn, atol=atol, btol=0.0, conlim=0.0, iter_lim=100 * n)[:3]
    fns = {"lsqr": lambda: sla.lsqr(As, bn, atol=atol, btol=0.0, conlim=0.0, iter_lim=100 * n),
           "gdla": lambda: gdla.linalg.lstsq_ex(A, b, residual_tol=1e-8, max_steps=100 * n)}
    times = measure(fns, min(args.rounds, 3))
    x, result = RESULTS["gdla"]
    ours = result.stats.get("matvecs", 0) + result.stats.get("rmatvecs", 0)
    theirs = applied["A"] + applied["T"]
    rs = ratios(times["gdla"], times["lsqr"])
    row = add(Row("9", f"sparse least squares {m}x{n}, 10 nonzeros/row, κ={cond:.1e}, normal-equation residual 1e-8: "
                  "gdla.linalg.lstsq, A + Aᵀ applications",
                  f"lsqr(atol={atol:.2g}, btol=0): {itn} it, {applied['A']} A + {applied['T']} Aᵀ, "
                  f"{fmt_times(times['lsqr'])}, residual {normal_residual(As, x_l, bn):.2g}",
                  figure(result, times["gdla"], normal_residual(As, x, bn)),
                  f"{ours / theirs:.2f} (applications); time {fmt_ratio(rs)}", "<= 1.2x lsqr's applications",
                  result.converged and ours <= 1.2 * theirs,
                  {"ours": ours, "lsqr": theirs, "times": times, "ratios": rs, "cond": cond, "atol": atol}))
    X, S = x.unsqueeze(-1), b.unsqueeze(-1)  # the applications as the method makes them (one column)
    floor = timed(lambda: [(matmul(A, X), rmatmul(A, S)) for _ in range(20)], CPU) / 20
    scipy_floor = timed(lambda: [(As @ bn[:n], As.T @ bn) for _ in range(20)], CPU) / 20
    steps = min(result.steps, 300)
    attach_profile(row, lambda: gdla.linalg.lstsq_ex(A, b, residual_tol=1e-8, max_steps=steps), steps,
                   f"A and Aᵀ once per iteration; scipy's A and Aᵀ take {fmt_time(scipy_floor)} together; the first "
                   f"{steps} iterations profiled (time is context here, not a goal)", floor, force=True)


def rows_inverse_counts(args: argparse.Namespace) -> None:
    n = 200
    for cond in (1e1, 1e2) if args.quick else (1e1, 1e2, 1e3, 1e4):
        M = spd_matrix(n, cond)
        Mn = M.numpy()
        columns = [counted_cg(Mn, e, rtol=1e-8, atol=0.0, maxiter=100 * n)[1] for e in np.eye(n)]
        start = time.process_time()
        X, result = gdla.linalg.inv_ex(M, residual_tol=1e-8)
        elapsed = time.process_time() - start
        applied = result.stats.get("matvecs", 0) + result.stats.get("rmatvecs", 0)
        residual = np.linalg.norm(f64(X) @ Mn - np.eye(n)) / math.sqrt(n)
        add(Row("9", f"dense SPD inverse n={n}, κ={cond:.0e}, residual 1e-8: gdla.linalg.inv, operator counts",
                f"scipy cg on each column e_i (rtol 1e-8): max {max(columns)} it, sum {sum(columns)} A·v",
                f"{result.steps} it, {applied} A·v (stats), {fmt_time(elapsed)}, residual {residual:.2g}"
                + ended(result),
                f"{applied / (max(columns) * n):.2f} of max × n; {applied / sum(columns):.2f} of the sum",
                "<= scipy cg's iterations (max over columns) × n", result.converged and applied <= max(columns) * n,
                {"applied": applied, "columns": columns, "steps": result.steps}))


