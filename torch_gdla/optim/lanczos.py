"""A certified lower bound on an operator's largest singular value (Golub–Kahan–Lanczos)."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

Block = Callable[[Tensor], Tensor]


@torch.no_grad()
def largest_singular_value(apply: Block, apply_t: Block, start: Tensor, steps: int) -> Tensor:
    """A lower bound on the largest singular value of an operator A, per member, from
    ``steps`` Golub–Kahan–Lanczos steps from ``start`` (…, n, 1) with one reorthogonalisation
    pass: σ_max(Qᵀ A P) / (‖Q‖₂ ‖P‖₂) over the Lanczos bases P, Q.  That never exceeds σ₁(A),
    whatever orthogonality rounding leaves to the bases (‖QᵀAP‖ ≤ ‖Q‖‖A‖‖P‖), and it converges
    to σ₁ quickly when σ₁ is separated (Lanczos: much faster than the power method)."""
    tiny = torch.finfo(start.dtype).tiny
    n = start.shape[-2]
    v = start / torch.linalg.vector_norm(start, dim=-2, keepdim=True).clamp_min(tiny)
    w = apply(v)
    m = w.shape[-2]
    # The bases are filled column by column (preallocated: no growing concatenations).
    P = start.new_zeros(*start.shape[:-2], n, steps)
    Q = w.new_zeros(*w.shape[:-2], m, steps)
    images = w.new_zeros(*w.shape[:-2], m, steps)
    P[..., :1], images[..., :1] = v, w
    Q[..., :1] = w / torch.linalg.vector_norm(w, dim=-2, keepdim=True).clamp_min(tiny)
    floor = math.sqrt(torch.finfo(start.dtype).eps)

    def orthonormal(x: Tensor, basis: Tensor) -> Tensor:
        # One Gram–Schmidt pass; a vector (nearly) in the span, as at a breakdown (an exhausted
        # Krylov space), becomes 0 rather than normalised rounding noise, which would not be
        # orthogonal to the basis.
        before = torch.linalg.vector_norm(x, dim=-2, keepdim=True)
        x = x - basis @ (basis.mT @ x)
        after = torch.linalg.vector_norm(x, dim=-2, keepdim=True)
        return torch.where(after > floor * before, x / after.clamp_min(tiny), torch.zeros_like(x))

    for j in range(1, steps):
        P[..., j: j + 1] = orthonormal(apply_t(Q[..., j - 1: j]), P[..., :j])
        w = apply(P[..., j: j + 1])
        images[..., j: j + 1] = w
        Q[..., j: j + 1] = orthonormal(w, Q[..., :j])

    def norm(X: Tensor) -> Tensor:  # ‖X‖₂ from the small Gram matrix
        return torch.linalg.eigvalsh(X.mT @ X)[..., -1].clamp_min(0).sqrt()

    return norm(Q.mT @ images) / (norm(Q) * norm(P)).clamp_min(tiny)
