"""Streamed least squares on a .npy pair larger than one wants in memory: peak RSS and rows/s.

    python bench/streamed.py                      # 10,000,000 x 64 float32 (2.56 GB) in /tmp/gdla_streamed
    python bench/streamed.py --rows 1000000 --dir /tmp/small

Creates A.npy (rows x features, float32) and b.npy = A x* + noise (seeded) in --dir unless they
exist, then runs, each in a fresh subprocess so its peak RSS (VmHWM) is its own:
  * bare: a plain PyTorch mini-batch loop (Adam) over ``np.load(mmap_mode="r")`` slices;
  * gdla: ``gdla.solve(gdla.StreamedLeastSquares(A, b, batch_size=...), Adam)`` for the same
    epochs and batch size, then the normal-equation residual (a second pass over the data).
Prints one table: seconds, rows/s of the training passes, peak RSS, data size, residual.
The data files are not deleted (delete --dir yourself).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def make_data(directory: str, rows: int, features: int, seed: int = 0) -> tuple[str, str]:
    os.makedirs(directory, exist_ok=True)
    a_path, b_path = os.path.join(directory, "A.npy"), os.path.join(directory, "b.npy")
    if os.path.exists(a_path) and os.path.exists(b_path):
        A = np.load(a_path, mmap_mode="r")
        if A.shape == (rows, features):
            return a_path, b_path
    rng = np.random.default_rng(seed)
    x_true = rng.standard_normal(features).astype(np.float32)
    A = np.lib.format.open_memmap(a_path, mode="w+", dtype=np.float32, shape=(rows, features))
    b = np.lib.format.open_memmap(b_path, mode="w+", dtype=np.float32, shape=(rows,))
    chunk = 1_000_000
    for start in range(0, rows, chunk):
        stop = min(start + chunk, rows)
        block = rng.standard_normal((stop - start, features), dtype=np.float32)
        A[start:stop] = block
        b[start:stop] = block @ x_true + 0.1 * rng.standard_normal(stop - start, dtype=np.float32)
    A.flush(), b.flush()
    del A, b
    return a_path, b_path


def peak_rss_mb() -> float:
    """Peak resident set of this process, MiB.  VmHWM (Linux) starts afresh at exec; getrusage's
    ru_maxrss does not (it keeps the forking parent's peak across exec), hence VmHWM first."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run_bare(a_path: str, b_path: str, batch: int, epochs: int, lr: float) -> dict:
    import torch

    A = np.load(a_path, mmap_mode="r", allow_pickle=False)
    b = np.load(b_path, mmap_mode="r", allow_pickle=False)
    x = torch.zeros(A.shape[1], requires_grad=True)
    optimizer = torch.optim.Adam([x], lr=lr)
    blocks = np.arange(0, len(A), batch)
    generator = np.random.default_rng(314)
    start = time.perf_counter()
    for _ in range(epochs):
        for first in generator.permutation(blocks):
            rows = torch.from_numpy(np.array(A[first:first + batch]))
            targets = torch.from_numpy(np.array(b[first:first + batch]))
            optimizer.zero_grad()
            loss = (rows @ x - targets).square().mean()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rows_per_s": epochs * len(A) / seconds, "peak_rss_mb": peak_rss_mb(),
            "loss_last_batch": float(loss)}


def run_gdla(a_path: str, b_path: str, batch: int, epochs: int, lr: float) -> dict:
    import functools

    import pytorch_lightning  # noqa: F401  (imported before the clock starts, ~3 s)
    import torch

    import torch_gdla as gdla

    class Clock(pytorch_lightning.Callback):  # the training epochs only, not start-up or the residual
        def on_train_epoch_start(self, trainer, module):
            self.start = getattr(self, "start", None) or time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self.stop = time.perf_counter()

    clock = Clock()
    problem = gdla.StreamedLeastSquares(a_path, b_path, batch_size=batch, shuffle=True)
    start = time.perf_counter()
    result = gdla.solve(problem, functools.partial(torch.optim.Adam, lr=lr), tol=0, max_steps=10**9,
                        max_epochs=epochs, callbacks=[clock])
    total = time.perf_counter() - start
    start = time.perf_counter()
    problem.residual()  # one more pass (Aᵀb is cached): what one residual pass costs
    residual_pass = time.perf_counter() - start
    training = clock.stop - clock.start
    return {"seconds": training, "rows_per_s": epochs * problem.rows / training, "peak_rss_mb": peak_rss_mb(),
            "residual": result.residual, "steps": result.steps, "solve_seconds_total": total,
            "residual_pass_seconds": residual_pass}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--dir", default="/tmp/gdla_streamed")
    parser.add_argument("--batch", type=int, default=16384)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--only", choices=("bare", "gdla"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        a_path, b_path = os.path.join(args.dir, "A.npy"), os.path.join(args.dir, "b.npy")
        run = run_bare if args.only == "bare" else run_gdla
        print(json.dumps(run(a_path, b_path, args.batch, args.epochs, args.lr)))
        return
    start = time.perf_counter()
    a_path, b_path = make_data(args.dir, args.rows, args.features)
    size_mb = (os.path.getsize(a_path) + os.path.getsize(b_path)) / 2**20
    print(f"data: {args.rows} x {args.features} float32, {size_mb:.0f} MiB in {args.dir} "
          f"(ready in {time.perf_counter() - start:.0f} s)", flush=True)
    results = {}
    base = subprocess.run([sys.executable, "-c", "import torch, pytorch_lightning, torch_gdla, sys; "
                           f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
                           "import streamed; print(streamed.peak_rss_mb())"],
                          capture_output=True, text=True, check=True)
    print(f"peak RSS of the imports alone (torch, pytorch_lightning, torch_gdla): {float(base.stdout):.0f} MiB")
    for name in ("bare", "gdla"):
        command = [sys.executable, __file__, "--only", name, "--dir", args.dir, "--batch", str(args.batch),
                   "--epochs", str(args.epochs), "--lr", str(args.lr)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(name, results[name], flush=True)
    print(f"\n| loop | training s | rows/s | peak RSS MiB | RSS / data | residual |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        residual = f"{r['residual']:.2e}" if "residual" in r else "-"
        print(f"| {name} | {r['seconds']:.1f} | {r['rows_per_s']:.3g} | {r['peak_rss_mb']:.0f} | "
              f"{r['peak_rss_mb'] / size_mb:.2f} | {residual} |")
    print(f"\ngdla / bare throughput: {results['gdla']['rows_per_s'] / results['bare']['rows_per_s']:.2f}")


if __name__ == "__main__":
    main()
