"""Least squares whose rows stream from disk or any Dataset: x ≈ argmin mean((Aᵢx − bᵢ)²).

The rows of ``A`` and ``b`` are never all in memory: a ``.npy`` pair on disk is read in
contiguous blocks of ``batch_size`` rows (one optimizer step per block; see ``NpyRows``), and ``residual()``
is a second pass over the data in blocks.  Under Lightning's DDP each process sees its own
share of the blocks (Lightning puts a ``DistributedSampler`` on the map-style dataset); the
gradients of the per-process mean losses are averaged, which is the full-data mean gradient
when the shares are equal.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sized, Union, cast

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from ..data import RowBlocks, check_item, collate_items, data_dtype, open_rows
from ..distributed import all_reduce_sum, rank_and_world_size
from ..errors import ArgumentError, ArgumentTypeError
from ..matrices import MatrixLike, VectorLike
from ..validation import check_nonnegative_int, check_positive_int
from .base import Problem


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
        check_positive_int(residual_rows, "residual_rows")
        check_nonnegative_int(num_workers, "num_workers")
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.num_workers = num_workers
        self.residual_rows = residual_rows
        if isinstance(A, Dataset):
            if b is not None:
                raise ArgumentError("b must be None when A is a Dataset: its items are (rows, targets) pairs")
            if not hasattr(A, "__len__") or not hasattr(A, "__getitem__"):
                raise ArgumentTypeError("A must be a map-style Dataset (with __len__ and __getitem__) so it can be sharded")
            if len(A) == 0:
                raise ArgumentError("the Dataset A is empty")
            self.dataset: Dataset = A
            self._arrays = None
            first_rows, first_targets = check_item(A[0], "A[0]")
            self.n = first_rows.shape[-1]
            self.k = None if first_targets.dim() == first_rows.dim() - 1 else first_targets.shape[-1]
            self._dtype = data_dtype(dtype, first_rows.dtype)
            self.rows = None  # unknown until a pass
            self._item_batch = batch_size  # items per batch; None: every item in one batch
        else:
            if b is None:
                raise ArgumentError("b (the targets) is required unless A is a Dataset of (rows, targets)")
            matrix, targets = open_rows(A, b)
            self._arrays = (matrix, targets)
            self.n = int(matrix.shape[1])
            self.k = None if len(targets.shape) == 1 else int(targets.shape[1])
            self._dtype = data_dtype(dtype, matrix.dtype)
            self.rows = int(matrix.shape[0])
            block = self.rows if batch_size is None else min(batch_size, self.rows)
            self.dataset = RowBlocks(matrix, targets, block, self._dtype)
            self._item_batch = None  # items are already blocks
        if n_features is not None and n_features != self.n:
            raise ArgumentError(f"n_features={n_features} but the data have {self.n} columns")
        self.batch_size = batch_size
        whole = batch_size is None or (self.rows is not None and batch_size >= self.rows)
        self.stochastic = not whole
        shape = (self.n,) if self.k is None else (self.n, self.k)
        self.x = nn.Parameter(torch.zeros(shape, dtype=self._dtype))
        self._rhs_norm: Optional[Tensor] = None

    # -- data ---------------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        """One batch per optimizer step: a block of rows (memmap/array) or ``batch_size`` items."""
        generator = torch.Generator().manual_seed(self.seed)
        if self._arrays is not None:
            return DataLoader(self.dataset, batch_size=None, shuffle=self.shuffle, generator=generator,
                              num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        batch = self._item_batch if self._item_batch is not None else len(cast(Sized, self.dataset))
        return DataLoader(self.dataset, batch_size=batch, shuffle=self.shuffle, generator=generator,
                          collate_fn=collate_items, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def _batch(self, batch: Any) -> tuple[Tensor, Tensor]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ArgumentTypeError(f"a batch must be a (rows, targets) pair; got {type(batch).__name__}")
        rows, targets = batch
        if rows.shape[-1] != self.n:
            raise ArgumentError(f"a batch has rows of {rows.shape[-1]} features; the problem has n = {self.n}")
        rows = rows.reshape(-1, self.n).to(device=self.x.device, dtype=self.x.dtype)
        targets = targets.to(device=self.x.device, dtype=self.x.dtype)
        targets = targets.reshape(rows.shape[0]) if self.k is None else targets.reshape(rows.shape[0], self.k)
        return rows, targets

    def _chunks(self, shard: bool = True) -> Iterator[tuple[Tensor, Tensor]]:
        """This process's share of the data (all of it without torch.distributed), in order."""
        rank, world = rank_and_world_size() if shard else (0, 1)
        if self._arrays is not None:
            blocks = RowBlocks(*self._arrays, self.residual_rows, self._dtype)
            for index in range(rank, len(blocks), world):
                yield self._batch(blocks[index])
            return
        indices = range(rank, len(cast(Sized, self.dataset)), world)
        loader = DataLoader(torch.utils.data.Subset(self.dataset, list(indices)), batch_size=self._item_batch or 1024,
                            collate_fn=collate_items, num_workers=self.num_workers)
        for batch in loader:
            yield self._batch(batch)

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
        return f"rows={rows}, n={self.n}, batch_size={self.batch_size}, stochastic={self.stochastic}, dtype={self._dtype}"

