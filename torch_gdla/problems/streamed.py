"""Least squares whose rows stream from disk or any Dataset: x ≈ argmin mean((Aᵢx − bᵢ)²).

The rows of ``A`` and ``b`` are never all in memory: a ``.npy`` pair on disk is read in
contiguous blocks of ``batch_size`` rows (one optimizer step per block; see ``NpyRows``), and ``residual()``
is a second pass over the data in blocks.  Under Lightning's DDP each process sees its own
share of the blocks (Lightning puts a ``DistributedSampler`` on the map-style dataset); the
gradients of the per-process mean losses are averaged, which is the full-data mean gradient
when the shares are equal.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional, Union

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..distributed import all_reduce_sum
from ..errors import ArgumentError, ArgumentTypeError
from ..matrices import MatrixLike, VectorLike
from ..validation import check_positive_int
from .base import Problem
from .row_source import RowSource


class StreamedLeastSquares(Problem):
    """Least squares ``min_x mean‖A x − b‖²`` over rows read from a DataLoader.

    Args:
        A: the rows: a path to a ``.npy`` file (its header checked when the problem is built,
            blocks read with ``pread``: see ``torch_gdla.data.NpyRows``), an
            array or tensor of shape ``(m, n)``, or a map-style ``Dataset`` whose items are
            ``(rows, targets)`` (a row ``(n,)`` with a scalar or ``(k,)`` target, or a block
            ``(r, n)`` with ``(r,)`` / ``(r, k)`` targets; blocks are concatenated).
        b: the targets, shape ``(m,)`` or ``(m, k)`` (path, array or tensor); None with a Dataset.
        batch_size: rows per optimizer step (for a Dataset of single rows: items per batch);
            None = all rows in one batch (full-batch gradient, deterministic).
        shuffle: reshuffle the blocks every epoch (seeded by ``seed``; under DDP Lightning's
            ``DistributedSampler`` shuffles instead, seeded by ``seed_everything``).
        seed: seed of the shuffle.
        dtype: the unknown's and the batches' dtype (default: the data's, float32 for files of
            float32).
        n_features: expected number of columns (checked against the data when given).
        num_workers: DataLoader worker processes.
        residual_rows: rows per chunk of the residual pass.

    The problem is ``stochastic`` (the solution is the last iterate, not the best-loss point)
    unless one batch holds all rows.  ``residual()`` is the normal-equation residual
    ``‖Aᵀ(Ax − b)‖ / ‖Aᵀb‖`` computed by a pass over the data (``‖Aᵀb‖`` once, then cached); when
    ``torch.distributed`` is initialised each process sums ``Aᵀ(Ax − b)`` over its share of the
    blocks (``rank::world_size``) and the sums are all-reduced, so every process must call it
    (Lightning does, in lock step).  ``reference()`` solves the normal equations accumulated in
    float64 over one pass: a direct answer for tall, narrow problems (n up to a few thousand).
    """

    uses_data = True

    def __init__(
        self,
        A: Union[str, MatrixLike, Dataset],
        b: Union[str, VectorLike, None] = None,
        batch_size: Optional[int] = 65536,
        shuffle: bool = True,
        seed: int = 314,
        dtype: Union[str, torch.dtype, None] = None,
        n_features: Optional[int] = None,
        num_workers: int = 0,
        residual_rows: int = 65536,
    ) -> None:
        super().__init__()
        check_positive_int(batch_size, "batch_size", allow_none=True, meaning="rows per step; None: all rows")
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.source = RowSource(A, b, batch_size, dtype, num_workers, residual_rows)
        self.n, self.k, self.rows, self.dataset = self.source.n, self.source.k, self.source.rows, self.source.dataset
        if n_features is not None and n_features != self.n:
            raise ArgumentError(f"n_features={n_features} but the data have {self.n} columns")
        self.batch_size = batch_size
        whole = batch_size is None or (self.rows is not None and batch_size >= self.rows)
        self.stochastic = not whole
        shape = (self.n,) if self.k is None else (self.n, self.k)
        self.x = nn.Parameter(torch.zeros(shape, dtype=self.source.dtype))
        self._rhs_norm: Optional[Tensor] = None

    # -- data ---------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        """One batch per optimizer step: a block of rows (memmap/array) or ``batch_size`` items."""
        return self.source.loader(self.shuffle, self.seed)

    def _batch(self, batch: Any) -> tuple[Tensor, Tensor]:
        return self.source.batch(batch, self.x.device, self.x.dtype)

    def _chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        """This process's share of the data (all of it without torch.distributed), in order."""
        for chunk in self.source.chunks():
            yield self._batch(chunk)

    # -- the problem ----------------------------------------------------------------------------
    def forward(self, batch: Any = None) -> Tensor:
        if batch is None:
            raise ArgumentTypeError("StreamedLeastSquares reads its rows from a DataLoader: call problem(batch) with a "
                            "(rows, targets) batch, or solve it with gdla.solve / a Trainer")
        rows, targets = self._batch(batch)
        return (rows @ self.x - targets).square().mean()

    def losses(self) -> Tensor:
        return self.full_loss()

    @torch.no_grad()
    def full_loss(self) -> Tensor:
        """The mean squared error over all rows (a pass over the data)."""
        total = torch.zeros((), dtype=torch.float64, device=self.x.device)
        count = torch.zeros((), dtype=torch.float64, device=self.x.device)
        for rows, targets in self._chunks():
            total += (rows @ self.x - targets).double().square().sum()
            count += targets.numel()
        total, count = all_reduce_sum(total), all_reduce_sum(count)
        return (total / count).to(self.x.dtype)

    @property
    def solution(self) -> Tensor:
        return self.x.detach()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        if self._rhs_norm is None:
            self._rhs_norm = self._normal_sums(rhs=True).norm()
        gradient = self._normal_sums(rhs=False)
        norm = gradient.norm()
        value = norm / self._rhs_norm if float(self._rhs_norm) > 0 else norm
        return value.to(self.x.dtype)

    def _normal_sums(self, rhs: bool) -> Tensor:
        # Aᵀ(Ax − b) (or Aᵀb) summed in float64 over this process's chunks, then over processes.
        total = torch.zeros(self.x.shape, dtype=torch.float64, device=self.x.device)
        for rows, targets in self._chunks():
            vector = targets if rhs else rows @ self.x - targets
            total += (rows.mT @ vector).double()
        return all_reduce_sum(total)

    @torch.no_grad()
    def reference(self) -> Tensor:
        """Solve the normal equations AᵀA x = Aᵀb accumulated in float64 over one pass."""
        gram = torch.zeros(self.n, self.n, dtype=torch.float64, device=self.x.device)
        rhs = torch.zeros(self.x.shape, dtype=torch.float64, device=self.x.device)
        for rows, targets in self._chunks():
            rows64 = rows.double()
            gram += rows64.mT @ rows64
            rhs += rows64.mT @ targets.double()
        gram, rhs = all_reduce_sum(gram), all_reduce_sum(rhs)
        return torch.linalg.lstsq(gram, rhs).solution.to(self.x.dtype) if rhs.dim() == 2 else \
            torch.linalg.lstsq(gram, rhs.unsqueeze(-1)).solution.squeeze(-1).to(self.x.dtype)

    def measures(self, reference: bool = False) -> dict[str, Any]:
        # The residual costs a pass over all rows: it is in result.residual at the end, but not
        # logged every block (that would double the data read).
        return {}

    def extra_repr(self) -> str:
        rows = "?" if self.rows is None else str(self.rows)
        return (f"rows={rows}, n={self.n}, batch_size={self.batch_size}, stochastic={self.stochastic}, "
                f"dtype={self.source.dtype}")

