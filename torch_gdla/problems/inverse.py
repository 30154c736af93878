"""Matrix inverse by gradient descent (the matrix-inverse tutorial): X ≈ M⁻¹.

:class:`MatrixInverse` minimises the mean-squared error of ``X@M − I`` (or ``M@X − I``) for any
square M; :class:`SPDMatrixInverse` minimises the energy of a symmetric positive definite M,
whose gradient has condition κ(M) instead of κ(M)².  ``MatrixInverse(M, assume="spd")`` builds
the latter.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from ..errors import ArgumentError, UnsupportedInputError
from ..matrices import MatrixLike
from ..operators import accurate, is_symmetric
from ..optim.krylov import LinearForm
from ..validation import (
    as_matrix,
    check_choice,
    check_dense,
    check_init,
    check_int,
    describe,
)
from .base import Problem
from .energy import check_assumption
from .family import Arguments, Family, check_variant
from .linear_system import LinearSystem, condition
from .losses import batched_mse
from .starts import seeded_uniform

SIDES = ("left", "right", "both")


class MatrixInverse(Problem, metaclass=Family):
    """Approximate inverse ``X`` of a square matrix ``M`` (leading dimensions are a batch).

    Args:
        M: square matrix (tensor, nested list or a ``gdla.matrices`` source), shape ``(..., n, n)``.
        side: ``"left"`` minimises mse(X@M, I) (the tutorial's variant a), ``"right"`` mse(M@X, I)
            (variant b), ``"both"`` the mean of the two (variant c).
        seed: the start is ``torch.manual_seed(seed); torch.rand(M.shape)``, as in the
            matrix-inverse tutorial (the global RNG is left alone).
        init: a warm start of M's shape, instead of the seeded random one.
        assume: ``"spd"`` builds an :class:`SPDMatrixInverse` (the energy loss, for symmetric
            positive definite M); None (default): the mean-squared-error loss, for any square M.

    Sharding (``gdla.sharding``): with ``side="left"`` the rows of X are independent (row i
    solves ``x_i M = e_i``), with ``side="right"`` its columns; ``split`` poses a set of them as
    a ``LinearSystem`` with several right-hand sides.
    """

    quadratic = True
    assume: Optional[str] = None
    M: Tensor
    identity: Tensor
    singular_advice = ("No inverse exists: use gdla.LinearSystem for a least-squares (minimum-norm) solution "
                       "of the system you need, or regularise (LinearSystem(..., l2=...))")

    @classmethod
    def _variant(cls, arguments: Arguments) -> tuple[type, Arguments]:
        # assume="spd" selects the energy form; the variant takes every other argument as is.
        if check_assumption(arguments.pop("assume", None)) == "spd":
            from .spd import SPDMatrixInverse

            return SPDMatrixInverse, arguments
        return MatrixInverse, arguments

    def __init__(
        self,
        M: MatrixLike,
        side: str = "left",
        seed: int = 314,
        init: Optional[Union[str, Tensor]] = None,
        assume: Optional[str] = None,
    ) -> None:
        super().__init__()
        check_variant(self, MatrixInverse, assume=assume)
        check_dense(M, "M", "the inverse of a sparse matrix is dense (n² entries)",
                    "solve the systems you need with gdla.LinearSystem(M, B), which keeps M sparse, or pass "
                    "M.to_dense() if n² numbers fit in memory")
        matrix = as_matrix(M, "M")
        if matrix.shape[-1] != matrix.shape[-2]:
            raise ArgumentError(
                f"{describe(M, 'M')} must be square to have an inverse; got shape {tuple(matrix.shape)}. "
                "For a rectangular matrix solve a least-squares problem with gdla.LinearSystem(A, b)"
            )
        self.side = check_choice(side, "side", SIDES)
        self.seed = check_int(seed, "seed")
        if isinstance(init, str):
            raise ArgumentError(f"init must be a tensor of M's shape {tuple(matrix.shape)}, or None for the seeded uniform start; got {init!r}")
        # The caller's M, when gradients are to flow into it (see attach): in a tuple, so that an
        # nn.Parameter is not registered as one of this problem's own.
        self._given = (M,) if isinstance(M, Tensor) and M.requires_grad else None
        self.register_buffer("M", matrix)
        self.register_buffer("identity", torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device))
        start = seeded_uniform(matrix.shape, seed, matrix) if init is None else check_init(init, "init", matrix.shape, matrix)
        self.X = nn.Parameter(start)

    @property
    def n(self) -> int:
        """The order of M."""
        return self.M.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        return self.M.shape[:-2]

    def _errors(self, X: Tensor) -> list[Tensor]:
        return _errors(X, self.M, self.identity, self.side)

    def forward(self) -> Tensor:
        return self._loss(reduce_batch=True)

    @torch.no_grad()
    def losses(self) -> Tensor:
        return self._loss(reduce_batch=False)

    def _loss(self, reduce_batch: bool) -> Tensor:
        batch_dims = len(self.batch_shape)
        losses = [batched_mse(error, batch_dims, reduce_batch) for error in self._errors(self.X)]
        return losses[0] if len(losses) == 1 else (losses[0] + losses[1]) / 2

    @property
    def solution(self) -> Tensor:
        return self.X.detach()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        """‖XM − I‖_F / ‖I‖_F per member; "both" reports the larger of the two sides.  Computed
        in float64 whatever the dtype: it decides convergence."""
        X, M, identity = accurate(self.X.detach()), accurate(self.M), accurate(self.identity)
        norms = [torch.linalg.matrix_norm(error) for error in _errors(X, M, identity, self.side)]
        worst = norms[0] if len(norms) == 1 else torch.maximum(norms[0], norms[1])
        return worst / math.sqrt(self.n)

    def residual_bound(self, loss: float) -> Optional[float]:
        """√(loss·n) (×2 under the root for "both"): each member's mse ≤ the summed loss (for
        "both", the mean of two sides, each ≤ 2·loss), and residual² = mse·n²/n = mse·n."""
        factor = 2.0 if self.side == "both" else 1.0
        return math.sqrt(max(loss, 0.0) * factor * self.n)

    def reference(self) -> Tensor:
        return torch.linalg.inv(self.M)

    @property
    def residual_meaning(self) -> str:  # type: ignore[override]
        return {"left": "‖XM − I‖/‖I‖", "right": "‖MX − I‖/‖I‖", "both": "the larger of ‖XM − I‖, ‖MX − I‖ over ‖I‖"}[
            self.side]

    @torch.no_grad()
    def check(self) -> Optional[tuple[str, Tensor]]:
        """X @ M (M @ X for side="right"): the identity, when X is M's inverse."""
        X = self.X.detach()
        return ("M @ X", self.M @ X) if self.side == "right" else ("X @ M", X @ self.M)

    def error_estimate(self, residual: float, method: Any) -> Optional[float]:
        """√n·residual: XM = I + E gives ‖X − M⁻¹‖ ≤ ‖E‖₂‖M⁻¹‖ ≤ ‖E‖_F‖M⁻¹‖ (no κ: the inverse's
        relative error is bounded by its residual itself)."""
        return math.sqrt(self.n) * residual

    @torch.no_grad()
    def condition_number(self) -> Optional[float]:
        """cond(M) of the worst member; a singular or zero matrix counts as infinitely ill-conditioned."""
        return float(condition(self.M))

    # -- the Krylov view of the loss -------------------------------------------------------------------
    def linear_form(self) -> Optional[LinearForm]:
        """X M = I as Mᵀ Xᵀ = I (``side="left"``: the rows of X are the columns solved) or M X = I
        (``"right"``), mse = ‖·‖²/n²; None for ``side="both"``, which is no single system."""
        if self.side == "both":
            return None
        M, n = self.M, self.n
        operator = M.mT if self.side == "left" else M
        symmetric = is_symmetric(M)
        return LinearForm(apply=lambda P: operator @ P, apply_t=lambda S: operator.mT @ S,
                          rhs=self.identity.expand_as(M), columns=self._unknown_columns, spd=symmetric,
                          energy=self.assume == "spd", scale=1.0 / (n * n), normal_residual=False,
                          residual_norms=torch.full(self.batch_shape, math.sqrt(n), dtype=M.dtype, device=M.device))

    def attach(self, solution: Tensor) -> Tensor:
        """X attached to the graph of M (if it requires grad), as ``gdla.linalg.inv`` differentiates it."""
        if self._given is None:
            return solution
        from ..linalg import solvers

        return solvers.attach_inverse(self._given[0], solution)

    def _unknown_columns(self, X: Tensor) -> Tensor:
        # side="left": the rows of X, as the columns of a view of Xᵀ (writes go through to X).
        return X.mT if self.side == "left" else X

    def default_optimizer(self) -> torch.optim.Optimizer:
        """A Krylov method on :meth:`linear_form` (conjugate gradient for a symmetric M: one
        n×n×n product per step; CGLS otherwise: two); ``side="both"``: the base conjugate gradient."""
        form = self.linear_form()
        if form is None:
            return super().default_optimizer()
        from ..optim import Krylov

        return Krylov(self.parameters(), form, on_indefinite="raise" if form.energy else "cgls")

    # -- sharding: rows (side="left") or columns (side="right") of X ---------------------------
    @property
    def num_pieces(self) -> int:
        """n: the rows of X for ``side="left"``, its columns for ``side="right"``."""
        if self.side == "both":
            raise UnsupportedInputError('MatrixInverse(side="both") couples the rows and the columns of X, so it does '
                                        'not split; shard side="left" (rows) or side="right" (columns)')
        return self.n

    def split(self, indices: list[int]) -> Problem:
        """The pieces ``indices`` as one ``LinearSystem`` with ``len(indices)`` right-hand sides:
        ``Mᵀ Y = I[:, indices]`` (Y = the rows' transpose) for ``side="left"``, ``M Y = I[:, indices]``
        for ``side="right"``; the energy form (``assume``) carries over."""
        _ = self.num_pieces  # refuses side="both"
        M = self.M
        index = torch.tensor(indices, device=M.device)
        identity = torch.eye(self.n, dtype=M.dtype, device=M.device).index_select(-1, index)
        identity = identity.expand(*M.shape[:-2], self.n, len(indices))
        matrix = M.mT if self.side == "left" else M
        return LinearSystem(matrix.detach().clone(), identity.clone(), assume=self.assume)

    def join(self, pieces: Tensor) -> Tensor:
        """X from the pieces' solutions stacked as columns: their transpose for ``side="left"``."""
        return pieces.mT.contiguous() if self.side == "left" else pieces


def _errors(X: Tensor, M: Tensor, identity: Tensor, side: str) -> list[Tensor]:
    """XM − I and/or MX − I, as ``side`` asks."""
    errors = []
    if side in ("left", "both"):
        errors.append(X @ M - identity)
    if side in ("right", "both"):
        errors.append(M @ X - identity)
    return errors
