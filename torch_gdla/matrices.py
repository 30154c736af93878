"""Matrix sources: plain-Python constructors of the matrices that problems take, also
selectable from YAML configs by ``class_path``/``init_args``.

Every source is a small serialisable object whose ``tensor()`` builds the matrix, so a config
stays readable and hyper-parameter files stay small.  ``load(path)`` reads matrix files
without ever executing code from them (``.pt`` with ``weights_only=True``, ``.npy`` with
``allow_pickle=False``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

__all__ = ["MatrixLike", "VectorLike", "Source", "Explicit", "Random", "Diagonal", "File", "load", "save", "DTYPES"]

DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _dtype(name: Optional[str]) -> Optional[torch.dtype]:
    if name is None:
        return None
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {name!r}")
    return DTYPES[name]


class Source:
    """A recipe for a matrix.  Subclasses implement ``build()``; ``dtype`` casts the result."""

    def __init__(self, dtype: Optional[str] = None) -> None:
        self.dtype = _dtype(dtype)

    def build(self) -> Tensor:
        raise NotImplementedError

    def tensor(self) -> Tensor:
        matrix = self.build()
        return matrix.to(self.dtype) if self.dtype is not None else matrix

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Explicit(Source):
    """Entries written out: ``values: [[1, 3], [5, 2]]``."""

    def __init__(self, values: Sequence[Sequence[float]], dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.values = [list(map(float, row)) for row in values]

    def build(self) -> Tensor:
        return torch.tensor(self.values)


class Random(Source):
    """Seeded random matrix; ``uniform`` equals ``torch.manual_seed(seed); torch.rand(*shape)``,
    ``normal`` equals the same with ``torch.randn``."""

    def __init__(
        self, shape: Sequence[int], seed: int = 314, distribution: str = "uniform",
        transpose: bool = False, dtype: Optional[str] = None,
    ) -> None:
        super().__init__(dtype)
        if distribution not in ("uniform", "normal"):
            raise ValueError(f"distribution must be 'uniform' or 'normal'; got {distribution!r}")
        self.shape = [int(s) for s in shape]
        if any(s <= 0 for s in self.shape):
            raise ValueError(f"shape must contain positive sizes; got {self.shape}")
        self.seed = seed
        self.distribution = distribution
        self.transpose = transpose

    def build(self) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        draw = torch.rand if self.distribution == "uniform" else torch.randn
        matrix = draw(self.shape, generator=generator)
        return matrix.mT if self.transpose else matrix


class Diagonal(Source):
    """``torch.diag(values)``."""

    def __init__(self, values: Sequence[float], dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.values = [float(v) for v in values]

    def build(self) -> Tensor:
        return torch.diag(torch.tensor(self.values))


class File(Source):
    """A matrix file: ``.pt``/``.pth``, ``.npy``, ``.csv``/``.txt`` (see ``load``)."""

    def __init__(self, path: str, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.path = str(path)

    def build(self) -> Tensor:
        return load(self.path)


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
                raise ValueError(
                    f"{str(path)!r} is not a plain tensor file (torch.load with weights_only=True refused it: "
                    f"{str(error).splitlines()[0]}); save it with torch.save(tensor, path)"
                ) from None
            if isinstance(value, dict) and len(value) == 1:
                value = next(iter(value.values()))
            if not isinstance(value, Tensor):
                raise ValueError(f"{str(path)!r} holds a {type(value).__name__}, not a tensor; save it with torch.save(tensor, path)")
            return value
        if suffix == ".npy":
            import numpy as np
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError as error:
                raise ValueError(f"{str(path)!r} could not be read as a plain .npy array ({error}); object arrays are refused") from None
            return torch.from_numpy(np.ascontiguousarray(array))
        if suffix in (".csv", ".txt"):
            return _read_delimited(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"matrix file {str(path)!r} could not be read: {error}") from None
    raise ValueError(f"matrix file {str(path)!r} has an unsupported extension {suffix!r}; use .pt, .npy or .csv")


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
            raise ValueError(f"{str(path)!r} line {number}: {line!r} is not a row of numbers") from None
    if not rows:
        raise ValueError(f"{str(path)!r} contains no numbers")
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{str(path)!r} has rows of different lengths {sorted({len(r) for r in rows})}; a matrix needs equal rows")
    return torch.tensor(rows)  # torch's default dtype, like a nested list


def save(tensor: Tensor, path: str | os.PathLike) -> None:
    """Write a tensor as ``.pt``, ``.npy`` or ``.csv`` (by extension)."""
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
            raise ValueError(f"only 1-D or 2-D tensors can be written as {suffix}; got shape {tuple(tensor.shape)}")
        path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in matrix.tolist()) + "\n")
    else:
        raise ValueError(f"cannot write {str(path)!r}: use a .pt, .npy or .csv extension")


# What problems accept for a matrix: a tensor (Python), a nested list (YAML) or a source (either).
MatrixLike = Union[Tensor, Source, list[list[float]]]
# Right-hand sides: one vector or a matrix of several.
VectorLike = Union[Tensor, Source, list[float], list[list[float]]]
