"""What a matrix file declares, checked before its data are read.

A header states a shape; believing it blindly turns a truncated or corrupt file into a raw
``MemoryError`` (numpy allocates the declared array first) or a confusing reshape error.  These
checks compare the declared size with the file and with the machine's memory, and phrase a
loader's own refusals without its advice to disable safety.  Used by ``files.load`` and by the
streamed ``.npy`` reader (``torch_gdla.data.NpyRows``).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from ..errors import ArgumentError

__all__ = ["NpyHeader", "read_npy_header", "check_size", "check_fits_in_memory", "safe_reason"]

NPY_MAGIC = b"\x93NUMPY"

# Sentences of torch's and numpy's refusals that advise turning safety off (``weights_only=False``,
# ``allow_pickle=True``, allow-listing globals "if you trust" the file): passing them on would
# invite running code from an untrusted file, so they are dropped.
_UNSAFE_ADVICE = re.compile(
    r"weights_only|allow_pickle|safe_globals|trust|sandbox|file an issue|documentation of torch\.load", re.IGNORECASE
)


def safe_reason(error: BaseException, limit: int = 200) -> str:
    """The informative part of a loader's error message, without advice to disable its safety."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # terminal colour codes
    text = text.split("WeightsUnpickler error:", 1)[-1]  # torch: the reason follows its boilerplate
    sentences = (s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text))
    useful = " ".join(s for s in sentences if s and not _UNSAFE_ADVICE.search(s))
    return (useful or type(error).__name__)[:limit]


def _human(nbytes: int) -> str:
    """``nbytes`` in binary units: ``7.3 TiB``."""
    size, unit = float(nbytes), "bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if size < 1024 or unit == "EiB":
            break
        size /= 1024
    return f"{nbytes} bytes" if unit == "bytes" else f"{size:.1f} {unit}"


def _bytes(nbytes: int) -> str:
    """``nbytes`` exactly, and in binary units when large: ``8,000,000,000,000 bytes (7.3 TiB)``."""
    return f"{nbytes:,} bytes" + ("" if nbytes < 1024 else f" ({_human(nbytes)})")


def _label(path: Path, name: Optional[str]) -> str:
    """The file for a message, after the argument it was passed as (when known)."""
    return f"{name} ({str(path)!r})" if name else repr(str(path))


def _declares(path: Path, name: Optional[str], shape: tuple[int, ...], description: str, detail: str) -> str:
    return f"{_label(path, name)} declares a {description} of shape {tuple(shape)}{detail}"


def check_size(path: Path, shape: tuple[int, ...], description: str, needed: int, available: int, fix: str,
               *, what_needs: str = "data", at_least: bool = False, name: Optional[str] = None,
               detail: str = "") -> None:
    """Refuse a file that holds fewer bytes (``available``) than its header's shape needs."""
    if available < needed:
        least = "at least " if at_least else ""
        raise ArgumentError(
            f"{_declares(path, name, shape, description, detail)}, which needs {least}{_bytes(needed)} of "
            f"{what_needs}, but the file holds only {max(available, 0):,}: it is truncated (an interrupted write or "
            f"copy?) or its header is wrong; {fix}"
        )


def physical_memory() -> Optional[int]:
    """This machine's memory in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return None


def check_fits_in_memory(path: Path, shape: tuple[int, ...], description: str, needed: int, fix: str,
                         *, name: Optional[str] = None, detail: str = "") -> None:
    """Refuse to read a matrix that could not fit in this machine's memory (a clear error now,
    instead of a ``MemoryError`` or swapping after a long read)."""
    memory = physical_memory()
    if memory is not None and needed > memory:
        raise ArgumentError(
            f"{_declares(path, name, shape, description, detail)}, which would need {_bytes(needed)} in memory, "
            f"more than this machine's {_human(memory)} of memory; {fix}"
        )


class NpyHeader(NamedTuple):
    """What a ``.npy`` header declares, and where its data start."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int  # byte offset of the data in the file
    nbytes: int  # bytes of data the shape and dtype need


def read_npy_header(path: Path, name: Optional[str] = None) -> NpyHeader:
    """Parse the header of the ``.npy`` file ``path`` without reading its data, and check it.

    Refused with an ``ArgumentError``: a file without the NumPy magic, an unreadable header, an
    object array (loading it would unpickle) and a file shorter than the header says.  ``name``
    (an argument's name) prefixes the messages.
    """
    label = _label(path, name)
    with open(path, "rb") as handle:
        if handle.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise ArgumentError(f"{label} is not a .npy file (no NumPy header); save it with numpy.save(path, array)")
        handle.seek(0)
        try:
            version = np.lib.format.read_magic(handle)
            if version not in ((1, 0), (2, 0), (3, 0)):
                raise ValueError(f"unknown .npy format version {version[0]}.{version[1]}")
            # Versions 2 and 3 differ only in the header's text encoding (latin-1 or UTF-8), which
            # matters for structured dtypes' field names, refused below in any case.
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read(handle)
        except ValueError as error:
            raise ArgumentError(f"{label} has an unreadable .npy header ({safe_reason(error)}); "
                                "save it with numpy.save(path, array)") from None
        offset = handle.tell()
    if dtype.hasobject:
        raise ArgumentError(
            f"{label} could not be read as a plain .npy array (it holds Python objects, dtype {dtype}); object arrays "
            "are refused (loading them would unpickle): save a numeric array with numpy.save(path, array.astype(float))"
        )
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    description = f"{dtype.name} array" + (" (Fortran order)" if fortran_order else "")
    check_size(path, shape, description, nbytes, os.stat(path).st_size - offset, "re-save it with numpy.save(path, array)",
               name=name)
    return NpyHeader(shape, dtype, bool(fortran_order), offset, nbytes)
