"""Matrix files: ``load`` and ``save`` for ``.pt``/``.pth``, ``.npy``, ``.csv``/``.txt`` and Matrix
Market ``.mtx``, chosen by extension.

Reading never executes code from a file: ``.pt`` goes through ``torch.load(weights_only=True)``,
``.npy`` through ``numpy.load(allow_pickle=False)``, ``.csv`` is parsed as text and ``.mtx``
through ``scipy.io``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import ArgumentError, ArgumentTypeError

__all__ = ["load", "save", "check_writable", "save_solution", "WRITABLE"]


def load(path: str | os.PathLike) -> Tensor:
    """Read a matrix file safely.  Never unpickles: a file that would need it is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"matrix file {str(path)!r} does not exist (check the path, relative to {os.getcwd()!r})")
    suffix = path.suffix.lower()
    try:
        if suffix in (".pt", ".pth"):
            try:
                value = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # pickle refusal or corrupt file
                raise ArgumentError(
                    f"{str(path)!r} is not a plain tensor file: torch.load(weights_only=True) refused it "
                    f"({_weights_only_reason(error)}); matrix files are never unpickled, so save the matrix "
                    "with torch.save(tensor, path)"
                ) from None
            if isinstance(value, dict) and len(value) == 1:
                value = next(iter(value.values()))
            if not isinstance(value, Tensor):
                raise ArgumentError(f"{str(path)!r} holds a {type(value).__name__}, not a tensor; save it with torch.save(tensor, path)")
            return value
        if suffix == ".npy":
            import numpy as np
            with open(path, "rb") as handle:
                if handle.read(6) != b"\x93NUMPY":
                    raise ArgumentError(f"{str(path)!r} is not a .npy file (no NumPy header); save it with numpy.save(path, array)")
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError as error:
                raise ArgumentError(
                    f"{str(path)!r} could not be read as a plain .npy array ({error}); object arrays are refused "
                    "(loading them would unpickle): save a numeric array with numpy.save(path, array.astype(float))"
                ) from None
            if array.dtype.kind not in "fiub":
                raise ArgumentError(
                    f"{str(path)!r} holds a {array.dtype} array; a matrix file needs real numbers: "
                    "save it with numpy.save(path, array.astype(float))"
                )
            return torch.from_numpy(np.ascontiguousarray(array))
        if suffix in (".csv", ".txt"):
            return _read_delimited(path)
        if suffix == ".mtx":
            return _read_matrix_market(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ArgumentError(f"matrix file {str(path)!r} could not be read: {error}") from None
    raise ArgumentError(f"matrix file {str(path)!r} has an unsupported extension {suffix!r}; use .pt, .npy, .csv or .mtx")


def _weights_only_reason(error: Exception) -> str:
    """The informative line of torch's weights-only refusal (its first line is a generic note
    that suggests weights_only=False, which would execute code from the file)."""
    skip = ("Weights only load failed", "Please file an issue", "Check the documentation of torch.load")
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(skip)]
    return (useful[0] if useful else type(error).__name__)[:200]


def _scipy_io(purpose: str) -> Any:
    try:
        import scipy.io
    except ImportError:
        raise ImportError(f"{purpose} Matrix Market (.mtx) files needs scipy: pip install scipy") from None
    return scipy.io


def _read_matrix_market(path: Path) -> Tensor:
    """Dense or sparse (coordinate) Matrix Market, converted to a dense tensor.  Real and
    integer fields come back as float64 (the file's precision; cast with ``File(dtype=...)``),
    ``pattern`` files as ones where an entry is stored."""
    import numpy as np

    try:
        value = _scipy_io("reading").mmread(str(path))
    except ValueError as error:
        raise ArgumentError(f"{str(path)!r} is not a valid Matrix Market file ({error})") from None
    array = value.toarray() if hasattr(value, "toarray") else np.asarray(value)
    if np.iscomplexobj(array):
        raise ArgumentError(f"{str(path)!r} holds a complex matrix; torch_gdla problems take real matrices")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))


def _read_delimited(path: Path) -> Tensor:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f for f in line.replace(",", " ").split()]
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            raise ArgumentError(f"{str(path)!r} line {number}: {line!r} is not a row of numbers") from None
    if not rows:
        raise ArgumentError(f"{str(path)!r} contains no numbers")
    if len({len(r) for r in rows}) != 1:
        raise ArgumentError(f"{str(path)!r} has rows of different lengths {sorted({len(r) for r in rows})}; a matrix needs equal rows")
    return torch.tensor(rows)  # torch's default dtype, like a nested list


def save(tensor: Tensor, path: str | os.PathLike) -> None:
    """Write a tensor as ``.pt``, ``.npy``, ``.csv`` or ``.mtx`` (by extension; ``.mtx`` is
    written dense, in array format, and needs scipy)."""
    path = Path(path)
    suffix = path.suffix.lower()
    tensor = tensor.detach().cpu()
    if suffix in (".pt", ".pth"):
        torch.save(tensor.clone(), path)
    elif suffix == ".npy":
        import numpy as np
        np.save(path, tensor.numpy(), allow_pickle=False)
    elif suffix in (".csv", ".txt"):
        matrix = tensor.reshape(-1, 1) if tensor.dim() == 1 else tensor
        if matrix.dim() != 2:
            raise ArgumentError(f"only 1-D or 2-D tensors can be written as {suffix}; got shape {tuple(tensor.shape)}")
        path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in matrix.tolist()) + "\n")
    elif suffix == ".mtx":
        matrix = tensor.reshape(-1, 1) if tensor.dim() == 1 else tensor
        if matrix.dim() != 2:
            raise ArgumentError(f"only 1-D or 2-D tensors can be written as .mtx; got shape {tuple(tensor.shape)}")
        # Matrix Market stores text with 17 significant digits, so float64 values round-trip exactly.
        _scipy_io("writing").mmwrite(str(path), matrix.to(torch.float64).numpy())
    else:
        raise ArgumentError(f"cannot write {str(path)!r}: use a .pt, .npy, .csv or .mtx extension")


WRITABLE = (".pt", ".pth", ".npy", ".csv", ".txt", ".mtx")


def check_writable(path: str | os.PathLike, name: str = "path") -> Path:
    """Fail early on an extension ``save`` cannot write (before a long run, not after it)."""
    path = Path(path)
    if path.suffix.lower() not in WRITABLE:
        raise ArgumentError(f"{name} {str(path)!r} has an unsupported extension {path.suffix!r}; use one of {', '.join(WRITABLE)}")
    return path


def save_solution(solution: Any, path: str | os.PathLike) -> list[Path]:
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
