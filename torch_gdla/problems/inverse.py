"""Matrix inverse by gradient descent (seed 000): X ≈ M⁻¹ minimising mse(X@M, I)."""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from ..matrices import MatrixLike
from .._checks import as_matrix, check_choice, check_init
from .base import Problem, batched_mse, seeded_uniform

SIDES = ("left", "right", "both")


class MatrixInverse(Problem):
    """Approximate inverse ``X`` of a square matrix ``M`` (leading dimensions are a batch).

    Args:
        M: square matrix (tensor, nested list or a ``gdla.matrices`` source), shape ``(..., n, n)``.
        side: ``"left"`` minimises mse(X@M, I) (seed 000 variant a), ``"right"`` mse(M@X, I)
            (variant b), ``"both"`` the mean of the two (variant c).
        seed: the start is ``torch.manual_seed(seed); torch.rand(M.shape)``, as in seed 000.
        init: a warm start of M's shape, instead of the seeded random one.
    """

    quadratic = True

    def __init__(
        self,
        M: MatrixLike,
        side: str = "left",
        seed: int = 314,
        init: Optional[Union[str, Tensor]] = None,
    ) -> None:
        super().__init__()
        matrix = as_matrix(M, "M")
        if matrix.shape[-1] != matrix.shape[-2]:
            raise ValueError(
                f"M must be square to have an inverse; got shape {tuple(matrix.shape)}. "
                "For a rectangular matrix solve a least-squares problem with gdla.LinearSystem(A, b)"
            )
        self.side = check_choice(side, "side", SIDES)
        self.seed = seed
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

    def _loss(self, reduce_batch: bool) -> Tensor:
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
        # Each member's mse ≤ the summed loss (×2 for "both", the mean of two sides), and
        # residual² = mse·n²/n = mse·n.
        factor = 2.0 if self.side == "both" else 1.0
        return math.sqrt(max(loss, 0.0) * factor * self.n)

    def reference(self) -> Tensor:
        return torch.linalg.inv(self.M)

    @torch.no_grad()
    def condition_number(self) -> Optional[float]:
        return float(torch.linalg.cond(self.M).max())

    @property
    def needs_nonsingular(self) -> bool:
        return True
