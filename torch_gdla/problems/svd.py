"""Singular value decomposition by gradient descent (the SVD tutorial): M ≈ U diag(S) Vᵀ.

:class:`SVD` (the default): U and V are orthonormal at every step by construction (the
``Stiefel`` parametrisation of ``gdla.parametrizations``), so the loss is the reconstruction
error alone and no penalty weight has to be tuned; for fixed orthonormal U, V the best S is
``diag(UᵀMV)``, so S is eliminated in closed form and the unknowns are two generators only.
Its variants, which ``SVD(...)`` builds from the arguments: ``PenaltySVD`` (``method="penalty"``,
the tutorial's penalty recipe, reproduced exactly) and ``MatrixCompletion`` (``mask=`` /
``weights=``: plain factors fitted to the observed entries).
"""
from __future__ import annotations

import abc
import math
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor, nn

from ..errors import ArgumentError
from ..matrices import MatrixLike
from ..parametrizations import orthonormal_map, seeded_orthogonal
from ..validation import as_matrix, check_choice, check_number
from .base import Problem
from .family import Arguments, Family, check_variant

METHODS = ("orthogonal", "penalty")


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

    # -- optimizer -------------------------------------------------------------------------------
    def default_optimizer(self) -> torch.optim.Optimizer:
        """L-BFGS with a strong-Wolfe line search over this problem's parameters: measured on
        the tutorial's five matrices it needs 24–89 loss evaluations where conjugate gradient
        needs 230–1100, and stalls on one after 3100 (the loss is not quadratic, and its
        curvature spans (σᵢ − σⱼ)² to (σᵢ + σⱼ)²).  ``max_eval`` is raised from torch's
        1.25·max_iter, which can leave the line search no evaluations; tolerances are 0 so the
        solver's own stopping rules decide."""
        return svd_optimizer(self.parameters())


class SVD(Decomposition, metaclass=Family):
    """The (truncated) singular value decomposition of ``M`` (leading dimensions are a batch).

    Args:
        M: matrix of shape ``(..., m, n)`` (tensor, nested list or a ``gdla.matrices`` source).
        rank: k, the number of singular triplets; None = min(m, n) (the full thin SVD).  A
            smaller k finds the top-k triplets: the best rank-k approximation (Eckart–Young) is
            the loss's global minimum, other sets of k triplets are saddle points.
        method: ``"orthogonal"`` (default, this class) or ``"penalty"`` (builds a ``PenaltySVD``).
        seed: seeds the start: the bases are orthogonal factors of seeded uniform (m × m) and
            (n × n) draws, in that order (the global RNG is left alone).
        penalty: the orthogonality weight of ``method="penalty"`` (checked here, used there).
        mask, weights: the observed entries / entry weights: build a ``MatrixCompletion``
            (matrix completion, weighted low-rank approximation; needs ``rank=k``).

    The unknowns are two generators mapped to orthonormal U, V (``gdla.parametrizations``'s
    :func:`orthonormal_map`); S is ``diag(UᵀMV)``, optimal for the current U, V; the loss is
    ‖U diag(S) Vᵀ − M‖²_F / ‖M‖²_F per member (summed over a batch), scale-free so the
    optimizer's thresholds behave the same for any ‖M‖.

    ``solution`` is an :class:`SVDSolution` ``(U, S, V)`` in the canonical form of
    :func:`normalise`.  Any ``torch.optim`` optimizer trains it in a plain loop; the problem's
    own :meth:`default_optimizer` (L-BFGS) is what ``gdla.solve`` picks when no optimizer is
    given.
    """

    M: Tensor
    _norms: Tensor
    U_base: Tensor
    V_base: Tensor

    @classmethod
    def _variant(cls, arguments: Arguments) -> tuple[type, Arguments]:
        method = check_choice(arguments.pop("method", "orthogonal"), "method", METHODS)
        penalty = arguments.pop("penalty", 0.01)
        check_number(penalty, "penalty", positive=True, meaning="the weight of the orthogonality terms, e.g. 0.01")
        if arguments.get("mask") is not None or arguments.get("weights") is not None:
            if method != "orthogonal":
                raise ArgumentError(f"mask= and weights= use their own factor parametrisation; drop method={method!r} "
                                    "(the default method='orthogonal' is the one that accepts them)")
            from .completion import MatrixCompletion

            return MatrixCompletion, arguments
        arguments.pop("mask", None)
        arguments.pop("weights", None)
        if method == "penalty":
            from .penalty_svd import PenaltySVD

            return PenaltySVD, {**arguments, "penalty": penalty}
        return SVD, arguments

    def __init__(
        self,
        M: MatrixLike,
        rank: Optional[int] = None,
        method: str = "orthogonal",
        seed: int = 314,
        penalty: float = 0.01,
        mask: Optional[MatrixLike] = None,
        weights: Optional[MatrixLike] = None,
    ) -> None:
        super().__init__()
        check_variant(self, SVD, method=method, penalty=penalty, mask=mask, weights=weights)
        # The skeleton every variant shares: the data and rank, then the seeded unknowns.
        self.rank = self._init_data(M, rank, mask, weights)
        self.seed = seed
        self._init_unknowns(torch.Generator().manual_seed(int(seed)))

    def _init_data(self, M: MatrixLike, rank: Optional[int], mask: Any, weights: Any) -> int:
        """Validate and register M (and ``_norms``, the loss's per-member scale); return k."""
        matrix = as_matrix(M, "M")
        rank = check_rank(rank, matrix.shape)
        self.register_buffer("M", matrix)
        self.register_buffer("_norms", torch.linalg.matrix_norm(matrix))
        if not bool((self._norms > 0).all()):
            raise ArgumentError("M is zero (a batch member is all zeros); its SVD is trivial: S = 0 with any orthonormal U, V")
        return rank

    def _init_unknowns(self, generator: torch.Generator) -> None:
        """The seeded starting point: zero generators on seeded orthogonal bases (U's first)."""
        matrix, rank = self.M, self.rank
        batch, (m, n) = matrix.shape[:-2], matrix.shape[-2:]
        self.register_buffer("U_base", seeded_orthogonal(torch.Size((*batch, m, m)), generator, matrix))
        self.register_buffer("V_base", seeded_orthogonal(torch.Size((*batch, n, n)), generator, matrix))
        self.U_generator = nn.Parameter(matrix.new_zeros(*batch, m, rank))
        self.V_generator = nn.Parameter(matrix.new_zeros(*batch, n, rank))

    # -- the orthogonal parametrisation ----------------------------------------------------------
    def factors(self) -> tuple[Tensor, Tensor, Tensor]:
        """The current (U, S, V), differentiable and unnormalised."""
        U = orthonormal_map(self.U_base, self.U_generator)
        V = orthonormal_map(self.V_base, self.V_generator)
        S = ((self.M @ V) * U).sum(dim=-2)  # diag(UᵀMV) without forming the k × k product
        return U, S, V

    def _member_losses(self) -> Tensor:
        U, S, V = self.factors()
        error = (U * S.unsqueeze(-2)) @ V.mT - self.M
        return error.square().sum(dim=(-2, -1)) / self._norms.square()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        """Per member.  Full rank: ‖U diag(S) Vᵀ − M‖_F / ‖M‖_F; every singular value is then
        within residual·‖M‖_F of the true one (Mirsky), once U and V are orthonormal.

        Truncated (rank k < min(m, n)): the reconstruction error cannot reach zero, so the
        residual is the optimality measure sqrt((‖MV − US‖²_F + ‖MᵀU − VS‖²_F) / 2) / ‖M‖_F.
        Column i is the residual of the symmetric matrix [[0, M], [Mᵀ, 0]] at the unit vector
        [uᵢ; vᵢ]/√2, whose Rayleigh quotient is sᵢ = uᵢᵀMvᵢ; so each sᵢ is within residual·‖M‖_F
        of a singular value of M, and the measure is 0 exactly at singular triplets.  (That
        they are the *top* k is the loss's doing: the other triplet sets are saddle points.)
        """
        U, S, V = self.factors()
        if self.truncated:
            left = torch.linalg.matrix_norm(self.M @ V - U * S.unsqueeze(-2))
            right = torch.linalg.matrix_norm(self.M.mT @ U - V * S.unsqueeze(-2))
            return torch.sqrt((left.square() + right.square()) / 2) / self._norms
        return torch.linalg.matrix_norm((U * S.unsqueeze(-2)) @ V.mT - self.M) / self._norms

    def residual_bound(self, loss: float) -> Optional[float]:
        if self.truncated:
            return None
        return math.sqrt(max(loss, 0.0))  # the sum over members bounds each; loss = residual² exactly


def svd_optimizer(params: Any) -> torch.optim.Optimizer:
    """The optimizer factory of :meth:`SVD.default_optimizer`, usable as ``optimizer=``."""
    return torch.optim.LBFGS(params, lr=1.0, max_iter=20, max_eval=500, history_size=100,
                             tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
