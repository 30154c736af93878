"""The linear-system tutorial's MLP on a dataset that ships with scikit-learn, plus a least-squares readout.

The tutorial's network (784-512-256-10, ReLU, Softmax) becomes 64-512-256-10 for the 8×8 digits,
trained with Lightning.  Then the trained penultimate features (256, plus a bias column) are
kept and the last layer is replaced by the least-squares readout W = argmin ‖[F 1] W − Y‖
(Y one-hot), solved by gradient descent with ``gdla.LinearSystem``; the two classifiers are
compared by test accuracy.

    python examples/mlp_digits.py --epochs 10
"""
from __future__ import annotations

import argparse
import time

import pytorch_lightning as pl
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

import torch_gdla as gdla
from torch_gdla.lightning.support import quiet_lightning


class DigitsMLP(pl.LightningModule):
    """The linear-system tutorial's ``Neural`` with 64 inputs: Linear-ReLU-Linear-ReLU-Linear-Softmax."""

    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.lr = lr
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(256, 10), nn.Softmax(dim=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        # The network outputs probabilities (the tutorial's Softmax), so the loss is their negative log.
        return nn.functional.nll_loss(self(images).clamp_min(1e-12).log(), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def accuracy(scores: Tensor, labels: Tensor) -> float:
    return float((scores.argmax(dim=1) == labels).float().mean())


def main(epochs: int = 10, seed: int = 0, verbose: bool = True) -> dict[str, float]:
    """Train, solve the readout, and return the figures (accuracies, readout residual, times)."""
    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32)  # pixel values 0..16 -> 0..1
    labels = torch.tensor(digits.target)
    train_x, test_x, train_y, test_y = train_test_split(images, labels, test_size=0.25, random_state=seed,
                                                        stratify=labels)
    pl.seed_everything(seed, verbose=False)
    model = DigitsMLP()
    loader = DataLoader(TensorDataset(train_x, train_y), batch_size=64, shuffle=True)
    started = time.perf_counter()
    with quiet_lightning():
        trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, accelerator="cpu", devices=1)
        trainer.fit(model, loader)
    train_seconds = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        mlp_accuracy = accuracy(model(test_x), test_y)
        features_train, features_test = model.features(train_x), model.features(test_x)

    def with_bias(features: Tensor) -> Tensor:
        # float64: ReLU features are rank-deficient (dead units give zero columns), and float32
        # conjugate gradient stalls on such a badly conditioned least-squares problem.
        features = features.double()
        return torch.cat([features, torch.ones(len(features), 1, dtype=features.dtype)], dim=1)

    # Least squares [F 1] W ≈ one-hot(y): 1347×257 features, 10 right-hand sides, solved by the
    # library default (conjugate gradient with the exact step of a quadratic loss) from W = 0,
    # so it reaches the minimum-norm solution; stop at normal-equation residual 1e-6.
    targets = nn.functional.one_hot(train_y, 10).double()
    readout = gdla.LinearSystem(with_bias(features_train), targets)
    started = time.perf_counter()
    result = gdla.solve(readout, residual_tol=1e-6, max_steps=1000)
    solve_seconds = time.perf_counter() - started
    readout_accuracy = accuracy(with_bias(features_test) @ result.solution, test_y)
    figures = {"mlp_accuracy": mlp_accuracy, "readout_accuracy": readout_accuracy, "readout_steps": result.steps,
               "readout_residual": result.residual, "readout_converged": result.converged,
               "train_seconds": train_seconds, "solve_seconds": solve_seconds}
    if verbose:
        print(f"MLP 64-512-256-10, {epochs} epochs:      test accuracy {mlp_accuracy:.4f} ({train_seconds:.1f} s)")
        print(f"least-squares readout (gdla):   test accuracy {readout_accuracy:.4f} "
              f"({result.steps} CG steps, residual {result.residual:.2e}, {result.reason}; {solve_seconds:.1f} s)")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    main(**vars(parser.parse_args()))
