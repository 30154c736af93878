"""The end of a run: the :class:`~torch_gdla.result.Result` at the returned point.

A batched problem converges only when every member does: :func:`member_converged` says which
members meet a tolerance, and :func:`build_result` names the ones that do not in the reason.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import torch
from torch import Tensor

from ..result import Result, Status

if TYPE_CHECKING:
    from ..problems.base import Problem
    from .criteria import Criteria

# How many failing batch members the reason names before "...".
SHOWN_MEMBERS = 5


@torch.no_grad()
def member_converged(problem: Problem, criteria: Criteria, status: Status, residuals: Tensor) -> Optional[Tensor]:
    """Per batch member: whether a tolerance holds there (None for an unbatched problem)."""
    if residuals.dim() == 0:
        return None
    met = torch.zeros_like(residuals, dtype=torch.bool)
    if criteria.tol:
        met |= problem.losses().to(residuals.device) <= criteria.tol
    if criteria.residual_tol:
        met |= residuals <= criteria.residual_tol
    if status is Status.RTOL:
        met |= True
    return met


def build_result(problem: Problem, optimizer: Any, criteria: Criteria, status: Status, reason: str, *, loss: float,
                 residuals: Tensor, history: Tensor, steps: int, evaluations: int) -> Result:
    """The Result of a run whose solution is loaded into ``problem``, ending with ``status``."""
    members = member_converged(problem, criteria, status, residuals)
    converged = status.converged
    if members is not None and not bool(members.all()):
        # A run is never converged while a member is not; say which members fail.
        failing = [tuple(i) if len(i) > 1 else int(i[0]) for i in (~members).nonzero().tolist()]
        shown = ", ".join(str(i) for i in failing[:SHOWN_MEMBERS]) + (", ..." if len(failing) > SHOWN_MEMBERS else "")
        converged = False
        reason += f" (batch members not converged: {len(failing)} of {members.numel()}: {shown})"
    if converged:  # what the residual does not show about a converged solution (e.g. its vectors' freedom)
        with torch.no_grad():
            caveat = problem.caveat()
        reason += f"; {caveat}" if caveat else ""
    solution = problem.attach(problem.solution) if torch.is_grad_enabled() else problem.solution
    residual = float(residuals.max())
    return Result(
        solution=solution, converged=converged, status=status, reason=reason, steps=steps, evaluations=evaluations,
        loss=loss, residual=residual, history=history, residuals=residuals, member_converged=members,
        stats=dict(getattr(optimizer, "stats", {})), error_estimate=problem.error_estimate(residual, optimizer),
        residual_meaning=problem.residual_meaning,
    )
