"""Peers row 10: the Lightning path's per-step overhead against a pure torch loop of the same steps."""
# ruff: noqa: F405
from __future__ import annotations

import tempfile

import torch
from peer_common import *  # noqa: F403
from peer_profile import attach_profile
from run import quiet, seed_matrix, sgd, well_conditioned  # bench/run.py

import torch_gdla as gdla


# == 10. the Lightning path's per-step overhead ==================================================================
def lightning_case(args: argparse.Namespace, name: str, M: torch.Tensor, lr: float, steps: int) -> None:
    from pytorch_lightning.loggers import CSVLogger

    optimizer, folder = sgd(lr), tempfile.mkdtemp(prefix="gdla-peers-")

    def lightning() -> None:
        quiet(lambda: gdla.solve(gdla.MatrixInverse(M), optimizer=optimizer, tol=0, max_steps=steps,
                                 logger=CSVLogger(folder, name="bench")))

    def bare() -> list[torch.Tensor]:  # a pure torch loop: the losses stay tensors (no .item())
        problem = gdla.MatrixInverse(M)
        opt, losses = optimizer(problem.parameters()), []
        for _ in range(steps):
            opt.zero_grad()
            loss = problem()
            losses.append(loss.detach())
            loss.backward()
            opt.step()
        return losses

    times = measure({"lightning": lightning, "bare": bare}, args.rounds)
    rs = ratios(times["lightning"], times["bare"])
    row = add(Row("10", f"Lightning path vs pure torch loop, {name}, SGD(momentum 0.9), {steps} steps, CSV logging",
                  f"torch loop (no .item()): {fmt_times(times['bare'])}",
                  f"gdla.solve: {fmt_times(times['lightning'])}",
                  fmt_ratio(rs), "<= 1.1x", median(rs) <= 1.1, {"times": times, "ratios": rs, "steps": steps}))
    attach_profile(row, lightning, steps)


def rows_lightning(args: argparse.Namespace) -> None:
    n = 128 if args.quick else 512
    lightning_case(args, "seed 4x4 inverse", seed_matrix(torch.float32), 0.9, 2000 if args.quick else 10_000)
    lightning_case(args, f"{n}x{n} inverse", well_conditioned(n, dtype=torch.float32), n * n / 4,
                   50 if args.quick else 300)

