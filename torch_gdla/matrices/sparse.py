"""Sparse test matrices, built sparse (never densified): the discrete Laplacians that iterative
solvers are measured on."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ..validation import DtypeLike, check_positive_int
from .sources import Source


class Poisson2D(Source):
    """The 5-point Laplacian of an ``n × n`` grid (Dirichlet boundary): ``N = n²`` unknowns,
    4 on the diagonal and −1 for each grid neighbour, as a CSR tensor (float64 by default).

    Symmetric positive definite, eigenvalues ``4 sin²(iπ/(2(n+1))) + 4 sin²(jπ/(2(n+1)))`` for
    i, j = 1…n (see :meth:`eigenvalues`), so κ₂ = cot²(π/(2(n+1))) ≈ 4(n+1)²/π²: 1.1e5 at
    n = 512.  The classic benchmark of conjugate gradient (``scipy.sparse.linalg.cg``)."""

    def __init__(self, n: int, dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(dtype)
        check_positive_int(n, "n")
        self.n = n

    def build(self) -> Tensor:
        n = self.n
        index = torch.arange(n * n).reshape(n, n)
        rows, cols = [index.reshape(-1)], [index.reshape(-1)]
        values = [torch.full((n * n,), 4.0, dtype=torch.float64)]
        for a, b in ((index[:, :-1], index[:, 1:]), (index[:-1, :], index[1:, :])):  # horizontal, vertical pairs
            a, b = a.reshape(-1), b.reshape(-1)
            rows += [a, b]
            cols += [b, a]
            values += [torch.full((2 * len(a),), -1.0, dtype=torch.float64)]
        from ..operators import compact, quiet_sparse

        with quiet_sparse():
            coo = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(values),
                                          size=(n * n, n * n)).coalesce()
            return compact(coo.to_sparse_csr())

    def eigenvalues(self) -> Tensor:
        """All N eigenvalues in ascending order (closed form), float64."""
        k = torch.arange(1, self.n + 1, dtype=torch.float64)
        one = 4 * torch.sin(k * math.pi / (2 * (self.n + 1))).square()
        return (one[:, None] + one[None, :]).reshape(-1).sort().values
