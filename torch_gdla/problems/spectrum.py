"""Separation of computed eigenvalues: which eigenvectors are determined individually.

A residual ‖Mv − λv‖ that is small says λ is near an eigenvalue and v near the eigenspace of
the eigenvalues near λ — not that v is near one eigenvector.  By Davis–Kahan, the sine of the
angle between v and the eigenvector of λ is at most ‖Mv − λv‖ / gap, gap being the distance
from λ to the rest of the spectrum; for a repeated eigenvalue (gap 0) any orthonormal basis of
its eigenspace is as good as another, and a run must not present one as "the" eigenvectors.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

# A vector whose Davis–Kahan bound exceeds this is reported as not determined (its eigenvalue is
# not separated from its neighbours): it is not known to even three digits.
SEPARATED = 1e-3


def separation_bounds(values: Tensor, residuals: Tensor, beyond: Optional[tuple[Tensor, Tensor]]) -> Tensor:
    """(…, k): ``residuals / gaps`` (inf where a gap is 0).  The gap of λᵢ is its distance to the
    other computed eigenvalues and, when ``beyond`` = (the next Ritz value past the k wanted,
    its residual) is known, to that value less its residual — an eigenvalue of M lies within the
    residual of a Ritz value, so the gap is not overstated by a Ritz value still converging."""
    k = values.shape[-1]
    distances = (values.unsqueeze(-1) - values.unsqueeze(-2)).abs()
    eye = torch.eye(k, dtype=torch.bool, device=values.device)
    gaps = torch.where(eye, torch.full_like(distances, torch.inf), distances).amin(dim=-1)
    if beyond is not None:
        next_value, next_residual = (t.to(values.dtype) for t in beyond)
        outside = ((values - next_value.unsqueeze(-1)).abs() - next_residual.unsqueeze(-1)).clamp_min(0.0)
        gaps = torch.minimum(gaps, outside)
    return torch.where(gaps > 0, residuals / gaps.clamp_min(torch.finfo(gaps.dtype).tiny),
                       torch.where(residuals > 0, torch.inf, 0.0).to(residuals.dtype))


def describe_unseparated(values: Tensor, residuals: Tensor, beyond: Optional[tuple[Tensor, Tensor]]) -> Optional[str]:
    """A sentence naming the eigenvalues whose vectors are not determined (bound > SEPARATED):
    clusters among the k computed, and the k-th eigenvalue against the next one beyond them
    (when ``beyond`` is known); None when every vector is determined.  The batch member with
    the most such eigenvalues is described."""
    k = values.shape[-1]
    inner = separation_bounds(values, residuals, None) > SEPARATED
    edge = (separation_bounds(values[..., -1:], residuals[..., -1:], beyond)[..., 0] > SEPARATED if beyond is not None
            else torch.zeros(values.shape[:-1], dtype=torch.bool, device=values.device))
    if not bool(inner.any()) and not bool(edge.any()):
        return None
    flat_values, flat_inner, flat_edge = values.reshape(-1, k), inner.reshape(-1, k), edge.reshape(-1)
    member = int((flat_inner.sum(dim=-1) + flat_edge).argmax())
    affected = int((flat_inner.any(dim=-1) | flat_edge).sum())
    where = f" in batch member {member} (of {affected} with such eigenvalues)" if flat_inner.shape[0] > 1 else ""
    parts = []
    indices = flat_inner[member].nonzero().reshape(-1).tolist()
    if indices:
        listed = ", ".join(f"{i} ({float(flat_values[member, i]):.6g})" for i in indices)
        parts.append(f"eigenvalues {listed}{where} are repeated or clustered (Davis–Kahan bound above {SEPARATED:g}): "
                     "their eigenvectors are determined only together, as the subspace they span, and the vectors "
                     "returned are one orthonormal basis of it; the eigenvalues and that subspace are what converged")
    if bool(flat_edge[member]):
        assert beyond is not None
        next_value = float(beyond[0].reshape(-1)[member])
        parts.append(f"eigenvalue {k - 1} ({float(flat_values[member, -1]):.6g}){where if not indices else ''} is not "
                     f"separated from the next one beyond the {k} asked for (about {next_value:.6g}), so the subspace "
                     f"of the {k} eigenvectors is not determined (only that of more pairs is): ask for more pairs "
                     f"(k > {k})")
    return "; ".join(parts)


# Dense matrices up to this order get their exact 2-norm (one SVD, ≈ 10 ms); larger ones and
# operators a power-iteration estimate (a lower bound within a few per cent).
EXACT_NORM_ORDER = 512


def spectral_norms(M: Any) -> Tensor:
    """‖M‖₂ per batch member (shape ``batch``): exact for dense M of order ≤ EXACT_NORM_ORDER,
    else ``gdla.operators.norm_estimate`` (30 power steps on MᵀM; the largest member's, for
    every member of a batch)."""
    from ..operators import is_sparse, norm_estimate

    if isinstance(M, Tensor) and not is_sparse(M) and M.shape[-1] <= EXACT_NORM_ORDER:
        with torch.no_grad():
            return torch.linalg.matrix_norm(M, ord=2)
    batch = tuple(M.shape[:-2]) if isinstance(M, Tensor) and not is_sparse(M) else ()
    device = M.device
    return torch.full(batch, norm_estimate(M), dtype=M.dtype, device=device)
