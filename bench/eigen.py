"""Eigenpairs, matrix square roots and streamed PCA against their peers (issue 14).

    python bench/eigen.py                       # everything, 3 rounds (several minutes on 2 cores)
    python bench/eigen.py --only eigen --rounds 5
    python bench/eigen.py --only pca --rows 1000000 --dir /tmp/gdla_pca

Eigen: the 3 largest and 3 smallest pairs of a 200 × 200 float64 matrix with a clear gap
(eigenvalues ±10, ±9, ±8, the rest in [−5, 5]), and the 4 smallest of the sparse 2-D Poisson
Laplacian of order 10 000, by ``gdla.SymmetricEigen``'s default method (RayleighRitz) through the
engine, against ``scipy.sparse.linalg.eigsh`` (ARPACK, which="LA"/"SA", no shift-invert) and
``torch.lobpcg``.  Every method must reach max_i ‖M vᵢ − λᵢ vᵢ‖ / ‖M‖₂ ≤ 1e-10, recomputed here
in NumPy from the returned pairs (‖M‖₂ exact); a peer gets the largest ``tol`` of a list whose
answer meets it.  Applications of M are columns of products with M, counted in a separate untimed
run: scipy's by a LinearOperator, ours and lobpcg's by a TorchFunctionMode (ours include the
engine's residual checks and, for sparse M, the 30 power steps of the ‖M‖ estimate).

Square root: ``gdla.MatrixSqrt`` (Newton–Schulz) of SPD matrices with κ = 1e6 against
``scipy.linalg.sqrtm`` (Schur) and the root through ``torch.linalg.eigh``; relative residual
‖XX − M‖_F/‖M‖_F recomputed in NumPy.

PCA: ``gdla.PCA`` of a rows × 64 float32 .npy file (streamed in blocks of 65 536 rows, k = 5,
computed in float64)
in a fresh subprocess per row count, its peak RSS (VmHWM, as bench/streamed.py) and the top-5
variances' error against ``numpy.linalg.eigh`` of the dense covariance (accumulated in float64
over the same file); the peer's time is that covariance pass plus eigh.

CPU time (``time.process_time``), one thread for torch and BLAS, sides in alternating order, min
and median over ``--rounds``; problem construction is timed.
"""
from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.sparse  # noqa: E402
import scipy.sparse.linalg as sparse_linalg  # noqa: E402
import torch  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402

import torch_gdla as gdla  # noqa: E402
from torch_gdla.engine import Criteria, Iteration  # noqa: E402

TOL = 1e-10
PEER_TOLS = (1e-4, 1e-6, 1e-8, 1e-10, 1e-12, 1e-14, 0.0)


def timed(rounds: int, runs: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    """CPU seconds of each run, ``rounds`` times, the order reversed every other round."""
    names, times = list(runs), {name: [] for name in runs}  # type: ignore[var-annotated]
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.process_time()
            runs[name]()
            times[name].append(time.process_time() - start)
    return times


def ms(seconds: list[float]) -> str:
    return f"{1e3 * min(seconds):.1f} / {1e3 * statistics.median(seconds):.1f} ms"


class CountProducts(TorchFunctionMode):
    """Columns of every product of an n × n matrix with a block, made inside the mode."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.columns = n, 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.sparse.mm, torch.mm) \
                and len(args) == 2 and isinstance(args[0], torch.Tensor) and tuple(args[0].shape[-2:]) == (self.n,) * 2:
            self.columns += args[1].shape[-1] if args[1].dim() >= 2 else 1
        return func(*args, **(kwargs or {}))


# -- eigenpairs -----------------------------------------------------------------------------------
def gapped(n: int = 200) -> torch.Tensor:
    values = torch.cat([torch.tensor([10.0, 9.0, 8.0, -10.0, -9.0, -8.0], dtype=torch.float64),
                        torch.linspace(-5, 5, n - 6, dtype=torch.float64)])
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    M = (Q * values) @ Q.mT
    return (M + M.mT) / 2


def eigen_residual(A: Any, values: np.ndarray, vectors: np.ndarray, norm: float) -> float:
    return float(np.linalg.norm(A @ vectors - vectors * values, axis=0).max() / norm)


def ours_eigen(M: torch.Tensor, k: int, largest: bool) -> tuple[gdla.Result, Any]:
    problem = gdla.SymmetricEigen(M, k=k, largest=largest)
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(residual_tol=TOL), max_steps=100_000)
    iteration.run(100_000)
    return iteration.finish(), problem


def scipy_eigsh(A: Any, k: int, largest: bool, tol: float, count: bool = False) -> tuple[Any, int]:
    calls = [0]
    operator = A
    if count:
        def matvec(x: np.ndarray) -> np.ndarray:
            calls[0] += x.shape[1] if x.ndim == 2 else 1
            return A @ x

        operator = sparse_linalg.LinearOperator(A.shape, matvec=matvec, matmat=matvec, dtype=A.dtype)
    v0 = np.random.default_rng(0).standard_normal(A.shape[0])
    return sparse_linalg.eigsh(operator, k=k, which="LA" if largest else "SA", tol=tol, v0=v0, maxiter=100_000), \
        calls[0]


def torch_lobpcg(M: torch.Tensor, k: int, largest: bool, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.randn(M.shape[-1], k, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return torch.lobpcg(M, X=X, largest=largest, tol=tol, niter=20_000)


def first_meeting(run: Callable[[float], tuple[np.ndarray, np.ndarray]], A: Any, norm: float) -> tuple[Any, float]:
    """The largest tolerance of PEER_TOLS whose answer meets TOL (None: none does), and that answer's residual."""
    best = np.inf
    for tol in PEER_TOLS:
        try:
            values, vectors = run(tol)
        except Exception:  # a peer that fails at a tolerance (ARPACK no convergence, lobpcg breakdown)
            continue
        residual = eigen_residual(A, np.asarray(values), np.asarray(vectors), norm)
        best = min(best, residual)
        if residual <= TOL:
            return tol, residual
    return None, best


def eigen_case(name: str, M: torch.Tensor, k: int, largest: bool, norm: float, rounds: int) -> dict[str, Any]:
    sparse = M.layout != torch.strided
    A = scipy.sparse.csr_matrix((M.values().numpy(), M.col_indices().numpy(), M.crow_indices().numpy()),
                                shape=M.shape) if sparse else M.numpy()
    lobpcg_input = M.to_sparse_coo() if sparse else M
    with CountProducts(M.shape[-1]) as counter:
        result, _ = ours_eigen(M, k, largest)
    values, vectors = (t.numpy() for t in result.solution)
    row: dict[str, Any] = dict(kind="eigen", case=name, ours_status=result.status.value, ours_steps=result.steps,
                               ours_columns=counter.columns, ours_residual=eigen_residual(A, values, vectors, norm))
    scipy_tol, row["scipy_residual"] = first_meeting(lambda t: scipy_eigsh(A, k, largest, t)[0], A, norm)
    lobpcg_tol, row["lobpcg_residual"] = first_meeting(
        lambda t: tuple(x.numpy() for x in torch_lobpcg(lobpcg_input, k, largest, t)), A, norm)
    row.update(scipy_tol=scipy_tol, lobpcg_tol=lobpcg_tol)
    runs: dict[str, Callable[[], Any]] = {"ours": lambda: ours_eigen(M, k, largest)}
    if scipy_tol is not None:
        row["scipy_columns"] = scipy_eigsh(A, k, largest, scipy_tol, count=True)[1]
        runs["scipy"] = lambda: scipy_eigsh(A, k, largest, scipy_tol)
    if lobpcg_tol is not None:
        with CountProducts(M.shape[-1]) as counter:
            torch_lobpcg(lobpcg_input, k, largest, lobpcg_tol)
        row["lobpcg_columns"] = counter.columns
        runs["lobpcg"] = lambda: torch_lobpcg(lobpcg_input, k, largest, lobpcg_tol)
    times = timed(rounds, runs)
    row.update({f"{side}_ms": [1e3 * t for t in ts] for side, ts in times.items()})
    for peer in ("scipy", "lobpcg"):
        if peer in times:
            row[f"ratio_columns_{peer}"] = row["ours_columns"] / row[f"{peer}_columns"]
            row[f"ratio_time_{peer}"] = min(times["ours"]) / min(times[peer])
    print(json.dumps({key: value for key, value in row.items() if not key.endswith("_ms")}),
          {side: ms(ts) for side, ts in times.items()}, flush=True)
    return row


def bench_eigen(rounds: int) -> list[dict[str, Any]]:
    poisson = gdla.matrices.Poisson2D(100, dtype="float64")
    return [eigen_case("200x200 gapped, top 3", gapped(), 3, True, 10.0, rounds),
            eigen_case("200x200 gapped, bottom 3", gapped(), 3, False, 10.0, rounds),
            eigen_case("2-D Poisson n=10000 (sparse), smallest 4", poisson.tensor(), 4, False,
                       float(poisson.eigenvalues()[-1]), rounds)]


# -- square roots -----------------------------------------------------------------------------------
def ours_sqrtm(M: torch.Tensor) -> gdla.Result:
    problem = gdla.MatrixSqrt(M)
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(residual_tol=TOL), max_steps=200)
    iteration.run(200)
    return iteration.finish()


def eigh_sqrtm(M: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(M)
    return (vectors * values.sqrt()) @ vectors.mT


def sqrtm_case(n: int, rounds: int) -> dict[str, Any]:
    M = gdla.matrices.Conditioned(n, cond=1e6, kind="spd", seed=314).tensor()
    A = M.numpy()

    def residual(X: Any) -> float:
        X = np.real(np.asarray(X))
        return float(np.linalg.norm(X @ X - A) / np.linalg.norm(A))

    result = ours_sqrtm(M)
    times = timed(rounds, {"ours": lambda: ours_sqrtm(M), "scipy": lambda: scipy.linalg.sqrtm(A),
                           "torch eigh": lambda: eigh_sqrtm(M)})
    row = dict(kind="sqrtm", case=f"{n}x{n} SPD, cond 1e6", ours_status=result.status.value,
               ours_steps=result.steps, ours_residual=residual(result.solution.numpy()),
               scipy_residual=residual(scipy.linalg.sqrtm(A)), eigh_residual=residual(eigh_sqrtm(M).numpy()),
               **{f"{side}_ms": [1e3 * t for t in ts] for side, ts in times.items()},
               ratio_time_scipy=min(times["ours"]) / min(times["scipy"]),
               ratio_time_eigh=min(times["ours"]) / min(times["torch eigh"]))
    print(json.dumps({key: value for key, value in row.items() if not key.endswith("_ms")}),
          {side: ms(ts) for side, ts in times.items()}, flush=True)
    return row


def bench_sqrtm(rounds: int) -> list[dict[str, Any]]:
    return [sqrtm_case(n, rounds) for n in (100, 400)]


# -- PCA of streamed rows ---------------------------------------------------------------------------
def make_rows(path: str, rows: int, features: int = 64, seed: int = 0) -> None:
    """Gaussian rows with variances 16·0.85^i along random orthonormal directions, shifted by 1."""
    if os.path.exists(path) and np.load(path, mmap_mode="r").shape == (rows, features):
        return
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((features, features)))
    basis = (Q * (4.0 * 0.85 ** (np.arange(features) / 2))).T.astype(np.float32)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, features))
    for start in range(0, rows, 1_000_000):
        stop = min(start + 1_000_000, rows)
        X[start:stop] = rng.standard_normal((stop - start, features), dtype=np.float32) @ basis + 1.0
    X.flush()


def run_pca(path: str) -> dict[str, Any]:
    """In a fresh process: gdla.PCA, then the dense covariance (both timed, both streamed)."""
    from streamed import peak_rss_mb

    torch.set_num_threads(1)
    start = time.process_time()
    problem = gdla.PCA(path, k=5, batch_size=65536, dtype="float64")  # float32 rows, float64 products
    iteration = Iteration(problem, problem.default_optimizer(), Criteria(residual_tol=TOL), max_steps=1000)
    iteration.run(1000)
    result = iteration.finish()
    ours = time.process_time() - start
    rss = peak_rss_mb()
    start = time.process_time()
    X = np.load(path, mmap_mode="r")
    total, sums = np.zeros((X.shape[1], X.shape[1])), np.zeros(X.shape[1])
    for first in range(0, len(X), 65536):
        block = np.asarray(X[first:first + 65536], dtype=np.float64)
        total += block.T @ block
        sums += block.sum(axis=0)
    mean = sums / len(X)
    covariance = (total - len(X) * np.outer(mean, mean)) / (len(X) - 1)
    expected = np.linalg.eigvalsh(covariance)[::-1][:5]
    dense = time.process_time() - start
    variances = result.solution.variances.double().numpy()
    return dict(rows=len(X), status=result.status.value, steps=result.steps, residual=result.residual,
                variance_error=float(np.abs(variances - expected).max() / expected[0]),
                ours_s=ours, dense_s=dense, peak_rss_mb=rss)


def bench_pca(rows: int, directory: str) -> list[dict[str, Any]]:
    out = []
    for count in (rows // 4, rows // 2, rows):
        path = os.path.join(directory, f"rows_{count}.npy")
        make_rows(path, count)
        done = subprocess.run([sys.executable, __file__, "--pca-file", path], capture_output=True, text=True,
                              check=True)
        row = dict(kind="pca", case=f"{count} x 64 float32, top 5", **json.loads(done.stdout.strip().splitlines()[-1]))
        row["data_mb"] = os.path.getsize(path) / 2**20
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| case | ours | scipy peer | torch / numpy peer | applications ratio (ours / peer) | "
             "time ratio (ours / peer) |", "|---|---|---|---|---|---|"]
    for r in rows:
        if r["kind"] == "eigen":
            peers = []
            for peer, label in (("scipy", "eigsh"), ("lobpcg", "lobpcg")):
                peers.append(f"{label} tol={r[f'{peer}_tol']:g}: {r[f'{peer}_columns']} applications, "
                             f"{ms([t / 1e3 for t in r[f'{peer}_ms']])}" if f"{peer}_ms" in r else
                             f"{label}: residual {r[f'{peer}_residual']:.1e} at best (not met)")
            lines.append(f"| {r['case']} | {r['ours_steps']} steps, {r['ours_columns']} applications, residual "
                         f"{r['ours_residual']:.1e}, {ms([t / 1e3 for t in r['ours_ms']])} | {peers[0]} | {peers[1]} | "
                         + " / ".join(f"{r[f'ratio_columns_{p}']:.2f}" for p in ("scipy", "lobpcg")
                                      if f"ratio_columns_{p}" in r) + " | "
                         + " / ".join(f"{r[f'ratio_time_{p}']:.2f}" for p in ("scipy", "lobpcg")
                                      if f"ratio_time_{p}" in r) + " |")
        elif r["kind"] == "sqrtm":
            lines.append(f"| sqrtm {r['case']} | {r['ours_steps']} steps, residual {r['ours_residual']:.1e}, "
                         f"{ms([t / 1e3 for t in r['ours_ms']])} | scipy.linalg.sqrtm: residual "
                         f"{r['scipy_residual']:.1e}, {ms([t / 1e3 for t in r['scipy_ms']])} | eigh root: residual "
                         f"{r['eigh_residual']:.1e}, {ms([t / 1e3 for t in r['torch eigh_ms']])} | - | "
                         f"{r['ratio_time_scipy']:.2f} / {r['ratio_time_eigh']:.2f} |")
        else:
            lines.append(f"| PCA {r['case']} ({r['data_mb']:.0f} MiB) | {r['steps']} steps (a pass each, plus the "
                         f"statistics and residual passes), variance error "
                         f"{r['variance_error']:.1e}, {r['ours_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MiB | - | "
                         f"dense covariance + eigh: {r['dense_s']:.1f} s | - | {r['ours_s'] / r['dense_s']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("eigen", "sqrtm", "pca"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", help="where the PCA rows are written (default: a temporary directory)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--pca-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pca_file:
        print(json.dumps(run_pca(args.pca_file)))
        return 0
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    if args.only in (None, "eigen"):
        rows += bench_eigen(args.rounds)
    if args.only in (None, "sqrtm"):
        rows += bench_sqrtm(args.rounds)
    if args.only in (None, "pca"):
        with tempfile.TemporaryDirectory() as scratch:
            rows += bench_pca(args.rows, args.dir or scratch)
    command = "python bench/eigen.py" + (f" --only {args.only}" if args.only else "") + f" --rounds {args.rounds}"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    saved = Path(args.out) / "eigen.json"
    commands = [command]
    if args.only and saved.exists():  # one section re-measured: the other sections' rows are kept
        before = json.loads(saved.read_text())
        kept = [row for row in before["rows"] if row["kind"] != args.only]
        rows = sorted(kept + rows, key=lambda row: ("eigen", "sqrtm", "pca").index(row["kind"]))
        commands = [c for c in before["commands"] if c.split("--only ")[-1].split()[0] != args.only] + commands
    saved.write_text(json.dumps({"commands": commands, "rows": rows}, indent=1))
    measured = " and ".join(f"`{c}`" for c in commands)
    text = f"Measured by {measured} (CPU time, 1 thread, min / median of the rounds).\n\n{table(rows)}\n"
    (Path(args.out) / "eigen.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
