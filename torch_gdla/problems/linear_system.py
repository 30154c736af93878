"""Linear systems and least squares by gradient descent (seed 002): x ≈ argmin mse(A@x, b)."""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from ..errors import ArgumentError
from ..matrices import MatrixLike, VectorLike
from ..validation import (
    as_float_tensor,
    as_matrix,
    check_bool,
    check_finite,
    check_init,
    check_int,
    check_number,
    describe,
)
from .base import Problem
from .inverse import _BestResidual, check_assume
from .losses import batched_mse
from .starts import seeded_uniform


class LinearSystem(Problem):
    """Solution ``x`` of ``A x = b`` in the least-squares sense.

    ``A`` has shape ``(..., m, n)`` (leading dimensions are a batch); ``b`` has shape
    ``(..., m)`` (one right-hand side) or ``(..., m, k)`` (k right-hand sides).  Square,
    over- and under-determined ``A`` are all accepted.  The start is ``x = 0`` (so gradient
    descent stays in the row space of A and reaches the minimum-norm solution of an
    underdetermined system, and the minimum-norm least-squares solution ``pinv(A) @ b`` of a
    rank-deficient one), a seeded uniform start with ``init="uniform"``, or a given tensor.

    ``assume="spd"`` declares A symmetric positive definite (checked: square, symmetric to
    rounding, a Cholesky factorisation, O(n³) once; refused otherwise).  The loss is then the
    energy ``(½xᵀAx − bᵀx) / n`` per right-hand side, summed over them and over batch members,
    whose gradient ``(Ax − b)/n`` has condition κ(A) instead of κ(A)²: same solution, several
    times fewer iterations for an ill-conditioned A.  ``residual()`` stays ‖Ax − b‖/‖b‖, so
    ``residual_tol`` (the default stopping rule) means the same; the loss is negative at the
    solution, so stop on ``residual_tol`` rather than ``tol``.  Default (None): the
    mean-squared-error loss, for any A.

    ``weights`` (one per row, >= 0), ``l2``, ``l1`` and ``nonnegative=True`` pose weighted, ridge,
    lasso and non-negative least squares: per right-hand side x minimises
    ``½‖W^½(Ax − b)‖² + ½·l2‖x‖² + l1‖x‖₁`` (subject to ``x ≥ 0``); the loss is that × 2/(m·k).
    ``residual()`` is then the relative optimality measure (gradient for weighted/ridge,
    minimum-norm subgradient for lasso, projected gradient for non-negative), divided by
    ``‖AᵀWb‖``.  l1 and nonnegative make the loss non-quadratic; ``default_optimizer()`` then
    returns ``gdla.optim.ProximalGradient`` (exact proximal/projected steps).
    """

    quadratic = True

    def __init__(
        self,
        A: MatrixLike,
        b: VectorLike,
        init: Optional[Union[str, Tensor]] = None,
        seed: int = 314,
        assume: Optional[str] = None,
        weights: Optional[VectorLike] = None,
        l2: float = 0.0,
        l1: float = 0.0,
        nonnegative: bool = False,
    ) -> None:
        super().__init__()
        matrix = as_matrix(A, "A")
        self.assume = check_assume(assume, matrix, "A")
        self._best_residual = _BestResidual()
        rhs = as_float_tensor(b, "b")
        check_finite(rhs, describe(b, "b"))
        check_int(seed, "seed")
        m, n = matrix.shape[-2:]
        batch = matrix.shape[:-2]
        if rhs.dim() == matrix.dim() - 1 and rhs.shape[-1] == m:
            self.vector_rhs = True
        elif rhs.dim() == matrix.dim() and rhs.shape[-2] == m:
            self.vector_rhs = False
        else:
            raise ArgumentError(
                f"b must have shape {(*batch, m)} (one right-hand side) or {(*batch, m, 'k')} (k right-hand sides) "
                f"to match {describe(A, 'A')} of shape {tuple(matrix.shape)}; got {tuple(rhs.shape)}"
            )
        if rhs.shape[: len(batch)] != batch:
                raise ArgumentError(
                f"b's batch dimensions {tuple(rhs.shape[:len(batch)])} must equal A's {tuple(batch)} "
                f"(A has shape {tuple(matrix.shape)}, b {tuple(rhs.shape)}); pass one right-hand side per batch member"
            )
        if rhs.numel() == 0:
            raise ArgumentError("b is empty; pass at least one right-hand side")
        rhs = rhs.to(matrix.dtype)
        self.register_buffer("A", matrix)
        self.register_buffer("b", rhs)
        shape = torch.Size((*batch, n) if self.vector_rhs else (*batch, n, rhs.shape[-1]))
        if init is None or (isinstance(init, str) and init == "zeros"):
            start = torch.zeros(shape, dtype=matrix.dtype, device=matrix.device)
        elif isinstance(init, str) and init == "uniform":
            start = seeded_uniform(shape, seed, matrix)
        elif isinstance(init, str):
            raise ArgumentError(f"init must be 'zeros', 'uniform' or a tensor of shape {tuple(shape)}; got {init!r}")
        else:
            start = check_init(init, "init", shape, matrix)
        self.x = nn.Parameter(start)
        self.seed = seed
        # Denominators of the relative residual, per member (0 means: report the absolute residual).
        columns = self._columns(rhs)
        self.register_buffer("_rhs_norms", self._member_norm(matrix.mT @ columns if self.least_squares else columns))
        self._init_regularisation(weights, l2, l1, nonnegative)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.A.shape[-2:])

    @property
    def least_squares(self) -> bool:
        m, n = self.A.shape[-2:]
        return m != n

    @property
    def batch_shape(self) -> torch.Size:
        return self.A.shape[:-2]

    def _columns(self, tensor: Tensor) -> Tensor:
        return tensor.unsqueeze(-1) if self.vector_rhs else tensor

    @staticmethod
    def _member_norm(tensor: Tensor) -> Tensor:
        return torch.linalg.matrix_norm(tensor)

    def forward(self) -> Tensor:
        if self.regularised:
            return self._regularised_losses().sum()
        if self.assume == "spd":
            return self._energy(reduce_batch=True)
        difference = self.A @ self._columns(self.x) - self._columns(self.b)
        return batched_mse(difference, len(self.batch_shape))

    def _energy(self, reduce_batch: bool) -> Tensor:
        # ½xᵀAx − bᵀx per right-hand side, summed over them, over the n unknowns of each.
        x, b = self._columns(self.x), self._columns(self.b)
        product = self.A @ x
        energy = (0.5 * product - b).mul(x).sum(dim=(-2, -1)) / self.A.shape[-1]
        loss = energy.sum() if reduce_batch else energy
        if reduce_batch and torch.is_grad_enabled():
            with torch.no_grad():
                norms = self._member_norm(product - b)
                residuals = torch.where(self._rhs_norms > 0, norms / self._rhs_norms.clamp_min(torch.finfo(norms.dtype).tiny), norms)
                self._best_residual.update(loss, residuals.max())
        return loss

    @torch.no_grad()
    def losses(self) -> Tensor:
        if self.regularised:
            return self._regularised_losses()
        if self.assume == "spd":
            return self._energy(reduce_batch=False)
        difference = self.A @ self._columns(self.x) - self._columns(self.b)
        return batched_mse(difference, len(self.batch_shape), reduce_batch=False)

    @property
    def solution(self) -> Tensor:
        return self.x.detach()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        # Square: ‖Ax − b‖/‖b‖.  Least squares: the normal-equation residual ‖Aᵀ(Ax − b)‖/‖Aᵀb‖,
        # which is zero at every least-squares solution even when Ax = b has none.
        if self.regularised:
            return self._regularised_residuals()
        residual = self.A @ self._columns(self.x) - self._columns(self.b)
        if self.least_squares:
            residual = self.A.mT @ residual
        norms = self._member_norm(residual)
        return torch.where(self._rhs_norms > 0, norms / self._rhs_norms.clamp_min(torch.finfo(norms.dtype).tiny), norms)

    def residual_bound(self, loss: float) -> Optional[float]:
        if self.regularised:
            return None
        if self.assume == "spd":  # the energy bounds nothing; the residual of that evaluation
            return self._best_residual.bound(loss)
        if self.least_squares:
            return None
        smallest = float(self._rhs_norms.min())
        if smallest == 0.0:
            return None
        m = self.A.shape[-2]
        k = 1 if self.vector_rhs else self.b.shape[-1]
        return math.sqrt(max(loss, 0.0) * m * k) / smallest

    @torch.no_grad()
    def condition_number(self) -> Optional[float]:
        # Least squares works on AᵀA: its condition is cond(A)².
        if self.regularised:
            return self._regularised_condition()
        cond = float(torch.linalg.cond(self.A).nan_to_num(nan=math.inf).max())
        return cond * cond if self.least_squares else cond

    @property
    def singular_advice(self) -> Optional[str]:  # type: ignore[override]
        # A singular square system has no exact solution; least squares and regularised
        # problems have a solution whatever the rank.
        if self.least_squares or self.regularised:
            return None
        return ("Ax = b has no exact solution: the x returned is the least-squares one the run reached "
                "(pinv(A) @ b from a zero start); accept it, or regularise with l2=...")

    def reference(self) -> Tensor:
        """``solve(A, b)`` for square A, else the minimum-norm least-squares ``pinv(A) @ b``; with
        weights/l2 the closed form ``(AᵀWA + l2·I)⁻¹AᵀWb``.  l1 and nonnegative have none."""
        if self.regularised:
            return self._regularised_reference()
        if not self.least_squares:
            return torch.linalg.solve(self.A, self.b.unsqueeze(-1)).squeeze(-1) if self.vector_rhs else torch.linalg.solve(self.A, self.b)
        solution = torch.linalg.pinv(self.A) @ self._columns(self.b)
        return solution.squeeze(-1) if self.vector_rhs else solution

    def measures(self, reference: bool = False) -> dict[str, Any]:
        # l1 and nonnegative have no closed form to compare with.
        return super().measures(reference and not (self.l1 > 0 or self.nonnegative))

    # -- weighted, ridge, lasso and non-negative least squares ---------------------------------
    # Objective per right-hand side: ½‖W^½(Ax − b)‖² + ½·l2‖x‖² + l1‖x‖₁ (subject to x ≥ 0 when
    # nonnegative).  The loss is that objective × 2/(m·k), so with no regularisation it is the
    # plain mse; its minimiser satisfies AᵀW(Ax − b) + l2·x + l1·∂‖x‖₁ ∋ 0 (ridge: the closed form
    # (AᵀWA + l2·I)x = AᵀWb; orthonormal lasso: soft-thresholding of Aᵀb at l1).
    def _init_regularisation(self, weights: Optional[VectorLike], l2: float, l1: float, nonnegative: bool) -> None:
        self.l2 = _check_penalty(l2, "l2")
        self.l1 = _check_penalty(l1, "l1")
        self.nonnegative = check_bool(nonnegative, "nonnegative")
        matrix = self.A
        m, batch = matrix.shape[-2], matrix.shape[:-2]
        sqrt_w = None
        if weights is not None:
            w = as_float_tensor(weights, "weights")
            check_finite(w, "weights")
            if tuple(w.shape) not in ((m,), (*batch, m)):
                raise ArgumentError(f"weights must have shape ({m},) (one weight per row of A) or {(*batch, m)} (per batch "
                                 f"member); got {tuple(w.shape)}")
            if bool((w < 0).any()):
                raise ArgumentError(f"weights must be >= 0 (each multiplies a row's squared error); got {int((w < 0).sum())} "
                                 "negative entries. Drop those rows or use their absolute values")
            if not bool((w > 0).any()):
                raise ArgumentError("weights are all zero, so every x is a solution; give at least one row a positive weight")
            sqrt_w = w.to(device=matrix.device, dtype=matrix.dtype).sqrt().unsqueeze(-1)
        self.register_buffer("_sqrt_w", sqrt_w)
        self.regularised = weights is not None or self.l2 > 0 or self.l1 > 0 or self.nonnegative
        if not self.regularised:
            return
        if getattr(self, "assume", None) is not None:
            raise ArgumentError('assume="spd" cannot be combined with weights, l2, l1 or nonnegative; drop assume="spd"')
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
        self._rhs_norms = self._member_norm(self._weighted_normal(self._columns(self.b)))

    def _weighted_normal(self, columns: Tensor) -> Tensor:
        """AᵀW·columns."""
        return self.A.mT @ (columns * self._sqrt_w.square() if self._sqrt_w is not None else columns)

    def _regularised_losses(self) -> Tensor:
        x = self._columns(self.x)
        difference = self.A @ x - self._columns(self.b)
        if self._sqrt_w is not None:
            difference = difference * self._sqrt_w
        m, k = difference.shape[-2:]
        loss = difference.square().sum(dim=(-2, -1))
        if self.l2 > 0:
            loss = loss + self.l2 * x.square().sum(dim=(-2, -1))
        if self.l1 > 0:
            loss = loss + 2.0 * self.l1 * x.abs().sum(dim=(-2, -1))
        return loss / (m * k)

    @torch.no_grad()
    def _regularised_residuals(self) -> Tensor:
        # The norm of the optimality measure, relative to its value at x = 0 (‖AᵀWb‖):
        #   weighted / ridge: the gradient AᵀW(Ax − b) + l2·x of the (smooth) objective;
        #   lasso: the minimum-norm subgradient (g + l1·sign(x) where x ≠ 0, the soft-threshold of
        #          g at l1 where x = 0), zero exactly at the lasso's optimality conditions;
        #   nonnegative: the projected gradient (g where x > 0, min(g, 0) where x = 0), the KKT
        #          residual of non-negative least squares (with l1: g + l1 in place of g); an
        #          entry x < 0 makes it at least 1 (infeasible: not a solution).
        x = self._columns(self.x)
        gradient = self._weighted_normal(self.A @ x - self._columns(self.b))
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
        norms = self._member_norm(gradient)
        return torch.where(self._rhs_norms > 0, norms / self._rhs_norms.clamp_min(torch.finfo(norms.dtype).tiny), norms)

    def _weighted_matrix(self) -> Tensor:
        return self.A * self._sqrt_w if self._sqrt_w is not None else self.A

    @torch.no_grad()
    def _regularised_condition(self) -> float:
        m, n = self.A.shape[-2:]
        singular = torch.linalg.svdvals(self._weighted_matrix())
        largest = singular.max(dim=-1).values.square() + self.l2
        smallest = (singular.min(dim=-1).values.square() if m >= n else torch.zeros_like(largest)) + self.l2
        return float((largest / smallest).max()) if bool((smallest > 0).all()) else math.inf

    def _regularised_reference(self) -> Tensor:
        if self.l1 > 0 or self.nonnegative:
            raise NotImplementedError("LinearSystem with l1 or nonnegative has no closed form (that is why it is solved "
                                      "by descent); compare with scipy.optimize.nnls or a lasso solver instead")
        weighted = self._weighted_matrix()
        rhs = self._columns(self.b) * self._sqrt_w if self._sqrt_w is not None else self._columns(self.b)
        if self.l2 > 0:
            n = self.A.shape[-1]
            gram = weighted.mT @ weighted + self.l2 * torch.eye(n, dtype=self.A.dtype, device=self.A.device)
            solution = torch.linalg.solve(gram, weighted.mT @ rhs)
        else:
            solution = torch.linalg.pinv(weighted) @ rhs
        return solution.squeeze(-1) if self.vector_rhs else solution

    @torch.no_grad()
    def lipschitz(self) -> float:
        """The Lipschitz constant of the smooth part of the loss's gradient (the largest member's):
        2/(m·k)·(‖W^½A‖₂² + l2).  ``1/lipschitz()`` is a step length that always converges."""
        m, n = self.A.shape[-2:]
        k = 1 if self.vector_rhs else self.b.shape[-1]
        largest = float(torch.linalg.matrix_norm(self._weighted_matrix(), ord=2).max()) ** 2
        return 2.0 / (m * k) * (largest + self.l2)

    def default_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer ``gdla.solve`` uses when none is given: conjugate gradient with the exact
        step when the loss is quadratic (plain, weighted, ridge); otherwise accelerated proximal
        gradient (FISTA with restart) with step 1/L, which handles the l1 term by its exact
        proximal step and ``nonnegative`` by projection."""
        from ..optim import ConjugateGradient, ProximalGradient

        if self.quadratic:
            return ConjugateGradient(self.parameters(), quadratic=True, batch_dims=len(self.batch_shape))
        m = self.A.shape[-2]
        k = 1 if self.vector_rhs else self.b.shape[-1]
        return ProximalGradient(self.parameters(), lr=1.0 / self.lipschitz(), l1=2.0 * self.l1 / (m * k),
                                nonnegative=self.nonnegative)


def _check_penalty(value: Any, name: str) -> float:
    norm = "‖x‖²" if name == "l2" else "‖x‖₁"
    return check_number(value, name, meaning=f"the weight of the {norm} penalty; 0 turns it off")
