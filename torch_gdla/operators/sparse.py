"""torch.sparse helpers: the layouts, the quiet construction, the fast index form, the diagonal."""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator

import torch
from torch import Tensor

SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc)


def is_sparse(tensor: Any) -> bool:
    """True for a torch.sparse tensor of any layout."""
    return isinstance(tensor, Tensor) and tensor.layout in SPARSE_LAYOUTS


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
    if matrix.layout not in (torch.sparse_csr, torch.sparse_csc) or matrix._nnz() >= 2**31 - 1:
        return matrix
    compressed, plain = ((matrix.crow_indices(), matrix.col_indices()) if matrix.layout == torch.sparse_csr
                         else (matrix.ccol_indices(), matrix.row_indices()))
    if compressed.dtype == torch.int32:
        return matrix
    build = torch.sparse_csr_tensor if matrix.layout == torch.sparse_csr else torch.sparse_csc_tensor
    with quiet_sparse():
        return build(compressed.to(torch.int32), plain.to(torch.int32), matrix.values(), size=matrix.shape)


def sparse_diagonal(matrix: Tensor) -> Tensor:
    """The diagonal of a sparse matrix without densifying it (O(nnz))."""
    coo = matrix.to_sparse_coo().coalesce()
    rows, cols = coo.indices()
    on = rows == cols
    diagonal = torch.zeros(min(matrix.shape), dtype=matrix.dtype, device=matrix.device)
    return diagonal.index_add_(0, rows[on], coo.values()[on])
