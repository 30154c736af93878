"""The symmetric positive definite variants: ``MatrixInverse(M, assume="spd")`` and
``LinearSystem(A, b, assume="spd")`` minimise the energy instead of the mean-squared error.

Same solution, gradient condition κ instead of κ² (see ``energy.py`` for the loss forms, the
SPD check, the residual tracker and the loss's resolution floor).  The residual is the mse
problems' own, so ``residual_tol`` means the same; the loss is negative at the solution, so
stop on ``residual_tol`` rather than ``tol``.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import Tensor

from ..matrices import MatrixLike, VectorLike
from ..operators import OperatorLike, matmul, rmatmul
from ..optim.krylov import LinearForm
from .energy import BestResidual, check_spd, energy_floor, inverse_energy, system_energy
from .inverse import MatrixInverse
from .linear_problem import norm_bound
from .linear_system import LinearSystem


class EnergyForm:
    """What both energy variants add to their mse problem: ``assume = "spd"``, a tracked
    ``residual_bound`` and the loss's ``residual_floor``.  The class using it calls
    ``_init_energy()``, passes each evaluation's (loss, worst residual) to
    ``self._best_residual.update``, and implements ``_energy_data()`` -> (matrix, right-hand
    sides) for the floor."""

    assume: Optional[str] = "spd"
    quadratic = True
    tol_advice: Optional[str] = ("its loss is the energy ½xᵀAx − bᵀx, negative at the solution and of unknown minimum, so a "
                  "loss threshold proves nothing; stop on residual_tol (the default) instead")

    def _init_energy(self) -> None:
        self._best_residual = BestResidual()

    def residual_bound(self, loss: float) -> Optional[float]:
        """The energy bounds nothing; the residual of the evaluation with exactly this loss."""
        return self._best_residual.bound(loss)

    def residual_floor(self) -> Optional[float]:
        """About √eps relative (up to √κ): see :func:`energy_floor` (dense matrices only; it
        costs an eigendecomposition)."""
        matrix, rhs = self._energy_data()
        if not isinstance(matrix, Tensor) or matrix.layout != torch.strided:
            return None
        return energy_floor(matrix, rhs)

    def _energy_data(self) -> tuple[OperatorLike, Tensor]:
        raise NotImplementedError  # each variant says which matrix and right-hand sides


class SPDMatrixInverse(EnergyForm, MatrixInverse):
    """The inverse of a symmetric positive definite M by its energy (``MatrixInverse(M, assume="spd")``).

    M is checked (symmetry to rounding, a positive diagonal: O(n²), no factorisation; refused
    otherwise); the default conjugate gradient checks definiteness as it goes.  The loss is the energy ``(½tr(XMXᵀ) − tr(X)) / n²`` per member (``side="right"``:
    ½tr(XᵀMX) − tr(X)), whose gradient ``(XM − I)/n²`` has condition κ(M) instead of κ(M)² —
    same minimiser M⁻¹, several times fewer iterations when M is ill-conditioned.
    ``residual()`` is the same as :class:`MatrixInverse`'s, so ``residual_tol`` (the default
    stopping rule) means the same; the loss itself is negative at the solution, so stop on
    ``residual_tol`` rather than ``tol``.  ``residual_floor()``: see ``energy.energy_floor``.
    """

    def __init__(self, M: MatrixLike, side: str = "left", seed: int = 314,
                 init: Optional[Union[str, Tensor]] = None) -> None:
        super().__init__(M, side=side, seed=seed, init=init)
        check_spd(self.M, "M")
        self._init_energy()

    def _loss(self, reduce_batch: bool) -> Tensor:
        energy, products = inverse_energy(self.X, self.M, self.side)
        loss = energy.sum() if reduce_batch else energy
        if reduce_batch and torch.is_grad_enabled():
            with torch.no_grad():
                norms = [torch.linalg.matrix_norm(product - self.identity) for product in products]
                worst = norms[0] if len(norms) == 1 else torch.maximum(norms[0], norms[1])
                self._best_residual.update(loss, worst.max() / math.sqrt(self.n))
        return loss

    def _energy_data(self) -> tuple[Tensor, Tensor]:
        return self.M, self.identity.expand_as(self.M)


class SPDLinearSystem(EnergyForm, LinearSystem):
    """``A x = b`` for a symmetric positive definite A by its energy (``LinearSystem(A, b, assume="spd")``).

    A is checked (square, symmetric to rounding, a positive diagonal: O(n²) or O(nnz), no
    factorisation; refused otherwise); the default conjugate gradient checks definiteness as it goes.  The loss is the energy ``(½xᵀAx − bᵀx) / n`` per right-hand side, summed over
    them and over batch members, whose gradient ``(Ax − b)/n`` has condition κ(A) instead of
    κ(A)²: same solution, several times fewer iterations for an ill-conditioned A.
    ``residual()`` stays ‖Ax − b‖/‖b‖, so ``residual_tol`` (the default stopping rule) means the
    same; the loss is negative at the solution, so stop on ``residual_tol`` rather than ``tol``.
    ``residual_floor()``: see ``energy.energy_floor``.
    """

    def _init_variant(self, weights: Optional[VectorLike], l2: float, l1: float, nonnegative: bool) -> None:
        check_spd(self.A, "A")
        self._init_energy()

    def linear_form(self) -> LinearForm:
        """The energy Σ(½xᵀAx − bᵀx)/n: conjugate gradient on A, one application per step; a
        direction of non-positive curvature (A not positive definite after all) is an error."""
        A = self.A
        return self._form(lambda P: matmul(A, P), lambda S: rmatmul(A, S), self._columns(self.b), True,
                          energy=True, scale=1.0 / A.shape[-1])

    def _loss(self, reduce_batch: bool) -> Tensor:
        b = self._columns(self.b)
        energy, product = system_energy(self.A, self._columns(self.x), b)
        loss = energy.sum() if reduce_batch else energy
        if reduce_batch and torch.is_grad_enabled():
            with torch.no_grad():
                self._best_residual.update(loss, self._relative(self._member_norm(product - b)).max())
        return loss

    @torch.no_grad()
    def lipschitz(self) -> float:
        """The Lipschitz constant of the energy's gradient (the largest member's): ‖A‖₂/n."""
        return norm_bound(self.A) / self.A.shape[-1]

    def _energy_data(self) -> tuple[OperatorLike, Tensor]:
        return self.A, self._columns(self.b)

    def _variant_arguments(self) -> dict[str, Any]:
        return {"assume": "spd", "preconditioner": self.preconditioner}
