"""Matrices known by their action: ``LinearOperator`` and ``aslinearoperator``.

An iterative solver needs only ``v -> A @ v`` (and ``u -> Aᵀ @ u`` for least squares), so a
problem can take a dense tensor, a ``torch.sparse`` tensor (COO, CSR, CSC) or a function — the
model of ``scipy.sparse.linalg.LinearOperator``.  Every operator counts its applications
(``matvecs``, ``rmatvecs``: one per vector, so an (n, k) block counts k), for comparisons with
scipy's iteration counts.  Nothing here densifies a sparse matrix.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Iterator, Optional, Union

import torch
from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError, ShapeError, UnsupportedInputError

__all__ = ["LinearOperator", "aslinearoperator", "is_sparse", "OperatorLike", "matmul", "rmatmul", "column_norms",
           "is_symmetric", "norm_estimate", "accurate"]

Apply = Callable[[Tensor], Tensor]
SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc)


def is_sparse(tensor: Any) -> bool:
    """True for a torch.sparse tensor of any layout."""
    return isinstance(tensor, Tensor) and tensor.layout in SPARSE_LAYOUTS


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
    def T(self) -> "LinearOperator":
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


@contextlib.contextmanager
def quiet_sparse() -> Iterator[None]:
    """Silence torch's notes on building sparse tensors ("sparse CSR support is in beta",
    "invariant checks are implicitly disabled"): library calls print nothing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*([Ss]parse CSR tensor support|[Ss]parse invariant checks).*")
        yield


def compact(matrix: Tensor) -> Tensor:
    """A sparse matrix in its fastest form for products: CSR/CSC with int32 indices where they
    fit (torch's CPU kernel is then about twice as fast); other layouts as they are."""
    return _compact_indices(matrix)


def _compact_indices(matrix: Tensor) -> Tensor:
    """CSR/CSC with int32 indices where they fit: torch's CPU kernel is then about twice as fast."""
    if matrix.layout not in (torch.sparse_csr, torch.sparse_csc) or matrix._nnz() >= 2**31 - 1:
        return matrix
    compressed, plain = ((matrix.crow_indices(), matrix.col_indices()) if matrix.layout == torch.sparse_csr
                         else (matrix.ccol_indices(), matrix.row_indices()))
    if compressed.dtype == torch.int32:
        return matrix
    build = torch.sparse_csr_tensor if matrix.layout == torch.sparse_csr else torch.sparse_csc_tensor
    with quiet_sparse():
        return build(compressed.to(torch.int32), plain.to(torch.int32), matrix.values(), size=matrix.shape)


def _sparse_diagonal(matrix: Tensor) -> Tensor:
    """The diagonal of a sparse matrix without densifying it (O(nnz))."""
    coo = matrix.to_sparse_coo().coalesce()
    rows, cols = coo.indices()
    on = rows == cols
    diagonal = torch.zeros(min(matrix.shape), dtype=matrix.dtype, device=matrix.device)
    return diagonal.index_add_(0, rows[on], coo.values()[on])


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
    matrix = _compact_indices(A.detach()) if is_sparse(A) else A.detach()
    transpose = matrix.mT if matrix.layout != torch.sparse_coo else matrix.t()

    def matvec(v: Tensor) -> Tensor:
        return matrix @ v

    def rmatvec(u: Tensor) -> Tensor:
        return transpose @ u

    def diagonal() -> Tensor:
        return _sparse_diagonal(matrix) if is_sparse(matrix) else matrix.diagonal()

    return LinearOperator(tuple(matrix.shape), matvec, rmatvec, dtype=matrix.dtype, device=matrix.device,
                          symmetric=symmetric, diagonal=diagonal, matmat=True)


OperatorLike = Union[Tensor, LinearOperator]


# -- applying any operand: a dense or sparse tensor, or a LinearOperator ------------------------------
class _Apply(torch.autograd.Function):
    """``A @ X`` for a LinearOperator, differentiable in X (the backward applies Aᵀ)."""

    @staticmethod
    def forward(ctx: Any, X: Tensor, operator: LinearOperator) -> Tensor:  # type: ignore[override]
        ctx.operator = operator
        return operator.matvec(X)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return ctx.operator.rmatvec(grad), None


def matmul(A: OperatorLike, X: Tensor) -> Tensor:
    """``A @ X`` (X of shape (…, n, k)); differentiable in X for every kind of A."""
    if isinstance(A, LinearOperator):
        return _Apply.apply(X, A)
    if X.dim() == 2 and X.shape[-1] == 1 and is_sparse(A):
        return torch.mv(A, X[:, 0]).unsqueeze(-1)  # sparse × one vector: the faster kernel
    return A @ X


def rmatmul(A: OperatorLike, S: Tensor) -> Tensor:
    """``Aᵀ @ S`` without forming Aᵀ densely (a CSR matrix is transposed as CSC, no copy)."""
    if isinstance(A, LinearOperator):
        return A.rmatvec(S)
    transpose = A.t() if A.layout == torch.sparse_coo else A.mT
    if S.dim() == 2 and S.shape[-1] == 1 and is_sparse(A):
        return torch.mv(transpose, S[:, 0]).unsqueeze(-1)
    return transpose @ S


def column_norms(A: OperatorLike, weights: Optional[Tensor] = None) -> Tensor:
    """‖A[:, j]‖₂² for every column (with row weights w: Σᵢ wᵢ Aᵢⱼ²) — the diagonal of AᵀWA, the
    Jacobi preconditioner of least squares — in O(nnz), never densifying."""
    if isinstance(A, LinearOperator):
        raise UnsupportedInputError(
            "preconditioner='jacobi' for least squares needs the column norms of A, which a LinearOperator does "
            "not know; pass a preconditioner callable (P -> M⁻¹ P) instead")
    if not is_sparse(A):
        squares = A.square() if weights is None else A.square() * weights.unsqueeze(-1)
        return squares.sum(dim=-2)
    coo = A.to_sparse_coo().coalesce()
    rows, cols = coo.indices()
    values = coo.values().square()
    if weights is not None:
        values = values * weights[rows]
    return torch.zeros(A.shape[-1], dtype=A.dtype, device=A.device).index_add_(0, cols, values)


def is_symmetric(A: OperatorLike) -> bool:
    """A = Aᵀ to rounding (every batch member): O(n²) dense, O(nnz log nnz) sparse; an operator
    says so itself (``symmetric=True``)."""
    if isinstance(A, LinearOperator):
        return A.symmetric
    if A.shape[-1] != A.shape[-2]:
        return False
    n = A.shape[-1]
    eps = torch.finfo(A.dtype).eps
    if is_sparse(A):
        coo = A.to_sparse_coo().coalesce()
        difference = (coo - coo.t()).coalesce().values()
        scale = float(torch.linalg.vector_norm(coo.values()))
        return float(torch.linalg.vector_norm(difference)) <= 10 * n * eps * scale
    with torch.no_grad():
        if torch.equal(A, A.mT):  # exactly symmetric: the common case, one comparison
            return True
        asymmetry = torch.linalg.matrix_norm(A - A.mT)
        return bool((asymmetry <= 10 * n * eps * torch.linalg.matrix_norm(A)).all())


@torch.no_grad()
def norm_estimate(A: OperatorLike, steps: int = 30, seed: int = 0) -> float:
    """An estimate of ‖A‖₂ (the largest member's) by power iteration on AᵀA: a lower bound
    that is within a few per cent after ~30 steps for most matrices, O(steps·nnz)."""
    if isinstance(A, Tensor) and not is_sparse(A) and A.shape[-1] <= 512:
        return float(torch.linalg.matrix_norm(A, ord=2).max())  # small and dense: exactly, cheaply
    shape = (A.shape[-1], 1) if isinstance(A, LinearOperator) else (*A.shape[:-2], A.shape[-1], 1)
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype=A.dtype, device=A.device)
    estimate = torch.zeros(())
    for _ in range(steps):
        v = v / torch.linalg.matrix_norm(v, keepdim=True).clamp_min(torch.finfo(A.dtype).tiny)
        w = rmatmul(A, matmul(A, v))
        estimate = torch.linalg.matrix_norm(w).sqrt()
        v = w
    return float(estimate.max())


def accurate(A: Any) -> Any:
    """A in float64 for a residual that decides convergence: a float32 product's own rounding
    (~n·eps·‖A‖‖x‖) can hide whether a tolerance near eps holds.  An operator is applied in its
    own dtype (it cannot be cast)."""
    if isinstance(A, Tensor) and A.is_floating_point() and A.dtype != torch.float64:
        return A.double()
    return A
