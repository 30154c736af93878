"""Every built-in problem, and a problem defined only in this file, honour the problem contract
(tests/conformance.py); the test-only problem also runs from a config, as a new operation would."""
from __future__ import annotations

import math
import textwrap

import pytest
import torch
from conformance import check_caller_tensors_untouched, check_problem
from torch import Tensor, nn

import torch_gdla as gdla
from torch_gdla.validation import as_float_tensor, check_finite


def _matrix(n: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, n, generator=g, dtype=torch.float64) + n * torch.eye(n, dtype=torch.float64)).to(dtype)


def _rect(m: int, n: int, seed: int = 1, dtype: torch.dtype = torch.float64) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, n, generator=g, dtype=torch.float64).to(dtype)


def _spd(n: int, dtype: torch.dtype) -> Tensor:
    A = _matrix(n, seed=2)
    return (A @ A.mT / n + torch.eye(n, dtype=torch.float64)).to(dtype)


BUILT_IN = {
    "inverse": lambda d: gdla.MatrixInverse(_matrix(4, dtype=d)),
    "inverse right": lambda d: gdla.MatrixInverse(_matrix(4, dtype=d), side="right"),
    "inverse both": lambda d: gdla.MatrixInverse(_matrix(4, dtype=d), side="both"),
    "inverse spd": lambda d: gdla.MatrixInverse(_spd(4, d), assume="spd"),
    "inverse batched": lambda d: gdla.MatrixInverse(torch.stack([_matrix(3, s, d) for s in range(2)])),
    "linear system": lambda d: gdla.LinearSystem(_matrix(5, dtype=d), _rect(5, 1, dtype=d)[:, 0]),
    "least squares": lambda d: gdla.LinearSystem(_rect(8, 3, dtype=d), _rect(8, 2, seed=3, dtype=d)),
    "minimum norm": lambda d: gdla.LinearSystem(_rect(3, 6, dtype=d), _rect(3, 1, seed=3, dtype=d)[:, 0]),
    "linear system spd": lambda d: gdla.LinearSystem(_spd(5, d), _rect(5, 1, dtype=d)[:, 0], assume="spd"),
    "weighted ridge": lambda d: gdla.LinearSystem(_rect(8, 3, dtype=d), _rect(8, 1, seed=3, dtype=d)[:, 0],
                                                  weights=torch.linspace(0.5, 2, 8, dtype=d), l2=0.1),
    "lasso": lambda d: gdla.LinearSystem(_rect(8, 3, dtype=d), _rect(8, 1, seed=3, dtype=d)[:, 0], l1=0.05),
    "nnls": lambda d: gdla.LinearSystem(_rect(8, 3, dtype=d), _rect(8, 1, seed=3, dtype=d)[:, 0], nonnegative=True),
    "svd": lambda d: gdla.SVD(_rect(5, 4, dtype=d)),
    "svd truncated": lambda d: gdla.SVD(_rect(6, 4, dtype=d), rank=2),
    "svd penalty": lambda d: gdla.SVD(_rect(4, 4, dtype=d), method="penalty"),
    "matrix completion": lambda d: gdla.SVD(_rect(6, 2, dtype=d) @ _rect(2, 5, seed=4, dtype=d), rank=2,
                                            mask=torch.rand(6, 5, generator=torch.Generator().manual_seed(5)) < 0.8),
    "minimize": lambda d: gdla.Minimize("rosenbrock", torch.tensor([-1.0, 1.5], dtype=d)),
    "streamed": lambda d: gdla.StreamedLeastSquares(_rect(64, 3, dtype=d), _rect(64, 1, seed=3, dtype=d)[:, 0],
                                                    batch_size=None),
    "eigen": lambda d: gdla.SymmetricEigen(_spd(6, d), k=2),
    "eigen smallest": lambda d: gdla.SymmetricEigen((_rect(30, 30, dtype=d) + _rect(30, 30, dtype=d).mT) / 2, k=3,
                                                    largest=False),
    "eigen sparse": lambda d: gdla.SymmetricEigen(gdla.matrices.Poisson2D(6, dtype=str(d)[6:]).tensor(), k=2),
    "sqrtm": lambda d: gdla.MatrixSqrt(_spd(5, d)),
    "sqrtm inverse": lambda d: gdla.MatrixSqrt(_spd(5, d), inverse=True),
    "pca": lambda d: gdla.PCA(_rect(50, 6, dtype=d), k=2, batch_size=16),
}
# Runs whose default method cannot reach 1e-6 in the step budget are still checked for honesty.
BUDGET = {"svd penalty": 300, "minimize": 2000}


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_built_in_problem_conforms(name):
    check_problem(BUILT_IN[name], max_steps=BUDGET.get(name, 500))


@pytest.mark.parametrize("make_from", [
    lambda W: gdla.MatrixInverse(W),
    lambda W: gdla.LinearSystem(W, torch.ones(4, dtype=W.dtype)),
    lambda W: gdla.SVD(W, rank=2),
])
def test_a_solve_leaves_the_callers_parameters_and_grads_alone(make_from):
    check_caller_tensors_untouched(make_from, _matrix(4))


class ElementwiseSquareRoot(gdla.Problem):
    """x with x² = a entrywise (a > 0), from x = 1: a new operation written the way a user would.

    The loss mean((x² − a)²) is quartic, so the default (non-quadratic) conjugate gradient with a
    line search applies; the residual ‖x² − a‖ / ‖a‖ is computed from the data alone."""

    def __init__(self, a: list[float] | Tensor) -> None:
        super().__init__()
        target = as_float_tensor(a, "a")
        check_finite(target, "a")
        if not bool((target > 0).all()):
            raise ValueError("a must be positive to have a real square root")
        self.register_buffer("a", target)
        self.x = nn.Parameter(torch.ones_like(target))

    def forward(self) -> Tensor:
        return (self.x.square() - self.a).square().mean()

    @property
    def solution(self) -> Tensor:
        return self.x.detach()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        return torch.linalg.vector_norm(self.x.square() - self.a) / torch.linalg.vector_norm(self.a)


def test_a_problem_defined_here_conforms():
    check_problem(lambda d: ElementwiseSquareRoot(torch.tensor([2.0, 9.0, 0.25], dtype=d)))
    result = gdla.solve(ElementwiseSquareRoot(torch.tensor([2.0, 9.0, 0.25], dtype=torch.float64)))
    assert result.converged and torch.allclose(result.solution, torch.tensor([math.sqrt(2), 3.0, 0.5],
                                                                             dtype=torch.float64), atol=1e-7)


def test_a_problem_defined_here_runs_from_a_config(tmp_path, capsys):
    from torch_gdla.cli import main

    config = tmp_path / "sqrt.yaml"
    config.write_text(textwrap.dedent(f"""\
        model:
          problem:
            class_path: test_conformance.ElementwiseSquareRoot
            init_args: {{a: [2.0, 9.0, 0.25]}}
          criteria: {{residual_tol: 1e-6}}
        trainer:
          max_steps: 500
          logger: false
          enable_checkpointing: false
          enable_progress_bar: false
        """))
    main(["fit", "--config", str(config)])
    out = capsys.readouterr().out
    assert "converged:   True" in out and "3.0000" in out
