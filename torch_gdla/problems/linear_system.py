"""Linear systems and least squares by gradient descent (seed 002): x ≈ argmin mse(A@x, b)."""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from ..matrices import MatrixLike, VectorLike
from .._checks import as_float_tensor, as_matrix, check_finite, check_init
from .base import Problem, batched_mse, seeded_uniform


class LinearSystem(Problem):
    """Solution ``x`` of ``A x = b`` in the least-squares sense.

    ``A`` has shape ``(..., m, n)`` (leading dimensions are a batch); ``b`` has shape
    ``(..., m)`` (one right-hand side) or ``(..., m, k)`` (k right-hand sides).  Square,
    over- and under-determined ``A`` are all accepted.  The start is ``x = 0`` (so gradient
    descent stays in the row space of A and reaches the minimum-norm solution of an
    underdetermined system), a seeded uniform start with ``init="uniform"``, or a given tensor.
    """

    quadratic = True

    def __init__(
        self,
        A: MatrixLike,
        b: VectorLike,
        init: Optional[Union[str, Tensor]] = None,
        seed: int = 314,
    ) -> None:
        super().__init__()
        matrix = as_matrix(A, "A")
        rhs = as_float_tensor(b, "b")
        check_finite(rhs, "b")
        m, n = matrix.shape[-2:]
        batch = matrix.shape[:-2]
        if rhs.dim() == matrix.dim() - 1 and rhs.shape[-1] == m:
            self.vector_rhs = True
        elif rhs.dim() == matrix.dim() and rhs.shape[-2] == m:
            self.vector_rhs = False
        else:
            raise ValueError(
                f"b must have shape {(*batch, m)} (one right-hand side) or {(*batch, m, 'k')} (k right-hand sides) "
                f"to match A of shape {tuple(matrix.shape)}; got {tuple(rhs.shape)}"
            )
        if rhs.shape[: len(batch)] != batch:
            raise ValueError(f"b's batch dimensions {tuple(rhs.shape[:len(batch)])} must equal A's {tuple(batch)}")
        if rhs.numel() == 0:
            raise ValueError("b is empty; pass at least one right-hand side")
        rhs = rhs.to(matrix.dtype)
        self.register_buffer("A", matrix)
        self.register_buffer("b", rhs)
        shape = torch.Size((*batch, n) if self.vector_rhs else (*batch, n, rhs.shape[-1]))
        if init is None or (isinstance(init, str) and init == "zeros"):
            start = torch.zeros(shape, dtype=matrix.dtype, device=matrix.device)
        elif isinstance(init, str) and init == "uniform":
            start = seeded_uniform(shape, seed, matrix)
        elif isinstance(init, str):
            raise ValueError(f"init must be 'zeros', 'uniform' or a tensor of shape {tuple(shape)}; got {init!r}")
        else:
            start = check_init(init, "init", shape, matrix)
        self.x = nn.Parameter(start)
        self.seed = seed
        # Denominators of the relative residual, per member (0 means: report the absolute residual).
        columns = self._columns(rhs)
        self.register_buffer("_rhs_norms", self._member_norm(matrix.mT @ columns if self.least_squares else columns))

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
        difference = self.A @ self._columns(self.x) - self._columns(self.b)
        return batched_mse(difference, len(self.batch_shape))

    @torch.no_grad()
    def losses(self) -> Tensor:
        difference = self.A @ self._columns(self.x) - self._columns(self.b)
        return batched_mse(difference, len(self.batch_shape), reduce_batch=False)

    @property
    def solution(self) -> Tensor:
        return self.x.detach()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        # Square: ‖Ax − b‖/‖b‖.  Least squares: the normal-equation residual ‖Aᵀ(Ax − b)‖/‖Aᵀb‖,
        # which is zero at every least-squares solution even when Ax = b has none.
        residual = self.A @ self._columns(self.x) - self._columns(self.b)
        if self.least_squares:
            residual = self.A.mT @ residual
        norms = self._member_norm(residual)
        return torch.where(self._rhs_norms > 0, norms / self._rhs_norms.clamp_min(torch.finfo(norms.dtype).tiny), norms)

    def residual_bound(self, loss: float) -> Optional[float]:
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
        cond = float(torch.linalg.cond(self.A).max())
        return cond * cond if self.least_squares else cond

    @property
    def needs_nonsingular(self) -> bool:
        return not self.least_squares

    def reference(self) -> Tensor:
        """``solve(A, b)`` for square A, else the minimum-norm least-squares ``pinv(A) @ b``."""
        if not self.least_squares:
            return torch.linalg.solve(self.A, self.b.unsqueeze(-1)).squeeze(-1) if self.vector_rhs else torch.linalg.solve(self.A, self.b)
        solution = torch.linalg.pinv(self.A) @ self._columns(self.b)
        return solution.squeeze(-1) if self.vector_rhs else solution
