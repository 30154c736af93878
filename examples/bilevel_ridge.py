"""Bilevel ridge tuning: learn the ridge weight λ by the gradient of a validation loss.

The inner problem is solved iteratively and differentiated implicitly:

    w*(λ) = argmin_w ‖X_train w − y_train‖² + λ‖w‖²          gdla.linalg.minimize(fn, w0, params=(λ,))
    outer:  min over log λ of  mean (X_val w*(λ) − y_val)²    Adam on log λ

``gdla.linalg.minimize`` finds w* (L-BFGS, warm-started from the previous outer step's w*) and
its backward solves ``H v = w̄`` (H = 2(XᵀX + λI), by Hessian-vector products in conjugate
gradient) for dL/dλ = −vᵀ ∂λ∇w f = −2 vᵀw*.  ``--via solve`` poses the same inner problem as the
linear system (XᵀX + λI) w = Xᵀy for ``gdla.linalg.solve(..., assume="spd")`` instead.  The
answer is checked against a grid search over λ with the closed form (``torch.linalg.solve``).

    python examples/bilevel_ridge.py
    python examples/bilevel_ridge.py --via solve
"""
from __future__ import annotations

import argparse
import math
import time
from typing import Optional, Sequence

import torch
from torch import Tensor

import torch_gdla as gdla

DTYPE = torch.float64


def data(n_train: int, n_val: int, features: int, noise: float, seed: int) -> tuple[Tensor, ...]:
    """A noisy linear model with more features than the training set supports: ridge helps."""
    g = torch.Generator().manual_seed(seed)
    truth = 0.3 * torch.randn(features, generator=g, dtype=DTYPE)
    X = torch.randn(n_train + n_val, features, generator=g, dtype=DTYPE)
    y = X @ truth + noise * torch.randn(n_train + n_val, generator=g, dtype=DTYPE)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def closed_form(X: Tensor, y: Tensor, lam: Tensor) -> Tensor:
    """(XᵀX + λI)⁻¹Xᵀy, by torch.linalg (differentiable in λ by autograd through the factorisation)."""
    return torch.linalg.solve(X.mT @ X + lam * torch.eye(X.shape[1], dtype=X.dtype), X.mT @ y)


def main(args: Optional[Sequence[str]] = None, verbose: bool = True) -> dict[str, float]:
    """Tune λ by its hypergradient and by a grid; return both answers and the hypergradient check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--via", choices=("minimize", "solve"), default="minimize")
    parser.add_argument("--steps", type=int, default=60, help="outer (Adam) steps on log λ")
    parser.add_argument("--lr", type=float, default=0.2, help="Adam's learning rate on log λ")
    parser.add_argument("--log-lambda", type=float, default=0.0, help="the start, log λ")
    parser.add_argument("--grid", type=int, default=201, help="grid points, log-spaced over 1e-3 .. 1e4")
    parser.add_argument("--n-train", type=int, default=60)
    parser.add_argument("--n-val", type=int, default=200)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(args)
    X, y, X_val, y_val = data(opts.n_train, opts.n_val, opts.features, opts.noise, opts.seed)

    def fn(w: Tensor, lam: Tensor) -> Tensor:
        return (X @ w - y).square().sum() + lam * w.square().sum()

    def inner(lam: Tensor, start: Tensor) -> tuple[Tensor, int]:
        """w*(λ), attached to λ's graph, and the inner iterations it took."""
        if opts.via == "minimize":
            w, result = gdla.linalg.minimize_ex(fn, start, params=(lam,), residual_tol=1e-10, check=True)
        else:
            A = X.mT @ X + lam * torch.eye(X.shape[1], dtype=DTYPE)
            w, result = gdla.linalg.solve_ex(A, X.mT @ y, assume="spd", init=start, residual_tol=1e-12, check=True)
        return w, result.steps

    def validation(w: Tensor) -> Tensor:
        return (X_val @ w - y_val).square().mean()

    # The hypergradient at the start, against autograd through torch.linalg.solve's closed form.
    grads = []
    for solver in ("gdla", "torch"):
        log_lam = torch.tensor(opts.log_lambda, dtype=DTYPE, requires_grad=True)
        lam = log_lam.exp()
        w = inner(lam, torch.zeros(opts.features, dtype=DTYPE))[0] if solver == "gdla" else closed_form(X, y, lam)
        validation(w).backward()
        grads.append(float(log_lam.grad))
    hypergradient_difference = abs(grads[0] - grads[1]) / abs(grads[1])

    # Gradient descent on log λ (λ > 0 throughout), each inner solve warm-started from the last.
    log_lam = torch.tensor(opts.log_lambda, dtype=DTYPE, requires_grad=True)
    optimizer = torch.optim.Adam([log_lam], lr=opts.lr)
    w_prev, inner_steps = torch.zeros(opts.features, dtype=DTYPE), []
    started = time.perf_counter()
    for _ in range(opts.steps):
        optimizer.zero_grad()
        w, steps = inner(log_lam.exp(), w_prev)
        loss = validation(w)
        loss.backward()  # through the inner solve: dL/dλ by implicit differentiation
        optimizer.step()
        w_prev = w.detach()
        inner_steps.append(steps)
    tuned_seconds = time.perf_counter() - started
    tuned_lambda = float(log_lam.detach().exp())
    with torch.no_grad():
        tuned_loss = float(validation(closed_form(X, y, torch.tensor(tuned_lambda, dtype=DTYPE))))

    # The grid search: the closed form at each λ.
    grid = torch.logspace(-3, 4, opts.grid, dtype=DTYPE)
    with torch.no_grad():
        losses = torch.stack([validation(closed_form(X, y, lam)) for lam in grid])
    best = int(losses.argmin())
    figures = {"tuned_lambda": tuned_lambda, "tuned_loss": tuned_loss, "grid_lambda": float(grid[best]),
               "grid_loss": float(losses[best]), "start_loss": float(validation(closed_form(X, y, torch.tensor(
                   math.exp(opts.log_lambda), dtype=DTYPE)))), "hypergradient_difference": hypergradient_difference,
               "first_inner_steps": inner_steps[0], "last_inner_steps": inner_steps[-1], "seconds": tuned_seconds}
    if verbose:
        print(f"{opts.n_train} training rows, {opts.features} features, noise {opts.noise:g}; inner problem by "
              f"gdla.linalg.{opts.via}")
        print(f"hypergradient dL/dlog λ at λ = {math.exp(opts.log_lambda):g}: gdla {grads[0]:.6g}, torch.linalg "
              f"{grads[1]:.6g} (relative difference {hypergradient_difference:.1e})")
        print(f"tuned by {opts.steps} Adam steps on log λ: λ = {tuned_lambda:.3f}, validation loss "
              f"{tuned_loss:.4f} (from {figures['start_loss']:.4f} at λ = {math.exp(opts.log_lambda):g}; inner "
              f"iterations {inner_steps[0]} at the first step, {inner_steps[-1]} warm at the last; "
              f"{tuned_seconds:.1f} s)")
        print(f"grid search, {opts.grid} λ in 1e-3 .. 1e4:      λ = {figures['grid_lambda']:.3f}, validation loss "
              f"{figures['grid_loss']:.4f}")
    return figures


if __name__ == "__main__":
    main()
