"""Matrix inverse by gradient descent (seed 000): X ≈ M⁻¹ minimising mse(X@M, I)."""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from ..errors import ArgumentError
from ..matrices import MatrixLike
from ..validation import as_matrix, check_choice, check_init, check_int, describe
from .base import Problem
from .losses import batched_mse
from .starts import seeded_uniform

SIDES = ("left", "right", "both")
ASSUMPTIONS = (None, "spd")
# A declared-symmetric matrix may be asymmetric by rounding (e.g. A.T @ A): accepted up to
# ‖M − Mᵀ‖_F ≤ SYMMETRY_RTOL · n · eps · ‖M‖_F per member.
SYMMETRY_RTOL = 10.0


def check_assume(assume: Any, matrix: Tensor, name: str) -> Optional[str]:
    """Validate ``assume`` (None or ``"spd"``); for ``"spd"`` check that every member of
    ``matrix`` is square, symmetric (to rounding) and positive definite (a Cholesky
    factorisation, O(n³/3) once per member: less than one iteration of the inverse, whose
    steps cost two n×n×n products each, and a few iterations of a linear system with many
    right-hand sides).  Refuses, naming ``assume="spd"``, rather than change what is solved."""
    if assume is None:
        return None
    if not isinstance(assume, str) or assume not in ASSUMPTIONS:
        raise ArgumentError(f"assume must be None or 'spd' (symmetric positive definite); got {assume!r}")
    n = matrix.shape[-1]
    if matrix.shape[-2] != n:
        raise ArgumentError(f'assume="spd" needs a square {name}; got shape {tuple(matrix.shape)}. '
                         'Drop assume="spd" to solve it in the least-squares sense')
    with torch.no_grad():
        eps = torch.finfo(matrix.dtype).eps
        asymmetry = torch.linalg.matrix_norm(matrix - matrix.mT) / torch.linalg.matrix_norm(matrix).clamp_min(
            torch.finfo(matrix.dtype).tiny)
        limit = SYMMETRY_RTOL * n * eps
        if bool((asymmetry > limit).any()):
            worst = int(asymmetry.reshape(-1).argmax())
            where = f" (batch member {worst})" if matrix.dim() > 2 else ""
            raise ArgumentError(
                f'assume="spd" declares {name} symmetric positive definite, but {name} is not symmetric{where}: '
                f"‖{name} − {name}ᵀ‖/‖{name}‖ = {float(asymmetry.reshape(-1)[worst]):.3g} > {limit:.3g}. "
                f'Drop assume="spd" (the default loss needs no symmetry), or pass ({name} + {name}.mT) / 2 '
                "if the asymmetry is only rounding"
            )
        _, info = torch.linalg.cholesky_ex(matrix)
        if bool((info != 0).any()):
            failed = int((info.reshape(-1) != 0).nonzero()[0])
            where = f" (batch member {failed})" if matrix.dim() > 2 else ""
            dtype = str(matrix.dtype).replace("torch.", "")
            raise ArgumentError(
                f'assume="spd" declares {name} symmetric positive definite, but its Cholesky factorisation '
                f"fails{where}: {name} is indefinite, singular, or too ill-conditioned for {dtype}. "
                f'Drop assume="spd" to minimise the default mean-squared-error loss, which needs no definiteness'
            )
    return "spd"


class _BestResidual:
    """The residual of the lowest-loss evaluation, for ``residual_bound`` of an energy loss.

    An energy loss does not bound the residual, but its forward computes the residual's
    matrix product anyway: each gradient-enabled evaluation keeps (loss, worst residual) of
    the lowest loss seen (strict ``<``, as ``Iteration`` tracks its best point), on the
    device, without a host sync.  ``bound(loss)`` returns that residual when ``loss`` is
    exactly the tracked lowest loss (the point the solver would return), else None."""

    def __init__(self) -> None:
        self.loss: Optional[Tensor] = None
        self.residual: Optional[Tensor] = None

    def update(self, loss: Tensor, residual: Tensor) -> None:
        loss, residual = loss.detach(), residual.detach()
        if self.loss is None or self.loss.device != loss.device or self.loss.dtype != loss.dtype:
            self.loss, self.residual = loss, residual
            return
        better = loss < self.loss
        self.loss = torch.where(better, loss, self.loss)
        self.residual = torch.where(better, residual, self.residual)

    def bound(self, loss: float) -> Optional[float]:
        if self.loss is None or float(self.loss) != loss:
            return None
        return float(self.residual)


class MatrixInverse(Problem):
    """Approximate inverse ``X`` of a square matrix ``M`` (leading dimensions are a batch).

    Args:
        M: square matrix (tensor, nested list or a ``gdla.matrices`` source), shape ``(..., n, n)``.
        side: ``"left"`` minimises mse(X@M, I) (seed 000 variant a), ``"right"`` mse(M@X, I)
            (variant b), ``"both"`` the mean of the two (variant c).
        seed: the start is ``torch.manual_seed(seed); torch.rand(M.shape)``, as in seed 000.
        init: a warm start of M's shape, instead of the seeded random one.
        assume: ``"spd"`` declares M symmetric positive definite (checked: symmetry to rounding
            and a Cholesky factorisation, O(n³) once; refused otherwise).  The loss is then the
            energy ``(½tr(XMXᵀ) − tr(X)) / n²`` per member (``side="right"``: ½tr(XᵀMX) − tr(X)),
            whose gradient ``(XM − I)/n²`` has condition κ(M) instead of κ(M)² — same minimiser
            M⁻¹, several times fewer iterations when M is ill-conditioned.  ``residual()`` is
            unchanged, so ``residual_tol`` (the default stopping rule) means the same; the loss
            itself is negative at the solution, so stop on ``residual_tol`` rather than ``tol``.
            None (default): the mean-squared-error loss, for any square M.
    """

    quadratic = True
    singular_advice = ("No inverse exists: use gdla.LinearSystem for a least-squares (minimum-norm) solution "
                       "of the system you need, or regularise (LinearSystem(..., l2=...))")

    def __init__(
        self,
        M: MatrixLike,
        side: str = "left",
        seed: int = 314,
        init: Optional[Union[str, Tensor]] = None,
        assume: Optional[str] = None,
    ) -> None:
        super().__init__()
        matrix = as_matrix(M, "M")
        if matrix.shape[-1] != matrix.shape[-2]:
            raise ArgumentError(
                f"{describe(M, 'M')} must be square to have an inverse; got shape {tuple(matrix.shape)}. "
                "For a rectangular matrix solve a least-squares problem with gdla.LinearSystem(A, b)"
            )
        self.side = check_choice(side, "side", SIDES)
        self.assume = check_assume(assume, matrix, "M")
        self._best_residual = _BestResidual()
        self.seed = check_int(seed, "seed")
        if isinstance(init, str):
            raise ArgumentError(f"init must be a tensor of M's shape {tuple(matrix.shape)}, or None for the seeded uniform start; got {init!r}")
        self.register_buffer("M", matrix)
        self.register_buffer("identity", torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device))
        start = seeded_uniform(matrix.shape, seed, matrix) if init is None else check_init(init, "init", matrix.shape, matrix)
        self.X = nn.Parameter(start)

    @property
    def n(self) -> int:
        return self.M.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        return self.M.shape[:-2]

    def _errors(self, X: Tensor) -> list[Tensor]:
        errors = []
        if self.side in ("left", "both"):
            errors.append(X @ self.M - self.identity)
        if self.side in ("right", "both"):
            errors.append(self.M @ X - self.identity)
        return errors

    def forward(self) -> Tensor:
        return self._loss(reduce_batch=True)

    @torch.no_grad()
    def losses(self) -> Tensor:
        return self._loss(reduce_batch=False)

    def _energy(self, reduce_batch: bool) -> Tensor:
        # ½tr(XMXᵀ) − tr(X) (left) / ½tr(XᵀMX) − tr(X) (right), per member, over n² entries.
        X, products = self.X, []
        if self.side in ("left", "both"):
            products.append(X @ self.M)
        if self.side in ("right", "both"):
            products.append(self.M @ X)
        trace = X.diagonal(dim1=-2, dim2=-1).sum(-1)
        energies = [0.5 * (product * X).sum(dim=(-2, -1)) - trace for product in products]
        energy = (energies[0] if len(energies) == 1 else (energies[0] + energies[1]) / 2) / (self.n * self.n)
        loss = energy.sum() if reduce_batch else energy
        if reduce_batch and torch.is_grad_enabled():
            with torch.no_grad():
                norms = [torch.linalg.matrix_norm(product - self.identity) for product in products]
                worst = norms[0] if len(norms) == 1 else torch.maximum(norms[0], norms[1])
                self._best_residual.update(loss, worst.max() / math.sqrt(self.n))
        return loss

    def _loss(self, reduce_batch: bool) -> Tensor:
        if self.assume == "spd":
            return self._energy(reduce_batch)
        batch_dims = len(self.batch_shape)
        losses = [batched_mse(error, batch_dims, reduce_batch) for error in self._errors(self.X)]
        return losses[0] if len(losses) == 1 else (losses[0] + losses[1]) / 2

    @property
    def solution(self) -> Tensor:
        return self.X.detach()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        # ‖XM − I‖_F / ‖I‖_F per member; "both" reports the larger of the two sides.
        norms = [torch.linalg.matrix_norm(error) for error in self._errors(self.X)]
        worst = norms[0] if len(norms) == 1 else torch.maximum(norms[0], norms[1])
        return worst / math.sqrt(self.n)

    def residual_bound(self, loss: float) -> Optional[float]:
        if self.assume == "spd":  # the energy bounds nothing; the residual of that evaluation
            return self._best_residual.bound(loss)
        # Each member's mse ≤ the summed loss (×2 for "both", the mean of two sides), and
        # residual² = mse·n²/n = mse·n.
        factor = 2.0 if self.side == "both" else 1.0
        return math.sqrt(max(loss, 0.0) * factor * self.n)

    def reference(self) -> Tensor:
        return torch.linalg.inv(self.M)

    @torch.no_grad()
    def condition_number(self) -> Optional[float]:
        # A zero matrix has cond 0/0 = nan: report it as infinitely ill-conditioned.
        return float(torch.linalg.cond(self.M).nan_to_num(nan=math.inf).max())
