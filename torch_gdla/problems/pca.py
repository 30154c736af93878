"""Principal component analysis of rows that stream from disk, a Dataset or a DataLoader.

:class:`PCA` is the eigenproblem (``eigen.py``) of the covariance C = Σ(xᵢ − μ)(xᵢ − μ)ᵀ/(m − 1)
of the rows, with C never formed: ``C @ V`` is one pass over the rows in blocks,
``Σ (X_b − μ)ᵀ((X_b − μ) V)``, so memory holds one block, the n × k unknowns and the method's
basis — not the rows, and not n × n.  The mean μ, the row count and the total variance come
from one more pass, made when first needed.

Under ``torch.distributed`` (Lightning's DDP) each process reads its own share of the blocks
(``rank::world_size``) and the sums are all-reduced, so every process applies the same C and
takes the same steps; every process must apply C in lock step (the engine does).  A DataLoader
is read as given: give each process its shard (a ``DistributedSampler``), or the same rows
everywhere (their sums all-reduced count every row once per process, and the counts with them).
"""
from __future__ import annotations

import math
import os
from typing import Any, Iterator, NamedTuple, Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..data import NpyRows, data_dtype, to_tensor
from ..distributed import all_reduce_sum, rank_and_world_size
from ..errors import ArgumentError
from ..operators import LinearOperator
from ..validation import check_int, check_nonnegative_int, check_positive_int, is_source
from .eigen import EigenProblem, sign_normalised
from .frames import orthonormal_start


class PCASolution(NamedTuple):
    """The k principal directions (orthonormal columns, largest-magnitude entry positive), their
    variances (descending) and the rows' mean."""

    variances: Tensor
    directions: Tensor
    mean: Tensor


def _rows_of(item: Any) -> Tensor:
    """The rows of a Dataset item or a DataLoader batch: the item itself, or the first of a
    ``(rows, targets)`` pair (targets are ignored)."""
    rows = item[0] if isinstance(item, (tuple, list)) else item
    return torch.as_tensor(rows)


def _collate_rows(items: list[Any]) -> Tensor:
    return torch.cat([_rows_of(item).reshape(-1, _rows_of(item).shape[-1]) for item in items])


class PCA(EigenProblem):
    """The top-k principal components of the rows of ``data``.

    Args:
        data: the rows (m × n): a path to a 2-D ``.npy`` file (blocks read with ``pread``, see
            ``torch_gdla.data.NpyRows``), an array, tensor or matrix source, a map-style
            ``Dataset`` whose items are rows ``(n,)``, blocks ``(r, n)`` or ``(rows, targets)``
            pairs (targets ignored), or a ``DataLoader`` of such batches.
        k: the number of components (1 to n).
        batch_size: rows per block read (items per batch for a Dataset of single rows).
        dtype: of the computation (default: float64 for float64 data, else float32); sums over
            rows are accumulated in float64 either way.
        num_workers: DataLoader workers for a Dataset.
        init, seed: a warm start (previous directions, n × k) or the seed of a random start.

    ``solution`` is a :class:`PCASolution` ``(variances, directions, mean)``; ``residual()`` is
    ``max_i ‖C vᵢ − λᵢ vᵢ‖ / λ₁`` (λ₁ = the largest variance found, ‖C‖ at the solution), one
    pass over the rows.  Each step of the default method is one pass (a block of 2k vectors
    costs what one vector does).
    """

    def __init__(self, data: Any, k: int = 1, batch_size: int = 65536, dtype: Union[str, torch.dtype, None] = None,
                 num_workers: int = 0, init: Optional[Tensor] = None, seed: int = 314) -> None:
        super().__init__()
        self.batch_size = check_positive_int(batch_size, "batch_size", meaning="rows per block read")
        self.num_workers = check_nonnegative_int(num_workers, "num_workers")
        check_int(seed, "seed")
        self._source, first = self._open(data)
        n = int(first.shape[-1])
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
            raise ArgumentError(f"k must be an integer from 1 to n = {n} (the number of components); got {k!r}")
        dtype_ = data_dtype(dtype, first.dtype if isinstance(first, Tensor) else np.dtype(first.dtype))
        self.M = LinearOperator((n, n), self._covariance_times, dtype=dtype_, symmetric=True, matmat=True)
        # The row statistics (float64 mean, rows, total variance): one pass, when first needed.  Not
        # buffers: derived from the data, and computed during a solve.
        self._statistics: Optional[tuple[Tensor, float, float]] = None
        like = torch.empty(0, dtype=dtype_)
        self._init_eigen(k, True, orthonormal_start(init, (n, k), seed, like))

    # -- data -------------------------------------------------------------------------------------------
    def _open(self, data: Any) -> tuple[Any, Any]:
        """The row source (rows-sliceable array, Dataset or DataLoader) and a first row."""
        if isinstance(data, DataLoader):
            return data, _rows_of(next(iter(data)))
        if isinstance(data, Dataset):
            if not hasattr(data, "__len__") or len(data) == 0:
                raise ArgumentError("data is an empty or unsized Dataset; PCA needs a map-style Dataset with rows")
            return data, _rows_of(data[0])
        if isinstance(data, (str, os.PathLike)):
            data = NpyRows(data, "data")
        elif is_source(data):
            data = data.tensor()
        elif isinstance(data, (list, tuple)):
            data = np.asarray(data, dtype=np.float64)
        if isinstance(data, Tensor):
            data = data.detach().cpu()
        if len(getattr(data, "shape", ())) != 2 or data.shape[0] == 0 or data.shape[1] == 0:
            raise ArgumentError(f"data must be rows × features (2-D, non-empty); got shape "
                                f"{tuple(getattr(data, 'shape', ()))}")
        return data, data[0:1]

    def _blocks(self) -> Iterator[Tensor]:
        """This process's share of the rows, in blocks, in the computation's dtype."""
        dtype, source = self.frame.dtype, self._source
        rank, world = rank_and_world_size()
        if isinstance(source, DataLoader):
            loader: Any = source
        elif isinstance(source, Dataset):
            share = torch.utils.data.Subset(source, list(range(rank, len(source), world)))  # type: ignore[arg-type]
            loader = DataLoader(share, batch_size=self.batch_size, collate_fn=_collate_rows,
                                num_workers=self.num_workers)
        else:
            rows, size = source.shape[0], self.batch_size
            loader = (source[i * size:(i + 1) * size] for i in range(rank, math.ceil(rows / size), world))
        for block in loader:
            rows_ = _rows_of(block) if isinstance(block, (tuple, list, Tensor)) else to_tensor(block, dtype)
            yield rows_.reshape(-1, self.n).to(dtype=dtype, device=self.frame.device)

    def statistics(self) -> tuple[Tensor, float, float]:
        """(mean, rows, total variance tr C): one pass over the rows, the first time."""
        if self._statistics is None:
            device = self.frame.device
            sums = torch.zeros(self.n + 2, dtype=torch.float64, device=device)  # Σx, Σ‖x‖², count
            for rows in self._blocks():
                rows64 = rows.double()
                sums[:-2] += rows64.sum(dim=0)
                sums[-2] += rows64.square().sum()
                sums[-1] += rows.shape[0]
            sums = all_reduce_sum(sums)
            count = float(sums[-1])
            if count < 2:
                raise ArgumentError(f"PCA needs at least 2 rows; the data have {int(count)}")
            mean = sums[:-2] / count
            total = max(float(sums[-2] - count * mean.square().sum()) / (count - 1), 0.0)
            self._statistics = (mean, count, total)
        mean, count, total = self._statistics
        return mean.to(dtype=self.frame.dtype, device=self.frame.device), count, total

    def _covariance_times(self, V: Tensor) -> Tensor:
        """C @ V: one pass over the rows (centred block by block), sums in float64, all-reduced."""
        mean, count, _ = self.statistics()
        mean = mean.to(V.dtype)
        total = torch.zeros(V.shape, dtype=torch.float64, device=V.device)
        for rows in self._blocks():
            centred = rows.to(V.dtype) - mean
            total += (centred.mT @ (centred @ V)).double()
        return (all_reduce_sum(total) / (count - 1)).to(V.dtype)

    # -- the eigenproblem's scales ----------------------------------------------------------------------
    def _scale(self, values: Tensor) -> Tensor:
        """λ₁, the largest variance at the current point (‖C‖ at the solution), else tr C."""
        top = values.abs().amax(dim=-1)
        return torch.where(top > 0, top, torch.as_tensor(self._loss_scale(), dtype=top.dtype, device=top.device))

    def _loss_scale(self) -> Tensor:
        """tr C, the total variance: the loss is the weighted fraction of variance explained, negated."""
        total = self.statistics()[2]
        return torch.tensor(total if total > 0 else 1.0, dtype=self.frame.dtype, device=self.frame.device)

    def ritz_options(self) -> dict[str, Any]:
        """A block of 2k vectors: one pass over the rows applies C to any number of vectors."""
        return {"block": 2 * self.k}

    # -- answers --------------------------------------------------------------------------------------------
    @property
    def solution(self) -> PCASolution:  # type: ignore[override]
        values, vectors, _, _ = self.pairs()
        return PCASolution(values.clone(), vectors.clone(), self.statistics()[0].clone())

    @torch.no_grad()
    def reference(self) -> PCASolution:
        """``torch.linalg.eigh`` of the dense covariance, accumulated in float64 over one pass."""
        mean, count, _ = self.statistics()
        covariance = torch.zeros(self.n, self.n, dtype=torch.float64, device=self.frame.device)
        for rows in self._blocks():
            centred = rows.double() - self._statistics[0].to(rows.device)  # type: ignore[index]
            covariance += centred.mT @ centred
        values, vectors = torch.linalg.eigh(all_reduce_sum(covariance) / (count - 1))
        values, vectors = values.flip(-1)[: self.k], vectors.flip(-1)[:, : self.k]
        dtype = self.frame.dtype
        return PCASolution(values.to(dtype), sign_normalised(vectors)[0].to(dtype), mean.clone())

    @torch.no_grad()
    def reference_errors(self, reference: PCASolution) -> Tensor:
        """‖λ − λ_ref‖ / ‖λ_ref‖ (the variances' relative error)."""
        return torch.linalg.vector_norm(self.solution.variances - reference.variances) / \
            torch.linalg.vector_norm(reference.variances)

    def extra_repr(self) -> str:
        return f"n={self.n}, k={self.k}, batch_size={self.batch_size}, dtype={self.dtype}"
