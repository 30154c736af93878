"""Matrix sources: small serialisable recipes whose ``tensor()`` builds a matrix.

Problems take a ``MatrixLike``: a tensor (Python), a nested list (YAML) or a source (either).
A source keeps a config readable and its hyper-parameter file small: ``Random(shape=[200, 20],
seed=1)`` is stored as those two fields, not as 4000 numbers.  The classic test matrices are in
``gallery``; this module holds the base class and the general-purpose sources.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from ..errors import ArgumentError
from ..validation import DtypeLike, check_bool, check_choice, check_dtype, check_positive_int
from .files import load

__all__ = ["MatrixLike", "VectorLike", "Source", "Explicit", "Random", "Diagonal", "LowRank", "RandomMask", "File"]


class Source:
    """A recipe for a matrix.  Subclasses implement ``build()``; ``tensor()`` casts its result
    to ``dtype`` (a name such as ``"float64"`` or a ``torch.dtype``; None keeps the built dtype)."""

    def __init__(self, dtype: Optional[DtypeLike] = None) -> None:
        self.dtype = check_dtype(dtype, allow_torch=True)

    def build(self) -> Tensor:
        """The matrix in the dtype the recipe naturally produces."""
        raise NotImplementedError

    def tensor(self) -> Tensor:
        """The matrix, cast to ``dtype`` when one was given."""
        matrix = self.build()
        return matrix.to(self.dtype) if self.dtype is not None else matrix

    def __repr__(self) -> str:
        # The fields that differ from the constructor's defaults: what a config would have to say.
        import inspect

        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if k not in defaults or not _same(v, defaults[k]))
        return f"{type(self).__name__}({fields})"


def _sizes(shape: Sequence[int], *, allow_empty: bool) -> list[int]:
    """``shape`` as a list of positive ints (an empty shape is a scalar, allowed only where asked)."""
    sizes = [int(s) for s in shape]
    if (not sizes and not allow_empty) or any(s <= 0 for s in sizes):
        raise ArgumentError(f"shape must contain positive sizes; got {sizes}")
    return sizes


class Explicit(Source):
    """Entries written out: ``values: [[1, 3], [5, 2]]``."""

    def __init__(self, values: Sequence[Sequence[float]], dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(dtype)
        self.values = [list(map(float, row)) for row in values]

    def build(self) -> Tensor:
        return torch.tensor(self.values)


class Random(Source):
    """Seeded random matrix; ``uniform`` equals ``torch.manual_seed(seed); torch.rand(*shape)``,
    ``normal`` equals the same with ``torch.randn``; ``transpose`` returns its transpose (a
    tall draw of a wide matrix, e.g.)."""

    def __init__(
        self, shape: Sequence[int], seed: int = 314, distribution: str = "uniform",
        transpose: bool = False, dtype: Optional[DtypeLike] = None,
    ) -> None:
        super().__init__(dtype)
        check_choice(distribution, "distribution", ("uniform", "normal"))
        self.shape = _sizes(shape, allow_empty=True)
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

    def __init__(self, values: Sequence[float], dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(dtype)
        self.values = [float(v) for v in values]

    def build(self) -> Tensor:
        return torch.diag(torch.tensor(self.values))


class LowRank(Source):
    """A seeded exactly-rank-``rank`` ``m×n`` matrix ``U₀ V₀ᵀ`` with standard normal factors
    (``U₀`` drawn first, then ``V₀``, from ``torch.Generator().manual_seed(seed)``, float64 by
    default): the ground truth of a matrix-completion problem (see ``RandomMask``)."""

    def __init__(self, m: int, n: int, rank: int, seed: int = 314, dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(dtype)
        check_positive_int(m, "m")
        self.m = m
        check_positive_int(n, "n")
        self.n = n
        check_positive_int(rank, "rank")
        self.rank = rank
        if rank > min(m, n):
            raise ArgumentError(f"rank must be at most min(m, n) = {min(m, n)}; got {rank!r}")
        self.seed = seed

    def build(self) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        left = torch.randn(self.m, self.rank, generator=generator, dtype=torch.float64)
        right = torch.randn(self.n, self.rank, generator=generator, dtype=torch.float64)
        return left @ right.mT


class RandomMask(Source):
    """A seeded boolean mask of ``shape``: each entry observed (True) independently with
    probability ``fraction_observed`` (``torch.rand(shape) < fraction_observed`` with
    ``torch.Generator().manual_seed(seed)``).  For ``gdla.SVD(M, rank=k, mask=...)``; there is
    no ``dtype``: the mask stays bool."""

    def __init__(self, shape: Sequence[int], fraction_observed: float = 0.5, seed: int = 314) -> None:
        super().__init__(None)
        self.shape = _sizes(shape, allow_empty=False)
        if isinstance(fraction_observed, bool) or not 0 < float(fraction_observed) <= 1:
            raise ArgumentError(f"fraction_observed must be in (0, 1]; got {fraction_observed!r}")
        self.fraction_observed = float(fraction_observed)
        self.seed = seed

    def build(self) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        return torch.rand(self.shape, generator=generator, dtype=torch.float64) < self.fraction_observed


class Constant(Source):
    """A tensor of ``shape`` filled with ``value`` (float64): ``b = ones(n)`` in a config."""

    def __init__(self, shape: Sequence[int], value: float = 1.0, dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(dtype)
        for size in shape:
            check_positive_int(size, "shape entries")
        self.shape = list(shape)
        self.value = float(value)

    def build(self) -> Tensor:
        return torch.full(self.shape, self.value, dtype=torch.float64)


class File(Source):
    """A matrix file: ``.pt``/``.pth``, ``.npy``, ``.csv``/``.txt`` or Matrix Market ``.mtx``
    (the SuiteSparse collection's format; needs scipy).  Read with ``load``, which never runs
    code from the file.  ``path`` is relative to the working directory.  A sparse (coordinate)
    ``.mtx`` stays sparse, for the problems that take sparse matrices (``LinearSystem``);
    ``dense=True`` densifies it for those that do not (``MatrixInverse``, ``SVD``)."""

    def __init__(self, path: str, dtype: Optional[DtypeLike] = None, dense: bool = False) -> None:
        super().__init__(dtype)
        self.path = str(path)
        self.dense = check_bool(dense, "dense")

    def build(self) -> Tensor:
        matrix = load(self.path)
        if not self.dense or matrix.layout == torch.strided:
            return matrix
        from pathlib import Path

        from .headers import check_fits_in_memory

        check_fits_in_memory(Path(self.path), tuple(matrix.shape), "sparse matrix to make dense",
                             matrix.shape[0] * matrix.shape[1] * matrix.element_size(),
                             "keep it sparse (dense=false) and solve it with gdla.LinearSystem",
                             detail=f" with {matrix.values().numel():,} stored entries")
        return matrix.to_dense()


# What problems accept for a matrix: a tensor (Python), a nested list (YAML) or a source (either).
MatrixLike = Union[Tensor, Source, list[list[float]]]
# Right-hand sides: one vector or a matrix of several.
VectorLike = Union[Tensor, Source, list[float], list[list[float]]]


def _same(value: object, default: object) -> bool:
    try:
        return bool(value == default)
    except (TypeError, ValueError, RuntimeError):
        return False
