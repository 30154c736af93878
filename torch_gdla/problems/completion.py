"""Matrix completion and weighted low-rank approximation (``SVD(M, rank=k, mask=... / weights=...)``).

With a mask or entry weights the closed form for S of the orthogonal :class:`~.svd.SVD` no
longer holds, so the unknowns are two plain factors instead, and the canonical (U, S, V) is
read off their product.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..errors import ArgumentError, ArgumentTypeError
from ..matrices import MatrixLike
from ..validation import as_float_tensor, as_matrix, check_finite, describe
from .decomposition import Decomposition
from .svd import SVD, SVDSolution, check_rank


class MatrixCompletion(SVD):
    """A rank-k model fitted to the observed (or weighted) entries of ``M``.

    Args:
        M: matrix of shape ``(..., m, n)``; its unobserved entries are ignored and may be NaN
            (they are replaced by 0 internally); a NaN or Inf at an observed entry is an error.
        rank: k (required: with rank = min(m, n) any matrix fits the observed entries exactly).
        mask: the observed entries (bool, or 0/1 numbers; shape ``(m, n)`` or M's shape, or any
            shape that broadcasts to M's with the last two dimensions ``(m, n)``).
        weights: non-negative weight of every entry's squared error (same shapes as ``mask``).
            Without a mask, the observed entries are those with weight > 0; with both, the
            weights of unobserved entries are ignored.  At least one of mask and weights.
        seed: seeds the start (below).

    The unknowns are plain factors ``U_factor`` (m × k) and ``V_factor`` (n × k), started from
    seeded standard normal draws (same generator, U first) scaled to the observed entries' norm,
    and the loss is ``Σ w_ij ((U Vᵀ)_ij − M_ij)² / Σ w_ij M_ij²`` per member (w = the weights,
    0/1 for a mask; summed over a batch).  ``solution`` is the SVD of ``U Vᵀ`` (QR of both
    factors, then the SVD of the k × k core), so it is the same canonical ``(U, S, V)``.
    ``residuals()`` is the relative optimality measure of that loss (zero exactly at its
    stationary points), and :meth:`observed_errors` the relative reconstruction error on the
    observed entries; see :meth:`residuals`.  There is no direct reference: ``reference()``
    raises.
    """

    _weights: Tensor
    _max_weights: Tensor

    def __init__(self, M: MatrixLike, rank: Optional[int] = None, mask: Optional[MatrixLike] = None,
                 weights: Optional[MatrixLike] = None, seed: int = 314) -> None:
        super().__init__(M, rank, seed=seed, mask=mask, weights=weights)

    def _init_data(self, M: MatrixLike, rank: Optional[int], mask: Any, weights: Any) -> int:
        if mask is None and weights is None:
            raise ArgumentError("MatrixCompletion needs mask= (the observed entries) or weights= (entry weights); "
                                "for a fully observed M use gdla.SVD(M, rank=k)")
        matrix, entry_weights = _observed_data(M, mask, weights)
        if rank is None:
            given = "mask" if mask is not None else "weights"
            raise ArgumentError(
                f"{given} needs rank=k: matrix completion fits a rank-k model to the observed entries (with rank = "
                f"min(m, n) = {min(matrix.shape[-2:])} any matrix fits them exactly); pass e.g. SVD(M, rank=3, {given}=...)"
            )
        rank = check_rank(rank, matrix.shape)
        self.register_buffer("M", matrix)
        self.register_buffer("_weights", entry_weights)
        observed = (entry_weights * matrix.square()).sum(dim=(-2, -1)).sqrt()
        if not bool((observed > 0).all()):
            raise ArgumentError("M is zero on every observed entry (of a batch member): the best rank-k fit is 0; "
                                "check the mask/weights and the data")
        self.register_buffer("_norms", observed)  # the observed entries' (weighted) norm
        self.register_buffer("_max_weights", entry_weights.amax(dim=(-2, -1)))
        return rank

    def _init_unknowns(self, generator: torch.Generator) -> None:
        matrix, rank = self.M, self.rank
        batch, (m, n) = matrix.shape[:-2], matrix.shape[-2:]
        left = torch.randn((*batch, m, rank), generator=generator, dtype=torch.float64)
        right = torch.randn((*batch, n, rank), generator=generator, dtype=torch.float64)
        # Scale both factors alike so that the start's observed entries have M's norm.
        weights64 = self._weights.to(torch.float64).cpu()
        start = (weights64 * (left @ right.mT).square()).sum(dim=(-2, -1)).sqrt()
        scale = (self._norms.to(torch.float64).cpu() / start.clamp_min(torch.finfo(torch.float64).tiny)).sqrt()
        scale = scale[..., None, None]
        self.U_factor = nn.Parameter((left * scale).to(dtype=matrix.dtype, device=matrix.device))
        self.V_factor = nn.Parameter((right * scale).to(dtype=matrix.dtype, device=matrix.device))

    def factors(self) -> tuple[Tensor, Tensor, Tensor]:
        return svd_of_product(self.U_factor, self.V_factor)

    def _member_losses(self) -> Tensor:
        error = self.U_factor @ self.V_factor.mT - self.M
        return (self._weights * error.square()).sum(dim=(-2, -1)) / self._norms.square()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        """With R = W ⊙ (U Vᵀ − M) (the loss's gradient is 2RV and 2RᵀU, up to the
        normalisation) and Q_U, Q_V orthonormal bases of the factors' column spaces, the
        residual is sqrt((‖R Q_V‖²_F + ‖Rᵀ Q_U‖²_F) / 2) / (sqrt(max w) · sqrt(Σ w M²)) per
        member: zero exactly at a stationary point of the loss, independent of how the product
        is split between the factors and of the scale of M and of the weights.  It is at most
        the relative reconstruction error on the observed entries (:meth:`observed_errors`),
        which also reaches 0 when M agrees with a rank-k matrix on them.
        """
        residual = self._weights * (self.U_factor @ self.V_factor.mT - self.M)
        Q_U = torch.linalg.qr(self.U_factor).Q
        Q_V = torch.linalg.qr(self.V_factor).Q
        left = torch.linalg.matrix_norm(residual @ Q_V)
        right = torch.linalg.matrix_norm(residual.mT @ Q_U)
        return torch.sqrt((left.square() + right.square()) / 2) / (self._max_weights.sqrt() * self._norms)

    @torch.no_grad()
    def observed_errors(self) -> Tensor:
        """sqrt(Σ w (U Vᵀ − M)² / Σ w M²) per member, the relative reconstruction error on the
        observed entries (the square root of the member's loss)."""
        return self._member_losses().clamp_min(0).sqrt()

    def residual_bound(self, loss: float) -> Optional[float]:
        """None.  sqrt(loss) is a valid bound (‖R‖²_F = Σ w²E² ≤ max w·Σ wE², ‖RQ‖_F ≤ ‖R‖_F), but it
        stays large for data that no rank-k matrix fits exactly (noise), and a bound that
        never passes would keep the solver from ever computing the residual; so None: the
        residual (cheap: two thin QRs) is computed every residual_every steps instead."""
        return None

    def default_optimizer(self) -> torch.optim.Optimizer:
        """L-BFGS, one iteration per step (``Decomposition``'s): the block Krylov method of
        ``SVD`` needs the orthogonal parametrisation's closed-form S, which these factors lack."""
        return Decomposition.default_optimizer(self)

    def reference(self) -> Any:
        """There is none: no direct torch.linalg solver poses matrix completion."""
        raise NotImplementedError(
            "a masked/weighted SVD (matrix completion) has no direct torch.linalg solution; compare the "
            "completed matrix U diag(S) Vᵀ with the ground truth on the hidden entries instead"
        )

    def measures(self, reference: bool = False) -> dict[str, Any]:
        measures = super().measures(False)  # no direct reference exists
        measures["observed_error"] = self.observed_errors
        return measures


def svd_of_product(left: Tensor, right: Tensor) -> SVDSolution:
    """The thin SVD (unnormalised) of ``left @ right.mT`` (… × m × k and … × n × k) without
    forming it: QR of both factors, then the SVD of the k × k core R_U R_Vᵀ."""
    Q_U, R_U = torch.linalg.qr(left)
    Q_V, R_V = torch.linalg.qr(right)
    A, S, Bh = torch.linalg.svd(R_U @ R_V.mT)
    return SVDSolution(Q_U @ A, S, Q_V @ Bh.mT)


def _observed_data(M: Any, mask: Any, weights: Any) -> tuple[Tensor, Tensor]:
    """(M with unobserved entries set to 0, the entry weights broadcast to M's shape) for a
    masked/weighted SVD; every argument is validated with a message that names it."""
    raw = as_float_tensor(M, "M")
    name = describe(M, "M")
    as_matrix(torch.nan_to_num(raw), "M")  # shape checks (2-D at least, not empty)
    shape = raw.shape

    def entries(value: Any, label: str) -> Tensor:
        label = describe(value, label)
        if hasattr(value, "tensor") and callable(value.tensor) and not isinstance(value, Tensor):
            value = value.tensor()
        try:
            tensor = value if isinstance(value, Tensor) else torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ArgumentTypeError(f"{label} must be a tensor, an array or a nested list; got {type(value).__name__} ({error})") from None
        if tensor.is_complex():
            raise ArgumentTypeError(f"{label} is complex; pass real numbers")
        if tensor.dim() < 2 or tuple(tensor.shape[-2:]) != tuple(shape[-2:]):
            raise ArgumentError(f"{label} must have M's shape {tuple(shape)} (or ({shape[-2]}, {shape[-1]}), shared by every "
                             f"batch member); got {tuple(tensor.shape)}")
        try:
            if torch.broadcast_shapes(tensor.shape, shape) != shape:
                raise RuntimeError
        except RuntimeError:
            raise ArgumentError(f"{label} of shape {tuple(tensor.shape)} does not broadcast to M's shape {tuple(shape)}") from None
        return tensor.to(device=raw.device)

    observed = None
    if mask is not None:
        values = entries(mask, "mask")
        if values.dtype != torch.bool:
            if not bool(((values == 0) | (values == 1)).all()):
                raise ArgumentError("mask must be bool or 0/1 (1 = observed); for real-valued confidences pass weights= instead")
            values = values != 0
        observed = values.expand(shape)
    entry_weights = None
    if weights is not None:
        values = entries(weights, "weights")
        if not values.is_floating_point():
            values = values.to(raw.dtype if raw.is_floating_point() else torch.get_default_dtype())
        check_finite(values, describe(weights, "weights"))
        if bool((values < 0).any()):
            raise ArgumentError(f"weights must be >= 0 (each multiplies an entry's squared error); got {int((values < 0).sum())} "
                             "negative entries")
        entry_weights = values.expand(shape).to(raw.dtype)
        observed = entry_weights > 0 if observed is None else observed & (entry_weights > 0)
    assert observed is not None
    empty = ~observed.flatten(-2).any(dim=-1)
    if bool(empty.any()):
        what = "mask and weights observe" if mask is not None and weights is not None else (
            "mask observes" if mask is not None else "weights are zero on all entries; they observe")
        raise ArgumentError(f"the {what} no entries" + (" of a batch member" if raw.dim() > 2 else "")
                         + "; mark at least one entry observed (True / weight > 0)")
    bad = observed & ~torch.isfinite(raw)
    if bool(bad.any()):
        raise ArgumentError(f"{name} has {int(bad.sum())} NaN or Inf entries at observed positions; only unobserved entries "
                         "may be NaN (mark them unobserved in the mask, or fix the data)")
    matrix = torch.where(observed, raw, torch.zeros((), dtype=raw.dtype, device=raw.device))
    if entry_weights is None:
        entry_weights = observed.to(raw.dtype)
    else:
        entry_weights = torch.where(observed, entry_weights, torch.zeros((), dtype=raw.dtype, device=raw.device))
    return matrix, entry_weights.contiguous()
