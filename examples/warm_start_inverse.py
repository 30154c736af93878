"""A torch_gdla inverse inside someone else's training loop, with warm start (``gdla.linalg.inv``).

A square linear layer ``W`` is trained (Adam) to map x to T x; alongside, an approximate
inverse ``X ≈ W⁻¹`` is kept up to date (as an invertible layer, a normalising flow or a
preconditioner needs): after each training step ``gdla.linalg.inv_ex(W, init=X, max_steps=2)``
moves X from where it was by at most two conjugate-gradient steps (fewer when X already meets
the default tolerance).  The matrix drifts far over training, yet ‖XW − I‖/√n stays small; the
same few steps from the default (seeded random) start each time — cold — are far off.

    python examples/warm_start_inverse.py --inner-steps 2
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

import torch
from torch import nn

import torch_gdla as gdla


def residual(X: torch.Tensor, W: torch.Tensor) -> float:
    """‖XW − I‖/√n."""
    n = W.shape[-1]
    return float(torch.linalg.matrix_norm(X @ W - torch.eye(n, dtype=W.dtype)) / n**0.5)


def main(args: Optional[Sequence[str]] = None, verbose: bool = True) -> dict[str, float]:
    """Train, keep the inverse up to date, and return the figures (``args``: the command line's)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--inner-steps", type=int, default=2, help="at most this many CG steps per training step")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(args)
    n, train_steps, inner_steps, lr, seed = opts.n, opts.train_steps, opts.inner_steps, opts.lr, opts.seed
    generator = torch.Generator().manual_seed(seed)
    target = torch.eye(n) + 0.5 * torch.randn(n, n, generator=generator) / n**0.5
    inputs = torch.randn(512, n, generator=generator)
    outputs = inputs @ target.T
    layer = nn.Linear(n, n, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(n))
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
    start = layer.weight.detach().clone()

    # One full solve at the start (the default tolerance) ...
    X = gdla.linalg.inv(start)
    stale = X.clone()  # the inverse of the start, never refreshed

    warm_errors, cold_errors, losses, warm_steps = [], [], [], []
    warm_to_tol, cold_to_tol = [], []  # steps to the default tolerance from each start
    for _ in range(train_steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(layer(inputs), outputs)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        weight = layer.weight.detach()
        # ... then at most `inner_steps` steps from the previous X (check=False: not converged is expected)
        previous = X
        X, result = gdla.linalg.inv_ex(weight, init=previous, max_steps=inner_steps)
        warm_errors.append(residual(X, weight))
        warm_steps.append(result.steps)
        # ... against the same steps from the default start (cold)
        cold, _ = gdla.linalg.inv_ex(weight, max_steps=inner_steps)
        cold_errors.append(residual(cold, weight))
        warm_to_tol.append(gdla.linalg.inv_ex(weight, init=previous, check=True)[1].steps)
        cold_to_tol.append(gdla.linalg.inv_ex(weight, check=True)[1].steps)
    weight = layer.weight.detach()
    figures = {
        "drift": float(torch.linalg.matrix_norm(weight - start) / torch.linalg.matrix_norm(start)),
        "final_loss": losses[-1],
        "warm_max_error": max(warm_errors),
        "warm_final_error": warm_errors[-1],
        "cold_median_error": sorted(cold_errors)[len(cold_errors) // 2],
        "stale_error": residual(stale, weight),
        "inverse_error": float(torch.linalg.matrix_norm(X - torch.linalg.inv(weight))
                               / torch.linalg.matrix_norm(torch.linalg.inv(weight))),
        "warm_mean_steps": sum(warm_steps) / train_steps,
        "warm_steps_to_tol": sum(warm_to_tol) / train_steps,
        "cold_steps_to_tol": sum(cold_to_tol) / train_steps,
    }
    if verbose:
        print(f"W drifted by {figures['drift']:.3f} (relative) over {train_steps} training steps; "
              f"training loss {losses[0]:.3g} -> {losses[-1]:.3g}")
        print(f"warm start, ≤ {inner_steps} CG steps per training step ({figures['warm_mean_steps']:.2f} on average):"
              f" max ‖XW − I‖/√n {figures['warm_max_error']:.2e}, "
              f"final {figures['warm_final_error']:.2e}, ‖X − W⁻¹‖/‖W⁻¹‖ {figures['inverse_error']:.2e}")
        print(f"cold start, same steps:                  median ‖XW − I‖/√n {figures['cold_median_error']:.2e}")
        print(f"no refresh (the start's inverse):        final  ‖XW − I‖/√n {figures['stale_error']:.2e}")
        print(f"to the default tolerance: warm {figures['warm_steps_to_tol']:.2f} steps per training step on average, "
              f"cold {figures['cold_steps_to_tol']:.2f}")
    return figures


if __name__ == "__main__":
    main()
