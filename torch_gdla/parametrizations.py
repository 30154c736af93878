"""Parametrisations: unconstrained tensors mapped onto constraint sets, in the geotorch manner.

:class:`Stiefel` maps an (…, m, k) generator to an (…, m, k) matrix with orthonormal columns,
so a plain ``torch.optim`` optimizer moves on the Stiefel manifold without a penalty or a
retraction.  Use it with ``torch.nn.utils.parametrize.register_parametrization`` or call it as a
module; :func:`orthonormal_map` is the same map as a function, and :func:`stiefel_map` the same
map around an (m × k) point alone, without an (m × m) base (``gdla.SVD`` uses that form).
:func:`seeded_orthogonal` draws a base, :func:`seeded_orthonormal` its first k columns.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .errors import ArgumentError

__all__ = ["Stiefel", "orthonormal_map", "seeded_orthogonal", "seeded_orthonormal", "stiefel_map"]


def orthonormal_map(base: Tensor, generator: Tensor) -> Tensor:
    """``base @ matrix_exp(A)[..., :k]``: exactly orthonormal columns for any generator.

    ``A`` is the (m × m) skew-symmetric matrix ``[[Ω, −Bᵀ], [B, 0]]`` built from the (m × k)
    generator: Ω = L − Lᵀ with L the strictly lower part of its top k × k block, B its bottom
    (m − k) rows.  Its free entries are exactly the mk − k(k+1)/2 dimensions of the Stiefel
    manifold (the top block's diagonal and upper part get zero gradient); a zero generator
    gives ``base[..., :k]``.

    A has rank ≤ 2k, so for m > 2k the (m × m) exponential is not formed: with
    W = [E, [0; B]] (m × 2k, E the first k columns of I) and C = [[Ω, −I], [I, 0]], A = W C Wᵀ
    and exp(A) = I + W φ(C WᵀW) C Wᵀ, φ(Z) = (e^Z − I) Z⁻¹, read off the (4k × 4k)
    exponential of [[Z, I], [0, 0]].  An evaluation then costs O(m²k + k³) instead of O(m³).
    """
    m, k = generator.shape[-2:]
    L = generator[..., :k, :].tril(-1)
    omega = L - L.mT
    if m <= 2 * k:
        B = generator[..., k:, :]
        skew = torch.cat([torch.cat([omega, -B.mT], dim=-1),
                          torch.cat([B, B.new_zeros(*B.shape[:-1], m - k)], dim=-1)], dim=-2)
        return base @ torch.matrix_exp(skew)[..., :k]
    B = generator[..., k:, :]
    return _exp_columns(base[..., :k], omega, base[..., k:] @ B, B.mT @ B)


def stiefel_map(point: Tensor, generator: Tensor) -> Tensor:
    """The map of :func:`orthonormal_map` around an (…, m, k) orthonormal ``point`` alone.

    The (m × k) generator Z is read in the ambient space: Ω = L − Lᵀ with L the strictly lower
    part of ``pointᵀ Z``, and B = Z − point (pointᵀ Z), Z's part orthogonal to the point.  With
    any orthogonal completion [point, C] this is :func:`orthonormal_map` of the base
    [point, C] at the generator [point, C]ᵀ Z, an orthogonal change of variables, so gradient
    methods that are invariant under one (SGD, L-BFGS, conjugate gradient) take the same
    steps; but no (m × m) base is stored or multiplied: an evaluation costs O(mk²).  A zero
    generator gives the point; the gradient of Z's remaining k(k+1)/2 dimensions is zero.
    """
    if not (torch.is_grad_enabled() and generator.requires_grad) and not bool(generator.any()):
        return point  # exp(0) = I, exactly; no graph is needed (a measurement, or a re-centred point)
    A = point.mT @ generator
    L = A.tril(-1)
    B = generator - point @ A
    return _exp_columns(point, L - L.mT, B, B.mT @ B)


def _exp_columns(first: Tensor, omega: Tensor, lifted: Tensor, gram: Tensor) -> Tensor:
    """``first + first F₁ + lifted F₂`` = exp(A)'s first k columns in the low-rank form above,
    where ``lifted`` (m × k) is B in the ambient space and ``gram`` = BᵀB."""
    k = omega.shape[-1]
    eye, zero = torch.eye(k, dtype=omega.dtype, device=omega.device), torch.zeros_like(omega)
    eye = eye.expand_as(zero)
    C = torch.cat([torch.cat([omega, -eye], dim=-1), torch.cat([eye, zero], dim=-1)], dim=-2)
    # C (WᵀW) with WᵀW = diag(I, BᵀB): the right block column of C times BᵀB.
    Z = torch.cat([C[..., :k], C[..., k:] @ gram], dim=-1)
    block = torch.cat([torch.cat([Z, torch.eye(2 * k, dtype=Z.dtype, device=Z.device).expand_as(Z)], dim=-1),
                       torch.zeros_like(torch.cat([Z, Z], dim=-1))], dim=-2)
    phi = torch.matrix_exp(block)[..., : 2 * k, 2 * k:]
    F = (phi @ C)[..., :k]  # (φ(CG) C Wᵀ E): Wᵀ E = [I; 0] keeps the first k columns
    return first + first @ F[..., :k, :] + lifted @ F[..., k:, :]


def seeded_orthogonal(shape: torch.Size, generator: torch.Generator, like: Tensor) -> Tensor:
    """A random orthogonal (…, m, m) matrix: Q of the QR of a seeded uniform draw, signs fixed
    by diag(R) > 0 so it does not depend on the LAPACK build.  The draw is float64 on the CPU
    (``generator`` is a CPU generator, so the numbers do not depend on the device), then cast
    to ``like``'s dtype and device."""
    draw = torch.rand(shape, generator=generator, dtype=torch.float64)
    Q, R = torch.linalg.qr(draw)
    Q = Q * torch.where(R.diagonal(dim1=-2, dim2=-1) < 0, -1.0, 1.0).unsqueeze(-2).to(Q.dtype)
    return Q.to(dtype=like.dtype, device=like.device)


def seeded_orthonormal(shape: torch.Size, k: int, generator: torch.Generator, like: Tensor) -> Tensor:
    """The first k columns of :func:`seeded_orthogonal` (same draw, same generator advance),
    from the thin QR of the draw's first k columns: O(mk²) instead of O(m³) (equal to rounding:
    Householder QR's first k columns depend on the first k columns of the draw alone)."""
    draw = torch.rand(shape, generator=generator, dtype=torch.float64)[..., :k]
    Q, R = torch.linalg.qr(draw)
    Q = Q * torch.where(R.diagonal(dim1=-2, dim2=-1) < 0, -1.0, 1.0).unsqueeze(-2).to(Q.dtype)
    return Q.to(dtype=like.dtype, device=like.device)


class Stiefel(nn.Module):
    """The map generator (…, m, k) ↦ ``base @ matrix_exp(A)[..., :k]`` onto matrices with
    orthonormal columns (see :func:`orthonormal_map` for A and the O(m²k + k³) evaluation).

    Args:
        base: an orthogonal (…, m, m) matrix (a buffer: it follows ``.to()``); a zero generator
            maps to its first k columns.  ``Stiefel.seeded(m, seed)`` draws one.

    As a parametrisation, ``register_parametrization(module, "weight", Stiefel(base))`` takes the
    tensor's current value as the generator (there is no ``right_inverse``: assigning an
    orthonormal matrix would need a matrix logarithm), so register it on a zero tensor to start
    at ``base[..., :k]``.  Torch's own ``parametrizations.orthogonal`` completes a tall base
    with the global RNG; here the base is given, so runs are reproducible.
    """

    base: Tensor

    def __init__(self, base: Tensor) -> None:
        super().__init__()
        if base.dim() < 2 or base.shape[-1] != base.shape[-2]:
            raise ArgumentError(f"base must be a square (…, m, m) orthogonal matrix; got shape {tuple(base.shape)}")
        self.register_buffer("base", base)

    @classmethod
    def seeded(cls, m: int, seed: int, batch_shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> Stiefel:
        """The map with a base drawn by :func:`seeded_orthogonal` from ``seed`` (global RNG untouched)."""
        like = torch.empty(0, dtype=dtype, device=device)
        generator = torch.Generator().manual_seed(int(seed))
        return cls(seeded_orthogonal(torch.Size((*batch_shape, m, m)), generator, like))

    def forward(self, generator: Tensor) -> Tensor:
        """The orthonormal (…, m, k) matrix of ``generator`` (k ≤ m)."""
        m, k = generator.shape[-2:]
        if m != self.base.shape[-1] or k > m:
            raise ArgumentError(f"generator must have shape (…, {self.base.shape[-1]}, k) with k ≤ "
                             f"{self.base.shape[-1]}; got {tuple(generator.shape)}")
        return orthonormal_map(self.base, generator)

    def extra_repr(self) -> str:
        return f"m={self.base.shape[-1]}"
