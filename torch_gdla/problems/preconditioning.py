"""Preconditioners for the Krylov methods of the linear problems (``preconditioner=``).

* ``"jacobi"``: the diagonal — of A for conjugate gradient on a symmetric A, of AᵀWA + l2·I
  (the squared, weighted column norms) for least squares, where it is a right preconditioner
  (a column scaling).  Computed in O(nnz) from a sparse A, never densified; an operator must
  know its diagonal (``LinearOperator(diagonal=...)``).
* a callable ``P -> M⁻¹ P`` applied to blocks of the unknown's columns, shape ``(…, n, k)``;
* a :class:`~torch_gdla.operators.LinearOperator` applying M⁻¹ (its matvec).

M must be symmetric positive definite (a diagonal with positive entries, for instance).
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor

from ..errors import ArgumentError, ArgumentTypeError
from ..operators import LinearOperator, column_norms, is_sparse

Block = Callable[[Tensor], Tensor]
PreconditionerLike = Union[None, str, Block, LinearOperator]


def check_preconditioner(value: Any) -> PreconditionerLike:
    """Validate ``preconditioner=``: None, ``"jacobi"``, a callable or a LinearOperator."""
    if value is None or isinstance(value, LinearOperator) or (callable(value) and not isinstance(value, str)):
        return value
    if value != "jacobi":
        raise (ArgumentError if isinstance(value, str) else ArgumentTypeError)(
            f"preconditioner must be None, 'jacobi', a callable P -> M⁻¹ P, or a gdla.LinearOperator applying M⁻¹; "
            f"got {value!r}")
    return value


def _diagonal(A: Any) -> Tensor:
    if isinstance(A, LinearOperator):
        return A.diagonal()
    if is_sparse(A):
        coo = A.to_sparse_coo().coalesce()
        rows, cols = coo.indices()
        on = rows == cols
        return torch.zeros(A.shape[-1], dtype=A.dtype, device=A.device).index_add_(0, rows[on], coo.values()[on])
    return A.diagonal(dim1=-2, dim2=-1)


def _scaling(diagonal: Tensor, what: str) -> Block:
    if not bool((diagonal > 0).all()):
        raise ArgumentError(f"preconditioner='jacobi' divides by {what}, which has {int((diagonal <= 0).sum())} entries "
                            "<= 0; it needs a positive diagonal (an SPD matrix has one): pass no preconditioner or "
                            "your own callable")
    inverse = diagonal.reciprocal().unsqueeze(-1)
    return lambda block: block * inverse


def build(preconditioner: PreconditionerLike, A: Any, symmetric: bool, weights: Optional[Tensor] = None,
          l2: float = 0.0) -> Optional[Block]:
    """The M⁻¹ block function for conjugate gradient on A (``symmetric``) or for least squares."""
    if preconditioner is None:
        return None
    if isinstance(preconditioner, LinearOperator):
        return preconditioner.matvec
    if callable(preconditioner):
        return preconditioner
    with torch.no_grad():
        if symmetric:
            return _scaling(_diagonal(A), "the diagonal of A")
        return _scaling(column_norms(A, weights) + l2, "the squared column norms of A")
