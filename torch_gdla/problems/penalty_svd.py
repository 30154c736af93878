"""The SVD tutorial's penalty recipe (``SVD(M, method="penalty")``), reproduced exactly."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from ..matrices import MatrixLike
from ..validation import check_number
from .decomposition import Decomposition
from .losses import batched_mse
from .svd import SVD


class PenaltySVD(SVD):
    """SVD with free factors and orthogonality penalties: the tutorial's recipe.

    The unknowns are ``U`` (m × k), ``diag_sqrt`` (k) and ``V`` (n × k), S = diag(diag_sqrt²),
    and the loss is ``mse(U S Vᵀ, M) + penalty·mse(UᵀU, I) + penalty·mse(VVᵀ, I)`` (VᵀV when V
    is not square), evaluated term by term as the tutorial writes it so float32 runs match its
    loss curve.  The start is ``torch.manual_seed(seed)`` then ``U = rand(m, k)``,
    ``diag_sqrt = rand(k)``, ``V = rand(n, k)``, from a private generator.

    Args:
        M, rank, seed: as for :class:`SVD`.
        penalty: the weight of the orthogonality terms (the tutorial's 1/100).

    The penalty tolerates non-orthonormal factors, so ``residuals()`` is the larger of
    :class:`SVD`'s measure and the orthogonality error ‖QᵀQ − I‖_F: a small reconstruction error
    with non-orthonormal factors is not an SVD.  The recipe is kept for reproduction; it stalls
    or plateaus on some matrices where the default ``SVD`` does not.
    """

    identity: Tensor

    def __init__(self, M: MatrixLike, rank: Optional[int] = None, seed: int = 314, penalty: float = 0.01) -> None:
        super().__init__(M, rank, seed=seed)
        check_number(penalty, "penalty", positive=True, meaning="the weight of the orthogonality terms, e.g. 0.01")
        self.penalty = float(penalty)

    def _init_unknowns(self, generator: torch.Generator) -> None:
        matrix, rank = self.M, self.rank
        batch, (m, n) = matrix.shape[:-2], matrix.shape[-2:]

        def draw(*shape: int) -> Tensor:
            return torch.rand((*batch, *shape), generator=generator).to(dtype=matrix.dtype, device=matrix.device)

        self.U = nn.Parameter(draw(m, rank))
        self.diag_sqrt = nn.Parameter(draw(rank))
        self.V = nn.Parameter(draw(n, rank))
        self.register_buffer("identity", torch.eye(rank, dtype=matrix.dtype, device=matrix.device))

    def factors(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.U, self.diag_sqrt.square(), self.V

    def _factors_and_image(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return Decomposition._factors_and_image(self)  # not SVD's: these factors are free

    def _member_losses(self) -> Tensor:
        U, S, V = self.factors()
        batch_dims = len(self.batch_shape)
        # The tutorial's expression, term by term (U @ diag @ Vᵀ, mse), so float32 runs match it.
        reconstruction = batched_mse(U @ torch.diag_embed(S) @ V.mT - self.M, batch_dims, reduce_batch=False)
        return (reconstruction
                + self.penalty * batched_mse(U.mT @ U - self.identity, batch_dims, reduce_batch=False)
                + self.penalty * batched_mse(self._gram_V(V) - self.identity, batch_dims, reduce_batch=False))

    @staticmethod
    def _gram_V(V: Tensor) -> Tensor:
        # The tutorial penalises VVᵀ (V is square there); for a tall V only VᵀV can be I.
        return V @ V.mT if V.shape[-2] == V.shape[-1] else V.mT @ V

    @torch.no_grad()
    def residuals(self) -> Tensor:
        """The larger of :meth:`SVD.residuals` and the orthogonality error, per member."""
        return torch.maximum(super().residuals(), self.orthogonality_errors())

    def default_optimizer(self) -> torch.optim.Optimizer:
        """L-BFGS, one iteration per step (``Decomposition``'s): the block Krylov method of
        ``SVD`` needs the orthogonal parametrisation's closed-form S, which these factors lack."""
        return Decomposition.default_optimizer(self)

    def residual_bound(self, loss: float) -> Optional[float]:
        if self.truncated:
            return None
        loss = max(loss, 0.0)  # the sum over members bounds each member's loss
        # mse·mn = ‖error‖²_F, and each term is at most loss (penalty terms: loss/penalty).
        m, n = self.shape
        reconstruction = math.sqrt(loss * m * n) / float(self._norms.min())
        # ‖VVᵀ − I‖_F = ‖VᵀV − I‖_F for a square V, so both terms are k·sqrt(mse) ≤ k·sqrt(loss/penalty).
        orthogonality = self.rank * math.sqrt(loss / self.penalty)
        return max(reconstruction, orthogonality)
