"""Run by tests/test_ddp.py: solve a streamed least-squares problem under Lightning's DDP.

    python tests/ddp_script.py DATA_DIR OUT_DIR DEVICES

Lightning's "ddp" strategy re-launches this script once per extra process, so it must be a
script.  Every rank writes ``solution_<rank>.pt`` (solution, residual, steps) to OUT_DIR.
"""
import functools
import os
import sys

import numpy as np
import torch

import torch_gdla as gdla


def main() -> None:
    data, out, devices = sys.argv[1], sys.argv[2], int(sys.argv[3])
    A, b = os.path.join(data, "A.npy"), os.path.join(data, "b.npy")
    rows = len(np.load(A, mmap_mode="r", allow_pickle=False))
    # One block of rows/devices rows per process, no shuffle: the DDP-averaged gradient of the
    # two half-data mean losses is the full-data gradient, so each epoch is one full-batch step.
    problem = gdla.StreamedLeastSquares(A, b, batch_size=rows // devices, shuffle=False, dtype="float64")
    optimizer = functools.partial(torch.optim.SGD, lr=0.4)
    epochs = int(os.environ.get("GDLA_EPOCHS", "30"))
    result = gdla.solve(problem, optimizer, tol=0, max_steps=10**9, max_epochs=epochs,
                        accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto")
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    torch.save({"solution": result.solution, "residual": result.residual, "steps": result.steps,
                "world": devices, "reason": result.reason},
               os.path.join(out, f"solution_{rank}.pt"))


if __name__ == "__main__":
    main()
