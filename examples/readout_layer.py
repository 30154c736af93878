"""A differentiable least-squares readout layer, trained end to end (``gdla.linalg``).

A small feature network φ (64-64-16, tanh) is trained on scikit-learn's 8×8 digits, but its
last layer is never learned by SGD: for every batch it is *solved*.  Each batch is split in
two; on the first half the ridge readout

    W = argmin ‖[φ(X) 1] W − Y‖² + λ‖W‖²  =  (ΦᵀΦ + λI)⁻¹ ΦᵀY      (Y one-hot)

is found by ``gdla.linalg.solve(ΦᵀΦ + λI, ΦᵀY, assume="spd")`` (conjugate gradient) — or
``gdla.linalg.lstsq(Φ, Y)`` with ``--solver lstsq`` — and the loss is the readout's squared
error on the second half.  Adam updates φ only, with the gradient that reaches it *through the
solve* (implicit differentiation: one adjoint conjugate-gradient solve in backward).  Test
accuracy is that of the readout solved on the whole training set, before and after training.

The gradient is checked once: the first step's feature gradient against the same computation
through ``torch.linalg.solve`` (``torch.linalg.lstsq``), relative difference printed.

    python examples/readout_layer.py --epochs 15
    python examples/readout_layer.py --solver lstsq
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Optional, Sequence

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor, nn

import torch_gdla as gdla

DTYPE = torch.float64  # the readout's normal equations are squared-conditioned: float64 throughout
Readout = Callable[[Tensor, Tensor], Tensor]


def with_bias(features: Tensor) -> Tensor:
    return torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype)], dim=1)


def readouts(ridge: float, tol: float) -> dict[str, tuple[Readout, Readout]]:
    """For each solver: (the gdla readout, the same computation by torch.linalg).  Each maps
    (Φ, Y) to W, differentiably in Φ."""

    def normal(phi: Tensor) -> Tensor:
        return phi.mT @ phi + ridge * torch.eye(phi.shape[1], dtype=phi.dtype)

    return {
        "solve": (lambda phi, Y: gdla.linalg.solve(normal(phi), phi.mT @ Y, assume="spd", residual_tol=tol),
                  lambda phi, Y: torch.linalg.solve(normal(phi), phi.mT @ Y)),
        # the minimum-norm least-squares solution, no ridge (a half batch of 128 rows for 17 columns)
        "lstsq": (lambda phi, Y: gdla.linalg.lstsq(phi, Y, residual_tol=tol),
                  lambda phi, Y: torch.linalg.lstsq(phi, Y).solution),
    }


def accuracy(scores: Tensor, labels: Tensor) -> float:
    return float((scores.argmax(dim=1) == labels).double().mean())


def main(args: Optional[Sequence[str]] = None, verbose: bool = True) -> dict[str, float]:
    """Train φ through the solved readout; return the figures (accuracies, gradient check, times)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--features", type=int, default=16, help="φ's output width (the readout's inputs, + 1 bias)")
    parser.add_argument("--batch", type=int, default=256, help="rows per step (half to solve W, half to score it)")
    parser.add_argument("--solver", choices=("solve", "lstsq"), default="solve")
    parser.add_argument("--ridge", type=float, default=1e-3, help="λ of the ridge readout (--solver solve)")
    parser.add_argument("--tol", type=float, default=1e-10, help="residual_tol of the forward and adjoint solves")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(args)

    digits = load_digits()
    images = torch.tensor(digits.data / 16.0, dtype=DTYPE)  # 1797 × 64, pixel values 0..1
    labels = torch.tensor(digits.target)
    train_x, test_x, train_y, test_y = train_test_split(images, labels, test_size=0.25, random_state=opts.seed,
                                                        stratify=labels)
    onehot = nn.functional.one_hot(train_y, 10).to(DTYPE)
    torch.manual_seed(opts.seed)
    phi = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, opts.features), nn.Tanh()).to(DTYPE)
    readout, reference = readouts(opts.ridge, opts.tol)[opts.solver]

    def features(x: Tensor) -> Tensor:
        return with_bias(phi(x))

    def test_accuracy() -> float:
        # the readout solved on the whole training set (1347 rows), applied to the 450 test images
        with torch.no_grad():
            W = readout(features(train_x), onehot)
            return accuracy(features(test_x) @ W, test_y)

    def batch_loss(solver: Readout, x: Tensor, y: Tensor) -> Tensor:
        half = len(x) // 2
        phi_x = features(x)
        W = solver(phi_x[:half], y[:half])  # solved, not learned: a function of φ
        return (phi_x[half:] @ W - y[half:]).square().sum(dim=1).mean()

    # The gradient is real: one step's feature gradient, through gdla's solve and through torch.linalg's.
    generator = torch.Generator().manual_seed(opts.seed)
    order = torch.randperm(len(train_x), generator=generator)[:opts.batch]
    grads = []
    for solver in (readout, reference):
        phi.zero_grad()
        batch_loss(solver, train_x[order], onehot[order]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in phi.parameters()]))
    grad_difference = float((grads[0] - grads[1]).norm() / grads[1].norm())
    phi.zero_grad()

    before = test_accuracy()
    optimizer = torch.optim.Adam(phi.parameters(), lr=opts.lr)
    losses, started = [], time.perf_counter()
    for _ in range(opts.epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order) - opts.batch + 1, opts.batch):
            rows = order[start:start + opts.batch]
            optimizer.zero_grad()
            loss = batch_loss(readout, train_x[rows], onehot[rows])
            loss.backward()  # through the solve into φ
            optimizer.step()
            losses.append(loss.item())
    train_seconds = time.perf_counter() - started
    after = test_accuracy()
    epoch = max(1, len(losses) // max(1, opts.epochs))  # steps per epoch
    figures = {"accuracy_before": before, "accuracy_after": after, "grad_difference": grad_difference,
               "first_loss": sum(losses[:epoch]) / epoch, "last_loss": sum(losses[-epoch:]) / epoch,
               "steps": len(losses), "train_seconds": train_seconds}
    if verbose:
        how = (f"gdla.linalg.solve(ΦᵀΦ + {opts.ridge:g} I, ΦᵀY, assume='spd')" if opts.solver == "solve"
               else "gdla.linalg.lstsq(Φ, Y)")
        print(f"readout per batch: {how}; φ 64-64-{opts.features} (tanh) trained by Adam through it")
        print(f"first step's gradient of φ, gdla vs torch.linalg.{opts.solver}: relative difference "
              f"{grad_difference:.1e}")
        print(f"held-out half-batch loss: first epoch {figures['first_loss']:.3f} -> last {figures['last_loss']:.3f} "
              f"({len(losses)} steps, {train_seconds:.1f} s)")
        print(f"test accuracy of the solved readout: untrained φ {before:.4f} -> trained φ {after:.4f}")
    return figures


if __name__ == "__main__":
    main()
