"""The energy form of a symmetric positive definite problem: the pieces ``SPDMatrixInverse``
and ``SPDLinearSystem`` (``spd.py``) share.

For SPD A, ``½xᵀAx − bᵀx`` has the same minimiser as ``‖Ax − b‖²`` (x = A⁻¹b), but its
gradient ``Ax − b`` has condition κ(A) instead of κ(A)²: several times fewer iterations for an
ill-conditioned A.  Here: the check that A is SPD (:func:`check_assume`), the two loss forms
(:func:`inverse_energy`, :func:`system_energy`), the tracker that lets the energy (which bounds
nothing) still give ``residual_bound`` for free (:class:`BestResidual`), and the loss's
resolution floor (:func:`energy_floor`).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from ..errors import ArgumentError

ASSUMPTIONS = (None, "spd")
# A declared-symmetric matrix may be asymmetric by rounding (e.g. A.T @ A): accepted up to
# ‖M − Mᵀ‖_F ≤ SYMMETRY_RTOL · n · eps · ‖M‖_F per member.
SYMMETRY_RTOL = 10.0


def check_assumption(assume: Any) -> Optional[str]:
    """Validate the value of ``assume``: None or ``"spd"``."""
    if assume is not None and (not isinstance(assume, str) or assume not in ASSUMPTIONS):
        raise ArgumentError(f"assume must be None or 'spd' (symmetric positive definite); got {assume!r}")
    return assume


def check_spd(matrix: Any, name: str) -> None:
    """Check that every member of ``matrix`` is square, symmetric (to rounding) and has a positive
    diagonal, without a factorisation (which would cost as much as the solve it guards).

    Symmetry: O(n²) dense, O(nnz) sparse; an operator must say ``symmetric=True``.  Positive
    definiteness: the diagonal must be positive (O(n), a necessary condition) and conjugate
    gradient checks the rest itself — it stops with a clear error at the first direction of
    non-positive curvature.  Refuses, naming ``assume="spd"``, rather than change what is solved."""
    from ..operators import LinearOperator, is_sparse, is_symmetric

    n = matrix.shape[-1]
    if matrix.shape[-2] != n:
        raise ArgumentError(f'assume="spd" needs a square {name}; got shape {tuple(matrix.shape)}. '
                            'Drop assume="spd" to solve it in the least-squares sense')
    if isinstance(matrix, LinearOperator) or is_sparse(matrix):
        if not is_symmetric(matrix):
            what = "its LinearOperator was not built with symmetric=True" if isinstance(matrix, LinearOperator) \
                else f"{name} differs from {name}ᵀ by more than rounding"
            raise ArgumentError(f'assume="spd" declares {name} symmetric positive definite, but {what}. '
                                'Drop assume="spd" (the default least-squares method needs no symmetry)')
        return
    with torch.no_grad():
        _check_symmetric(matrix, name)
        diagonal = matrix.diagonal(dim1=-2, dim2=-1)
        bad = (diagonal <= 0).reshape(-1, n).any(dim=-1)
        if bool(bad.any()):
            first = int(bad.nonzero()[0])
            where = f" (batch member {first})" if matrix.dim() > 2 else ""
            raise ArgumentError(f'assume="spd" declares {name} symmetric positive definite, but its diagonal{where} '
                                f'has {int((diagonal.reshape(-1, n)[first] <= 0).sum())} entries <= 0, which a '
                                'positive definite matrix cannot have. Drop assume="spd" (the default method needs '
                                'no definiteness)')


def _check_symmetric(matrix: Tensor, name: str) -> None:
    if torch.equal(matrix, matrix.mT):  # exactly symmetric, the common case: one comparison, nothing allocated
        return
    n = matrix.shape[-1]
    eps = torch.finfo(matrix.dtype).eps
    asymmetry = torch.linalg.matrix_norm(matrix - matrix.mT) / torch.linalg.matrix_norm(matrix).clamp_min(
        torch.finfo(matrix.dtype).tiny)
    limit = SYMMETRY_RTOL * n * eps
    if bool((asymmetry > limit).any()):
        worst = int(asymmetry.reshape(-1).argmax())
        where = f" (batch member {worst})" if matrix.dim() > 2 else ""
        raise ArgumentError(
            f'assume="spd" declares {name} symmetric positive definite, but {name} is not symmetric{where}: '
            f"‖{name} − {name}ᵀ‖/‖{name}‖ = {float(asymmetry.reshape(-1)[worst]):.3g} > {limit:.3g}. "
            f'Drop assume="spd" (the default loss needs no symmetry), or pass ({name} + {name}.mT) / 2 '
            "if the asymmetry is only rounding"
        )


def check_assume(assume: Any, matrix: Tensor, name: str) -> Optional[str]:
    """Validate ``assume`` (None or ``"spd"``) and, for ``"spd"``, ``matrix`` (:func:`check_spd`)."""
    if check_assumption(assume) == "spd":
        check_spd(matrix, name)
    return assume


def inverse_energy(X: Tensor, M: Tensor, side: str) -> tuple[Tensor, list[Tensor]]:
    """Per member: ½tr(XMXᵀ) − tr(X) (``side="left"``), ½tr(XᵀMX) − tr(X) (``"right"``) or
    their mean (``"both"``), over the n² entries; and the products XM / MX, whose distance
    from I is the residual.  Its gradient is (XM − I)/n² (left)."""
    n = M.shape[-1]
    products = []
    if side in ("left", "both"):
        products.append(X @ M)
    if side in ("right", "both"):
        products.append(M @ X)
    trace = X.diagonal(dim1=-2, dim2=-1).sum(-1)
    energies = [0.5 * (product * X).sum(dim=(-2, -1)) - trace for product in products]
    energy = (energies[0] if len(energies) == 1 else (energies[0] + energies[1]) / 2) / (n * n)
    return energy, products


def system_energy(A: Any, x: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Per member: ½xᵀAx − bᵀx summed over the right-hand sides (the columns of x and b), over
    the n unknowns of each; and the product Ax, whose distance from b is the residual.  Its
    gradient is (Ax − b)/n.  A: a dense or sparse tensor, or a LinearOperator."""
    from ..operators import matmul

    product = matmul(A, x)
    energy = (0.5 * product - b).mul(x).sum(dim=(-2, -1)) / A.shape[-1]
    return energy, product


class BestResidual:
    """The residual of the lowest-loss evaluation, for ``residual_bound`` of an energy loss.

    An energy loss does not bound the residual, but its forward computes the residual's
    matrix product anyway: each gradient-enabled evaluation keeps (loss, worst residual) of
    the lowest loss seen (strict ``<``, as ``Iteration`` tracks its best point), on the
    device, without a host sync.  ``bound(loss)`` returns that residual when ``loss`` is
    exactly the tracked lowest loss (the point the solver would return), else None."""

    def __init__(self) -> None:
        self.loss: Optional[Tensor] = None
        self.residual: Optional[Tensor] = None

    def update(self, loss: Tensor, residual: Tensor) -> None:
        """Keep (loss, residual) if ``loss`` is the lowest so far."""
        loss, residual = loss.detach(), residual.detach()
        if (self.loss is None or self.residual is None or self.loss.device != loss.device
                or self.loss.dtype != loss.dtype):
            self.loss, self.residual = loss, residual
            return
        better = loss < self.loss
        self.loss = torch.where(better, loss, self.loss)
        self.residual = torch.where(better, residual, self.residual)

    def bound(self, loss: float) -> Optional[float]:
        """The tracked residual if ``loss`` is the tracked lowest loss, else None."""
        if self.loss is None or self.residual is None or float(self.loss) != loss:
            return None
        return float(self.residual)


@torch.no_grad()
def energy_floor(matrix: Tensor, rhs: Tensor) -> Optional[float]:
    """The relative residual below which the energy of ``matrix`` (SPD, (…, n, n)) with the
    right-hand sides ``rhs`` (…, n, k) stops resolving the solution; None where eps·κ is larger.

    Why there is a floor: the energy's minimum is not zero but −½ Σ bᵀA⁻¹b, and near it
    energy − minimum = ½ Σ rᵀA⁻¹r (r = Ax − b).  The loss is computed to about eps relative to
    its minimum, so two points whose ½ Σ rᵀA⁻¹r differ by less than eps·½ Σ bᵀA⁻¹b look alike to
    it: the residual is resolved to √eps in the A⁻¹-norm.  In the reported 2-norm ratio
    ‖R‖_F/‖B‖_F that is at most √(eps·λmax·Σ bᵀA⁻¹b)/‖B‖_F (the error along A's top
    eigenvector), between √eps and √(eps·κ); that worst direction is what is returned.
    Measured with optimizers that compare loss values (L-BFGS's line search, Adam under the
    engine's stall rule): stalls land within a small factor of it, mostly below (float64,
    κ = 10: 0.5–3e-8 against 2.9e-8; κ = 1000: 2–4e-7 against 1.8e-7), while the
    mean-squared-error loss goes on past it.  Conjugate gradient's exact steps use gradients
    only and also go below it.  Costs a Cholesky factorisation and an eigenvalue decomposition
    (float64), so it is for explaining a stalled run, not for every step.
    """
    eps = torch.finfo(matrix.dtype).eps
    A, B = matrix.to(torch.float64), rhs.to(torch.float64)
    eigenvalues = torch.linalg.eigvalsh(A)
    largest, smallest = eigenvalues[..., -1], eigenvalues[..., 0]
    whitened = torch.linalg.solve_triangular(torch.linalg.cholesky(A), B, upper=False)  # L⁻¹B: ‖·‖² = Σ bᵀA⁻¹b
    scale = torch.linalg.matrix_norm(B)
    floor = torch.sqrt(eps * largest) * torch.linalg.matrix_norm(whitened) / scale.clamp_min(torch.finfo(torch.float64).tiny)
    floor = torch.where(scale > 0, floor, torch.zeros_like(floor))  # b = 0: the minimum is 0, no floor
    worst = float(floor.max())
    kappa_floor = eps * float((largest / smallest).max())
    return worst if worst > kappa_floor else None

