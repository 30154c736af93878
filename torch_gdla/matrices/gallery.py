"""The gallery: classic test matrices, each documented with its definition and how its
condition number grows with ``n``, plus two seeded random families with a chosen conditioning.

Usable from Python (``gdla.matrices.Hilbert(8).tensor()``) and from YAML
(``class_path: torch_gdla.matrices.Hilbert``, ``init_args: {n: 8}``).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from ..errors import ArgumentError
from ..validation import DtypeLike, check_choice, check_positive_int
from .sources import Source

__all__ = ["IdentityPlusNoise", "Conditioned", "Hilbert", "Pascal", "Lehmer", "Vandermonde", "Frank", "Kahan",
           "Wilkinson", "Tridiagonal"]

# The classic test matrices are built in float64: most of them are ill-conditioned on purpose,
# and float32 would lose the very digits that make them interesting.  ``dtype`` casts as usual.
# The random families (Random, IdentityPlusNoise) keep torch's default dtype, like torch.rand.


def _indices(n: int) -> tuple[Tensor, Tensor]:
    """1-based row and column indices (i, j) of an n×n matrix, float64."""
    index = torch.arange(1, n + 1, dtype=torch.float64)
    return index[:, None], index[None, :]


class SquareSource(Source):
    """A recipe for a square matrix of order ``n`` (a positive integer)."""

    def __init__(self, n: int, dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(dtype)
        check_positive_int(n, "n")
        self.n = n


class IdentityPlusNoise(SquareSource):
    """``I + scale * N`` with ``N`` seeded standard normal (``distribution="normal"``) or uniform
    on [-1, 1) (``"uniform"``).

    Condition: ``κ₂ ≈ (1 + 2·scale·√n) / (1 − 2·scale·√n)`` for normal noise while
    ``2·scale·√n < 1`` (the spectral norm of an n×n Gaussian matrix is about 2√n), so small
    noise gives an easy, well-conditioned matrix; near ``scale = 1/(2√n)`` it can become singular.
    Torch's default dtype (float32), like ``Random``.
    """

    def __init__(self, n: int, scale: float = 0.1, seed: int = 314, distribution: str = "normal",
                 dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(n, dtype)
        check_choice(distribution, "distribution", ("uniform", "normal"))
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


class Conditioned(SquareSource):
    """A seeded random matrix with a chosen 2-norm condition number, built from its SVD.

    Singular values are spaced geometrically from 1 down to ``1/cond`` (``σ_k = cond^(-(k-1)/(n-1))``),
    so ``κ₂ = cond`` exactly up to rounding.  ``kind="spd"``: ``Q diag(σ) Qᵀ`` (symmetric
    positive definite, eigenvalues = σ); ``kind="general"``: ``U diag(σ) Vᵀ`` with independent
    random orthogonal ``U`` (``m×n``, ``m`` defaults to ``n``; ``m > n`` gives a tall matrix for
    least squares) and ``V``.  The orthogonal factors are Haar-distributed (QR of a Gaussian
    matrix with the signs of R's diagonal fixed).  float64 by default.
    """

    def __init__(self, n: int, cond: float = 100.0, kind: str = "spd", seed: int = 314,
                 m: Optional[int] = None, dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(n, dtype)
        check_choice(kind, "kind", ("spd", "general"))
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


class Hilbert(SquareSource):
    """Hilbert matrix ``H_ij = 1/(i + j − 1)`` (1-based): symmetric positive definite, with an
    inverse of integers ``(H⁻¹)_ij = (−1)^(i+j) (i+j−1) C(n+i−1, n−j) C(n+j−1, n−i) C(i+j−2, i−1)²``.

    Condition grows like ``e^(3.5n)`` (``(1+√2)^(4n)/√n``): κ₂ ≈ 1.6e4 (n=4), 1.5e10 (n=8),
    1.6e13 (n=10); beyond n≈12 even float64 cannot resolve it.  float64 by default.
    """

    def build(self) -> Tensor:
        i, j = _indices(self.n)
        return 1.0 / (i + j - 1)


class Pascal(SquareSource):
    """Symmetric Pascal matrix ``P_ij = C(i+j, i)`` (0-based): SPD, integer entries,
    determinant 1 and an integer inverse (``P = L Lᵀ`` with ``L`` the lower-triangular Pascal
    matrix, whose inverse is ``L`` with alternating signs).

    Eigenvalues come in reciprocal pairs, so κ₂ = λ_max², growing roughly like ``16^n / n``:
    κ₂ ≈ 6.9e2 (n=4), 2.1e7 (n=8), 8.8e11 (n=12).  float64 by default (entries are exact
    integers up to n≈30).
    """

    def build(self) -> Tensor:
        n = self.n
        return torch.tensor([[float(math.comb(i + j, i)) for j in range(n)] for i in range(n)], dtype=torch.float64)


class Lehmer(SquareSource):
    """Lehmer matrix ``A_ij = min(i, j) / max(i, j)``: symmetric positive definite with a
    tridiagonal inverse (``(A⁻¹)_ii = 4i³/(4i²−1)`` for i < n, ``(A⁻¹)_nn = n²/(2n−1)``,
    ``(A⁻¹)_{i,i+1} = −i(i+1)/(2i+1)``).

    Condition grows only polynomially: ``n ≤ κ₂ ≤ 4n²`` (Newman & Todd).  float64 by default.
    """

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
                 increasing: bool = True, dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(dtype)
        if (points is None) == (n is None):
            raise ArgumentError("Vandermonde needs exactly one of points (the nodes) or n (nodes 1, 2, ..., n)")
        if n is not None:
            check_positive_int(n, "n")
            self.points = [float(k) for k in range(1, n + 1)]
        elif points is not None:
            self.points = [float(x) for x in points]
            if not self.points:
                raise ArgumentError("points must contain at least one node")
        self.increasing = increasing

    def build(self) -> Tensor:
        x = torch.tensor(self.points, dtype=torch.float64)
        powers = torch.arange(len(self.points), dtype=torch.float64)
        if not self.increasing:
            powers = powers.flip(0)
        return x[:, None] ** powers[None, :]


class Frank(SquareSource):
    """Frank matrix: upper Hessenberg with ``F_ij = n + 1 − max(i, j)`` for ``j ≥ i − 1`` and 0
    below the subdiagonal; ``det F = 1``.  Its eigenvalues are positive and come in reciprocal
    pairs; the small ones are notoriously ill-conditioned (a test for eigenvalue solvers).

    κ₂ grows exponentially: ≈ 1.2e2 (n=4), 2.8e5 (n=8), 4.3e9 (n=12).  float64 by default.
    """

    def build(self) -> Tensor:
        i, j = _indices(self.n)
        return torch.where(j >= i - 1, self.n + 1 - torch.maximum(i, j), torch.zeros(()))


class Kahan(SquareSource):
    """Kahan matrix: upper triangular ``diag(1, s, s², …, s^(n−1)) · (I − c·U)`` with
    ``s = sin θ``, ``c = cos θ`` and ``U`` the strictly upper triangle of ones (MATLAB's
    ``gallery('kahan', n, theta)`` without the diagonal perturbation).  Column-pivoted QR does not
    reveal its near rank deficiency: a classic counterexample.

    κ₂ grows exponentially, roughly like ``((1+c)/s)^(n−1)``: for θ = 1.2, ≈ 2.6 (n=4), 12 (n=8),
    73 (n=12), 1.4e5 (n=30); smaller θ grows faster.  float64 by default.
    """

    def __init__(self, n: int, theta: float = 1.2, dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(n, dtype)
        self.theta = float(theta)

    def build(self) -> Tensor:
        n = self.n
        s, c = math.sin(self.theta), math.cos(self.theta)
        upper = torch.ones(n, n, dtype=torch.float64).triu(1)
        scale = s ** torch.arange(n, dtype=torch.float64)
        return scale[:, None] * (torch.eye(n, dtype=torch.float64) - c * upper)


class Wilkinson(SquareSource):
    """Wilkinson's ``W⁺_n``: symmetric tridiagonal with ones off the diagonal and diagonal
    ``|(n−1)/2 − k|`` for k = 0…n−1 (``W⁺₂₁`` is the famous one).

    Well conditioned for inversion (κ₂ stays small, ≈ 43 for n=21) but a hard case for eigenvalue
    solvers: its largest eigenvalues come in pairs that agree to many digits (λ₂₀, λ₂₁ of
    ``W⁺₂₁`` = 10.746194182903322 and …393).  float64 by default.
    """

    def __init__(self, n: int = 21, dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(n, dtype)

    def build(self) -> Tensor:
        n = self.n
        diagonal = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2).abs()
        ones = torch.ones(n - 1, dtype=torch.float64)
        return torch.diag(diagonal) + torch.diag(ones, 1) + torch.diag(ones, -1)


class Tridiagonal(SquareSource):
    """Constant tridiagonal (Toeplitz) matrix, by default ``(−1, 2, −1)``: the 1-D discrete
    Laplacian, symmetric positive definite with eigenvalues ``2 − 2cos(kπ/(n+1))``, k = 1…n.

    In general the eigenvalues are ``diagonal + 2·√(lower·upper)·cos(kπ/(n+1))``.  For
    (−1, 2, −1): κ₂ = cot²(π/(2(n+1))) ≈ 4(n+1)²/π², quadratic growth (≈ 9.5 at n=4, 4.1e3 at n=100).
    float64 by default.
    """

    def __init__(self, n: int, lower: float = -1.0, diagonal: float = 2.0, upper: float = -1.0,
                 dtype: Optional[DtypeLike] = None) -> None:
        super().__init__(n, dtype)
        self.lower, self.diagonal, self.upper = float(lower), float(diagonal), float(upper)

    def build(self) -> Tensor:
        n = self.n
        off = torch.ones(n - 1, dtype=torch.float64)
        return (self.diagonal * torch.eye(n, dtype=torch.float64)
                + self.upper * torch.diag(off, 1) + self.lower * torch.diag(off, -1))
