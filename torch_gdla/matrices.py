"""Matrix sources: plain-Python constructors of the matrices that problems take, also
selectable from YAML configs by ``class_path``/``init_args``.

Every source is a small serialisable object whose ``tensor()`` builds the matrix, so a config
stays readable and hyper-parameter files stay small.  ``load(path)`` reads matrix files
without ever executing code from them (``.pt`` with ``weights_only=True``, ``.npy`` with
``allow_pickle=False``, ``.csv`` as text, Matrix Market ``.mtx`` through ``scipy.io``).

The gallery (``Hilbert``, ``Pascal``, ``Lehmer``, ``Vandermonde``, ``Frank``, ``Kahan``,
``Wilkinson``, ``Tridiagonal``, ``Conditioned``, ``IdentityPlusNoise``) documents each
matrix's definition and how its condition number grows with ``n``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError
from .validation import DTYPES, check_dtype, check_positive_int

__all__ = [
    "MatrixLike", "VectorLike", "Source", "Explicit", "Random", "Diagonal", "File", "load", "save", "DTYPES",
    "IdentityPlusNoise", "Conditioned", "Hilbert", "Pascal", "Lehmer", "Vandermonde", "Frank", "Kahan",
    "Wilkinson", "Tridiagonal", "check_writable", "save_solution", "LowRank", "RandomMask",
]



class Source:
    """A recipe for a matrix.  Subclasses implement ``build()``; ``dtype`` casts the result."""

    def __init__(self, dtype: Optional[str] = None) -> None:
        self.dtype = check_dtype(dtype)

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
            raise ArgumentError(f"distribution must be 'uniform' or 'normal'; got {distribution!r}")
        self.shape = [int(s) for s in shape]
        if any(s <= 0 for s in self.shape):
            raise ArgumentError(f"shape must contain positive sizes; got {self.shape}")
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


# --- Gallery -----------------------------------------------------------------------------------
# The classic test matrices are built in float64: most of them are ill-conditioned on purpose,
# and float32 would lose the very digits that make them interesting.  ``dtype`` casts as usual.
# The random families (Random, IdentityPlusNoise) keep torch's default dtype, like torch.rand.


def _indices(n: int) -> tuple[Tensor, Tensor]:
    """1-based row and column indices (i, j) of an n×n matrix, float64."""
    index = torch.arange(1, n + 1, dtype=torch.float64)
    return index[:, None], index[None, :]


class IdentityPlusNoise(Source):
    """``I + scale * N`` with ``N`` seeded standard normal (``distribution="normal"``) or uniform
    on [-1, 1) (``"uniform"``).

    Condition: ``κ₂ ≈ (1 + 2·scale·√n) / (1 − 2·scale·√n)`` for normal noise while
    ``2·scale·√n < 1`` (the spectral norm of an n×n Gaussian matrix is about 2√n), so small
    noise gives an easy, well-conditioned matrix; near ``scale = 1/(2√n)`` it can become singular.
    Torch's default dtype (float32), like ``Random``.
    """

    def __init__(self, n: int, scale: float = 0.1, seed: int = 314, distribution: str = "normal",
                 dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.n = check_positive_int(n, "n")
        if distribution not in ("uniform", "normal"):
            raise ArgumentError(f"distribution must be 'uniform' or 'normal'; got {distribution!r}")
        self.scale = float(scale)
        self.seed = seed
        self.distribution = distribution

    def build(self) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        if self.distribution == "normal":
            noise = torch.randn(self.n, self.n, generator=generator)
        else:
            noise = 2 * torch.rand(self.n, self.n, generator=generator) - 1
        return torch.eye(self.n) + self.scale * noise


class Conditioned(Source):
    """A seeded random matrix with a chosen 2-norm condition number, built from its SVD.

    Singular values are spaced geometrically from 1 down to ``1/cond`` (``σ_k = cond^(-(k-1)/(n-1))``),
    so ``κ₂ = cond`` exactly up to rounding.  ``kind="spd"``: ``Q diag(σ) Qᵀ`` (symmetric
    positive definite, eigenvalues = σ); ``kind="general"``: ``U diag(σ) Vᵀ`` with independent
    random orthogonal ``U`` (``m×n``, ``m`` defaults to ``n``; ``m > n`` gives a tall matrix for
    least squares) and ``V``.  The orthogonal factors are Haar-distributed (QR of a Gaussian
    matrix with the signs of R's diagonal fixed).  float64 by default.
    """

    def __init__(self, n: int, cond: float = 100.0, kind: str = "spd", seed: int = 314,
                 m: Optional[int] = None, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.n = check_positive_int(n, "n")
        if kind not in ("spd", "general"):
            raise ArgumentError(f"kind must be 'spd' or 'general'; got {kind!r}")
        if not float(cond) >= 1 or float(cond) == float("inf"):
            raise ArgumentError(f"cond must be a finite number >= 1 (the ratio of the largest to the smallest singular value); got {cond!r}")
        if self.n == 1 and float(cond) != 1:
            raise ArgumentError(f"a 1×1 matrix has condition number 1; got cond={cond!r} with n=1")
        if m is not None:
            check_positive_int(m, "m")
            if kind == "spd" and m != n:
                raise ArgumentError(f"kind='spd' makes a square matrix; got m={m} != n={n} (use kind='general' for m×n)")
            if m < n:
                raise ArgumentError(f"m must be >= n (a wide matrix has no full column rank condition); got m={m}, n={n}")
        self.cond = float(cond)
        self.kind = kind
        self.seed = seed
        self.m = m

    @staticmethod
    def _orthogonal(rows: int, cols: int, generator: torch.Generator) -> Tensor:
        q, r = torch.linalg.qr(torch.randn(rows, cols, generator=generator, dtype=torch.float64))
        return q * torch.sign(torch.diagonal(r))  # Haar measure: fix QR's sign ambiguity

    def build(self) -> Tensor:
        n = self.n
        generator = torch.Generator().manual_seed(self.seed)
        exponents = torch.arange(n, dtype=torch.float64) / max(n - 1, 1)
        sigma = self.cond ** (-exponents)
        if self.kind == "spd":
            q = self._orthogonal(n, n, generator)
            return (q * sigma) @ q.mT
        u = self._orthogonal(self.m or n, n, generator)
        v = self._orthogonal(n, n, generator)
        return (u * sigma) @ v.mT


class Hilbert(Source):
    """Hilbert matrix ``H_ij = 1/(i + j − 1)`` (1-based): symmetric positive definite, with an
    inverse of integers ``(H⁻¹)_ij = (−1)^(i+j) (i+j−1) C(n+i−1, n−j) C(n+j−1, n−i) C(i+j−2, i−1)²``.

    Condition grows like ``e^(3.5n)`` (``(1+√2)^(4n)/√n``): κ₂ ≈ 1.6e4 (n=4), 1.5e10 (n=8),
    1.6e13 (n=10); beyond n≈12 even float64 cannot resolve it.  float64 by default.
    """

    def __init__(self, n: int, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.n = check_positive_int(n, "n")

    def build(self) -> Tensor:
        i, j = _indices(self.n)
        return 1.0 / (i + j - 1)


class Pascal(Source):
    """Symmetric Pascal matrix ``P_ij = C(i+j, i)`` (0-based): SPD, integer entries,
    determinant 1 and an integer inverse (``P = L Lᵀ`` with ``L`` the lower-triangular Pascal
    matrix, whose inverse is ``L`` with alternating signs).

    Eigenvalues come in reciprocal pairs, so κ₂ = λ_max², growing roughly like ``16^n / n``:
    κ₂ ≈ 6.9e2 (n=4), 2.1e7 (n=8), 8.8e11 (n=12).  float64 by default (entries are exact
    integers up to n≈30).
    """

    def __init__(self, n: int, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.n = check_positive_int(n, "n")

    def build(self) -> Tensor:
        import math

        n = self.n
        return torch.tensor([[float(math.comb(i + j, i)) for j in range(n)] for i in range(n)], dtype=torch.float64)


class Lehmer(Source):
    """Lehmer matrix ``A_ij = min(i, j) / max(i, j)``: symmetric positive definite with a
    tridiagonal inverse (``(A⁻¹)_ii = 4i³/(4i²−1)`` for i < n, ``(A⁻¹)_nn = n²/(2n−1)``,
    ``(A⁻¹)_{i,i+1} = −i(i+1)/(2i+1)``).

    Condition grows only polynomially: ``n ≤ κ₂ ≤ 4n²`` (Newman & Todd).  float64 by default.
    """

    def __init__(self, n: int, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.n = check_positive_int(n, "n")

    def build(self) -> Tensor:
        i, j = _indices(self.n)
        return torch.minimum(i, j) / torch.maximum(i, j)


class Vandermonde(Source):
    """Vandermonde matrix ``V_ij = x_i^(j−1)`` (increasing powers, the polynomial-interpolation
    matrix; ``increasing=False`` reverses the columns like ``numpy.vander``).

    ``points`` are the nodes ``x_i``; with ``n`` instead, the nodes are ``1, 2, …, n``.
    ``det V = ∏_{i<j} (x_j − x_i)``.  Condition grows at least exponentially in n for any real
    nodes (Gautschi & Inglese 1988; Beckermann 2000); for nodes 1..n: κ₂ ≈ 1.2e3 (n=4),
    9.5e8 (n=8), 7e15 (n=12).  float64 by default.
    """

    def __init__(self, points: Optional[Sequence[float]] = None, n: Optional[int] = None,
                 increasing: bool = True, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        if (points is None) == (n is None):
            raise ArgumentError("Vandermonde needs exactly one of points (the nodes) or n (nodes 1, 2, ..., n)")
        if points is not None:
            self.points = [float(x) for x in points]
            if not self.points:
                raise ArgumentError("points must contain at least one node")
        else:
            self.points = [float(k) for k in range(1, check_positive_int(n, "n") + 1)]
        self.increasing = increasing

    def build(self) -> Tensor:
        x = torch.tensor(self.points, dtype=torch.float64)
        powers = torch.arange(len(self.points), dtype=torch.float64)
        if not self.increasing:
            powers = powers.flip(0)
        return x[:, None] ** powers[None, :]


class Frank(Source):
    """Frank matrix: upper Hessenberg with ``F_ij = n + 1 − max(i, j)`` for ``j ≥ i − 1`` and 0
    below the subdiagonal; ``det F = 1``.  Its eigenvalues are positive and come in reciprocal
    pairs; the small ones are notoriously ill-conditioned (a test for eigenvalue solvers).

    κ₂ grows exponentially: ≈ 1.2e2 (n=4), 2.8e5 (n=8), 4.3e9 (n=12).  float64 by default.
    """

    def __init__(self, n: int, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.n = check_positive_int(n, "n")

    def build(self) -> Tensor:
        i, j = _indices(self.n)
        return torch.where(j >= i - 1, self.n + 1 - torch.maximum(i, j), torch.zeros(()))


class Kahan(Source):
    """Kahan matrix: upper triangular ``diag(1, s, s², …, s^(n−1)) · (I − c·U)`` with
    ``s = sin θ``, ``c = cos θ`` and ``U`` the strictly upper triangle of ones (MATLAB's
    ``gallery('kahan', n, theta)`` without the diagonal perturbation).  Column-pivoted QR does not
    reveal its near rank deficiency: a classic counterexample.

    κ₂ grows exponentially, roughly like ``((1+c)/s)^(n−1)``: for θ = 1.2, ≈ 2.6 (n=4), 12 (n=8),
    73 (n=12), 1.4e5 (n=30); smaller θ grows faster.  float64 by default.
    """

    def __init__(self, n: int, theta: float = 1.2, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.n = check_positive_int(n, "n")
        self.theta = float(theta)

    def build(self) -> Tensor:
        import math

        n = self.n
        s, c = math.sin(self.theta), math.cos(self.theta)
        upper = torch.ones(n, n, dtype=torch.float64).triu(1)
        scale = s ** torch.arange(n, dtype=torch.float64)
        return scale[:, None] * (torch.eye(n, dtype=torch.float64) - c * upper)


class Wilkinson(Source):
    """Wilkinson's ``W⁺_n``: symmetric tridiagonal with ones off the diagonal and diagonal
    ``|(n−1)/2 − k|`` for k = 0…n−1 (``W⁺₂₁`` is the famous one).

    Well conditioned for inversion (κ₂ stays small, ≈ 43 for n=21) but a hard case for eigenvalue
    solvers: its largest eigenvalues come in pairs that agree to many digits (λ₂₀, λ₂₁ of
    ``W⁺₂₁`` = 10.746194182903322 and …393).  float64 by default.
    """

    def __init__(self, n: int = 21, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.n = check_positive_int(n, "n")

    def build(self) -> Tensor:
        n = self.n
        diagonal = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2).abs()
        ones = torch.ones(n - 1, dtype=torch.float64)
        return torch.diag(diagonal) + torch.diag(ones, 1) + torch.diag(ones, -1)


class Tridiagonal(Source):
    """Constant tridiagonal (Toeplitz) matrix, by default ``(−1, 2, −1)``: the 1-D discrete
    Laplacian, symmetric positive definite with eigenvalues ``2 − 2cos(kπ/(n+1))``, k = 1…n.

    In general the eigenvalues are ``diagonal + 2·√(lower·upper)·cos(kπ/(n+1))``.  For
    (−1, 2, −1): κ₂ = cot²(π/(2(n+1))) ≈ 4(n+1)²/π², quadratic growth (≈ 9.5 at n=4, 4.1e3 at n=100).
    float64 by default.
    """

    def __init__(self, n: int, lower: float = -1.0, diagonal: float = 2.0, upper: float = -1.0,
                 dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.n = check_positive_int(n, "n")
        self.lower, self.diagonal, self.upper = float(lower), float(diagonal), float(upper)

    def build(self) -> Tensor:
        n = self.n
        off = torch.ones(n - 1, dtype=torch.float64)
        return (self.diagonal * torch.eye(n, dtype=torch.float64)
                + self.upper * torch.diag(off, 1) + self.lower * torch.diag(off, -1))


class LowRank(Source):
    """A seeded exactly-rank-``rank`` ``m×n`` matrix ``U₀ V₀ᵀ`` with standard normal factors
    (``U₀`` drawn first, then ``V₀``, from ``torch.Generator().manual_seed(seed)``, float64 by
    default): the ground truth of a matrix-completion problem (see ``RandomMask``)."""

    def __init__(self, m: int, n: int, rank: int, seed: int = 314, dtype: Optional[str] = None) -> None:
        super().__init__(dtype)
        self.m = check_positive_int(m, "m")
        self.n = check_positive_int(n, "n")
        self.rank = check_positive_int(rank, "rank")
        if self.rank > min(self.m, self.n):
            raise ArgumentError(f"rank must be at most min(m, n) = {min(self.m, self.n)}; got {rank!r}")
        self.seed = seed

    def build(self) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        left = torch.randn(self.m, self.rank, generator=generator, dtype=torch.float64)
        right = torch.randn(self.n, self.rank, generator=generator, dtype=torch.float64)
        return left @ right.mT


class RandomMask(Source):
    """A seeded boolean mask of ``shape``: each entry observed (True) independently with
    probability ``fraction_observed`` (``torch.rand(shape) < fraction_observed`` with
    ``torch.Generator().manual_seed(seed)``).  For ``gdla.SVD(M, rank=k, mask=...)``; ``dtype``
    is not used (the mask stays bool)."""

    def __init__(self, shape: Sequence[int], fraction_observed: float = 0.5, seed: int = 314) -> None:
        super().__init__(None)
        self.shape = [int(s) for s in shape]
        if not self.shape or any(s <= 0 for s in self.shape):
            raise ArgumentError(f"shape must contain positive sizes; got {self.shape}")
        if isinstance(fraction_observed, bool) or not 0 < float(fraction_observed) <= 1:
            raise ArgumentError(f"fraction_observed must be in (0, 1]; got {fraction_observed!r}")
        self.fraction_observed = float(fraction_observed)
        self.seed = seed

    def build(self) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        return torch.rand(self.shape, generator=generator, dtype=torch.float64) < self.fraction_observed


class File(Source):
    """A matrix file: ``.pt``/``.pth``, ``.npy``, ``.csv``/``.txt`` or Matrix Market ``.mtx``
    (the SuiteSparse collection's format; needs scipy).  See ``load``."""

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


# What problems accept for a matrix: a tensor (Python), a nested list (YAML) or a source (either).
MatrixLike = Union[Tensor, Source, list[list[float]]]
# Right-hand sides: one vector or a matrix of several.
VectorLike = Union[Tensor, Source, list[float], list[list[float]]]
