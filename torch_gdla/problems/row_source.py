"""Where the rows of a streamed least-squares problem come from (:class:`RowSource`): a
map-style Dataset of ``(rows, targets)`` items, or an array pair (``.npy`` files read in blocks,
arrays, tensors); the training loader, this process's share of the rows for a pass over the
data, and the check of every batch."""
from __future__ import annotations

from typing import Any, Iterator, Optional, Sized, Union, cast

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..data import RowBlocks, check_item, collate_items, data_dtype, open_rows
from ..distributed import rank_and_world_size
from ..errors import ArgumentError, ArgumentTypeError
from ..matrices import MatrixLike, VectorLike
from ..validation import check_nonnegative_int, check_positive_int


class RowSource:
    """The rows ``A`` and targets ``b`` of ``StreamedLeastSquares`` (its arguments of the same
    names): ``n`` columns, ``k`` targets per row (None: one), ``rows`` (None for a Dataset,
    unknown until a pass), ``dtype`` of the batches, and the ``dataset`` the loader reads."""

    def __init__(self, A: Union[str, MatrixLike, Dataset], b: Union[str, VectorLike, None],
                 batch_size: Optional[int], dtype: Union[str, torch.dtype, None], num_workers: int,
                 residual_rows: int) -> None:
        check_positive_int(residual_rows, "residual_rows")
        check_nonnegative_int(num_workers, "num_workers")
        self.num_workers = num_workers
        self.residual_rows = residual_rows
        self.arrays: Optional[tuple[Any, Any]]
        self.k: Optional[int]
        self.rows: Optional[int]
        if isinstance(A, Dataset):
            if b is not None:
                raise ArgumentError("b must be None when A is a Dataset: its items are (rows, targets) pairs")
            if not hasattr(A, "__len__") or not hasattr(A, "__getitem__"):
                raise ArgumentTypeError("A must be a map-style Dataset (with __len__ and __getitem__) so it can be "
                                        "sharded")
            if len(A) == 0:
                raise ArgumentError("the Dataset A is empty")
            self.dataset: Dataset = A
            self.arrays = None
            first_rows, first_targets = check_item(A[0], "A[0]")
            self.n = first_rows.shape[-1]
            self.k = None if first_targets.dim() == first_rows.dim() - 1 else first_targets.shape[-1]
            self.dtype = data_dtype(dtype, first_rows.dtype)
            self.rows = None  # unknown until a pass
            self.item_batch = batch_size  # items per batch; None: every item in one batch
        else:
            if b is None:
                raise ArgumentError("b (the targets) is required unless A is a Dataset of (rows, targets)")
            matrix, targets = open_rows(A, b)
            self.arrays = (matrix, targets)
            self.n = int(matrix.shape[1])
            self.k = None if len(targets.shape) == 1 else int(targets.shape[1])
            self.dtype = data_dtype(dtype, matrix.dtype)
            self.rows = int(matrix.shape[0])
            block = self.rows if batch_size is None else min(batch_size, self.rows)
            self.dataset = RowBlocks(matrix, targets, block, self.dtype)
            self.item_batch = None  # items are already blocks

    def loader(self, shuffle: bool, seed: int) -> DataLoader:
        """One batch per optimizer step: a block of rows (memmap/array) or ``batch_size`` items."""
        generator = torch.Generator().manual_seed(seed)
        if self.arrays is not None:
            return DataLoader(self.dataset, batch_size=None, shuffle=shuffle, generator=generator,
                              num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        batch = self.item_batch if self.item_batch is not None else len(cast(Sized, self.dataset))
        return DataLoader(self.dataset, batch_size=batch, shuffle=shuffle, generator=generator,
                          collate_fn=collate_items, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def chunks(self, shard: bool = True) -> Iterator[Any]:
        """This process's share of the data (all of it without torch.distributed), in order, as
        raw batches (see :meth:`batch`)."""
        rank, world = rank_and_world_size() if shard else (0, 1)
        if self.arrays is not None:
            blocks = RowBlocks(*self.arrays, self.residual_rows, self.dtype)
            for index in range(rank, len(blocks), world):
                yield blocks[index]
            return
        indices = range(rank, len(cast(Sized, self.dataset)), world)
        yield from DataLoader(torch.utils.data.Subset(self.dataset, list(indices)), batch_size=self.item_batch or 1024,
                              collate_fn=collate_items, num_workers=self.num_workers)

    def batch(self, batch: Any, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """A (rows, targets) batch checked and shaped ((r, n) and (r,) or (r, k)) on ``device``."""
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ArgumentTypeError(f"a batch must be a (rows, targets) pair; got {type(batch).__name__}")
        rows, targets = batch
        if rows.shape[-1] != self.n:
            raise ArgumentError(f"a batch has rows of {rows.shape[-1]} features; the problem has n = {self.n}")
        rows = rows.reshape(-1, self.n).to(device=device, dtype=dtype)
        targets = targets.to(device=device, dtype=dtype)
        targets = targets.reshape(rows.shape[0]) if self.k is None else targets.reshape(rows.shape[0], self.k)
        return rows, targets
