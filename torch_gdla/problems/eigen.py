"""Extreme eigenpairs of a symmetric matrix by gradient descent on the Stiefel manifold.

:class:`SymmetricEigen` finds the k largest (or smallest) eigenvalues of a symmetric M — dense
(leading dimensions are a batch), ``torch.sparse`` or a ``LinearOperator(symmetric=True)`` —
and orthonormal eigenvectors.  :class:`EigenProblem` holds what it shares with ``gdla.PCA``
(whose M is a covariance applied by passes over data rows).

The loss is Brockett's cost ``∓tr(VᵀMV N) / ‖M‖`` with ``N = diag(k, …, 1) / Σ`` (minus for the
largest): over orthonormal V its minimisers are exactly the eigenvectors of the k extreme
eigenvalues, each in its own column in order (the weights differ, so a rotation of the
columns changes the loss).  The plain Rayleigh trace ``tr(VᵀMV)`` would be minimised by every
orthonormal basis of the eigenspace — rotation-invariant, so a gradient method stalls on a flat
valley and the individual vectors are never pinned down.

V is orthonormal at every step: ``V = frame_map(frame, generator)`` (``frames.py``: the
Stiefel parametrisation of ``gdla.parametrizations`` on a thin n × k frame, so a sparse
matrix of order 10⁶ needs no n × n base).  ``generator`` is the trained parameter; ``frame``
is a parameter without gradient that the default method moves.

The default method (:meth:`EigenProblem.default_optimizer`) is ``gdla.optim.RayleighRitz``
(block Lanczos with thick restarts), whose progress does not depend on loss differences:
Brockett's minimum is not zero, so a loss-minimising optimizer (L-BFGS) resolves the residual
only to about √eps — :meth:`EigenProblem.residual_floor` names that floor when one stalls there.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor, nn

from ..errors import ArgumentError
from ..matrices import MatrixLike
from ..operators import LinearOperator, OperatorLike, matmul
from ..optim.rayleigh_ritz import EigenForm, RayleighRitz
from ..validation import as_operand, check_bool, check_dense, check_int, check_symmetric, describe
from .base import Problem
from .frames import frame_map, orthonormal_start
from .spectrum import SEPARATED, describe_unseparated, separation_bounds, spectral_norms


class EigenSolution(NamedTuple):
    """``M @ eigenvectors ≈ eigenvectors * eigenvalues``: the k wanted pairs, the extreme one
    first (descending for the largest, ascending for the smallest); orthonormal columns with
    their largest-magnitude entry positive."""

    eigenvalues: Tensor
    eigenvectors: Tensor


class Pairs(NamedTuple):
    """Ritz pairs of the current point (a Rayleigh–Ritz step within its span), with M applied."""

    values: Tensor
    vectors: Tensor
    products: Tensor
    residuals: Tensor  # ‖M vᵢ − λᵢ vᵢ‖ per pair


def sign_normalised(vectors: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """Each column (and the same column of ``others``) flipped so its largest-magnitude entry is positive."""
    peak = vectors.gather(-2, vectors.abs().argmax(dim=-2, keepdim=True))
    sign = torch.where(peak < 0, -1.0, 1.0).to(vectors.dtype)
    return (vectors * sign, *(t * sign for t in others))


class EigenProblem(Problem):
    """The k extreme eigenpairs of a symmetric operator ``self.M``: the unknown, the loss, the
    pairs, residual, measures and default method.  A subclass registers the operator and calls
    :meth:`_init_eigen`; it may override :meth:`_scale` (the residual's denominator)."""

    M: OperatorLike
    _norms: Tensor
    _weights: Tensor

    def _init_eigen(self, k: int, largest: bool, start: Tensor) -> None:
        """The unknown: ``frame`` (the orthonormal start, no gradient) and a zero ``generator``."""
        self.k, self.largest = k, bool(largest)
        weights = torch.arange(k, 0, -1, dtype=start.dtype, device=start.device)
        self.register_buffer("_weights", weights / weights.sum())
        self.frame = nn.Parameter(start, requires_grad=False)
        self.generator = nn.Parameter(torch.zeros_like(start))
        self._cache: Optional[tuple[Any, Pairs]] = None
        self._beyond: Optional[tuple[Tensor, Tensor]] = None  # the (k+1)-th Ritz pair, when a method saw it
        self._ritz = False  # driven by Rayleigh–Ritz (no loss floor)

    @property
    def batch_shape(self) -> torch.Size:
        return self.frame.shape[:-2]

    @property
    def n(self) -> int:
        return self.frame.shape[-2]

    def point(self) -> Tensor:
        """The current orthonormal vectors (…, n, k), differentiable in the generator."""
        return frame_map(self.frame, self.generator)

    def _scale(self, values: Tensor) -> Tensor:
        """The residual's per-member denominator (‖M‖), given the current Ritz values (…, k)."""
        return self._norms

    def _loss_scale(self) -> Tensor:
        """The loss's per-member denominator (‖M‖: a scale-free loss)."""
        return self._norms

    # -- loss ---------------------------------------------------------------------------------------
    def _member_losses(self) -> Tensor:
        V = self.point()
        quotients = (V * matmul(self.M, V)).sum(dim=-2)  # vᵢᵀMvᵢ without the k × k product
        return self._brockett(quotients, self._loss_scale())

    def _brockett(self, quotients: Tensor, scale: Tensor) -> Tensor:
        sign = -1.0 if self.largest else 1.0
        return sign * (quotients * self._weights).sum(dim=-1) / scale.clamp_min(torch.finfo(scale.dtype).tiny)

    def forward(self) -> Tensor:
        return self._member_losses().sum()

    @torch.no_grad()
    def losses(self) -> Tensor:
        return self._member_losses()

    # -- the pairs at the current point ---------------------------------------------------------------
    @torch.no_grad()
    def pairs(self) -> Pairs:
        """A Rayleigh–Ritz step within the span of the current vectors (k applications of M,
        kept until the point moves): exact pairs at a Ritz point, the best within the span
        otherwise."""
        key = (self.frame._version, self.generator._version, self.frame.data_ptr(), self.generator.data_ptr())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        V = self.point()
        MV = matmul(self.M, V)
        H = V.mT @ MV
        values, Y = torch.linalg.eigh((H + H.mT) / 2)
        if self.largest:
            values, Y = values.flip(-1), Y.flip(-1)
        vectors, products = sign_normalised(V @ Y, MV @ Y)
        residuals = torch.linalg.vector_norm(products - vectors * values.unsqueeze(-2), dim=-2)
        pairs = Pairs(values, vectors, products, residuals)
        self._cache = (key, pairs)
        return pairs

    @property
    def solution(self) -> EigenSolution:
        values, vectors, _, _ = self.pairs()
        return EigenSolution(values.clone(), vectors.clone())

    @torch.no_grad()
    def residuals(self) -> Tensor:
        """max over the k pairs of ‖M vᵢ − λᵢ vᵢ‖ / ‖M‖, per member (λᵢ = vᵢᵀMvᵢ after a
        Rayleigh–Ritz step within the span); each λᵢ is then within residual·‖M‖ of an
        eigenvalue of M."""
        pairs = self.pairs()
        scale = self._scale(pairs.values)
        worst = pairs.residuals.amax(dim=-1)
        return torch.where(scale > 0, worst / scale.clamp_min(torch.finfo(worst.dtype).tiny), worst)

    def residual_floor(self) -> Optional[float]:
        """√eps while the loss is minimised by a gradient method (Brockett's minimum is not
        zero: a loss difference of eps·|loss| leaves the vectors uncertain by about √eps); None
        under the default Rayleigh–Ritz method, which reaches rounding level."""
        return None if self._ritz else math.sqrt(torch.finfo(self.dtype).eps)

    # -- separation -------------------------------------------------------------------------------------
    @torch.no_grad()
    def vector_bounds(self) -> Tensor:
        """(…, k): the Davis–Kahan bound ‖M vᵢ − λᵢ vᵢ‖ / gapᵢ on the sine of the angle between
        each vector and its eigenvector; gapᵢ is the distance from λᵢ to the other computed
        eigenvalues and, when the method saw it, to the next Ritz value beyond the k wanted
        (less its residual).  Infinite for a repeated eigenvalue: its vector is not determined."""
        pairs = self.pairs()
        return separation_bounds(pairs.values, pairs.residuals, self._beyond)

    def caveat(self) -> Optional[str]:
        """Which eigenvalues are not separated (their vectors determined only as a subspace)."""
        pairs = self.pairs()
        return describe_unseparated(pairs.values, pairs.residuals, self._beyond)

    @torch.no_grad()
    def orthogonality_errors(self) -> Tensor:
        """‖VᵀV − I‖_F per member (rounding level: V is orthonormal by construction)."""
        V = self.pairs().vectors
        return torch.linalg.matrix_norm(V.mT @ V - torch.eye(self.k, dtype=V.dtype, device=V.device))

    def measures(self, reference: bool = False) -> dict[str, Any]:
        measures = super().measures(reference)
        measures["orthogonality"] = self.orthogonality_errors
        measures["vector_bound"] = lambda: self.vector_bounds().clamp_max(1.0).amax(dim=-1)
        measures["unseparated"] = lambda: (self.vector_bounds() > SEPARATED).sum(dim=-1).to(self.dtype)
        return measures

    # -- the default method -------------------------------------------------------------------------------
    def eigen_form(self) -> EigenForm:
        """This problem in Rayleigh–Ritz terms (``gdla.optim.RayleighRitz``)."""
        self._ritz = True

        def apply(V: Tensor) -> Tensor:
            return matmul(self.M, V)

        def move(vectors: Tensor, values: Tensor) -> None:
            self.frame.copy_(vectors)
            self.generator.zero_()

        def loss(values: Tensor) -> float:
            return float(self._brockett(values, self._loss_scale()).sum())

        def beyond(values: Tensor, residuals: Tensor) -> None:
            self._beyond = (values.clone(), residuals.clone())

        return EigenForm(apply=apply, k=self.k, largest=self.largest, point=self.point, move=move, loss=loss,
                         scale=self._scale, beyond=beyond)

    def default_optimizer(self) -> torch.optim.Optimizer:
        """``RayleighRitz`` (block Lanczos, thick restarts; no learning rate): measured
        (``bench/eigen.py``) it needs 1.0–1.7× the applications of M of ``scipy``'s ``eigsh``
        and 6–11× fewer than ``torch.lobpcg``, where L-BFGS on the loss stalls near √eps."""
        return RayleighRitz([self.generator], self.eigen_form(), **self.ritz_options())

    def ritz_options(self) -> dict[str, Any]:
        """Keyword arguments of the default ``RayleighRitz`` (block, guard, basis): its defaults."""
        return {}

    def extra_repr(self) -> str:
        which = "largest" if self.largest else "smallest"
        return f"n={self.n}, k={self.k}, {which}, dtype={self.dtype}"

class SymmetricEigen(EigenProblem):
    """The k largest (or smallest) eigenpairs of a symmetric M.

    Args:
        M: symmetric, shape ``(…, n, n)`` dense (leading dimensions are a batch), a 2-D
            ``torch.sparse`` tensor, or a ``gdla.LinearOperator`` built with ``symmetric=True``
            (never densified).  A non-symmetric M is refused.
        k: the number of eigenpairs (1 to n).
        largest: the k largest algebraic eigenvalues (True) or the k smallest (False).
        init: a warm start: previous eigenvectors ``(…, n, k)`` (e.g. of a matrix that changed
            a little); orthonormalised here.  None: seeded random orthonormal vectors.
        seed: seeds the start (the global RNG is left alone).

    ``solution`` is an :class:`EigenSolution` ``(eigenvalues (…, k), eigenvectors (…, n, k))``;
    ``residual()`` is ``max_i ‖M vᵢ − λᵢ vᵢ‖ / ‖M‖`` (‖M‖₂ exactly for dense M up to order 512,
    else a power-iteration estimate).  Eigenvalues too close to be told apart — repeated or
    clustered — are named in the run's reason and counted by the ``unseparated`` measure: their
    eigenvectors are determined only as the subspace they span.
    """

    def __init__(self, M: MatrixLike | LinearOperator, k: int = 1, largest: bool = True,
                 init: Optional[Tensor] = None, seed: int = 314) -> None:
        super().__init__()
        # The caller's dense M, when gradients are to flow into it (see attach); outside the state_dict.
        self._given = M if isinstance(M, Tensor) and M.requires_grad and M.layout == torch.strided else None
        operand = as_operand(M, "M")
        check_symmetric(operand, describe(M, "M"), "SymmetricEigen")
        n, batch = operand.shape[-1], tuple(operand.shape[:-2])
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
            raise ArgumentError(f"k must be an integer from 1 to n = {n} (the number of eigenpairs); got {k!r}")
        check_bool(largest, "largest")
        check_int(seed, "seed")
        if isinstance(operand, LinearOperator):
            self.M = operand
        else:
            self.register_buffer("M", operand)
        norms: Tensor = spectral_norms(operand)
        self.register_buffer("_norms", norms)
        if not bool((norms > 0).all()):
            raise ArgumentError("M is zero (a batch member is all zeros): every vector is an eigenvector, of "
                                "eigenvalue 0")
        like = torch.empty(0, dtype=operand.dtype, device=operand.device)
        self.seed = seed
        self._init_eigen(k, largest, orthonormal_start(init, (*batch, n, k), seed, like))

    def attach(self, solution: EigenSolution) -> EigenSolution:
        """The pairs attached to the graph of a given dense M that requires grad (the closed-form
        derivative of ``gdla.linalg.eigh``, with its complement solve for k < n)."""
        if self._given is None or not torch.is_grad_enabled():
            return solution
        from ..linalg.spectral import attach_pairs

        return attach_pairs(self._given, solution, self.largest)

    def reference(self) -> EigenSolution:
        """``torch.linalg.eigh`` (dense M only), the same k pairs in the same order and signs."""
        check_dense(self.M, "M", "the direct reference (torch.linalg.eigh) needs a dense matrix",
                    "compare with scipy.sparse.linalg.eigsh instead")
        values, vectors = torch.linalg.eigh(self.M)
        if self.largest:
            values, vectors = values.flip(-1), vectors.flip(-1)
        values, vectors = values[..., : self.k], vectors[..., : self.k]
        return EigenSolution(values, *sign_normalised(vectors))

    @torch.no_grad()
    def reference_errors(self, reference: EigenSolution) -> Tensor:
        """‖λ − λ_ref‖ / ‖λ_ref‖ per member (vectors are compared only where separated: see
        ``vector_bound``)."""
        error = torch.linalg.vector_norm(self.solution.eigenvalues - reference.eigenvalues, dim=-1)
        scale = torch.linalg.vector_norm(reference.eigenvalues, dim=-1)
        return torch.where(scale > 0, error / scale.clamp_min(torch.finfo(scale.dtype).tiny), error)
