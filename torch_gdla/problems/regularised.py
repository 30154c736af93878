"""Weighted, ridge, lasso and non-negative least squares (``LinearSystem(A, b, weights=..., l2=...,
l1=..., nonnegative=...)``).

Objective per right-hand side: ``½‖W^½(Ax − b)‖² + ½·l2‖x‖² + l1‖x‖₁`` (subject to x ≥ 0 when
nonnegative).  The loss is that objective × 2/(m·k), so with no regularisation it is the plain
mse; its minimiser satisfies ``AᵀW(Ax − b) + l2·x + l1·∂‖x‖₁ ∋ 0`` (ridge: the closed form
``(AᵀWA + l2·I)x = AᵀWb``; orthonormal lasso: soft-thresholding of Aᵀb at l1).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import Tensor

from ..errors import UnsupportedInputError
from ..matrices import VectorLike
from ..operators import accurate, adjoint, matmul, rmatmul
from ..optim.krylov import LinearForm
from ..validation import check_bool, check_dense, check_number
from .linear_problem import norm_bound
from .linear_system import LinearSystem
from .weighting import sqrt_weights, weighted_normal, weighted_operator, weights_of


class RegularisedLeastSquares(LinearSystem):
    """Weighted, ridge, lasso and non-negative least squares: per right-hand side x minimises
    ``½‖W^½(Ax − b)‖² + ½·l2‖x‖² + l1‖x‖₁`` (subject to ``x ≥ 0`` with ``nonnegative=True``);
    the loss is that × 2/(m·k).  ``LinearSystem(A, b, ...)`` builds it when any of these is given.

    Args:
        A, b, init, seed: as for :class:`LinearSystem`.
        weights: one per row of A (shape ``(m,)`` or ``(..., m)``), >= 0: each multiplies its row's
            squared error.
        l2: the ridge weight; l1: the lasso weight (both >= 0; 0 turns the term off).
        nonnegative: constrain x >= 0 (non-negative least squares).

    ``residual()`` is the relative optimality measure (gradient for weighted/ridge, minimum-norm
    subgradient for lasso, projected gradient for non-negative), divided by ``‖AᵀWb‖``.  l1 and
    nonnegative make the loss non-quadratic; ``default_optimizer()`` then returns
    ``gdla.optim.ProximalGradient`` (exact proximal/projected steps) and the solution is the
    last iterate.
    """

    _sqrt_w: Optional[Tensor]

    def _init_variant(self, weights: Optional[VectorLike], l2: float, l1: float, nonnegative: bool) -> None:
        self.l2 = _check_penalty(l2, "l2")
        self.l1 = _check_penalty(l1, "l1")
        self.nonnegative = check_bool(nonnegative, "nonnegative")
        self.register_buffer("_sqrt_w", sqrt_weights(weights, self.A))
        # Nonsmooth (l1) and constrained (x >= 0) problems are not quadratic: no exact line search.
        self.quadratic = not (self.l1 > 0 or self.nonnegative)
        # The proximal method evaluates the loss at extrapolated points and converges linearly: the
        # lowest loss seen stops moving (rounding) around residual ~ sqrt(eps), before the iterate
        # does, so the solution is the last iterate (exact zeros), as for stochastic problems.
        self.last_iterate = not self.quadratic
        if self.nonnegative:
            with torch.no_grad():
                self.x.clamp_(min=0)  # a feasible start
        # Relative residuals divide by ‖AᵀWb‖, the optimality measure's value at x = 0.
        self._rhs_norms = self._member_norm(weighted_normal(self.A, self._sqrt_w, self._columns(self.b)))

    def _weighted_matrix(self) -> Tensor:
        """W^½A for a dense A (refused otherwise)."""
        check_dense(self.A, "A", "this needs the dense weighted matrix", "use a dense A")
        weighted = weighted_operator(self.A, self._sqrt_w)
        assert isinstance(weighted, Tensor)  # a dense A gives the dense product
        return weighted

    def linear_form(self) -> LinearForm:
        """(‖W^½(AX − B)‖² + l2‖X‖²)/(m·k): CGLS on W^½A with damping l2 (quadratic variants only)."""
        A, sqrt_w = self.A, self._sqrt_w
        B = self._columns(self.b)
        if sqrt_w is None:
            apply, apply_t, rhs = (lambda P: matmul(A, P)), adjoint(A), B
        else:
            transpose = adjoint(A)
            apply, apply_t, rhs = (lambda P: sqrt_w * matmul(A, P)), (lambda S: transpose(sqrt_w * S)), sqrt_w * B
        return self._form(apply, apply_t, rhs, False, energy=False, scale=1.0 / (A.shape[-2] * self.num_rhs),
                          weights=weights_of(sqrt_w), l2=self.l2, normal_residual=True)

    def _loss(self, reduce_batch: bool) -> Tensor:
        x = self._columns(self.x)
        difference = matmul(self.A, x) - self._columns(self.b)
        if self._sqrt_w is not None:
            difference = difference * self._sqrt_w
        m, k = difference.shape[-2:]
        loss = difference.square().sum(dim=(-2, -1))
        if self.l2 > 0:
            loss = loss + self.l2 * x.square().sum(dim=(-2, -1))
        if self.l1 > 0:
            loss = loss + 2.0 * self.l1 * x.abs().sum(dim=(-2, -1))
        loss = loss / (m * k)
        return loss.sum() if reduce_batch else loss

    @torch.no_grad()
    def residuals(self) -> Tensor:
        """The norm of the optimality measure, relative to its value at x = 0 (‖AᵀWb‖):
          weighted / ridge: the gradient AᵀW(Ax − b) + l2·x of the (smooth) objective;
          lasso: the minimum-norm subgradient (g + l1·sign(x) where x ≠ 0, the soft-threshold of
                 g at l1 where x = 0), zero exactly at the lasso's optimality conditions;
          nonnegative: the projected gradient (g where x > 0, min(g, 0) where x = 0), the KKT
                 residual of non-negative least squares (with l1: g + l1 in place of g); an
                 entry x < 0 makes it at least 1 (infeasible: not a solution)."""
        A = accurate(self.A)  # float64: it decides convergence
        x, b = self._columns(self.x).to(A.dtype), self._columns(self.b).to(A.dtype)
        weights = None if self._sqrt_w is None else self._sqrt_w.to(A.dtype).square()
        difference = matmul(A, x) - b
        gradient = rmatmul(A, difference * weights if weights is not None else difference)
        if self.l2 > 0:
            gradient = gradient + self.l2 * x
        if self.l1 > 0:
            if self.nonnegative:
                gradient = gradient + self.l1
            else:
                shrunk = torch.sign(gradient) * (gradient.abs() - self.l1).clamp_min(0)
                gradient = torch.where(x != 0, gradient + self.l1 * torch.sign(x), shrunk)
        if self.nonnegative:
            gradient = torch.where(x > 0, gradient, gradient.clamp_max(0))
            # an infeasible entry (x < 0) counts as a relative residual of at least 1
            scale = self._rhs_norms.reshape(*self._rhs_norms.shape, 1, 1).expand_as(x)
            gradient = torch.where(x < 0, torch.maximum(gradient.abs(), scale), gradient)
        return self._relative(self._member_norm(gradient))

    def residual_bound(self, loss: float) -> Optional[float]:
        return None  # the loss (regularisation included) does not bound the optimality measure

    @torch.no_grad()
    def condition_number(self) -> Optional[float]:
        if not self.dense:
            return None
        m, n = self.shape
        singular = torch.linalg.svdvals(self._weighted_matrix())
        largest = singular.max(dim=-1).values.square() + self.l2
        smallest = (singular.min(dim=-1).values.square() if m >= n else torch.zeros_like(largest)) + self.l2
        return float((largest / smallest).max()) if bool((smallest > 0).all()) else math.inf

    @property
    def singular_advice(self) -> Optional[str]:  # type: ignore[override]
        return None  # a regularised problem has a solution whatever the rank of A

    def reference(self) -> Tensor:
        """The closed form ``(AᵀWA + l2·I)⁻¹AᵀWb`` (``pinv(W^½A) W^½b`` without l2); l1 and
        nonnegative have none."""
        if self.l1 > 0 or self.nonnegative:
            raise UnsupportedInputError("LinearSystem with l1 or nonnegative has no closed form (that is why it is "
                                        "solved by descent); compare with scipy.optimize.nnls or a lasso solver instead")
        weighted = self._weighted_matrix()
        rhs = self._columns(self.b) * self._sqrt_w if self._sqrt_w is not None else self._columns(self.b)
        if self.l2 > 0:
            n = self.A.shape[-1]
            gram = weighted.mT @ weighted + self.l2 * torch.eye(n, dtype=self.A.dtype, device=self.A.device)
            solution = torch.linalg.solve(gram, weighted.mT @ rhs)
        else:
            solution = torch.linalg.pinv(weighted) @ rhs
        return self._from_columns(solution)

    def measures(self, reference: bool = False) -> dict[str, Any]:
        """The residual, and the reference error for weighted/ridge only (l1 and nonnegative
        have no closed form to compare with)."""
        return super().measures(reference and not (self.l1 > 0 or self.nonnegative))

    @torch.no_grad()
    def lipschitz(self) -> float:
        """The Lipschitz constant of the smooth part of the loss's gradient (the largest member's):
        2/(m·k)·(‖W^½A‖₂² + l2).  ``1/lipschitz()`` is a step length that always converges."""
        m = self.A.shape[-2]
        return 2.0 / (m * self.num_rhs) * (norm_bound(weighted_operator(self.A, self._sqrt_w)) ** 2 + self.l2)

    def default_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer ``gdla.solve`` uses when none is given: conjugate gradient with the exact
        step when the loss is quadratic (weighted, ridge); otherwise accelerated proximal
        gradient (FISTA with restart) with step 1/L, which handles the l1 term by its exact
        proximal step and ``nonnegative`` by projection."""
        from ..optim import ProximalGradient

        if self.quadratic:
            return super().default_optimizer()  # CGLS on W^½A, damped by l2
        m = self.A.shape[-2]
        return ProximalGradient(self.parameters(), lr=1.0 / self.lipschitz(), l1=2.0 * self.l1 / (m * self.num_rhs),
                                nonnegative=self.nonnegative)

    def _variant_arguments(self) -> dict[str, Any]:
        # Only √w is kept; (√w)² is w to rounding, and the piece takes its square root again.
        return dict(weights=weights_of(self._sqrt_w), l2=self.l2, l1=self.l1, nonnegative=self.nonnegative,
                    preconditioner=self.preconditioner)


def _check_penalty(value: Any, name: str) -> float:
    norm = "‖x‖²" if name == "l2" else "‖x‖₁"
    return check_number(value, name, meaning=f"the weight of the {norm} penalty; 0 turns it off")
