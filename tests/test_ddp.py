"""Streamed least squares under Lightning's DDP: 2 CPU processes (gloo) give the single-process answer.

The DDP run is a subprocess (Lightning's "ddp" strategy re-launches the script it runs), see
tests/ddp_script.py.  Each of the 2 processes reads one half of the rows; the problem is
noisy, so a process that solved only its own half would land visibly elsewhere (checked).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import torch_gdla as gdla

pytestmark = pytest.mark.slow  # subprocesses: two gloo processes per test

SCRIPT = Path(__file__).resolve().parent / "ddp_script.py"
EPOCHS = 30
LR = 0.4


def _run(data: Path, out: Path, devices: int) -> list[dict]:
    out.mkdir()
    env = dict(os.environ, GDLA_EPOCHS=str(EPOCHS))
    for name in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "RANK"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, str(SCRIPT), str(data), str(out), str(devices)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [torch.load(out / f"solution_{rank}.pt") for rank in range(devices)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ddp_data")
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4000, 8))
    b = A @ rng.standard_normal(8) + 0.5 * rng.standard_normal(4000)  # noisy: halves disagree
    np.save(directory / "A.npy", A)
    np.save(directory / "b.npy", b)
    return directory, torch.from_numpy(A), torch.from_numpy(b)


def test_ddp_two_cpu_processes_equal_single_process(data, tmp_path):
    directory, A, b = data
    single = _run(directory, tmp_path / "single", 1)[0]
    ranks = _run(directory, tmp_path / "ddp", 2)
    assert [r["world"] for r in ranks] == [2, 2] and ranks[0]["steps"] == EPOCHS  # one step per epoch
    # the processes agree exactly (gradients all-reduced every step, same start)
    assert torch.equal(ranks[0]["solution"], ranks[1]["solution"])
    # the DDP iterate is exactly full-batch gradient descent on all 4000 rows
    x = torch.zeros(8, dtype=torch.float64)
    for _ in range(EPOCHS):
        x = x - LR * 2 / len(b) * A.T @ (A @ x - b)
    assert torch.allclose(ranks[0]["solution"], x, rtol=0, atol=1e-12)
    # ... and equals the single-process answer and the least-squares solution
    reference = torch.linalg.lstsq(A, b.unsqueeze(-1)).solution.squeeze(-1)
    assert torch.allclose(single["solution"], reference, rtol=0, atol=1e-9)
    assert torch.allclose(ranks[0]["solution"], single["solution"], rtol=0, atol=1e-9)
    # the residual is over all rows (all-reduced), not one process's half
    assert ranks[0]["residual"] == pytest.approx(ranks[1]["residual"]) and ranks[0]["residual"] < 1e-9
    # a process that solved only its half would be far from the full answer
    half = torch.linalg.lstsq(A[:2000], b[:2000].unsqueeze(-1)).solution.squeeze(-1)
    assert (half - reference).norm() > 1e-3


def _shard_worker(rank: int, world_size: int, init_file: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        g = torch.Generator().manual_seed(0)
        M = torch.randn(9, 9, generator=g, dtype=torch.float64) + 9 * torch.eye(9, dtype=torch.float64)
        problem = gdla.MatrixInverse(M)  # side="left": rows of X are independent
        X, result = gdla.sharding.run_shard(problem)  # rank/world from torch.distributed
        torch.save({"X": X, "pieces": result.solution.shape[-1], "converged": result.converged}, f"{out}_{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_row_sharded_inverse_on_two_processes(tmp_path):
    torch.multiprocessing.spawn(_shard_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "out")), nprocs=2)
    parts = [torch.load(tmp_path / f"out_{rank}.pt") for rank in range(2)]
    g = torch.Generator().manual_seed(0)
    M = torch.randn(9, 9, generator=g, dtype=torch.float64) + 9 * torch.eye(9, dtype=torch.float64)
    assert [p["pieces"] for p in parts] == [5, 4] and all(p["converged"] for p in parts)  # rows 0,2,..,8 / 1,3,..,7
    single = gdla.solve(gdla.MatrixInverse(M)).solution
    for p in parts:  # every process gathered the whole inverse
        assert torch.allclose(p["X"], single, atol=1e-10)
        assert torch.allclose(p["X"], torch.linalg.inv(M), atol=1e-10)
