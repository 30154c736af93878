"""What every SVD variant shares: the canonical (U, S, V), the rank check, and the
:class:`Decomposition` base class (loss, solution, quality measures, the top-k check)."""
from __future__ import annotations

import abc
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor

from ..errors import ArgumentError
from .base import Problem

# Lanczos steps of the top-k check (Decomposition.top_k_gaps).
TOP_K_STEPS = 8


class SVDSolution(NamedTuple):
    """``M ≈ U @ diag(S) @ V.mT``; S descending and ≥ 0, columns sign-normalised."""

    U: Tensor
    S: Tensor
    V: Tensor


def normalise(U: Tensor, S: Tensor, V: Tensor) -> SVDSolution:
    """The canonical form of a decomposition: S ≥ 0 (a negative value flips its V column),
    S descending (columns permuted with it), and the largest-magnitude entry of every U column
    positive (U and V columns flipped together).  Deterministic, so two decompositions of the
    same matrix compare entry by entry when the singular values are distinct."""
    negative = S < 0
    V = torch.where(negative.unsqueeze(-2), -V, V)
    S = S.abs()
    order = torch.argsort(S, dim=-1, descending=True, stable=True)
    S = S.gather(-1, order)
    U = U.gather(-1, order.unsqueeze(-2).expand_as(U))
    V = V.gather(-1, order.unsqueeze(-2).expand_as(V))
    peak = U.gather(-2, U.abs().argmax(dim=-2, keepdim=True))
    sign = torch.where(peak < 0, -1.0, 1.0).to(U.dtype)
    return SVDSolution(U * sign, S, V * sign)


def check_rank(rank: Any, shape: torch.Size) -> int:
    """k from ``rank``: an integer from 1 to min(m, n), or None for min(m, n)."""
    full = min(shape[-2:])
    if rank is None:
        return full
    if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= full:
        raise ArgumentError(
            f"rank must be an integer from 1 to min(m, n) = {full} for M of shape {tuple(shape)}; "
            f"got {rank!r} (rank=None computes all {full} singular triplets)"
        )
    return rank


class Decomposition(Problem):
    """What every SVD variant shares: unknowns that give factors (U, S, V) of ``M``.

    A subclass provides ``factors()`` (differentiable, unnormalised), ``_member_losses()`` (the
    loss of every batch member), ``residuals()`` and the buffers ``M`` and ``_norms``; this
    class turns them into the loss, the canonical ``solution``, the orthogonality measure, the
    comparison with ``torch.linalg.svd`` and the default optimizer.
    """

    M: Tensor
    _norms: Tensor
    rank: int

    @abc.abstractmethod
    def factors(self) -> tuple[Tensor, Tensor, Tensor]:
        """The current (U, S, V), differentiable and unnormalised."""

    @abc.abstractmethod
    def _member_losses(self) -> Tensor:
        """The loss of every batch member."""

    # -- shapes ----------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(m, n): the shape of each member's M."""
        m, n = self.M.shape[-2:]
        return m, n

    @property
    def truncated(self) -> bool:
        """True when k < min(m, n)."""
        return self.rank < min(self.shape)

    @property
    def batch_shape(self) -> torch.Size:
        return self.M.shape[:-2]

    # -- loss and solution -----------------------------------------------------------------------
    def forward(self) -> Tensor:
        return self._member_losses().sum()

    @torch.no_grad()
    def losses(self) -> Tensor:
        return self._member_losses()

    @property
    def solution(self) -> SVDSolution:
        with torch.no_grad():
            U, S, V = self.factors()
            return normalise(U.detach(), S.detach(), V.detach())

    # -- quality ---------------------------------------------------------------------------------
    @torch.no_grad()
    def orthogonality_errors(self) -> Tensor:
        """max(‖UᵀU − I‖_F, ‖VᵀV − I‖_F) per member (rounding level where U, V are orthonormal by
        construction; what the penalty leaves in ``PenaltySVD``)."""
        U, _, V = self.factors()
        identity = torch.eye(self.rank, dtype=U.dtype, device=U.device)
        return torch.maximum(torch.linalg.matrix_norm(U.mT @ U - identity),
                             torch.linalg.matrix_norm(V.mT @ V - identity))

    def reference(self) -> Any:
        """``torch.linalg.svd`` (thin, the top k triplets) in the same canonical form."""
        U, S, Vh = torch.linalg.svd(self.M, full_matrices=False)
        k = self.rank
        return normalise(U[..., :k], S[..., :k], Vh[..., :k, :].mT)

    @torch.no_grad()
    def reference_errors(self, reference: SVDSolution) -> Tensor:
        """‖S − σ‖₂ / ‖σ‖₂ per member: the singular values' relative error.  (The vectors are
        defined only up to rotations within repeated singular values, so they are not compared.)"""
        return torch.linalg.vector_norm(self.solution.S - reference.S, dim=-1) / torch.linalg.vector_norm(reference.S, dim=-1)

    def measures(self, reference: bool = False) -> dict[str, Any]:
        measures = super().measures(reference)
        measures["orthogonality"] = self.orthogonality_errors
        return measures

    def measured_once(self, measure: Callable[[], Tensor]) -> Tensor:
        """``measure()``, computed once per point: the same point is measured twice at the end of
        a solve (the confirmation, the result).  The point is keyed on every parameter's and
        buffer's identity, storage and in-place version counter, so any change recomputes it."""
        key = tuple((id(t), t.data_ptr(), t._version) for t in (*self.parameters(), *self.buffers()))
        cached = getattr(self, "_measured", None)
        if cached is None or cached[0] != key:
            cached = self._measured = (key, measure())
        return cached[1].clone()

    def _factors_and_image(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(U, S, V, MV); a subclass that forms MV for S anyway shares it by overriding this."""
        U, S, V = self.factors()
        return U, S, V, self.M @ V

    @torch.no_grad()
    def truncated_residuals(self) -> Tensor:
        """The larger of :meth:`stationarity` and :meth:`top_k_gaps` per member, from one
        evaluation of the factors."""
        U, S, V, MV = self._factors_and_image()
        return torch.maximum(self._stationarity(U, S, V, MV), self._top_k_gaps(U, S, V))

    @torch.no_grad()
    def stationarity(self) -> Tensor:
        """sqrt((‖MV − US‖²_F + ‖MᵀU − VS‖²_F) / 2) / ‖M‖_F per member, the optimality measure
        of a truncated SVD.  Column i is the residual of the symmetric matrix [[0, M], [Mᵀ, 0]]
        at the unit vector [uᵢ; vᵢ]/√2, whose Rayleigh quotient is sᵢ = uᵢᵀMvᵢ; so each sᵢ is
        within this measure·‖M‖_F of a singular value of M, and it is 0 exactly at singular
        triplets: at the top k, and at every other set of k (saddle points of the loss)."""
        return self._stationarity(*self._factors_and_image())

    def _stationarity(self, U: Tensor, S: Tensor, V: Tensor, MV: Tensor) -> Tensor:
        left = torch.linalg.matrix_norm(MV - U * S.unsqueeze(-2))
        right = torch.linalg.matrix_norm(self.M.mT @ U - V * S.unsqueeze(-2))
        return torch.sqrt((left.square() + right.square()) / 2) / self._norms

    @torch.no_grad()
    def top_k_gaps(self) -> Tensor:
        """max(0, σ̂ − min|S|) / ‖M‖_F per member, where σ̂ is a lower bound on the largest
        singular value of the deflated M − U diag(S) Vᵀ (Golub–Kahan–Lanczos, TOP_K_STEPS
        steps from a fixed seeded start).  At the top k triplets σ̂ ≤ σ_{k+1} ≤ min S, so it is
        0; a positive value proves a singular value larger than one found, outside the k: a
        saddle point.  Costs 2·TOP_K_STEPS − 1 products with M, about what the stationarity
        measure costs for k ≈ TOP_K_STEPS."""
        U, S, V, _ = self._factors_and_image()
        return self._top_k_gaps(U, S, V)

    def _top_k_gaps(self, U: Tensor, S: Tensor, V: Tensor) -> Tensor:
        from ..optim.lanczos import largest_singular_value

        M = self.M
        if U.dtype in (torch.float16, torch.bfloat16):  # no eigvalsh in half precision: float32
            M, U, S, V = M.float(), U.float(), S.float(), V.float()
        US = U * S.unsqueeze(-2)
        start = torch.randn((*self.batch_shape, self.shape[1], 1), generator=torch.Generator().manual_seed(0),
                            dtype=torch.float64).to(V)
        top = largest_singular_value(lambda x: M @ x - US @ (V.mT @ x), lambda y: M.mT @ y - V @ (US.mT @ y),
                                     start, min(TOP_K_STEPS, *self.shape))
        return ((top - S.abs().amin(dim=-1)).clamp_min(0) / self._norms).to(self._norms.dtype)

    # -- optimizer -------------------------------------------------------------------------------
    def default_optimizer(self) -> torch.optim.Optimizer:
        """L-BFGS with a strong-Wolfe line search, one iteration per step (``gdla.optim.LBFGS``,
        history 20), so the solver's stall rule judges every iteration; the orthogonal ``SVD``
        overrides this with its block Krylov method."""
        from ..optim import LBFGS

        return LBFGS(self.parameters(), history_size=20)
