"""The functional API's costs (``gdla.linalg``): per-call overhead, warm starts, backward.

    python bench/functional.py                      # all three (about a minute on 2 cores)
    python bench/functional.py --only overhead warm backward --rounds 5

(a) overhead: one call of ``gdla.linalg.solve`` on a 4×4 float64 system (a fixed non-symmetric
    matrix, CGLS; and its SPD normal matrix with ``assume="spd"``, CG) against
    ``torch.linalg.solve``, ``torch.linalg.inv`` and the same number of iterations written as a
    bare torch loop (the mathematics alone): "library overhead" = call − bare loop (validation,
    the stopping test and its float64 confirmation, the Result).  Also the call through the
    general engine (Problem, Optimizer, Iteration; the small-system fast path switched off), and
    the host reads of tensor values per call (each a synchronisation on an accelerator).
(b) warm: a 256×256 SPD system (κ = 10 and 10³, b fixed) whose matrix moves by 1 % (in
    Frobenius norm) per step, its eigenvectors rotating (A ← R A Rᵀ, R = exp(hK), K skew), 100 steps: conjugate-
    gradient iterations per step from the previous step's answer (``init=``) against from 0, at
    residual tolerances 1e-3, 1e-4, 1e-6 and 1e-8 (‖Ax − b‖/‖b‖); iteration counts are
    deterministic, so this part runs once (its CPU times are one pass, for orientation).
(c) backward: a 1000×1000 SPD solve (b a vector; A and b require grad) whose conjugate
    gradient needs about 50, 100 and 200 iterations to 1e-8, differentiated by gdla (implicit: one
    adjoint CG solve) and by autograd through an unrolled torch CG of exactly the same number of
    iterations.  Memory: the bytes the graph holds for backward (every tensor saved by the
    forward, through ``saved_tensors_hooks``, the inputs' own storage excluded).  Both gradients
    are compared with torch.linalg.solve's.

CPU time (``time.process_time``), one torch thread, the two sides in alternating order, min and
median over ``--rounds`` rounds (each of (a)'s rounds times ``--calls`` calls).  Results are written
to bench/results/functional.json and .md (the printed report).
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterator  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from torch.overrides import TorchFunctionMode  # noqa: E402

import torch_gdla as gdla  # noqa: E402
from torch_gdla.linalg import _small  # noqa: E402

F64 = torch.float64


def stats(samples: list[float], scale: float = 1.0, unit: str = "") -> str:
    return f"min {min(samples) * scale:.3g}{unit}, median {statistics.median(samples) * scale:.3g}{unit}"


# -- (a) per-call overhead --------------------------------------------------------------------------
class HostReads(TorchFunctionMode):
    """Counts the reads of a tensor's value by the host (.item(), float(), bool(), .tolist(),
    torch.equal): each is a synchronisation on an accelerator."""

    NAMES = ("item", "__float__", "__bool__", "__int__", "tolist", "equal")

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if getattr(func, "__name__", "") in self.NAMES:
            self.count += 1
        return func(*args, **(kwargs or {}))


def bare_iterations(A: torch.Tensor, b: torch.Tensor, cg: bool, steps: int) -> torch.Tensor:
    """The mathematics alone: ``steps`` iterations of CG (or CGLS) from 0 written as a plain
    torch loop, scalars as Python floats, no stopping test — what any implementation must do."""
    x = torch.zeros(A.shape[1], dtype=A.dtype)
    if cg:
        r = b.clone()
        p, rz = r.clone(), float(r @ r)
        for _ in range(steps):
            q = A @ p
            alpha = rz / float(p @ q)
            x.add_(p, alpha=alpha)
            r.add_(q, alpha=-alpha)
            rz, previous = float(r @ r), rz
            p.mul_(rz / previous).add_(r)
        return x
    s = b.clone()
    r = A.mT @ s
    p, rz = r.clone(), float(r @ r)
    for _ in range(steps):
        q = A @ p
        alpha = rz / float(q @ q)
        x.add_(p, alpha=alpha)
        s.add_(q, alpha=-alpha)
        r = A.mT @ s
        rz, previous = float(r @ r), rz
        p.mul_(rz / previous).add_(r)
    return x


def timed(fn: Callable[[], object], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - started) / calls


def overhead(rounds: int, calls: int) -> dict:
    # a fixed non-symmetric 4×4 system (the tutorial's), and its SPD normal matrix
    A = torch.tensor([[1, 3, 2, -1], [5, 2, 1, -2], [0, 1, 2, 4], [1, 1, -1, -3]], dtype=F64)
    b = torch.tensor([9, 4, 24, -12], dtype=F64)
    S = A.mT @ A
    print("(a) per call, 4×4 float64, one torch thread (µs; min, median over rounds):")
    out = {}
    for label, matrix, kwargs in (("general (CGLS)", A, {}), ("assume='spd' (CG)", S, {"assume": "spd"})):
        _, result = gdla.linalg.solve_ex(matrix, b, **kwargs)
        steps, cg = result.steps, bool(kwargs)
        with HostReads() as reads:
            gdla.linalg.solve(matrix, b, **kwargs)
        with patched_small_order(0), HostReads() as engine_reads:
            gdla.linalg.solve(matrix, b, **kwargs)
        sides: dict[str, Callable[[], object]] = {
            "gdla.linalg.solve": functools.partial(gdla.linalg.solve, matrix, b, **kwargs),
            "same iterations, bare torch loop": functools.partial(bare_iterations, matrix, b, cg, steps),
            "torch.linalg.solve": functools.partial(torch.linalg.solve, matrix, b),
            "torch.linalg.inv": functools.partial(torch.linalg.inv, matrix),
        }
        samples: dict[str, list[float]] = {name: [] for name in sides}
        engine: list[float] = []
        for r in range(rounds):
            names = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in names:
                samples[name].append(timed(sides[name], calls))
            with patched_small_order(0):  # the general engine path (Problem, Optimizer, Iteration)
                engine.append(timed(sides["gdla.linalg.solve"], calls))
        med = {name: statistics.median(v) for name, v in samples.items()}
        over = [g - i for g, i in zip(samples["gdla.linalg.solve"], samples["same iterations, bare torch loop"])]
        print(f"  {label}: {steps} iterations, residual {result.residual:.1e}; host reads per call "
              f"{reads.count} (engine path {engine_reads.count})")
        for name, v in samples.items():
            print(f"    {name:<34} {stats(v, 1e6)}")
        print(f"    library overhead (call − bare loop) {stats(over, 1e6)}")
        print(f"    through the engine (no fast path)  {stats(engine, 1e6)}")
        ours = med["gdla.linalg.solve"]
        print(f"    ratios of medians: to torch.linalg.solve {ours / med['torch.linalg.solve']:.1f}×, "
              f"to torch.linalg.inv {med['gdla.linalg.solve'] / med['torch.linalg.inv']:.1f}×, to the bare loop "
              f"{med['gdla.linalg.solve'] / med['same iterations, bare torch loop']:.1f}×")
        out[label] = {"iterations": steps, "host_reads": reads.count, "host_reads_engine": engine_reads.count,
                      **{name: summary(v) for name, v in samples.items()}, "library_overhead": summary(over),
                      "engine_path": summary(engine)}
    return out


@contextlib.contextmanager
def patched_small_order(order: int) -> Iterator[None]:
    saved = _small.SMALL_ORDER
    _small.SMALL_ORDER = order
    try:
        yield
    finally:
        _small.SMALL_ORDER = saved


def summary(samples: list[float]) -> dict[str, float]:
    return {"min_s": min(samples), "median_s": statistics.median(samples)}


# -- (b) warm start on a drifting matrix ------------------------------------------------------------
def spd(n: int, seed: int, kappa: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    return (Q * torch.logspace(0, torch.log10(torch.tensor(kappa)).item(), n, dtype=F64)) @ Q.mT


def warm(rounds: int, n: int = 256, steps: int = 100) -> dict:
    out: dict = {}
    b = torch.randn(n, generator=torch.Generator().manual_seed(2), dtype=F64)
    print(f"(b) warm start: {n}×{n} SPD, the matrix moves 1 % (Frobenius) per step, {steps} steps, b fixed; "
          "CG iterations per step, mean [min–max]:")
    for kappa in (10.0, 1e3):
        # A(k+1) = R A(k) Rᵀ with R = exp(hK), K skew: the eigenvectors rotate, the spectrum (κ) stays,
        # A stays SPD; h is set so that each step moves A by 1 % in Frobenius norm
        A0 = spd(n, 0, kappa)
        G = torch.randn(n, n, generator=torch.Generator().manual_seed(1), dtype=F64)
        K = (G - G.mT) / torch.linalg.matrix_norm(G - G.mT)
        trial = torch.linalg.matrix_exp(1e-3 * K)
        moved = float(torch.linalg.matrix_norm(trial @ A0 @ trial.mT - A0) / torch.linalg.matrix_norm(A0))
        R = torch.linalg.matrix_exp(1e-3 * 0.01 / moved * K)
        path = [A0]
        for _ in range(steps):
            A = R @ path[-1] @ R.mT
            path.append((A + A.mT) / 2)
        drift = statistics.mean(float(torch.linalg.matrix_norm(A1 - A0) / torch.linalg.matrix_norm(A0))
                                for A0, A1 in zip(path, path[1:]))
        exact = [torch.linalg.solve(A, b) for A in path]
        moves = [float((x1 - x0).norm() / x1.norm()) for x0, x1 in zip(exact, exact[1:])]
        starts = [float((A @ x0 - b).norm() / b.norm()) for A, x0 in zip(path[1:], exact)]
        print(f"  κ = {kappa:g} (A moves {drift:.2%} per step): the solution moves "
              f"{statistics.mean(moves):.1%} per step on average; "
              f"the previous solution's residual on the new matrix {statistics.mean(starts):.2g} (mean)")
        for tol in (1e-3, 1e-4, 1e-6, 1e-8):
            x = gdla.linalg.solve(path[0], b, assume="spd", residual_tol=tol)
            warm_steps, cold_steps, warm_t, cold_t = [], [], 0.0, 0.0
            for A in path[1:]:
                started = time.process_time()
                x, result = gdla.linalg.solve_ex(A, b, assume="spd", init=x, residual_tol=tol, check=True)
                warm_t += time.process_time() - started
                warm_steps.append(result.steps)
                started = time.process_time()
                _, result = gdla.linalg.solve_ex(A, b, assume="spd", residual_tol=tol, check=True)
                cold_t += time.process_time() - started
                cold_steps.append(result.steps)
            w, c = statistics.mean(warm_steps), statistics.mean(cold_steps)
            out[f"kappa {kappa:g}, residual_tol {tol:.0e}"] = {
                "warm_mean": w, "cold_mean": c, "warm_over_cold": w / c, "warm_cpu_s": warm_t, "cold_cpu_s": cold_t}
            print(f"    residual_tol {tol:.0e}: warm {w:.1f} [{min(warm_steps)}–{max(warm_steps)}], cold {c:.1f} "
                  f"[{min(cold_steps)}–{max(cold_steps)}]; warm/cold {w / c:.2f}; CPU {warm_t:.2f} s vs {cold_t:.2f} s")
    return out


# -- (c) backward: implicit against unrolled --------------------------------------------------------
def unrolled_cg(A: torch.Tensor, b: torch.Tensor, iterations: int) -> torch.Tensor:
    """Plain conjugate gradient from x = 0, every operation recorded by autograd."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r
    rs = r @ r
    for _ in range(iterations):
        Ap = A @ p
        alpha = rs / (p @ Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = r @ r
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def saved_bytes(forward: Callable[[], torch.Tensor], inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, int]:
    """forward()'s output and the bytes of the distinct storages its graph saves, the inputs' excluded."""
    seen: dict[int, int] = {}
    excluded = {t.untyped_storage().data_ptr() for t in inputs}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in excluded:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    return out, sum(seen.values())


def backward(rounds: int, n: int = 1000) -> dict:
    out: dict = {}
    b0 = torch.randn(n, generator=torch.Generator().manual_seed(3), dtype=F64)
    weights = torch.randn(n, generator=torch.Generator().manual_seed(4), dtype=F64)
    print(f"(c) backward of a {n}×{n} SPD solve (A and b require grad), residual_tol 1e-8; CPU ms, memory MB:")
    for kappa in (25.0, 100.0, 400.0):
        A0 = spd(n, 5, kappa)
        _, result = gdla.linalg.solve_ex(A0, b0, assume="spd", residual_tol=1e-8, check=True)
        iterations = result.steps
        rows: dict[str, dict[str, list[float]]] = {k: {"fwd": [], "bwd": [], "saved": []}
                                                     for k in ("gdla", "unrolled")}

        def one(kind: str, A0: torch.Tensor = A0, iterations: int = iterations,
                rows: dict[str, dict[str, list[float]]] = rows) -> None:
            A, b = A0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
            forward: Callable[[], torch.Tensor] = (
                functools.partial(gdla.linalg.solve, A, b, assume="spd", residual_tol=1e-8) if kind == "gdla"
                else functools.partial(unrolled_cg, A, b, iterations))
            started = time.process_time()
            x, saved = saved_bytes(forward, (A, b))
            rows[kind]["fwd"].append(time.process_time() - started)
            started = time.process_time()
            x.backward(weights)
            rows[kind]["bwd"].append(time.process_time() - started)
            rows[kind]["saved"].append(saved)

        for r in range(rounds):
            for kind in (("gdla", "unrolled") if r % 2 == 0 else ("unrolled", "gdla")):
                one(kind)
        # each gradient against torch.linalg.solve's (autograd through LU): the implicit one is the
        # exact solve's; the unrolled one is the derivative of the iterates, which loses accuracy as CG
        # loses orthogonality
        grads = []
        for kind in ("gdla", "unrolled", "torch"):
            A, b = A0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
            x = (gdla.linalg.solve(A, b, assume="spd", residual_tol=1e-8) if kind == "gdla"
                 else unrolled_cg(A, b, iterations) if kind == "unrolled" else torch.linalg.solve(A, b))
            x.backward(weights)
            grads.append(torch.cat([A.grad.flatten(), b.grad]))
        errors = [float((g - grads[2]).norm() / grads[2].norm()) for g in grads[:2]]
        print(f"  κ = {kappa:g}: {iterations} CG iterations; gradient's relative error against torch.linalg.solve's: "
              f"gdla {errors[0]:.1e}, unrolled {errors[1]:.1e}")
        out[f"kappa {kappa:g}"] = {"iterations": iterations, "gradient_error_gdla": errors[0],
                                   "gradient_error_unrolled": errors[1],
                                   **{kind: {"forward": summary(row["fwd"]), "backward": summary(row["bwd"]),
                                             "saved_bytes": statistics.median(row["saved"])}
                                      for kind, row in rows.items()}}
        for kind, row in rows.items():
            ratio = statistics.median(row["bwd"]) / statistics.median(row["fwd"])
            print(f"    {kind:<8} forward {stats(row['fwd'], 1e3)}; backward {stats(row['bwd'], 1e3)} "
                  f"({ratio:.2f}× forward); saved for backward {statistics.median(row['saved']) / 1e6:.3f} MB")
    return out


class Tee:
    """stdout, kept as well (for the .md report)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        return sys.__stdout__.write(text)

    def flush(self) -> None:
        sys.__stdout__.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=("overhead", "warm", "backward"),
                        default=["overhead", "warm", "backward"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="calls per round in (a)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "functional"),
                        help="results path without extension (.json and .md are written)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tee = Tee()
    results: dict = {"command": "python bench/functional.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                     "torch": torch.__version__, "threads": torch.get_num_threads(), "rounds": args.rounds}
    with contextlib.redirect_stdout(tee):  # type: ignore[type-var]
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, {args.rounds} rounds")
        for part, run in (("overhead", lambda: overhead(args.rounds, args.calls)), ("warm", lambda: warm(args.rounds)),
                          ("backward", lambda: backward(args.rounds))):
            if part in args.only:
                results[part] = run()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(results, indent=1) + "\n")
    report = "".join(tee.lines)
    Path(args.out + ".md").write_text(f"# gdla.linalg costs\n\n`{results['command']}`\n\n```\n{report}```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
