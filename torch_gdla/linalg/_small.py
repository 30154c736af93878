"""A fast path for small dense systems: conjugate gradient / CGLS without the engine's machinery.

For a 4×4 system the mathematics of a solve costs microseconds, while building a Problem (an
nn.Module, its buffers), a torch.optim Optimizer, the stopping rules and the best-so-far
tracker costs hundreds.  This module runs the same recurrences as
:class:`~torch_gdla.optim.krylov.Krylov`'s single-vector kernels (scalars as Python floats,
inner products accumulated in float64), stops by the same rule (the recurrences' residual
below ``residual_tol``, confirmed by the residual recomputed from the data in float64), and
builds the same :class:`~torch_gdla.result.Result`.

It only vouches for the happy path.  Whenever anything else happens — a non-finite value
(non-finite input included: it is not validated here, it shows up in the residual), a
direction of non-positive curvature, a recurrence at its rounding floor after its one
restart, a confirmation that fails, more than :data:`STEP_LIMIT` steps — it returns None and the caller
runs the full engine from the start, which validates, diagnoses and explains as it always does.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ..engine import DEFAULT_RESIDUAL_TOL
from ..optim.krylov import LANCZOS_STEPS, lanczos_condition
from ..problems.energy import check_spd
from ..problems.linear_system import condition
from ..result import Result, Status

# Orders up to which a dense system takes this path: where the engine's fixed cost dominates.
SMALL_ORDER = 64
# Steps at most here; the engine's stall rules start after 200 steps, so up to this limit the
# only rules that can fire are divergence and the residual tolerance, which this path applies.
STEP_LIMIT = 200


def eligible(A: object, b: object, init: object, preconditioner: object, optimizer: object, tol: object,
             rtol: object, residual_tol: Optional[float]) -> bool:
    """True when (A, b) is a small dense CPU system of one right-hand side, solved by the
    default method with the residual tolerance alone (the only configuration handled here)."""
    return (isinstance(A, Tensor) and isinstance(b, Tensor) and A.layout == torch.strided and A.dim() == 2
            and b.dim() == 1 and A.device.type == "cpu" and b.device.type == "cpu"
            and A.dtype in (torch.float64, torch.float32) and b.dtype == A.dtype
            and b.shape[0] == A.shape[0] and 0 < A.shape[0] <= SMALL_ORDER and 0 < A.shape[1] <= SMALL_ORDER
            and preconditioner is None and optimizer is None and tol is None and rtol is None
            and residual_tol != 0 and (init is None or (isinstance(init, Tensor) and init.shape == A.shape[1:]
                                                         and init.dtype == A.dtype and init.device.type == "cpu")))


def _dot(a: Tensor, b: Tensor) -> float:
    if a.dtype != torch.float64:
        a, b = a.double(), b.double()
    return float(a @ b)


@torch.no_grad()
def solve_small(A: Tensor, b: Tensor, spd: bool, init: Optional[Tensor], residual_tol: Optional[float],
                max_steps: int) -> Optional[Result]:
    """The Result of the engine's default method on ``A x = b``, or None (run the engine)."""
    m, n = A.shape
    square = m == n
    if spd:
        check_spd(A, "A")  # the engine's own check and message (symmetry, Cholesky at this order)
        cg = True
    else:
        cg = square and (torch.equal(A, A.mT) or _nearly_symmetric(A))
    least_squares = not square
    tol = DEFAULT_RESIDUAL_TOL[A.dtype] if residual_tol is None else residual_tol
    eps2 = torch.finfo(A.dtype).eps ** 2
    At = A.mT
    x = torch.zeros(n, dtype=A.dtype) if init is None else init.detach().clone()
    started = init is not None and bool(x.any())
    matvecs = rmatvecs = 0

    # the relative residual's denominator: ‖b‖, or ‖Aᵀb‖ for least squares (one Aᵀ application,
    # as the problem's constructor makes it)
    norm_rhs = float(torch.linalg.vector_norm(At @ b if least_squares else b))

    def refresh() -> tuple[Tensor, Tensor, float, float, float]:
        """Residual replacement: (S = b − Ax, R, rᵀr, sᵀs, the floor's base) from the data."""
        nonlocal matvecs, rmatvecs
        if bool(x.any()):
            matvecs += 1
            S = b - A @ x
        else:
            S = b.clone()
        if cg:
            R = S
        else:
            rmatvecs += 1
            R = At @ S
        rz = _dot(R, R)
        return S, R, rz, rz if cg else _dot(S, S), rz

    S, R, rz, ss, _ = refresh()
    if started:  # the floor is eps² of rᵀr at x = 0, the scale of the problem
        if cg:
            at_zero = _dot(b, b)
        else:
            rmatvecs += 1
            R0 = At @ b
            at_zero = _dot(R0, R0)
    else:
        at_zero = rz
    floor = at_zero * eps2
    P = R.clone()
    lanczos: list[tuple[float, float]] = []
    settled = False
    history: list[float] = []
    bound = min(max_steps, STEP_LIMIT)
    for _ in range(bound):
        if rz <= floor:
            return None  # a recurrence at its rounding floor: the engine's residual replacement decides
        Q = A @ P
        matvecs += 1
        if cg:
            curvature = _dot(P, Q)
            if not curvature > 0:
                return None  # indefinite (or non-finite): the engine raises or switches method
            alpha = rz / curvature
            x.add_(P, alpha=alpha)
            R.add_(Q, alpha=-alpha)
            rz_new = _dot(R, R)
        else:
            denominator = _dot(Q, Q)
            alpha = rz / denominator if denominator > 0 else 0.0
            x.add_(P, alpha=alpha)
            S.add_(Q, alpha=-alpha)
            R = At @ S
            rmatvecs += 1
            rz_new = _dot(R, R)
            ss = _dot(S, S)
        beta = rz_new / rz if rz > 0 else 0.0
        P.mul_(beta).add_(R)
        if alpha > 0 and len(lanczos) < LANCZOS_STEPS:
            lanczos.append((alpha, beta))
        rz = rz_new
        if cg:
            ss = rz
        if rz <= floor and not settled:
            # at the rounding floor: restart once from the true residual, as the engine does (a
            # start far from the solution leaves rounding of its own size in the recurrences)
            settled = True
            S, R, rz, ss, _ = refresh()
            P = R.clone()
            lanczos = []
        # the energy ½xᵀAx − bᵀx = −½xᵀ(b + r) per unknown, or the mean square of b − Ax
        loss = -0.5 * _dot(x, b + R) / n if spd else ss / m
        if not math.isfinite(loss):
            return None
        history.append(loss)
        squares = rz if least_squares else ss
        estimate = math.sqrt(squares) / norm_rhs if norm_rhs > 0 else math.sqrt(squares)
        if estimate <= tol:
            residual_tensor = _true_residual(A, x, b, least_squares, norm_rhs)
            residual = float(residual_tensor)
            if not residual <= tol:
                return None  # the estimate passed, the truth did not: the engine's residual replacement
            return _result(A, b, x, spd, least_squares, cg, history, residual, residual_tensor, tol, matvecs,
                           rmatvecs, lanczos)
    return None


def _nearly_symmetric(A: Tensor) -> bool:
    """The engine's symmetry test (:func:`~torch_gdla.operators.is_symmetric`) for an A that is
    not exactly symmetric."""
    from ..operators import is_symmetric

    return is_symmetric(A)


def _true_residual(A: Tensor, x: Tensor, b: Tensor, least_squares: bool, norm_rhs: float) -> Tensor:
    """The relative residual from the data, in float64 (as ``LinearSystem.residuals``)."""
    A64, x64, b64 = A.double(), x.double(), b.double()
    r = A64 @ x64 - b64
    if least_squares:
        r = A64.mT @ r
    norm = torch.linalg.vector_norm(r)
    return norm / norm_rhs if norm_rhs > 0 else norm


def _result(A: Tensor, b: Tensor, x: Tensor, spd: bool, least_squares: bool, cg: bool, history: list[float],
            residual: float, residual_tensor: Tensor, tol: float, matvecs: int, rmatvecs: int,
            lanczos: list[tuple[float, float]]) -> Result:
    n = A.shape[1]
    product = A @ x  # the loss at the answer from the data, as the engine reports it
    loss = float((0.5 * product - b) @ x) / n if spd else float((product - b).square().mean())
    kappa = lanczos_condition(lanczos)
    factor: Optional[float]
    if kappa is not None:
        kappa_a = kappa if cg else kappa ** 0.5  # CGLS iterates on AᵀA
        factor = kappa_a ** 2 if least_squares else kappa_a
    else:  # too few steps for the Lanczos estimate: a small dense A's condition number
        cond = float(condition(A))
        factor = cond * cond if least_squares else cond
    meaning = "‖Aᵀ(Ax − b)‖/‖Aᵀb‖ (least squares)" if least_squares else "‖Ax − b‖/‖b‖"
    return Result(
        solution=x, converged=True, status=Status.RESIDUAL_TOL,
        reason=f"residual_tol reached: residual {residual:.3g} <= residual_tol {tol:g}", steps=len(history),
        evaluations=len(history), loss=loss, residual=residual, history=torch.tensor(history, dtype=torch.float64),
        residuals=residual_tensor, member_converged=None, stats={"matvecs": matvecs, "rmatvecs": rmatvecs},
        error_estimate=None if factor is None else factor * residual, residual_meaning=meaning,
    )
