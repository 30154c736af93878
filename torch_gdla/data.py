"""Rows read in blocks, for problems whose data do not fit in memory (``StreamedLeastSquares``).

``NpyRows`` reads contiguous row ranges of a ``.npy`` file with ``os.pread``; ``RowBlocks`` is a
map-style ``Dataset`` of consecutive row blocks of any row-sliceable pair (``NpyRows``, arrays,
tensors), so a DataLoader step costs one read per block, not one per row.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .errors import ArgumentError, ArgumentTypeError
from .matrices.files import check_file
from .matrices.headers import read_npy_header
from .validation import check_dtype, is_source

__all__ = ["NpyRows", "RowBlocks", "open_rows", "check_item", "collate_items", "to_tensor", "data_dtype"]

PathLike = Union[str, "os.PathLike[str]"]


def to_tensor(value: Any, dtype: torch.dtype) -> Tensor:
    """A block of rows (array or tensor) as a tensor of ``dtype``."""
    if isinstance(value, Tensor):
        return value.to(dtype)
    if not value.dtype.isnative:  # big-endian data: torch takes native byte order only
        value = value.astype(value.dtype.newbyteorder("="))
    elif not value.flags.writeable:  # a read-only view (memmap, frombuffer of bytes): torch needs writable memory
        value = np.array(value, copy=True)
    return torch.from_numpy(np.ascontiguousarray(value)).to(dtype)


def data_dtype(dtype: Union[str, torch.dtype, None], fallback: Any) -> torch.dtype:
    """The dtype to compute in: ``dtype`` if given, else float64 for float64 data (``fallback``, a
    numpy or torch dtype) and float32 for anything else."""
    checked = check_dtype(dtype, allow_torch=True)
    if checked is not None:
        return checked
    if isinstance(fallback, (np.dtype, type)):
        return torch.float64 if np.dtype(fallback).newbyteorder("=") == np.float64 else torch.float32
    return fallback if isinstance(fallback, torch.dtype) and fallback.is_floating_point else torch.float32


class RowBlocks(Dataset):
    """Map-style dataset over blocks of ``block_rows`` consecutive rows of ``A`` and ``b``.

    ``A`` and ``b`` are anything sliceable by rows with a length (``NpyRows``, a NumPy memmap, an
    array, a tensor).  Item ``i`` is ``(A[i·B:(i+1)·B], b[i·B:(i+1)·B])`` as tensors of ``dtype``:
    one contiguous read per block, not one per row.  Shuffling permutes blocks, not rows within one.
    """

    def __init__(self, A: Any, b: Any, block_rows: int, dtype: torch.dtype) -> None:
        self.A, self.b = A, b
        self.block_rows = int(block_rows)
        self.dtype = dtype
        self.rows = len(A)

    def __len__(self) -> int:
        return math.ceil(self.rows / self.block_rows)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"block {index} out of range 0..{len(self) - 1}")
        rows = slice(index * self.block_rows, min((index + 1) * self.block_rows, self.rows))
        return to_tensor(self.A[rows], self.dtype), to_tensor(self.b[rows], self.dtype)


class NpyRows:
    """Rows of a 1-D or 2-D C-ordered floating-point ``.npy`` file, read on demand with ``os.pread``.

    Only the header is parsed when opened (shape, dtype, data offset; a file shorter than the
    header says is refused then).  Slicing a memory map instead would leave every page read
    mapped into the process, so its resident set would grow to the file size; reading each
    block with ``pread`` leaves the data in the page cache, and the process holds one block at a
    time.  The file descriptor is opened lazily per process (safe with DataLoader workers and
    DDP).  Blocks come back in native byte order whatever the file's.
    """

    def __init__(self, path: PathLike, name: str) -> None:
        path = Path(path)
        if path.suffix != ".npy":
            raise ArgumentError(f"{name} must be a .npy file (read in blocks of rows); got {str(path)!r}. "
                                "Convert it with numpy.save, or pass a Dataset yielding (rows, targets)")
        if not os.path.lexists(path):
            raise FileNotFoundError(f"{name}: no such .npy file: {str(path)!r} (check the path, relative to "
                                    f"{os.getcwd()!r})")
        header = read_npy_header(check_file(path, f"{name}:", "a .npy file"), name)
        if header.dtype.kind != "f":
            raise ArgumentTypeError(f"{name} ({str(path)!r}) has dtype {header.dtype}; store floating-point numbers")
        if header.fortran_order and sum(size > 1 for size in header.shape) > 1:  # else F and C order agree
            raise ArgumentError(f"{name} ({str(path)!r}) is stored in Fortran order; save it with "
                                "numpy.save(path, numpy.ascontiguousarray(a))")
        self.path = str(path)
        self.shape = header.shape
        self._file_dtype = header.dtype
        self.dtype = header.dtype.newbyteorder("=")  # the dtype of the blocks returned
        self.offset = header.offset
        self.row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        self._fd: Optional[int] = None
        self._pid: Optional[int] = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            raise IndexError("NpyRows reads contiguous row ranges only")
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        count = max(stop - start, 0)
        buffer = bytearray(count * self.row_bytes)
        view, done = memoryview(buffer), 0
        while done < len(buffer):
            read = os.preadv(self._fd, [view[done:]], self.offset + start * self.row_bytes + done)
            if read <= 0:  # checked when opened, so the file shrank since
                raise OSError(f"{self.path!r} is shorter than its .npy header says: rows {start}..{stop - 1} "
                              f"end at byte {self.offset + stop * self.row_bytes:,} but the file ended at "
                              f"{self.offset + start * self.row_bytes + done:,} (was it truncated while in use?)")
            done += read
        block = np.frombuffer(buffer, dtype=self._file_dtype)
        if not self._file_dtype.isnative:  # the buffer is ours: swap in place, no copy
            block = block.byteswap(inplace=True).view(self.dtype)
        return block.reshape((count, *self.shape[1:]))

    def __getstate__(self) -> dict[str, Any]:
        # A file descriptor does not survive pickling into a worker process; each reopens.
        state = dict(self.__dict__)
        state["_fd"] = state["_pid"] = None
        return state

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)  # absent when __init__ failed
        if fd is not None and self._pid == os.getpid():
            try:
                os.close(fd)
            except OSError:
                pass


def open_rows(A: Any, b: Any) -> tuple[Any, Any]:
    """The rows ``A`` and targets ``b`` as row-sliceable arrays with checked shapes.

    A path opens as ``NpyRows``; a matrix source (``Random`` in a config) is built; a list
    becomes a float64 array; a tensor moves to the CPU.  ``A`` must be ``(m, n)`` with ``m, n > 0``
    and ``b`` ``(m,)`` or ``(m, k)``.
    """
    matrix, targets = (_rows(value, name) for value, name in ((A, "A"), (b, "b")))
    if len(matrix.shape) != 2:
        raise ArgumentError(f"A must be 2-D (rows × features); got shape {tuple(matrix.shape)}")
    if len(targets.shape) not in (1, 2):
        raise ArgumentError(f"b must have shape (m,) or (m, k); got {tuple(targets.shape)}")
    if targets.shape[0] != matrix.shape[0]:
        raise ArgumentError(f"A and b must have the same number of rows; got A {tuple(matrix.shape)} and "
                            f"b {tuple(targets.shape)}")
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ArgumentError(f"A is empty (shape {tuple(matrix.shape)})")
    return matrix, targets


def _rows(value: Any, name: str) -> Any:
    if isinstance(value, (str, os.PathLike)):
        return NpyRows(value, name)
    if is_source(value):
        value = value.tensor()
    if isinstance(value, (list, tuple)):
        return np.asarray(value, dtype=np.float64)
    return value.detach().cpu() if isinstance(value, Tensor) else value


def check_item(item: Any, where: str) -> tuple[Tensor, Tensor]:
    """A user Dataset's item as ``(rows, targets)`` tensors: a row ``(n,)`` with a target ``()`` or
    ``(k,)``, or a block ``(r, n)`` with ``(r,)`` or ``(r, k)``; ``where`` names it in errors."""
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise ArgumentTypeError(f"{where} must be a (rows, targets) pair; got {type(item).__name__}")
    rows, targets = (torch.as_tensor(v) for v in item)
    if rows.dim() not in (1, 2) or targets.dim() not in (rows.dim() - 1, rows.dim()):
        raise ArgumentError(f"{where}: rows must be (n,) or (r, n) and targets (), (k,), (r,) or (r, k); got rows "
                            f"{tuple(rows.shape)} and targets {tuple(targets.shape)}")
    if rows.dim() == 2 and targets.shape[0] != rows.shape[0]:
        raise ArgumentError(f"{where}: {rows.shape[0]} rows but {targets.shape[0]} targets")
    return rows, targets


def collate_items(items: list[Any]) -> tuple[Tensor, Tensor]:
    """Concatenate Dataset items (single rows or blocks) into one ``(rows, targets)`` batch, with
    targets as a column per target: ``(r, 1)`` or ``(r, k)``."""
    blocks = []
    for item in items:
        rows, targets = (torch.as_tensor(v) for v in item)
        rows = rows.reshape(-1, rows.shape[-1])
        blocks.append((rows, targets.reshape(rows.shape[0], -1)))
    rows_list, targets_list = zip(*blocks)
    return torch.cat(rows_list), torch.cat(targets_list)
