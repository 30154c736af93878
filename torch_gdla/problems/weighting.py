"""Row weights of weighted least squares: ``W^½`` kept as a column ``(…, m, 1)`` (a buffer of
``RegularisedLeastSquares``), and ``W^½A`` applied without densifying a sparse A or an operator."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..errors import ArgumentError
from ..matrices import VectorLike
from ..operators import LinearOperator, OperatorLike, matmul, rmatmul
from ..validation import as_float_tensor, check_finite


def sqrt_weights(weights: Optional[VectorLike], matrix: OperatorLike) -> Optional[Tensor]:
    """√weights as a column (…, m, 1) of A's dtype and device, or None; the weights checked."""
    if weights is None:
        return None
    m, batch = matrix.shape[-2], tuple(matrix.shape[:-2])
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
    return w.to(device=matrix.device, dtype=matrix.dtype).sqrt().unsqueeze(-1)


def weights_of(sqrt_w: Optional[Tensor]) -> Optional[Tensor]:
    """The weights (…, m) from their square-root column (w to rounding), or None."""
    return None if sqrt_w is None else sqrt_w.square().squeeze(-1)


def weighted_normal(A: OperatorLike, sqrt_w: Optional[Tensor], columns: Tensor) -> Tensor:
    """AᵀW·columns."""
    return rmatmul(A, columns * sqrt_w.square() if sqrt_w is not None else columns)


def weighted_operator(A: OperatorLike, sqrt_w: Optional[Tensor]) -> OperatorLike:
    """W^½A as an operand: the dense product, or an operator applying the weights (a sparse A
    or an operator is not densified)."""
    if sqrt_w is None:
        return A
    if isinstance(A, Tensor) and A.layout == torch.strided:
        return A * sqrt_w
    w = sqrt_w.squeeze(-1)

    def matvec(v: Tensor) -> Tensor:
        return (w if v.dim() == 1 else w.unsqueeze(-1)) * matmul(A, v)

    def rmatvec(u: Tensor) -> Tensor:
        return rmatmul(A, (w if u.dim() == 1 else w.unsqueeze(-1)) * u)

    m, n = A.shape[-2:]
    return LinearOperator((m, n), matvec, rmatvec, dtype=sqrt_w.dtype, device=sqrt_w.device, matmat=True)
