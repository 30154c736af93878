"""Matrices known by their action: ``LinearOperator`` and ``aslinearoperator``.

An iterative solver needs only ``v -> A @ v`` (and ``u -> Aᵀ @ u`` for least squares), so a
problem can take a dense tensor, a ``torch.sparse`` tensor (COO, CSR, CSC) or a function — the
model of ``scipy.sparse.linalg.LinearOperator``.  Every operator counts its applications
(``matvecs``, ``rmatvecs``: one per vector, so an (n, k) block counts k), for comparisons with
scipy's iteration counts.  Nothing here densifies a sparse matrix.
"""
from .apply import accurate, adjoint, column_norms, is_symmetric, matmul, norm_estimate, rmatmul
from .linear_operator import LinearOperator, OperatorLike, aslinearoperator
from .sparse import SPARSE_LAYOUTS, compact, is_sparse, quiet_sparse

__all__ = ["LinearOperator", "aslinearoperator", "is_sparse", "OperatorLike", "matmul", "rmatmul", "adjoint", "column_norms",
           "is_symmetric", "norm_estimate", "accurate", "compact", "quiet_sparse", "SPARSE_LAYOUTS"]
