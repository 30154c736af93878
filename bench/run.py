"""torch_gdla benchmark suite: every performance figure of issue 5, side by side.

    python bench/run.py                 # the full suite (about 10 minutes on 2 CPU cores)
    python bench/run.py --quick         # a smoke run with small sizes and one repeat (~1 minute)
    python bench/run.py --repeats 5 --out bench/results --device cuda

Writes ``results.md`` (a markdown table: figure, target, measured, compared with, met) and
``results.json`` (the same rows plus every raw timing) to ``--out``.  Timings are medians over
``--repeats`` runs; every ratio is taken between runs interleaved in this one process, so
machine load affects both sides alike.  Counts (iterations, loss evaluations) are
deterministic and measured once.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a clean checkout without installing
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import torch_gdla as gdla  # noqa: E402
from torch_gdla.engine import Criteria, Iteration, build_optimizer  # noqa: E402

try:
    import scipy
    from scipy.sparse.linalg import cg as scipy_cg, lsqr as scipy_lsqr
except ImportError:  # pragma: no cover - scipy is the bench extra
    scipy = None


# -- rows --------------------------------------------------------------------------------------
@dataclass
class Row:
    section: str
    figure: str
    target: str
    measured: str
    compared: str = ""
    met: Optional[bool] = None  # None: context only, no target
    value: Optional[float] = None
    raw: dict[str, Any] = field(default_factory=dict)


ROWS: list[Row] = []


def add(row: Row) -> Row:
    ROWS.append(row)
    mark = {True: "met", False: "NOT MET", None: ""}[row.met]
    print(f"  {row.figure}: {row.measured}  [{row.compared}]  {row.target} {mark}", flush=True)
    return row


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    # On the CPU (one torch thread) the process's CPU time is the cost, and other jobs on a
    # shared machine do not inflate it as they do wall-clock time; a GPU needs the wall clock.
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    sync(device)
    start = clock()
    fn()
    sync(device)
    return clock() - start


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Run each fn once per round, rounds repeated, the order reversed every other round (so
    neither side always runs first); returns every time per name."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    items = list(fns.items())
    for round_ in range(repeats):
        for name, fn in (items if round_ % 2 == 0 else items[::-1]):
            times[name].append(timed(fn, device))
    return times


def seed_matrix(dtype=torch.float32) -> torch.Tensor:
    """The matrix-operations tutorial's matrix: torch.manual_seed(314); torch.rand(4, 4)."""
    return torch.rand(4, 4, generator=torch.Generator().manual_seed(314)).to(dtype)


def spd_matrix(n: int, cond: float, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Q diag(λ) Qᵀ with n log-spaced eigenvalues in [1, cond]."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eigenvalues = torch.logspace(0, math.log10(cond), n, dtype=torch.float64)
    M = (Q * eigenvalues) @ Q.mT
    return ((M + M.mT) / 2).to(dtype)


def well_conditioned(n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """I + 0.5·G/√n: singular values in about [0.5, 1.5]."""
    g = torch.Generator().manual_seed(seed)
    return (torch.eye(n, dtype=torch.float64) + 0.5 * torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n)).to(dtype)


def sgd(lr: float, momentum: float = 0.9) -> Callable:
    return functools.partial(torch.optim.SGD, lr=lr, momentum=momentum)


def quiet(fn: Callable[[], Any]) -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


# -- 1. Lightning loop vs bare loop ---------------------------------------------------------------
def bare_loop(problem: gdla.Problem, optimizer: Callable, steps: int) -> list[float]:
    opt = optimizer(problem.parameters())
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = problem()
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return losses


def section_lightning(args: argparse.Namespace, device: torch.device) -> None:
    from pytorch_lightning.loggers import CSVLogger

    print("1. Lightning loop vs bare torch loop (SGD, momentum 0.9, logging on)", flush=True)
    cases = [("seed 4x4 inverse", seed_matrix(torch.float32), 0.9, 2000 if args.quick else 10_000)]
    n = 128 if args.quick else 512
    big = well_conditioned(n, dtype=torch.float32)
    # mse over n² entries: Hessian 2MᵀM/n²; lr = n²/4 keeps heavy-ball stable (lr·L ≈ σmax²/2 < 3.8)
    cases.append((f"{n}x{n} inverse", big, n * n / 4, 50 if args.quick else 300))
    for name, M, lr, steps in cases:
        M = M.to(device)
        optimizer = sgd(lr)
        tmp = tempfile.mkdtemp(prefix="gdla-bench-")

        def lightning_run() -> None:
            problem = gdla.MatrixInverse(M)
            quiet(lambda: gdla.solve(problem, optimizer=optimizer, tol=0, max_steps=steps,
                                     logger=CSVLogger(tmp, name="bench")))

        def bare_run() -> None:
            bare_loop(gdla.MatrixInverse(M), optimizer, steps)

        lightning_run()  # warm-up: imports, Lightning's first Trainer
        bare_run()
        times = interleaved({"solve": lightning_run, "bare": bare_run}, args.repeats, device)
        ratios = [s / b for s, b in zip(times["solve"], times["bare"])]
        ratio = median(ratios)
        met = ratio <= 1.10
        row = add(Row("1", f"solve() vs bare loop, {name}, {steps} steps", "<= 1.10x",
                      f"{ratio:.3f}x ({median(times['solve']):.3f} s vs {median(times['bare']):.3f} s)",
                      "bare torch loop, same optimizer", met, ratio,
                      {"times": times, "ratios": ratios, "steps": steps, "lr": lr}))
        if not met:
            row.raw["profile"] = profile(lightning_run)
            print(row.raw["profile"], flush=True)


def profile(fn: Callable[[], Any], top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- 2. evaluations to converge ---------------------------------------------------------------------
def power_iteration_gd(problem: gdla.Problem, tol: float, power_steps: int = 10, max_evaluations: int = 100_000) -> int:
    """Candidate default: gradient descent with step 1/L, L from a power iteration on Hessian-vector
    products (gradient differences: exact for a quadratic loss).  Returns loss evaluations."""
    (x,) = [p for p in problem.parameters()]

    def at(point: torch.Tensor) -> tuple[float, torch.Tensor]:
        with torch.no_grad():
            x.copy_(point)
        x.grad = None
        loss = problem()
        loss.backward()
        return loss.item(), x.grad.detach().clone()

    start = x.detach().clone()
    value, grad = at(start)
    evaluations = 1
    v = torch.randn(start.shape, generator=torch.Generator().manual_seed(0), dtype=start.dtype)
    v /= v.norm()
    L = 1.0
    for _ in range(power_steps):
        _, probe = at(start + v)
        evaluations += 1
        hv = probe - grad
        L = float(hv.norm())
        v = hv / L
    current = start
    while value > tol and evaluations < max_evaluations:
        current = current - grad / L
        value, grad = at(current)
        evaluations += 1
    return evaluations


def section_evaluations(args: argparse.Namespace) -> None:
    print("2. Loss evaluations to converge (float64)", flush=True)
    # 2a. seed 4x4 inverse to loss <= 1e-12: the candidates for the default optimizer
    M = seed_matrix(torch.float64)
    lbfgs = functools.partial(torch.optim.LBFGS, line_search_fn="strong_wolfe", tolerance_grad=0.0,
                              tolerance_change=0.0, history_size=100)
    candidates = {
        "default (ConjugateGradient, exact step)": None,
        "torch LBFGS strong-Wolfe, max_iter=1": functools.partial(lbfgs, max_iter=1),
        "torch LBFGS strong-Wolfe, max_iter=20": functools.partial(lbfgs, max_iter=20),
        "ConjugateGradient, strong-Wolfe (quadratic=False)": functools.partial(gdla.optim.ConjugateGradient, quadratic=False),
        "Adam lr=0.01": functools.partial(torch.optim.Adam, lr=0.01),
        "seed recipe SGD(0.9, 0.9)": sgd(0.9, 0.9),
    }
    for name, optimizer in candidates.items():
        problem = gdla.MatrixInverse(M)
        start = time.perf_counter()
        result = quiet(lambda: gdla.solve(problem, optimizer=optimizer, tol=1e-12, max_steps=20_000))
        elapsed = time.perf_counter() - start
        default = optimizer is None
        add(Row("2", f"seed 4x4 inverse to loss <= 1e-12: {name}", "<= 25 evaluations" if default else "candidate",
                f"{result.evaluations} evaluations, {result.steps} steps" + ("" if result.converged else f" ({result.status.value})"),
                f"{elapsed:.2f} s", (result.evaluations <= 25 and result.converged) if default else None,
                result.evaluations, {"steps": result.steps, "converged": result.converged, "loss": result.loss}))
    evaluations = power_iteration_gd(gdla.MatrixInverse(M), 1e-12)
    add(Row("2", "seed 4x4 inverse to loss <= 1e-12: GD, step 1/L from 10 power iterations", "candidate",
            f"{evaluations} evaluations", "", None, evaluations))

    # 2b. SPD n = 200, log-spaced eigenvalues, relative residual 1e-6, vs scipy CG on M x = b
    n = 50 if args.quick else 200
    conds = [1e1, 1e2] if args.quick else [1e1, 1e2, 1e3, 1e4]
    for cond in conds:
        A = spd_matrix(n, cond)
        b = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        count = [0]

        def callback(_: Any) -> None:
            count[0] += 1

        x, info = scipy_cg(A.numpy(), b.numpy(), rtol=1e-6, maxiter=100 * n, callback=callback)
        cg_residual = float(np.linalg.norm(A.numpy() @ x - b.numpy()) / np.linalg.norm(b.numpy()))
        cg_iterations = count[0]
        for assume in (None, "spd"):
            problem = gdla.LinearSystem(A, b, assume=assume)
            result = quiet(lambda: gdla.solve(problem, residual_tol=1e-6, max_steps=50 * n))
            label = "default loss (mse, κ²)" if assume is None else 'assume="spd" (energy, κ)'
            met = result.converged and result.steps <= 2 * cg_iterations
            add(Row("2", f"SPD n={n} κ={cond:.0e} to residual 1e-6: LinearSystem, {label}",
                    "<= 2x CG iterations" if assume == "spd" else "(context: the default loss)",
                    f"{result.steps} iterations ({result.evaluations} evaluations), residual {result.residual:.2g}"
                    + ("" if result.converged else f" ({result.status.value})"),
                    f"scipy cg {cg_iterations} iterations (residual {cg_residual:.2g}); ratio {result.steps / cg_iterations:.2f}",
                    met if assume == "spd" else None, result.steps / cg_iterations,
                    {"steps": result.steps, "evaluations": result.evaluations, "cg_iterations": cg_iterations,
                     "converged": result.converged, "status": result.status.value}))
            if assume == "spd" and not result.converged:  # the best figure: without the loss-based stall rule
                result = quiet(lambda: gdla.solve(gdla.LinearSystem(A, b, assume=assume), residual_tol=1e-6,
                                                  max_steps=50 * n, stall_steps=0))
                add(Row("2", f"SPD n={n} κ={cond:.0e}: same, stall_steps=0 (best figure; see note)", "(best figure)",
                        f"{result.steps} iterations ({result.evaluations} evaluations), residual {result.residual:.2g}",
                        f"scipy cg {cg_iterations} iterations; ratio {result.steps / cg_iterations:.2f}", None,
                        result.steps / cg_iterations, {"steps": result.steps, "converged": result.converged}))
        problem = gdla.MatrixInverse(A, assume="spd")
        result = quiet(lambda: gdla.solve(problem, residual_tol=1e-6, max_steps=50 * n))
        add(Row("2", f"SPD n={n} κ={cond:.0e} to residual 1e-6: MatrixInverse, assume=\"spd\"", "(context)",
                f"{result.steps} iterations ({result.evaluations} evaluations), residual {result.residual:.2g}",
                f"scipy cg {cg_iterations} iterations (one right-hand side)", None, result.steps / cg_iterations,
                {"steps": result.steps, "evaluations": result.evaluations}))

    # 2c. SVD of the matrix-operations tutorial's five matrices, singular values within 1e-8
    matrices = {
        "M1 rand(5,4) seed 314": torch.rand(5, 4, generator=torch.Generator().manual_seed(314)),
        "M2 rand(4,4) seed 315": torch.rand(4, 4, generator=torch.Generator().manual_seed(315)),
        "M3 rand(7,4) seed 316": torch.rand(7, 4, generator=torch.Generator().manual_seed(316)),
        "M4 rand(3,4).T seed 317": torch.rand(3, 4, generator=torch.Generator().manual_seed(317)).T,
        "M5 rand(4,3) seed 317": torch.rand(4, 3, generator=torch.Generator().manual_seed(317)),
    }
    for name, M in matrices.items():
        M = M.to(torch.float64).contiguous()
        sigma = torch.linalg.svdvals(M)
        if not hasattr(gdla, "SVD"):
            add(Row("2", f"SVD {name}", "<= 300 evaluations", "not available yet", "", False))
            continue
        q = min(M.shape)
        U, S, V = torch.svd_lowrank(M, q=q, niter=2)
        lowrank_error = float((S - sigma).abs().max() / sigma.max())
        # solve()'s default, and the problem's own default_optimizer() passed explicitly (whether or
        # not solve() picks it up yet)
        variants = {"solve() default": False}
        if hasattr(gdla.SVD, "default_optimizer"):
            variants["SVD.default_optimizer()"] = True
        if args.quick and name[:2] not in ("M2", "M4") and len(variants) > 1:
            variants.pop("solve() default")  # CG with a line search: thousands of evaluations on M1, M3
        for label, own in variants.items():
            problem = gdla.SVD(M)
            optimizer = functools.partial(lambda params, p: p.default_optimizer(), p=problem) if own else None
            start = time.perf_counter()
            result = quiet(lambda: gdla.solve(problem, optimizer=optimizer, residual_tol=1e-8, max_steps=5000))
            elapsed = time.perf_counter() - start
            error = float((result.solution.S - sigma).abs().max() / sigma.max())
            met = result.converged and result.evaluations <= 300 and error <= 1e-8
            add(Row("2", f"SVD {name} to singular values within 1e-8, {label}",
                    "<= 300 evaluations" if label.startswith("solve") else "(the problem's own optimizer)",
                    f"{result.evaluations} evaluations ({result.steps} steps), max |s - σ|/σ₁ = {error:.1e}, {elapsed:.2f} s",
                    f"torch.svd_lowrank(q={q}, niter=2): error {lowrank_error:.1e}",
                    met if label.startswith("solve") else None, result.evaluations,
                    {"error": error, "lowrank_error": lowrank_error, "converged": result.converged,
                     "steps": result.steps}))

    # 2d. least squares 2000x200, κ = 1e3, normal-equation residual 1e-8, vs LSQR
    m, n = (400, 40) if args.quick else (2000, 200)
    g = torch.Generator().manual_seed(2)
    U, _ = torch.linalg.qr(torch.randn(m, n, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    A = (U * torch.logspace(0, 3, n, dtype=torch.float64)) @ V.mT
    b = torch.randn(m, generator=g, dtype=torch.float64)
    An, bn = A.numpy(), b.numpy()
    Atb = float(np.linalg.norm(An.T @ bn))

    def normal_residual(x: np.ndarray) -> float:
        return float(np.linalg.norm(An.T @ (An @ x - bn)) / Atb)

    def lsqr_at(k: int) -> float:
        return normal_residual(scipy_lsqr(An, bn, atol=0.0, btol=0.0, conlim=0.0, iter_lim=k)[0])

    # LSQR's own test is ‖Aᵀr‖/(‖A‖‖r‖) <= atol: find the fewest iterations whose iterate meets ours.
    low, high = 1, 8
    while lsqr_at(high) > 1e-8 and high < 100 * n:
        low, high = high, 2 * high
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if lsqr_at(mid) <= 1e-8 else (mid + 1, high)
    lsqr_iterations = low
    problem = gdla.LinearSystem(A, b)
    result = quiet(lambda: gdla.solve(problem, residual_tol=1e-8, max_steps=50 * n))
    ratio = result.steps / lsqr_iterations
    add(Row("2", f"least squares {m}x{n} κ=1e3 to normal-equation residual 1e-8", "<= 2x LSQR iterations",
            f"{result.steps} iterations ({result.evaluations} evaluations), residual {result.residual:.2g}"
            + ("" if result.converged else f" ({result.status.value})"),
            f"scipy lsqr {lsqr_iterations} iterations (residual {lsqr_at(lsqr_iterations):.2g}); ratio {ratio:.2f}",
            result.converged and ratio <= 2, ratio,
            {"steps": result.steps, "evaluations": result.evaluations, "lsqr_iterations": lsqr_iterations,
             "status": result.status.value}))
    if not result.converged:  # the best figure: without the loss-based stall rule
        result = quiet(lambda: gdla.solve(gdla.LinearSystem(A, b), residual_tol=1e-8, max_steps=50 * n, stall_steps=0))
        add(Row("2", f"least squares {m}x{n}: same, stall_steps=0 (best figure; see note)", "(best figure)",
                f"{result.steps} iterations ({result.evaluations} evaluations), residual {result.residual:.2g}",
                f"scipy lsqr {lsqr_iterations} iterations; ratio {result.steps / lsqr_iterations:.2f}", None,
                result.steps / lsqr_iterations, {"steps": result.steps, "converged": result.converged}))


# -- 3. batched problems ------------------------------------------------------------------------------
def per_step(problem: gdla.Problem, optimizer: Optional[Callable], steps: int) -> Callable[[], None]:
    def run() -> None:
        p = problem
        opt = build_optimizer(optimizer, p)
        Iteration(p, opt, Criteria(tol=0, stall_steps=0)).run(steps)
    return run


def section_batched(args: argparse.Namespace, device: torch.device) -> None:
    print("3. Batched: 4096 4x4 inverses vs one 4x4 inverse, time per optimizer step", flush=True)
    batch = 512 if args.quick else 4096
    g = torch.Generator().manual_seed(3)
    Ms = (torch.eye(4, dtype=torch.float64) + 0.2 * torch.randn(batch, 4, 4, generator=g, dtype=torch.float64)).to(device)
    steps = 50 if args.quick else 200
    for name, optimizer in (("SGD(0.5, 0.9)", sgd(0.5)), ("default ConjugateGradient", None)):
        many = gdla.MatrixInverse(Ms)
        one = gdla.MatrixInverse(Ms[0])
        fns = {"batched": per_step(many, optimizer, steps), "single": per_step(one, optimizer, steps)}
        for fn in fns.values():
            fn()
        times = interleaved(fns, args.repeats, device)
        ratio = median([a / b for a, b in zip(times["batched"], times["single"])])
        add(Row("3", f"{batch} batched 4x4 inverses, {name}, per optimizer step", "<= 3x one 4x4",
                f"{ratio:.2f}x ({median(times['batched']) / steps * 1e6:.0f} µs vs {median(times['single']) / steps * 1e6:.0f} µs)",
                "one 4x4 problem, same optimizer", ratio <= 3, ratio, {"times": times, "steps": steps}))


# -- 4. large problems and import time ------------------------------------------------------------------
def section_large(args: argparse.Namespace, device: torch.device) -> None:
    n = 512 if args.quick else 2048
    print(f"4. Large problems, n = {n}: per-iteration cost vs the matrix products it needs", flush=True)
    M = well_conditioned(n, dtype=torch.float32).to(device)
    k = 64
    B = torch.randn(n, k, generator=torch.Generator().manual_seed(4)).to(device)
    X = torch.rand(n, n, generator=torch.Generator().manual_seed(5)).to(device)
    x = torch.zeros(n, k, device=device)
    repeats = max(2, min(args.repeats, 3))
    cases = [
        # (name, problem factory, optimizer, steps (short, long), products of one iteration)
        (f"inverse n={n}, SGD", lambda: gdla.MatrixInverse(M, init=X), sgd(n * n / 4),
         (1, 3 if args.quick else 4), lambda: (X @ M, X @ M.mT)),
        (f"linear system n={n}, {k} right-hand sides, SGD", lambda: gdla.LinearSystem(M, B), sgd(n / 4),
         (5, 25 if args.quick else 45), lambda: (M @ x, M.mT @ x)),
        (f"linear system n={n}, {k} right-hand sides, default CG (2 evaluations per iteration)",
         lambda: gdla.LinearSystem(M, B), None,
         (5, 25 if args.quick else 45), lambda: (M @ x, M.mT @ x, M @ x, M.mT @ x)),
    ]
    for name, factory, optimizer, (short, long), products in cases:
        def run(steps: int) -> Callable[[], None]:
            return lambda: quiet(lambda: gdla.solve(factory(), optimizer=optimizer, tol=0, max_steps=steps, stall_steps=0))

        products()
        run(short)()
        times = interleaved({"short": run(short), "long": run(long), "floor": products}, repeats, device)
        per_iteration = [(b - a) / (long - short) for a, b in zip(times["short"], times["long"])]
        ratios = [p / f for p, f in zip(per_iteration, times["floor"])]
        ratio = median(ratios)
        add(Row("4", f"per-iteration cost, {name}", "<= 1.3x its matrix products",
                f"{ratio:.2f}x ({median(per_iteration) * 1e3:.1f} ms vs {median(times['floor']) * 1e3:.1f} ms)",
                f"{len(products())} matmuls alone; per iteration = (t({long} steps) − t({short})) / {long - short}",
                ratio <= 1.3, ratio, {"times": times, "per_iteration": per_iteration}))

    print("4. import torch_gdla vs import torch (fresh interpreters)", flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def fresh(module: str) -> float:
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    fresh("torch")
    imports: dict[str, list[float]] = {"torch": [], "torch_gdla": []}
    for _ in range(max(5, args.repeats)):
        for module in imports:
            imports[module].append(fresh(module))
    ratio = median([a / b for a, b in zip(imports["torch_gdla"], imports["torch"])])
    add(Row("4", "import torch_gdla vs import torch", "<= 1.2x",
            f"{ratio:.2f}x ({median(imports['torch_gdla']):.2f} s vs {median(imports['torch']):.2f} s)",
            "fresh interpreter each", ratio <= 1.2, ratio, {"times": imports}))


# -- 5. direct torch.linalg timings, for context ---------------------------------------------------------
def section_direct(args: argparse.Namespace, device: torch.device) -> None:
    print("5. torch.linalg direct solvers (context)", flush=True)
    n = 512 if args.quick else 2048
    M = well_conditioned(n, dtype=torch.float32).to(device)
    B = torch.randn(n, 64, generator=torch.Generator().manual_seed(4)).to(device)
    A200 = spd_matrix(200, 1e3).to(device)
    b200 = torch.ones(200, dtype=torch.float64, device=device)
    g = torch.Generator().manual_seed(2)
    L = torch.randn(2000, 200, generator=g, dtype=torch.float64).to(device)
    l = torch.randn(2000, generator=g, dtype=torch.float64).to(device)
    seed = seed_matrix(torch.float64).to(device)
    cases = {
        "torch.linalg.inv, seed 4x4": lambda: torch.linalg.inv(seed),
        f"torch.linalg.inv, n={n} float32": lambda: torch.linalg.inv(M),
        f"torch.linalg.solve, n={n}, 64 right-hand sides": lambda: torch.linalg.solve(M, B),
        "torch.linalg.solve, SPD n=200": lambda: torch.linalg.solve(A200, b200),
        "torch.linalg.cholesky_ex, SPD n=200 (the assume=\"spd\" check)": lambda: torch.linalg.cholesky_ex(A200),
        "torch.linalg.lstsq, 2000x200": lambda: torch.linalg.lstsq(L, l.unsqueeze(-1)),
        "torch.linalg.svd, seed 4x4": lambda: torch.linalg.svd(seed),
        "torch.svd_lowrank(q=4, niter=2), seed 4x4": lambda: torch.svd_lowrank(seed, q=4, niter=2),
        f"X @ M, n={n} float32 (one matmul)": lambda: M @ M,
    }
    for name, fn in cases.items():
        fn()
        times = [timed(fn, device) for _ in range(max(3, args.repeats))]
        add(Row("5", name, "(context)", f"{median(times) * 1e3:.3f} ms", "", None, median(times), {"times": times}))


# -- output ---------------------------------------------------------------------------------------------
def write(out: Path, args: argparse.Namespace, device: torch.device, elapsed: float) -> None:
    out.mkdir(parents=True, exist_ok=True)
    environment = {
        "python": platform.python_version(), "torch": torch.__version__,
        "scipy": getattr(scipy, "__version__", None), "torch_gdla": gdla.__version__,
        "machine": platform.machine(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "repeats": args.repeats, "quick": args.quick, "seconds": round(elapsed, 1),
    }
    (out / "results.json").write_text(json.dumps({"environment": environment, "rows": [asdict(r) for r in ROWS]},
                                                 indent=1, default=str))
    lines = [
        f"Measured on {environment['device']}, {environment['cpu_count']} CPU cores ({environment['threads']} torch "
        f"thread{'s' if environment['threads'] > 1 else ''}), torch {environment['torch']}, "
        f"scipy {environment['scipy']}; medians of {args.repeats} interleaved repeats"
        + (" (--quick: small sizes)" if args.quick else "") + f"; suite ran {elapsed / 60:.1f} min.",
        "",
        "| # | Figure | Target | Measured | Compared with | Met |",
        "|---|--------|--------|----------|---------------|-----|",
    ]
    for r in ROWS:
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        cells = [str(c).replace("|", "\\|") for c in (r.section, r.figure, r.target, r.measured, r.compared, met)]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n")


SECTIONS = {"lightning": section_lightning, "evaluations": section_evaluations, "batched": section_batched,
            "large": section_large, "direct": section_direct}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and one repeat: a smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of every timing (default 5, --quick 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for results.md/.json")
    parser.add_argument("--device", default="cpu", help="cpu or cuda: where the timed problems run")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared machine a multi-threaded BLAS call "
                             "waits for descheduled threads, which makes timings erratic); 0 = torch's default")
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS), help="run only these sections")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    if scipy is None:
        parser.error("the bench needs scipy: pip install -e '.[bench]'")
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    for name, section in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        if name == "evaluations":
            section(args)
        else:
            section(args, device)
    elapsed = time.perf_counter() - start
    write(args.out, args, device, elapsed)
    print(f"wrote {args.out / 'results.md'} and results.json ({elapsed / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
