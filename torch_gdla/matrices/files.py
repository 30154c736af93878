"""Matrix files: ``load`` and ``save`` for ``.pt``/``.pth``, ``.npy``, ``.csv``/``.txt`` and Matrix
Market ``.mtx``, chosen by extension.

Reading never executes code from a file: ``.pt`` goes through ``torch.load(weights_only=True)``,
``.npy`` through ``numpy.load(allow_pickle=False)``, ``.csv`` is parsed as text and ``.mtx``
through ``scipy.io``.  A file is checked before it is read, so a mistake gets one message that
names it: a directory or a pipe instead of a file, a header declaring more data than the file
holds or than memory can take (instead of a ``MemoryError``), non-numeric contents.  Refusals
never pass on a loader's advice to disable its safety (``weights_only=False``,
``allow_pickle=True``), which would let the file run code.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor

from ..errors import ArgumentError, ArgumentTypeError
from .headers import check_fits_in_memory, check_size, read_npy_header, safe_reason

__all__ = ["load", "save", "check_file", "check_writable", "save_solution", "WRITABLE"]

PathLike = Union[str, "os.PathLike[str]"]

# Suffixes ``save`` can write (and ``load`` read).
WRITABLE = (".pt", ".pth", ".npy", ".csv", ".txt", ".mtx")

_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def check_file(path: PathLike, what: str = "matrix file", expected: str = "a matrix file") -> Path:
    """``path`` as a ``Path`` if it is a regular file (a symbolic link to one counts).

    A missing file raises ``FileNotFoundError``; a directory, pipe, socket or device raises
    ``ArgumentError`` saying which it is.  Checked before opening, because opening a FIFO would
    block until some other process writes to it.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        problem = (f"is a symbolic link to {os.readlink(path)!r}, which does not exist" if path.is_symlink()
                   else "does not exist")
        raise FileNotFoundError(f"{what} {str(path)!r} {problem} (check the path, relative to {os.getcwd()!r})") from None
    except OSError as error:  # permission denied on a parent directory, a symlink loop, ...
        raise ArgumentError(f"{what} {str(path)!r} cannot be accessed: {error.strerror}") from None
    for test, kind in _NOT_REGULAR:
        if test(mode):
            raise ArgumentError(f"{what} {str(path)!r} is {kind}; pass {expected}")
    return path


def load(path: PathLike) -> Tensor:
    """Read a matrix file safely (the format is chosen by extension; see the module docstring).

    Never unpickles: a file that would need it is refused.  ``.npy``, ``.pt`` and ``.mtx`` keep
    the file's dtype (``.mtx`` gives float64); ``.csv`` gives torch's default dtype.
    """
    path = check_file(path)
    suffix = path.suffix.lower()
    readers = {".pt": _read_torch, ".pth": _read_torch, ".npy": _read_npy, ".csv": _read_delimited,
               ".txt": _read_delimited, ".mtx": _read_matrix_market}
    if suffix not in readers:
        raise ArgumentError(f"matrix file {str(path)!r} has an unsupported extension {suffix!r}; use .pt, .npy, .csv or .mtx")
    try:
        return readers[suffix](path)
    except (OSError, UnicodeDecodeError) as error:
        raise ArgumentError(f"matrix file {str(path)!r} could not be read: {error}") from None


def _read_torch(path: Path) -> Tensor:
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle refusal or corrupt file
        raise ArgumentError(
            f"{str(path)!r} is not a plain tensor file: torch.load(weights_only=True) refused it "
            f"({safe_reason(error)}); matrix files are never unpickled, so save the matrix "
            "with torch.save(tensor, path)"
        ) from None
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if not isinstance(value, Tensor):
        raise ArgumentError(f"{str(path)!r} holds a {type(value).__name__}, not a tensor; save it with torch.save(tensor, path)")
    return value


def _read_npy(path: Path) -> Tensor:
    # The header is checked first: a wrong dtype, a truncated file or an array too large for
    # memory is refused before numpy allocates the array.
    header = read_npy_header(path)
    if header.dtype.kind not in "fiub":
        raise ArgumentError(
            f"{str(path)!r} holds a {header.dtype} array; a matrix file needs real numbers: "
            "save it with numpy.save(path, array.astype(float))"
        )
    check_fits_in_memory(path, header.shape, f"{header.dtype.name} array", header.nbytes,
                         "stream its rows with gdla.StreamedLeastSquares")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ArgumentError(f"{str(path)!r} could not be read as a plain .npy array ({safe_reason(error)}); "
                            "save it with numpy.save(path, array)") from None
    if not array.dtype.isnative:  # big-endian data (saved on another machine): torch takes native order only
        array = array.astype(array.dtype.newbyteorder("="))
    return torch.from_numpy(np.ascontiguousarray(array))


def _scipy_io(purpose: str) -> Any:
    try:
        import scipy.io
    except ImportError:
        raise ImportError(f"{purpose} Matrix Market (.mtx) files needs scipy: pip install scipy") from None
    return scipy.io


def _read_matrix_market(path: Path) -> Tensor:
    """Matrix Market: a coordinate (sparse) file stays sparse — a CSR tensor, symmetric storage
    expanded to both triangles — and an array file is dense.  Real and integer fields come back
    as float64 (the file's precision; cast with ``File(dtype=...)``), ``pattern`` files as ones
    where an entry is stored."""
    scipy_io = _scipy_io("reading")
    try:
        rows, cols, entries, layout, field, symmetry = scipy_io.mminfo(str(path))
    except ValueError as error:
        raise ArgumentError(f"{str(path)!r} is not a valid Matrix Market file ({error})") from None
    if field == "complex":
        raise ArgumentError(f"{str(path)!r} holds a complex matrix; torch_gdla problems take real matrices")
    # Each stored entry takes at least 2 bytes of text ("0\n") in array layout, 4 ("1 1\n") in
    # coordinate layout; a symmetric array stores one triangle.
    stored = entries if layout == "coordinate" or symmetry == "general" else rows * (rows - 1) // 2
    description = f"Matrix Market {layout} {field} {symmetry} matrix"
    detail = f" with {entries:,} stored entries" if layout == "coordinate" else ""
    check_size(path, (rows, cols), description, stored * (4 if layout == "coordinate" else 2), path.stat().st_size,
               "re-save it with gdla.matrices.save(tensor, path)", what_needs="text", at_least=True, detail=detail)
    # A dense float64 array, or (coordinate) the (row, column, value) triplets of both triangles
    # and their CSR form.
    needed = rows * cols * 8 if layout != "coordinate" else entries * 2 * 40 + rows * 8
    check_fits_in_memory(path, (rows, cols), description, needed, "pass a smaller matrix", detail=detail)
    try:
        value = scipy_io.mmread(str(path))
    except ValueError as error:
        raise ArgumentError(f"{str(path)!r} is not a valid Matrix Market file ({error})") from None
    if hasattr(value, "tocsr"):  # coordinate: keep it sparse
        csr = value.tocsr()
        csr.sum_duplicates()
        if np.iscomplexobj(csr.data):
            raise ArgumentError(f"{str(path)!r} holds a complex matrix; torch_gdla problems take real matrices")
        from ..operators import compact, quiet_sparse

        with quiet_sparse():
            return compact(torch.sparse_csr_tensor(torch.from_numpy(csr.indptr.astype(np.int64)),
                                                   torch.from_numpy(csr.indices.astype(np.int64)),
                                                   torch.from_numpy(csr.data.astype(np.float64)), size=csr.shape))
    array = np.asarray(value)
    if np.iscomplexobj(array):
        raise ArgumentError(f"{str(path)!r} holds a complex matrix; torch_gdla problems take real matrices")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))


def _read_delimited(path: Path) -> Tensor:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            rows.append([float(field) for field in line.replace(",", " ").split()])
        except ValueError:
            raise ArgumentError(f"{str(path)!r} line {number}: {line!r} is not a row of numbers") from None
    if not rows:
        raise ArgumentError(f"{str(path)!r} contains no numbers")
    if len({len(r) for r in rows}) != 1:
        raise ArgumentError(f"{str(path)!r} has rows of different lengths {sorted({len(r) for r in rows})}; a matrix needs equal rows")
    return torch.tensor(rows)  # torch's default dtype, like a nested list


def _as_2d(tensor: Tensor, suffix: str) -> Tensor:
    """A vector is written as a column; text formats hold at most two dimensions."""
    matrix = tensor.reshape(-1, 1) if tensor.dim() == 1 else tensor
    if matrix.dim() != 2:
        raise ArgumentError(f"only 1-D or 2-D tensors can be written as {suffix}; got shape {tuple(tensor.shape)}")
    return matrix


def save(tensor: Tensor, path: PathLike) -> None:
    """Write a tensor as ``.pt``, ``.npy``, ``.csv`` or ``.mtx`` (by extension; ``.mtx`` needs
    scipy: a dense tensor is written in array format, a sparse one in coordinate format, and a
    sparse tensor can only be written as ``.mtx`` or ``.pt``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    tensor = tensor.detach().cpu()
    if tensor.layout != torch.strided:
        if suffix == ".mtx":
            import scipy.sparse

            coo = tensor.to_sparse_coo().coalesce()
            rows, cols = coo.indices().numpy()
            matrix = scipy.sparse.coo_matrix((coo.values().to(torch.float64).numpy(), (rows, cols)), shape=coo.shape)
            _scipy_io("writing").mmwrite(str(path), matrix)
        elif suffix in (".pt", ".pth"):
            torch.save(tensor.clone(), path)
        else:
            raise ArgumentError(f"cannot write the sparse tensor to {str(path)!r}: use .mtx (coordinate) or .pt, "
                                f"or tensor.to_dense() if it fits in memory")
        return
    if suffix in (".pt", ".pth"):
        torch.save(tensor.clone(), path)  # clone: a view would save its whole base storage
    elif suffix == ".npy":
        np.save(path, tensor.numpy(), allow_pickle=False)
    elif suffix in (".csv", ".txt"):
        rows = _as_2d(tensor, suffix).tolist()
        path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n")
    elif suffix == ".mtx":
        # Matrix Market stores text with 17 significant digits, so float64 values round-trip exactly.
        _scipy_io("writing").mmwrite(str(path), _as_2d(tensor, suffix).to(torch.float64).numpy())
    else:
        raise ArgumentError(f"cannot write {str(path)!r}: use a .pt, .npy, .csv or .mtx extension")


def check_writable(path: PathLike, name: str = "path") -> Path:
    """Fail early on an extension ``save`` cannot write (before a long run, not after it)."""
    path = Path(path)
    if path.suffix.lower() not in WRITABLE:
        raise ArgumentError(f"{name} {str(path)!r} has an unsupported extension {path.suffix!r}; use one of {', '.join(WRITABLE)}")
    return path


def save_solution(solution: Any, path: PathLike) -> list[Path]:
    """Write a solve's solution; returns the files written.

    A tensor goes to ``path`` via ``save``.  A named tuple of tensors (SVD's ``U, S, V``) goes to
    one ``.pt`` file as a dict ``{"U": ..., "S": ..., "V": ...}`` (read it with
    ``torch.load(path, weights_only=True)``), or, for the other formats that hold one array, to one
    file per field: ``solution_U.npy``, ``solution_S.npy``, ...
    """
    path = check_writable(path, "output")
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(solution, Tensor):
        save(solution, path)
        return [path]
    if isinstance(solution, tuple) and hasattr(solution, "_fields"):
        fields = {name: value.detach().cpu().clone() for name, value in zip(solution._fields, solution)}
        if path.suffix.lower() in (".pt", ".pth"):
            torch.save(fields, path)
            return [path]
        written = []
        for name, value in fields.items():
            target = path.with_name(f"{path.stem}_{name}{path.suffix}")
            save(value, target)
            written.append(target)
        return written
    raise ArgumentTypeError(f"cannot write a solution of type {type(solution).__name__}; expected a tensor or a named tuple of tensors")

