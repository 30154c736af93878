"""A torch_gdla problem inside someone else's training loop, with warm start.

A square linear layer ``W`` is trained (Adam) to map x to T x; alongside, an approximate
inverse ``X ≈ W⁻¹`` is kept up to date (as an invertible layer, a normalising flow or a
preconditioner needs) by a ``gdla.MatrixInverse`` problem: after each training step its matrix
buffer takes the new W and a couple of conjugate-gradient steps move X from where it was.
The matrix drifts far over training, yet ‖XW − I‖/√n stays small; the same few steps from a
fresh start each time (cold) are far off.

    python examples/warm_start_inverse.py --inner-steps 2
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

import torch_gdla as gdla


def refresh(inverse: gdla.MatrixInverse, matrix: torch.Tensor, steps: int) -> float:
    """Load the drifted matrix and take ``steps`` optimizer steps from the current X; return
    the relative residual ‖XW − I‖/√n afterwards."""
    with torch.no_grad():
        inverse.M.copy_(matrix)
    # A fresh optimizer each time: CG's previous directions belong to the previous matrix.
    optimizer = gdla.optim.ConjugateGradient(inverse.parameters(), quadratic=True)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = inverse()
        loss.backward()
        return loss

    for _ in range(steps):
        optimizer.step(closure)
    return inverse.residual()


def main(n: int = 8, train_steps: int = 300, inner_steps: int = 2, lr: float = 0.01, seed: int = 0,
         verbose: bool = True) -> dict[str, float]:
    """Train, keep the inverse up to date, and return the figures."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.eye(n) + 0.5 * torch.randn(n, n, generator=generator) / n**0.5
    inputs = torch.randn(512, n, generator=generator)
    outputs = inputs @ target.T
    layer = nn.Linear(n, n, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(n))
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
    start = layer.weight.detach().clone()

    # One full solve at the start (the library default, to its default tolerance) ...
    # (Each problem gets its own copy: M is a buffer that refresh() overwrites in place.)
    warm = gdla.MatrixInverse(start.clone())
    gdla.solve(warm)
    stale = warm.solution.clone()  # the inverse of the start, never refreshed
    cold = gdla.MatrixInverse(start.clone())  # ... and, for comparison, the seeded random start every time

    warm_errors, cold_errors, losses = [], [], []
    for _ in range(train_steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(layer(inputs), outputs)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        weight = layer.weight.detach()
        warm_errors.append(refresh(warm, weight, inner_steps))
        with torch.no_grad():
            cold.X.copy_(gdla.problems.starts.seeded_uniform(cold.X.shape, cold.seed, cold.X))
        cold_errors.append(refresh(cold, weight, inner_steps))
    weight = layer.weight.detach()
    figures = {
        "drift": float(torch.linalg.matrix_norm(weight - start) / torch.linalg.matrix_norm(start)),
        "final_loss": losses[-1],
        "warm_max_error": max(warm_errors),
        "warm_final_error": warm_errors[-1],
        "cold_median_error": sorted(cold_errors)[len(cold_errors) // 2],
        "stale_error": float(torch.linalg.matrix_norm(stale @ weight - torch.eye(n)) / n**0.5),
        "inverse_error": float(torch.linalg.matrix_norm(warm.solution - torch.linalg.inv(weight))
                               / torch.linalg.matrix_norm(torch.linalg.inv(weight))),
    }
    if verbose:
        print(f"W drifted by {figures['drift']:.3f} (relative) over {train_steps} training steps; "
              f"training loss {losses[0]:.3g} -> {losses[-1]:.3g}")
        print(f"warm start, {inner_steps} CG steps per training step: max ‖XW − I‖/√n {figures['warm_max_error']:.2e}, "
              f"final {figures['warm_final_error']:.2e}, ‖X − W⁻¹‖/‖W⁻¹‖ {figures['inverse_error']:.2e}")
        print(f"cold start, same steps:                  median ‖XW − I‖/√n {figures['cold_median_error']:.2e}")
        print(f"no refresh (the start's inverse):        final  ‖XW − I‖/√n {figures['stale_error']:.2e}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--inner-steps", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.n, args.train_steps, args.inner_steps, args.lr, args.seed)
