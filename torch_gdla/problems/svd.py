"""Singular value decomposition by gradient descent (the SVD tutorial): M ≈ U diag(S) Vᵀ.

:class:`SVD` (the default): U and V are orthonormal at every step by construction (the
``Stiefel`` parametrisation of ``gdla.parametrizations``), so the loss is the reconstruction
error alone and no penalty weight has to be tuned; for fixed orthonormal U, V the best S is
``diag(UᵀMV)``, so S is eliminated in closed form and the unknowns are two generators only.
Its default optimizer is the block Krylov–Rayleigh–Ritz method of ``gdla.optim.BlockKrylov``.
Its variants, which ``SVD(...)`` builds from the arguments: ``PenaltySVD`` (``method="penalty"``,
the tutorial's penalty recipe, reproduced exactly) and ``MatrixCompletion`` (``mask=`` /
``weights=``: plain factors fitted to the observed entries).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..errors import ArgumentError
from ..matrices import MatrixLike
from ..parametrizations import seeded_orthonormal, stiefel_map
from ..validation import as_matrix, check_choice, check_number
from .decomposition import Decomposition, SVDSolution, check_rank, normalise
from .family import Arguments, Family, check_variant

METHODS = ("orthogonal", "penalty")

__all__ = ["SVD", "SVDSolution", "Decomposition", "check_rank", "normalise", "svd_optimizer"]


class SVD(Decomposition, metaclass=Family):
    """The (truncated) singular value decomposition of ``M`` (leading dimensions are a batch).

    Args:
        M: matrix of shape ``(..., m, n)`` (tensor, nested list or a ``gdla.matrices`` source).
        rank: k, the number of singular triplets; None = min(m, n) (the full thin SVD).  A
            smaller k finds the top-k triplets: the best rank-k approximation (Eckart–Young) is
            the loss's global minimum, other sets of k triplets are saddle points.
        method: ``"orthogonal"`` (default, this class) or ``"penalty"`` (builds a ``PenaltySVD``).
        seed: seeds the start: U and V start as the first k columns of the orthogonal factors of
            seeded uniform (m × m) and (n × n) draws, in that order (the global RNG is left
            alone), and the default optimizer's random directions.
        penalty: the orthogonality weight of ``method="penalty"`` (checked here, used there).
        mask, weights: the observed entries / entry weights: build a ``MatrixCompletion``
            (matrix completion, weighted low-rank approximation; needs ``rank=k``).

    The unknowns are two generators mapped to orthonormal U, V around the points ``U_base``,
    ``V_base`` (``gdla.parametrizations``'s :func:`stiefel_map`); S is ``diag(UᵀMV)``, optimal
    for the current U, V; the loss is ‖U diag(S) Vᵀ − M‖²_F / ‖M‖²_F per member (summed over a
    batch), scale-free so the optimizer's thresholds behave the same for any ‖M‖.

    ``solution`` is an :class:`SVDSolution` ``(U, S, V)`` in the canonical form of
    :func:`normalise`.  Any ``torch.optim`` optimizer trains it in a plain loop; the problem's
    own :meth:`default_optimizer` (``gdla.optim.BlockKrylov``, which moves the points) is what
    ``gdla.solve`` picks when no optimizer is given.
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
        """The seeded starting point: zero generators at seeded orthonormal points (U's first)."""
        matrix, rank = self.M, self.rank
        batch, (m, n) = matrix.shape[:-2], matrix.shape[-2:]
        # The points are part of the unknown (the default optimizer moves them), not given data:
        # parameters without a gradient, so state dicts, .to() and the optimizer's state keep them.
        self.U_base = nn.Parameter(seeded_orthonormal(torch.Size((*batch, m, m)), rank, generator, matrix),
                                   requires_grad=False)
        self.V_base = nn.Parameter(seeded_orthonormal(torch.Size((*batch, n, n)), rank, generator, matrix),
                                   requires_grad=False)
        self.U_generator = nn.Parameter(matrix.new_zeros(*batch, m, rank))
        self.V_generator = nn.Parameter(matrix.new_zeros(*batch, n, rank))

    # -- the orthogonal parametrisation ----------------------------------------------------------
    def factors(self) -> tuple[Tensor, Tensor, Tensor]:
        """The current (U, S, V), differentiable and unnormalised."""
        return self._factors_and_image()[:3]

    def _factors_and_image(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        U = stiefel_map(self.U_base, self.U_generator)
        V = stiefel_map(self.V_base, self.V_generator)
        MV = self.M @ V
        return U, (MV * U).sum(dim=-2), V, MV  # S = diag(UᵀMV) without forming the k × k product

    def _member_losses(self) -> Tensor:
        U, S, V = self.factors()
        error = (U * S.unsqueeze(-2)) @ V.mT - self.M
        return error.square().sum(dim=(-2, -1)) / self._norms.square()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        """Per member.  Full rank: ‖U diag(S) Vᵀ − M‖_F / ‖M‖_F; every singular value is then
        within residual·‖M‖_F of the true one (Mirsky), once U and V are orthonormal.

        Truncated (rank k < min(m, n)): the larger of :meth:`stationarity` (zero at every set
        of k singular triplets) and :meth:`top_k_gaps` (zero when no singular value outside
        the k found exceeds the smallest of them), so a point converged to a saddle, a set of
        triplets that are not the top k, is not converged.
        """
        return self.measured_once(self._residuals)

    def _residuals(self) -> Tensor:
        if self.truncated:
            return self.truncated_residuals()
        U, S, V = self.factors()
        return torch.linalg.matrix_norm((U * S.unsqueeze(-2)) @ V.mT - self.M) / self._norms

    def residual_bound(self, loss: float) -> Optional[float]:
        if self.truncated:
            return None
        return math.sqrt(max(loss, 0.0))  # the sum over members bounds each; loss = residual² exactly

    # -- the default optimizer ---------------------------------------------------------------------
    def subspace_form(self) -> Any:
        """This problem for :class:`gdla.optim.BlockKrylov`: M's products, and the factors read
        and written as points (``assign`` moves ``U_base``/``V_base`` and zeroes the generators)."""
        return subspace_form(self)

    def default_optimizer(self) -> torch.optim.Optimizer:
        """The block Krylov–Rayleigh–Ritz method (``gdla.optim.BlockKrylov``): per step it
        searches the current vectors and repeated gradient directions MᵀM·V together and takes
        the best point there.  Measured against ``scipy.sparse.linalg.svds`` in
        bench/peers_svd_minimize.py; gradient optimizers (e.g. :func:`svd_optimizer`'s L-BFGS)
        need thousands of evaluations where singular values cluster."""
        from ..optim import BlockKrylov

        if self.dtype in (torch.float16, torch.bfloat16):  # torch has no QR/SVD in half precision
            return Decomposition.default_optimizer(self)
        return BlockKrylov(self.parameters(), self.subspace_form())


def svd_optimizer(params: Any) -> torch.optim.Optimizer:
    """torch's L-BFGS (20 iterations per step, strong Wolfe), usable as ``optimizer=``: the
    gradient method of the SVD tutorial's configs (``configs/svd.yaml``); the default is
    :meth:`SVD.default_optimizer`'s block Krylov method."""
    return torch.optim.LBFGS(params, lr=1.0, max_iter=20, max_eval=500, history_size=100,
                             tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")


def subspace_form(svd: SVD) -> Any:
    """:meth:`SVD.subspace_form`."""
    from ..optim.subspace import SubspaceForm

    @torch.no_grad()
    def factors() -> tuple[Tensor, Tensor]:
        return stiefel_map(svd.U_base, svd.U_generator), stiefel_map(svd.V_base, svd.V_generator)

    @torch.no_grad()
    def assign(U: Tensor, V: Tensor) -> None:
        svd.U_base.copy_(U)
        svd.V_base.copy_(V)
        svd.U_generator.zero_()
        svd.V_generator.zero_()

    return SubspaceForm(apply=lambda X: svd.M @ X, apply_t=lambda Y: svd.M.mT @ Y, shape=svd.shape, rank=svd.rank,
                        norms=svd._norms, factors=factors, assign=assign, seed=int(svd.seed))
