"""Why a run ended without meeting its tolerance, in words a user can act on.

A stalled loss has three common causes, told apart by the condition number κ the problem
reports and the residual the run reached:

* SINGULAR: the problem needs a nonsingular matrix (``problem.singular_advice`` is set) and
  κ·eps is large — there is no exact solution to converge to;
* PRECISION: the residual is already at the floor the arithmetic allows — about eps·κ, or the
  loss's own floor (``problem.residual_floor()``, e.g. √eps for a loss whose minimum is not
  zero) — so a tighter tolerance is unreachable in this dtype;
* STALLED: neither — the optimizer is not making progress (a learning rate, a method).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

import torch

from ..result import Status

if TYPE_CHECKING:
    from ..problems.base import Problem
    from .criteria import Criteria

# κ·eps above this: the matrix is numerically singular in this dtype (a float32 κ of 1e5 — κ·eps
# ≈ 0.01 — is ill-conditioned, not singular: its trouble is the precision floor).
SINGULAR_COND_EPS = 0.5
# A residual within this factor of eps·κ (or of 10·eps when κ is unknown) is at the precision floor.
PRECISION_MARGIN = 100.0
UNKNOWN_COND_MARGIN = 10.0
# A residual within this factor of the loss's own floor is at that floor.
LOSS_FLOOR_MARGIN = 10.0

Verdict = tuple[Status, str]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def condition_number(problem: "Problem") -> Optional[float]:
    """The problem's κ, NaN (an undefined κ, e.g. of a zero matrix) read as infinite; None when
    unknown (also when torch cannot compute it in this dtype, e.g. an SVD in float16)."""
    try:
        cond = problem.condition_number()
    except NotImplementedError:
        return None
    return None if cond is None else (math.inf if math.isnan(cond) else cond)


def asked(criteria: "Criteria") -> str:
    """The tolerances the run was given, for a message: 'residual_tol=1e-08, rtol=1e-06'."""
    given = [f"{name}={value:g}" for name, value in
             (("tol", criteria.tol), ("residual_tol", criteria.residual_tol), ("rtol", criteria.rtol)) if value]
    return ", ".join(given) or "no tolerance"


def looks_singular(problem: "Problem", cond: Optional[float] = None) -> bool:
    """True when the problem needs a nonsingular matrix and κ·eps says it is not."""
    if problem.singular_advice is None:
        return False
    cond = condition_number(problem) if cond is None else cond
    return cond is not None and cond * torch.finfo(problem.dtype).eps > SINGULAR_COND_EPS


def optimizer_advice(optimizer: Any) -> tuple[str, str]:
    """(what to change when the optimizer stalls — a learning rate only where it has one to
    tune —, what the method adds to a precision-floor verdict, e.g. that it squares κ)."""
    hint = getattr(optimizer, "precision_hint", "")
    name = type(optimizer).__name__
    tuning_free = getattr(optimizer, "tuning_free", False) or (
        isinstance(optimizer, torch.optim.LBFGS) and optimizer.defaults.get("line_search_fn"))
    if tuning_free:
        return (f"{name} (which has no learning rate to tune) made no progress; try another optimizer, e.g. "
                "functools.partial(torch.optim.LBFGS, line_search_fn='strong_wolfe'), or rescale the problem"), hint
    return f"change the optimizer ({name}) or its learning rate", hint


def explain_stall(problem: "Problem", criteria: "Criteria", best_loss: float, residual: float,
                  window: int, advice: str = "change the optimizer or its learning rate", hint: str = "") -> Verdict:
    """The loss stopped improving over ``window`` steps before any tolerance held: say why."""
    eps = torch.finfo(problem.dtype).eps
    name = dtype_name(problem.dtype)
    wants_cond = problem.singular_advice is not None or bool(criteria.residual_tol)
    cond = condition_number(problem) if wants_cond else None
    if looks_singular(problem, cond):
        return Status.SINGULAR, (
            f"matrix looks singular: estimated condition number {cond:.3g} (1/eps of {name} is {1 / eps:.3g}); "
            f"the loss plateaus at {best_loss:.3g} while the gradient vanishes. {problem.singular_advice}")
    target = asked(criteria)
    loss_floor = problem.residual_floor()
    if loss_floor is not None and residual <= LOSS_FLOOR_MARGIN * loss_floor:
        return Status.PRECISION, (
            f"tolerance below what this loss can resolve: the residual stalls at {residual:.3g}, and "
            f"{type(problem).__name__}'s loss resolves its residual only to about {loss_floor:.2g} in {name} (a "
            f"floor of the loss itself, not of the optimizer); ask for a tolerance above it (asked: {target})")
    floor = eps * (cond if cond is not None else 1.0)  # an infinite κ: any residual is at the floor
    if residual <= max(PRECISION_MARGIN * floor, UNKNOWN_COND_MARGIN * eps):
        return Status.PRECISION, (
            f"tolerance below what {name} can reach: the residual is {residual:.3g}, held above the tolerance by "
            f"the precision floor about eps {eps:.2g} x condition number {cond if cond else 1:.3g} = {floor:.2g}; "
            f"use float64 or a tolerance above the floor (asked: {target})" + (f"; {hint}" if hint else ""))
    return Status.STALLED, (
        f"stalled: the loss stopped decreasing at {best_loss:.3g} (residual {residual:.3g}) over the last "
        f"{window} steps; {advice}")


def diverged(bad: float, best_loss: float, step: int) -> str:
    if not math.isfinite(best_loss):
        return (f"diverged: the loss is {bad} at the starting point; check the start (init=) and the scale of "
                "the data, which overflow the loss (the starting point is returned)")
    return (f"diverged: loss became {bad} at step {step}; lower the learning rate "
            f"(the best solution seen, loss {best_loss:.3g}, is returned)")


def max_steps_reached(criteria: "Criteria", max_steps: Optional[int], steps: int, best_loss: float) -> Verdict:
    if criteria.any_active:
        return Status.MAX_STEPS, (f"max_steps reached: increase max_steps (now {max_steps or steps}) or change "
                                  f"optimizer; best loss {best_loss:.3g}")
    return Status.COMPLETED, f"completed: ran the {steps} steps configured (no tolerance was set, so none was checked)"
