"""Solution-quality metrics as ``torchmetrics.Metric`` subclasses.

Each metric's ``update`` takes the problem itself, so the SolverModule can log any problem's
metrics without naming the operation: ``problem.metrics()`` says which apply.  States declare
their distributed reduction; nothing but ``add_state`` / ``update`` / ``compute`` is used.
Every metric reports the worst batch member seen since the last ``reset()``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["ObservedError", "OrthogonalityError", "ReferenceError", "RelativeResidual", "WorstMemberMetric"]


class WorstMemberMetric(Metric):
    """Base of the metrics below: ``values(problem)`` gives one number per batch member and the
    metric keeps the largest (reduced with ``max`` across processes)."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("worst", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="max")

    def values(self, problem: Any) -> Tensor:
        raise NotImplementedError

    def update(self, problem: Any) -> None:  # type: ignore[override]
        with torch.no_grad():
            values = self.values(problem).detach().to(device=self.worst.device, dtype=torch.float64)
        self.worst = torch.maximum(self.worst, values.max())

    def compute(self) -> Tensor:
        return self.worst


class RelativeResidual(WorstMemberMetric):
    """``problem.residuals()``: the problem's own solver-independent relative residual."""

    def values(self, problem: Any) -> Tensor:
        return problem.residuals()


class OrthogonalityError(WorstMemberMetric):
    """``problem.orthogonality_errors()``: how far factors meant to be orthonormal are from it,
    e.g. max(‖UᵀU − I‖_F, ‖VᵀV − I‖_F) for an SVD."""

    def values(self, problem: Any) -> Tensor:
        return problem.orthogonality_errors()


class ObservedError(WorstMemberMetric):
    """``problem.observed_errors()``: relative reconstruction error on the observed entries of
    a masked (matrix-completion) problem."""

    def values(self, problem: Any) -> Tensor:
        return problem.observed_errors()


class ReferenceError(WorstMemberMetric):
    """Relative error of the solution against ``problem.reference()``, the direct
    ``torch.linalg`` answer.

    The reference costs a direct solve, so it is computed on the first ``update`` and kept
    (``reset()`` clears the states, not the cached reference; the problem's data must not
    change in between).  A problem with ``reference_errors(reference)`` defines the error
    itself (an SVD compares singular values); otherwise the solution tensor is compared:
    ‖X − X_ref‖_F / ‖X_ref‖_F per batch member (the absolute error where X_ref = 0).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reference: Any = None

    def values(self, problem: Any) -> Tensor:
        if self._reference is None:
            self._reference = problem.reference()
        if hasattr(problem, "reference_errors"):
            return problem.reference_errors(self._reference)
        solution, reference = problem.solution, self._reference
        member_dims = tuple(range(len(problem.batch_shape), reference.dim()))
        if not member_dims:  # a scalar unknown
            return (solution - reference).abs()
        error = torch.linalg.vector_norm(solution - reference, dim=member_dims)
        scale = torch.linalg.vector_norm(reference, dim=member_dims)
        return torch.where(scale > 0, error / scale.clamp_min(torch.finfo(scale.dtype).tiny), error)
