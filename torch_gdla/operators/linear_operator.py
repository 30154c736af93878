"""``LinearOperator``: a matrix known by its action, and ``aslinearoperator`` for tensors."""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor

from ..errors import ArgumentError, ArgumentTypeError, ShapeError, UnsupportedInputError
from .sparse import compact, is_sparse, sparse_diagonal

Apply = Callable[[Tensor], Tensor]


class LinearOperator:
    """A linear map ``A`` of shape ``(m, n)`` given by functions.

    Args:
        shape: ``(m, n)``.
        matvec: ``v -> A @ v`` for ``v`` of shape ``(n,)``; if it also accepts ``(n, k)``
            blocks, pass ``matmat=True`` (else blocks are applied column by column).
        rmatvec: ``u -> Aᵀ @ u`` (needed by least squares); ``symmetric=True`` uses matvec.
        dtype, device: of the vectors it takes and returns (default: torch's default dtype, CPU).
        symmetric: A = Aᵀ (an SPD operator also needs ``assume="spd"`` where it is solved).
        diagonal: A's diagonal (a tensor, or a function returning it), for Jacobi preconditioning.
        matmat: ``matvec``/``rmatvec`` accept ``(n, k)`` blocks as well.
    """

    def __init__(self, shape: tuple[int, int], matvec: Apply, rmatvec: Optional[Apply] = None, *,
                 dtype: Optional[torch.dtype] = None, device: Union[str, torch.device, None] = None,
                 symmetric: bool = False, diagonal: Union[Tensor, Callable[[], Tensor], None] = None,
                 matmat: bool = False) -> None:
        if (not isinstance(shape, (tuple, list)) or len(shape) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise ArgumentError(f"shape must be two positive integers (m, n); got {shape!r}")
        if not callable(matvec):
            raise ArgumentTypeError(f"matvec must be a callable v -> A @ v; got {type(matvec).__name__}")
        if rmatvec is not None and not callable(rmatvec):
            raise ArgumentTypeError(f"rmatvec must be a callable u -> A.T @ u or None; got {type(rmatvec).__name__}")
        if symmetric and shape[0] != shape[1]:
            raise ArgumentError(f"symmetric=True needs a square operator; got shape {tuple(shape)}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = dtype or torch.get_default_dtype()
        if not self.dtype.is_floating_point:
            raise ArgumentError(f"dtype must be a floating dtype; got {self.dtype}")
        self.device = torch.device(device or "cpu")
        self.symmetric = bool(symmetric)
        self._matvec = matvec
        self._rmatvec = matvec if symmetric and rmatvec is None else rmatvec
        self._diagonal = diagonal
        self._matmat = matmat
        self.matvecs = 0
        self.rmatvecs = 0

    # -- applications ---------------------------------------------------------------------------------
    def matvec(self, v: Tensor) -> Tensor:
        """``A @ v`` for ``v`` of shape ``(n,)`` or ``(n, k)``."""
        self._check(v, self.shape[1], "matvec")
        self.matvecs += 1 if v.dim() == 1 else v.shape[-1]
        return self._apply(self._matvec, v, self.shape[0], "matvec")

    def rmatvec(self, u: Tensor) -> Tensor:
        """``Aᵀ @ u`` for ``u`` of shape ``(m,)`` or ``(m, k)``."""
        if self._rmatvec is None:
            raise UnsupportedInputError(
                "this LinearOperator has no rmatvec (u -> A.T @ u), which least squares and non-symmetric "
                "systems need; pass rmatvec=..., or symmetric=True if A = A.T")
        self._check(u, self.shape[0], "rmatvec")
        self.rmatvecs += 1 if u.dim() == 1 else u.shape[-1]
        return self._apply(self._rmatvec, u, self.shape[1], "rmatvec")

    def _apply(self, fn: Apply, v: Tensor, rows: int, name: str) -> Tensor:
        if v.dim() == 2 and not self._matmat:
            return torch.stack([fn(column) for column in v.unbind(-1)], dim=-1)
        out = fn(v)
        if not isinstance(out, Tensor) or out.shape != (rows, *v.shape[1:]):
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ShapeError(f"the operator's {name} returned {got} for an input of shape {tuple(v.shape)}; "
                             f"expected {(rows, *v.shape[1:])}")
        return out

    def _check(self, v: Tensor, size: int, name: str) -> None:
        if not isinstance(v, Tensor) or v.dim() not in (1, 2) or v.shape[0] != size:
            got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise ShapeError(f"{name} takes a vector of length {size} (or an ({size}, k) block); got {got}")

    def __matmul__(self, v: Tensor) -> Tensor:
        return self.matvec(v)

    @property
    def T(self) -> LinearOperator:
        """Aᵀ (its applications are counted as this operator's rmatvecs)."""
        if self.symmetric:
            return self
        return _Transposed(self)

    # -- what solvers ask for -------------------------------------------------------------------------
    def diagonal(self) -> Tensor:
        """A's diagonal (for Jacobi preconditioning)."""
        if self._diagonal is None:
            raise UnsupportedInputError(
                "this LinearOperator does not know its diagonal: pass diagonal=... (a tensor or a function), "
                "or a preconditioner callable instead of 'jacobi'")
        diagonal = self._diagonal() if callable(self._diagonal) else self._diagonal
        return diagonal.to(dtype=self.dtype, device=self.device)

    def reset_counts(self) -> None:
        self.matvecs = self.rmatvecs = 0

    def __repr__(self) -> str:
        kind = ", symmetric" if self.symmetric else ""
        return f"LinearOperator(shape={self.shape}, dtype={self.dtype}, device={self.device}{kind})"


class _Transposed(LinearOperator):
    def __init__(self, base: LinearOperator) -> None:
        self.base = base
        self.shape = (base.shape[1], base.shape[0])
        self.dtype, self.device, self.symmetric = base.dtype, base.device, False

    def matvec(self, v: Tensor) -> Tensor:
        return self.base.rmatvec(v)

    def rmatvec(self, u: Tensor) -> Tensor:
        return self.base.matvec(u)

    @property
    def T(self) -> LinearOperator:
        return self.base

    def diagonal(self) -> Tensor:
        return self.base.diagonal()

    @property
    def matvecs(self) -> int:  # type: ignore[override]
        return self.base.rmatvecs

    @property
    def rmatvecs(self) -> int:  # type: ignore[override]
        return self.base.matvecs


def aslinearoperator(A: Any, *, symmetric: bool = False, name: str = "A") -> LinearOperator:
    """A LinearOperator for a 2-D dense or sparse tensor (or the operator itself).  Sparse
    matrices stay sparse; the transpose of a CSR matrix is applied as CSC, with no copy."""
    if isinstance(A, LinearOperator):
        return A
    if not isinstance(A, Tensor):
        raise ArgumentTypeError(f"{name} must be a tensor (dense or torch.sparse) or a gdla.LinearOperator; "
                                f"got {type(A).__name__}")
    if A.dim() != 2:
        raise ShapeError(f"{name} must be 2-D to be applied as an operator; got shape {tuple(A.shape)}")
    matrix = compact(A.detach()) if is_sparse(A) else A.detach()
    transpose = matrix.mT if matrix.layout != torch.sparse_coo else matrix.t()

    def matvec(v: Tensor) -> Tensor:
        return matrix @ v

    def rmatvec(u: Tensor) -> Tensor:
        return transpose @ u

    def diagonal() -> Tensor:
        return sparse_diagonal(matrix) if is_sparse(matrix) else matrix.diagonal()

    return LinearOperator((matrix.shape[0], matrix.shape[1]), matvec, rmatvec, dtype=matrix.dtype, device=matrix.device,
                          symmetric=symmetric, diagonal=diagonal, matmat=True)


OperatorLike = Union[Tensor, LinearOperator]
