"""The square root of a symmetric positive definite matrix: X with X X = M (or X = M^−½).

:class:`MatrixSqrt` is a problem like the others — the unknown X is the parameter, the loss a
scale-free squared residual any ``torch.optim`` optimizer can minimise — whose default method is
the scaled coupled Newton–Schulz iteration (``gdla.optim.NewtonSchulz``), a self-evaluating
optimizer that converges quadratically from M itself and needs no learning rate.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..errors import ArgumentError
from ..matrices import MatrixLike
from ..optim.newton_schulz import NewtonSchulz, RootForm
from ..validation import as_matrix, check_bool, check_init, check_symmetric, describe
from .base import Problem

# Inverse power steps (two triangular solves each, O(n²)) for the lower bound on λ_min that
# scales the first Newton–Schulz steps.
INVERSE_POWER_STEPS = 12


def spd_factor(matrix: Tensor, name: str, operation: str) -> Tensor:
    """The Cholesky factor of every member of ``matrix``, which must be symmetric positive
    definite; otherwise an error naming the smallest eigenvalue (computed for the message)."""
    check_symmetric(matrix, name, operation)
    factor, info = torch.linalg.cholesky_ex(matrix)
    if bool((info != 0).any()):
        smallest = torch.linalg.eigvalsh(matrix)[..., 0].reshape(-1)
        member = int(smallest.argmin())
        where = f" (batch member {member})" if matrix.dim() > 2 else ""
        raise ArgumentError(
            f"{operation} needs a symmetric positive definite {name}, but its smallest eigenvalue{where} is "
            f"{float(smallest[member]):.6g} (torch.linalg.eigvalsh; its Cholesky factorisation fails): a real "
            f"symmetric square root needs every eigenvalue > 0. Shift it ({name} + s·I) or project it onto the "
            "positive definite matrices first")
    return factor


def _lambda_min_estimate(factor: Tensor) -> Tensor:
    """An estimate of λ_min(M) per member (…, 1, 1) from M = LLᵀ: inverse power iteration on
    M⁻¹ = L⁻ᵀL⁻¹ (it approaches λ_min from above)."""
    v = torch.ones(*factor.shape[:-1], 1, dtype=factor.dtype, device=factor.device)
    estimate = torch.ones(*factor.shape[:-2], 1, 1, dtype=factor.dtype, device=factor.device)
    for _ in range(INVERSE_POWER_STEPS):
        v = v / torch.linalg.matrix_norm(v, keepdim=True)
        w = torch.linalg.solve_triangular(factor, v, upper=False)
        w = torch.linalg.solve_triangular(factor.mT, w, upper=True)
        estimate = 1 / (v.mT @ w)
        v = w
    return estimate


class MatrixSqrt(Problem):
    """X = M^½ (``inverse=False``) or X = M^−½ (``inverse=True``) for symmetric positive definite M.

    Args:
        M: ``(…, n, n)`` dense, symmetric positive definite (checked: symmetry to rounding and
            a Cholesky factorisation; refused with its smallest eigenvalue named otherwise).
        inverse: find the inverse square root M^−½ instead.
        init: a start for gradient-based optimizers (default: s·I with s² the mean eigenvalue,
            or its inverse); the default Newton–Schulz method starts from M itself.

    The loss, per member: ``‖XX − M‖²_F / ‖M‖²_F`` (root) or ``‖XMX − I‖²_F / n`` (inverse
    root), summed over a batch; both are zero exactly at the principal root.  ``residual()`` is
    ``‖XX − M‖_F / ‖M‖_F``, or ``‖XMX − I‖_F / √n`` evaluated as ‖(XL)(XL)ᵀ − I‖ with M = LLᵀ,
    whose rounding error is about eps·√κ rather than the eps·κ of forming X M X.
    """

    M: Tensor
    _factor: Tensor
    _norms: Tensor

    def __init__(self, M: MatrixLike, inverse: bool = False, init: Optional[Tensor] = None) -> None:
        super().__init__()
        # The caller's M, when gradients are to flow into it (see attach); outside the state_dict.
        self._given = M if isinstance(M, Tensor) and M.requires_grad else None
        matrix = as_matrix(M, "M")
        self.inverse = check_bool(inverse, "inverse")
        with torch.no_grad():
            factor = spd_factor(matrix, describe(M, "M"), "MatrixSqrt")
        self.register_buffer("M", matrix)
        self.register_buffer("_factor", factor)
        self.register_buffer("_norms", torch.linalg.matrix_norm(matrix))
        n = matrix.shape[-1]
        if init is None:
            mean = matrix.diagonal(dim1=-2, dim2=-1).mean(dim=-1)[..., None, None]
            s = mean.rsqrt() if self.inverse else mean.sqrt()
            start = s * torch.eye(n, dtype=matrix.dtype, device=matrix.device).expand_as(matrix)
        else:
            start = check_init(init, "init", matrix.shape, matrix)
        self.X = nn.Parameter(start.clone())

    @property
    def batch_shape(self) -> torch.Size:
        return self.M.shape[:-2]

    @property
    def n(self) -> int:
        return self.M.shape[-1]

    # -- loss and residual ----------------------------------------------------------------------------
    def _member_losses(self, X: Tensor) -> Tensor:
        if self.inverse:
            identity = torch.eye(self.n, dtype=X.dtype, device=X.device)
            return (X @ self.M @ X - identity).square().sum(dim=(-2, -1)) / self.n
        return (X @ X - self.M).square().sum(dim=(-2, -1)) / self._norms.square()

    def forward(self) -> Tensor:
        return self._member_losses(self.X).sum()

    @torch.no_grad()
    def losses(self) -> Tensor:
        return self._member_losses(self.X)

    @property
    def solution(self) -> Tensor:
        return self.X.detach().clone()

    @torch.no_grad()
    def residuals(self) -> Tensor:
        X = self.X
        if self.inverse:
            XL = X @ self._factor
            identity = torch.eye(self.n, dtype=X.dtype, device=X.device)
            return torch.linalg.matrix_norm(XL @ XL.mT - identity) / math.sqrt(self.n)
        return torch.linalg.matrix_norm(X @ X - self.M) / self._norms

    def residual_bound(self, loss: float) -> Optional[float]:
        return None if self.inverse else math.sqrt(max(loss, 0.0))  # loss = Σ residual² over members

    def condition_number(self) -> Optional[float]:
        return float(torch.linalg.cond(self.M).max())

    # -- the default method -------------------------------------------------------------------------------
    def root_form(self) -> RootForm:
        """This problem for ``gdla.optim.NewtonSchulz``: c = min(‖M‖_F, ‖M‖_∞) ≥ λ_max (a
        guaranteed bound), and λ_min/c estimated from the Cholesky factor."""
        with torch.no_grad():
            scale = torch.minimum(self._norms, torch.linalg.matrix_norm(self.M, ord=float("inf")))[..., None, None]
            floor = _lambda_min_estimate(self._factor) / scale

        def loss(X: Tensor) -> float:
            return float(self._member_losses(X).sum())

        return RootForm(matrix=self.M, inverse=self.inverse, loss=loss, scale=scale, floor=floor)

    def default_optimizer(self) -> torch.optim.Optimizer:
        """The scaled coupled Newton–Schulz iteration (``gdla.optim.NewtonSchulz``): quadratic
        convergence, three matrix products per step, no learning rate."""
        return NewtonSchulz([self.X], self.root_form())

    def reference(self) -> Tensor:
        """Through ``torch.linalg.eigh``: Q diag(λ^±½) Qᵀ."""
        values, vectors = torch.linalg.eigh(self.M)
        powers = values.rsqrt() if self.inverse else values.sqrt()
        return (vectors * powers.unsqueeze(-2)) @ vectors.mT

    def attach(self, solution: Any) -> Any:
        """X attached to the graph of a given M that requires grad (the closed-form derivative
        of ``gdla.linalg.sqrtm``)."""
        given = self._given
        if given is None or not torch.is_grad_enabled():
            return solution
        from ..linalg.spectral import attach_root

        return attach_root(given, solution, self.inverse)

    def extra_repr(self) -> str:
        return f"n={self.n}, inverse={self.inverse}, dtype={self.dtype}"
