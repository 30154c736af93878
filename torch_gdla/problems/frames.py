"""The Stiefel parametrisation of ``gdla.parametrizations`` on a moving orthonormal frame.

:func:`~torch_gdla.parametrizations.orthonormal_map` maps a generator to ``base @ exp(A)[:, :k]``
with ``base`` a square (n × n) orthogonal matrix: fine for the SVD of a dense matrix, but an
n × n base is 800 MB at n = 10 000, where an eigenproblem of a sparse matrix is routine.  The
map only ever uses the base's first k columns F (the *frame*) and the projection onto their
complement, so :func:`frame_map` writes the same map in ambient coordinates:
``frame_map(F, G) == orthonormal_map(Q, Qᵀ G)`` for every orthogonal Q whose first k columns are
F (checked in the tests).  With G (n × k), Ω = L − Lᵀ (L the strictly lower part of FᵀG) and
B̃ = (I − FFᵀ)G, the skew-symmetric A = FΩFᵀ + B̃Fᵀ − FB̃ᵀ has rank ≤ 2k, and
``exp(A) F = F + [F, B̃] (φ(CWᵀW) C)[:, :k]`` with W = [F, B̃], WᵀW = diag(I, B̃ᵀB̃),
C = [[Ω, −I], [I, 0]] and φ(Z) = (e^Z − I)Z⁻¹ read off a (4k × 4k) exponential — O(nk²) per
evaluation, no n × n matrix anywhere.

A zero generator gives the frame itself, so a method that finds better orthonormal vectors (a
Rayleigh–Ritz step) moves the frame there and zeroes the generator: the parameter stays a
small coordinate around the current point, the point stays exactly orthonormal.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import ArgumentError
from ..parametrizations import seeded_orthogonal
from ..validation import check_init

__all__ = ["frame_map", "orthonormal_start"]


def frame_map(frame: Tensor, generator: Tensor) -> Tensor:
    """``exp(A) @ frame`` (…, n, k): exactly orthonormal columns for any (…, n, k) generator;
    ``frame`` when the generator is zero.  The free coordinates are the strictly lower part of
    FᵀG and the complement part (I − FFᵀ)G — the nk − k(k+1)/2 dimensions of the Stiefel
    manifold; the rest of G gets zero gradient."""
    k = frame.shape[-1]
    top = frame.mT @ generator
    lower = top.tril(-1)
    omega = lower - lower.mT
    outside = generator - frame @ top  # (I − FFᵀ)G: the part of G off the frame
    eye = torch.eye(k, dtype=generator.dtype, device=generator.device).expand_as(omega)
    zero = torch.zeros_like(omega)
    C = torch.cat([torch.cat([omega, -eye], dim=-1), torch.cat([eye, zero], dim=-1)], dim=-2)
    # C (WᵀW) with WᵀW = diag(I, B̃ᵀB̃): the right block column of C times B̃ᵀB̃.
    Z = torch.cat([C[..., :k], C[..., k:] @ (outside.mT @ outside)], dim=-1)
    identity = torch.eye(2 * k, dtype=Z.dtype, device=Z.device).expand_as(Z)
    block = torch.cat([torch.cat([Z, identity], dim=-1), torch.zeros_like(torch.cat([Z, Z], dim=-1))], dim=-2)
    phi = torch.matrix_exp(block)[..., : 2 * k, 2 * k:]
    F = (phi @ C)[..., :k]
    return frame + frame @ F[..., :k, :] + outside @ F[..., k:, :]


def orthonormal_start(init: Any, shape: tuple[int, ...], seed: int, like: Tensor) -> Tensor:
    """k orthonormal starting vectors of shape ``(…, n, k)``: ``init`` orthonormalised (a warm
    start; refused when its columns are dependent), or seeded random ones (the orthogonal
    factor of a seeded uniform draw, as ``seeded_orthogonal`` draws the SVD's bases)."""
    if init is None:
        return seeded_orthogonal(torch.Size(shape), torch.Generator().manual_seed(int(seed)), like)
    start = check_init(init, "init", torch.Size(shape), like)
    Q, R = torch.linalg.qr(start)
    diagonal = R.diagonal(dim1=-2, dim2=-1).abs()
    if bool((diagonal <= 1e3 * torch.finfo(start.dtype).eps * diagonal.amax(dim=-1, keepdim=True)).any()):
        raise ArgumentError(f"init must have linearly independent columns (previous eigenvectors); its columns of "
                            f"shape {tuple(start.shape)} are (numerically) dependent")
    return Q * torch.where(R.diagonal(dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(Q.dtype).unsqueeze(-2)
