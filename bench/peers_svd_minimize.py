"""The SVD and minimisation defaults against their scipy peers (time-to-solution issue).

    python bench/peers.py --only svd rosenbrock         # these rows in the one peers table
    python bench/peers_svd_minimize.py                  # everything (about 3 minutes on 2 cores)
    python bench/peers_svd_minimize.py --only svd --rounds 5
    python bench/peers_svd_minimize.py --only minimize --json bench/results/peers.json

SVD: the top k triplets of an m × n float64 matrix (200 × 100, k = 5; 2000 × 1000, k = 10; four
spectra) by ``gdla.SVD(M, rank=k)``'s default optimizer through the engine, against
``scipy.sparse.linalg.svds`` (ARPACK).  Both must reach the problem's relative residual
sqrt((‖MV − US‖² + ‖MᵀU − VS‖²)/2)/‖M‖_F ≤ 1e-8, computed here in NumPy from the returned
factors; scipy is given the largest ``tol`` of 1e-2 … 1e-10, 0 whose answer meets it (its
cheapest run that does).  Operator applications are columns of M·X and Mᵀ·Y: scipy's are counted
by a LinearOperator; ours are every product with M made while solving (the optimizer's, the
residual checks', the loss's), counted by a TorchFunctionMode in a separate untimed run.

Minimisation: Rosenbrock in d = 2, 100, 1000 from (−1.2, 1, −1.2, 1, …) to ‖∇f‖ ≤ 1e-8 by
``gdla.Minimize``'s default optimizer (``gradient_scale=1``: the residual is ‖∇f‖₂) against
``scipy.optimize.minimize(method="L-BFGS-B", gtol=1e-8, ftol=0)`` (its test is the ∞-norm, a
weaker one).  Both evaluate the same torch function (value and autograd gradient); f-calls count
every call of it, our residual checks included.  (scipy on NumPy's ``rosen``/``rosen_der`` is
shown for context: that is what the torch function's per-call overhead costs.)

CPU time (``time.process_time``), one thread for torch and for BLAS, the two sides run in
alternating order, min and median over ``--rounds`` rounds; problem construction is timed.
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
import scipy.sparse.linalg as sparse_linalg  # noqa: E402
import torch  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

import torch_gdla as gdla  # noqa: E402
from torch_gdla.engine import Criteria, Iteration  # noqa: E402
from torch_gdla.functions import rosenbrock  # noqa: E402

TOL = 1e-8
SCIPY_TOLS = (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 0.0)


def timed(rounds: int, runs: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    """CPU seconds of each run, ``rounds`` times, the order reversed every other round."""
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.process_time()
            runs[name]()
            times[name].append(time.process_time() - start)
    return times


def summary(seconds: list[float]) -> str:
    return f"{1e3 * min(seconds):.1f} / {1e3 * statistics.median(seconds):.1f} ms"


# -- SVD ------------------------------------------------------------------------------------------
def with_spectrum(m: int, n: int, sigma: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q1, _ = torch.linalg.qr(torch.randn(m, n, generator=g, dtype=torch.float64))
    Q2, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return (Q1 * sigma) @ Q2.T


def svd_matrices(m: int, n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    index = torch.arange(n, dtype=torch.float64)
    return {"randn": torch.randn(m, n, generator=g, dtype=torch.float64),
            "rand": torch.rand(m, n, generator=g, dtype=torch.float64),
            "harmonic 1/i": with_spectrum(m, n, 1.0 / (index + 1), 1),
            "geometric 0.9^i": with_spectrum(m, n, 0.9 ** index, 2)}


def svd_residual(A: np.ndarray, U: np.ndarray, S: np.ndarray, V: np.ndarray) -> float:
    left = np.linalg.norm(A @ V - U * S)
    right = np.linalg.norm(A.T @ U - V * S)
    return float(np.sqrt((left ** 2 + right ** 2) / 2) / np.linalg.norm(A))


def ours_svd(M: torch.Tensor, k: int) -> tuple[gdla.Result, gdla.SVD]:
    problem = gdla.SVD(M, rank=k)
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(residual_tol=TOL), max_steps=1000)
    iteration.run(1000)
    return iteration.finish(), problem


class CountProducts(TorchFunctionMode):
    """Columns of every product with M (or Mᵀ) made inside the block."""

    def __init__(self, M: torch.Tensor) -> None:
        super().__init__()
        m, n = M.shape[-2:]
        self.shapes, self.columns = {(m, n), (n, m)}, 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__) and len(args) == 2:
            left, right = args
            if isinstance(left, torch.Tensor) and tuple(left.shape[-2:]) in self.shapes:
                self.columns += right.shape[-1] if right.dim() >= 2 else 1
        return func(*args, **(kwargs or {}))


def scipy_svds(A: np.ndarray, k: int, tol: float, count: bool = False) -> tuple[Any, int]:
    calls = [0]
    if count:
        def matvec(x: np.ndarray) -> np.ndarray:
            calls[0] += x.shape[1] if x.ndim == 2 else 1
            return A @ x

        def rmatvec(y: np.ndarray) -> np.ndarray:
            calls[0] += y.shape[1] if y.ndim == 2 else 1
            return A.T @ y

        operator: Any = sparse_linalg.LinearOperator(A.shape, matvec=matvec, rmatvec=rmatvec, matmat=matvec,
                                                      rmatmat=rmatvec, dtype=A.dtype)
    else:
        operator = A
    return sparse_linalg.svds(operator, k=k, tol=tol, random_state=0), calls[0]


def scipy_residual(A: np.ndarray, k: int, tol: float) -> float:
    U, S, Vt = scipy_svds(A, k, tol)[0]
    return svd_residual(A, U, S, Vt.T)


SVD_SIZES = ((200, 100, 5), (2000, 1000, 10))
DIMENSIONS = (2, 100, 1000)


def bench_svd(rounds: int, sizes: tuple[tuple[int, int, int], ...] = SVD_SIZES) -> list[dict[str, Any]]:
    rows = []
    for m, n, k in sizes:
        for name, M in svd_matrices(m, n).items():
            A = M.numpy()
            sigma = np.linalg.svd(A, compute_uv=False)[:k]
            tol = next(t for t in SCIPY_TOLS if scipy_residual(A, k, t) <= TOL)
            (U, S, Vt), scipy_columns = scipy_svds(A, k, tol, count=True)
            scipy_res = svd_residual(A, U, S, Vt.T)
            with CountProducts(M) as counter:
                result, problem = ours_svd(M, k)
            ours_columns = counter.columns
            Uo, So, Vo = (t.numpy() for t in result.solution)
            ours_res = svd_residual(A, Uo, So, Vo)
            times = timed(rounds, {"ours": lambda: ours_svd(M, k), "scipy": lambda: scipy_svds(A, k, tol)})
            ratio_time = min(times["ours"]) / min(times["scipy"])
            row = dict(kind="svd", case=f"{m}x{n} k={k} {name}", gap=float(sigma[-1] / np.linalg.svd(A, compute_uv=False)[k]),
                       ours_status=result.status.value, ours_steps=result.steps, ours_columns=ours_columns,
                       ours_stats=result.stats, ours_residual=ours_res,
                       ours_sigma_error=float(np.abs(np.sort(So)[::-1] - sigma).max() / sigma[0]),
                       scipy_tol=tol, scipy_columns=scipy_columns, scipy_residual=scipy_res,
                       ours_ms=[1e3 * t for t in times["ours"]], scipy_ms=[1e3 * t for t in times["scipy"]],
                       ratio_columns=ours_columns / scipy_columns, ratio_time=ratio_time)
            rows.append(row)
            print(f"| {row['case']} | {result.status.value}, {result.steps} steps, {ours_columns} products, residual "
                  f"{ours_res:.1e}, {summary(times['ours'])} | tol={tol:g}: {scipy_columns} products, residual "
                  f"{scipy_res:.1e}, {summary(times['scipy'])} | {row['ratio_columns']:.2f} | {ratio_time:.2f} |",
                  flush=True)
    return rows


# -- minimisation ---------------------------------------------------------------------------------
class Counted:
    """The torch Rosenbrock, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return rosenbrock(x)


def start(d: int) -> np.ndarray:
    x = np.empty(d)
    x[0::2], x[1::2] = -1.2, 1.0
    return x


def ours_minimize(d: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> gdla.Result:
    problem = gdla.Minimize(fn, torch.from_numpy(start(d)), gradient_scale=1.0)
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(residual_tol=TOL), max_steps=100_000)
    iteration.run(100_000)
    return iteration.finish()


def scipy_minimize(d: int, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        point = torch.from_numpy(x).requires_grad_(True)
        value = fn(point)
        value.backward()
        return value.item(), point.grad.numpy().copy()

    return scipy.optimize.minimize(value_and_gradient, start(d), jac=True, method="L-BFGS-B",
                                   options=dict(gtol=TOL, ftol=0.0, maxiter=100_000, maxfun=100_000))


def scipy_numpy(d: int) -> Any:
    return scipy.optimize.minimize(lambda x: (scipy.optimize.rosen(x), scipy.optimize.rosen_der(x)), start(d),
                                   jac=True, method="L-BFGS-B", options=dict(gtol=TOL, ftol=0.0, maxiter=100_000,
                                                                            maxfun=100_000))


def bench_minimize(rounds: int, dimensions: tuple[int, ...] = DIMENSIONS) -> list[dict[str, Any]]:
    rows = []
    for d in dimensions:
        ours_fn, scipy_fn = Counted(), Counted()
        result = ours_minimize(d, ours_fn)
        peer = scipy_minimize(d, scipy_fn)
        ours_g = float(np.linalg.norm(scipy.optimize.rosen_der(result.solution.numpy())))
        peer_g = float(np.linalg.norm(scipy.optimize.rosen_der(peer.x)))
        times = timed(rounds, {"ours": lambda: ours_minimize(d, rosenbrock), "scipy": lambda: scipy_minimize(d, rosenbrock)})
        context = timed(rounds, {"scipy numpy": lambda: scipy_numpy(d)})
        row = dict(kind="minimize", case=f"Rosenbrock d={d}", ours_status=result.status.value, ours_steps=result.steps,
                   ours_calls=ours_fn.calls, ours_evaluations=result.evaluations, ours_gradient=ours_g,
                   scipy_iterations=int(peer.nit), scipy_calls=scipy_fn.calls, scipy_gradient=peer_g,
                   ours_ms=[1e3 * t for t in times["ours"]], scipy_ms=[1e3 * t for t in times["scipy"]],
                   scipy_numpy_ms=[1e3 * t for t in context["scipy numpy"]],
                   ratio_calls=ours_fn.calls / scipy_fn.calls, ratio_time=min(times["ours"]) / min(times["scipy"]))
        rows.append(row)
        print(f"| {row['case']} | {result.status.value}, {result.steps} its, {ours_fn.calls} f-calls "
              f"({result.evaluations} by the optimizer), ‖∇f‖ {ours_g:.1e}, {summary(times['ours'])} | {peer.nit} its, "
              f"{scipy_fn.calls} f-calls, ‖∇f‖ {peer_g:.1e}, {summary(times['scipy'])} (NumPy rosen: "
              f"{summary(context['scipy numpy'])}) | {row['ratio_calls']:.2f} | {row['ratio_time']:.2f} |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("svd", "minimize"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write every row (raw timings included) here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    if args.only in (None, "svd"):
        print("\n| SVD, residual <= 1e-8 | gdla.SVD default (CPU min / median) | scipy svds | products ratio | "
              "time ratio |\n|---|---|---|---|---|")
        rows += bench_svd(args.rounds)
    if args.only in (None, "minimize"):
        print("\n| minimisation, ‖∇f‖ <= 1e-8 | gdla.Minimize default (CPU min / median) | scipy L-BFGS-B, same "
              "torch function | f-calls ratio | time ratio |\n|---|---|---|---|---|")
        rows += bench_minimize(args.rounds)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
