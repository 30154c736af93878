"""The stopping rules, applied after every optimizer step (the engine's terminate test).

:class:`StoppingRules` decides whether a step ends the run; :class:`Plateau` judges whether a
flat or slow stretch of the run is a real stall (the rules ask it only once progress is slow).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Optional, Protocol, cast

import torch

from ..result import Status
from .diagnosis import Verdict, explain_stall, looks_singular, max_steps_reached
from .diagnosis import condition_number as estimate_condition
from .diagnosis import diverged as diverged_message

if TYPE_CHECKING:
    from ..problems.base import Problem
    from .best import BestSoFar
    from .criteria import Criteria
    from .history import LossHistory

# The stall rule: the best loss improved by less than this relative amount over stall_steps steps.
STALL_IMPROVEMENT = 1e-6
# How often (steps) the stall rule is evaluated when the loss is read every step.
STALL_CHECK_EVERY = 10
# With residual_tol set, a flat loss stalls only if the smallest residual checked also fell by
# less than 1 % over the last half of the run (at least stall_steps steps).
RESIDUAL_PROGRESS = 0.99
# At max_steps: the last tenth of the run (at least END_WINDOW steps) improved the best loss by
# less than END_IMPROVEMENT relative: explain the plateau rather than blame max_steps.
END_WINDOW = 50
END_IMPROVEMENT = 1e-2
# When estimated losses/residuals pass a tolerance the truth does not meet, the run goes on from
# the true residual; if the truth has not improved by this factor since the last such miss, the
# estimates are running ahead of what the arithmetic can deliver: the run is at its floor.
MISS_PROGRESS = 0.5
# A problem that needs a nonsingular matrix is hopeless once κ·eps ≥ 1 (singular to working
# precision); that is checked (one condition-number estimate) when the best loss fell by less
# than SLOW_PROGRESS relative over stall_steps steps, so a slow creep does not run to max_steps.
SLOW_PROGRESS = 0.5


class Estimator(Protocol):
    """An optimizer whose reported losses come from its own recurrences (a Krylov method): it
    declares ``self_evaluating = True`` and estimates its residual without a forward pass."""

    self_evaluating: bool

    def residual_estimate(self) -> float: ...

    def refresh(self) -> None:
        """Restart the recurrences from the true residual at the current point."""


def as_estimator(optimizer: object) -> Optional[Estimator]:
    """``optimizer`` as an :class:`Estimator` when it declares ``self_evaluating``, else None."""
    return cast(Estimator, optimizer) if getattr(optimizer, "self_evaluating", False) else None


class StoppingRules:
    """Decides after each step whether the run ends, and how.

    ``check`` applies, in order: divergence, ``tol``, then (at block ends only, when the losses
    of a block are read together) ``residual_tol``, an interrupt request, the stall rule and
    ``rtol``.  ``best_residual`` evaluates ``problem.residual()`` at the kept point."""

    def __init__(self, problem: "Problem", criteria: "Criteria", history: "LossHistory", best: "BestSoFar",
                 best_residual: Callable[[], float], every_step: bool, estimate: Optional[Estimator] = None,
                 advice: tuple[str, str] = ("change the optimizer or its learning rate", "")) -> None:
        self.problem, self.criteria, self.history, self.best = problem, criteria, history, best
        self.best_residual = best_residual
        self.every_step = every_step  # False: losses are read once per block (deferred)
        self.estimate = estimate
        self.advice = advice  # what to change when the optimizer stalls; what its method adds to a floor
        # The step losses only estimate the loss at the returned point (mini-batches, trial
        # points of proximal methods, Krylov recurrences): a tolerance they pass is confirmed
        # from the data before the run claims it.
        self.estimated = estimate is not None or not best.keeps_point
        # The stall rules judge the progress of the lowest loss: meaningful for a kept point and
        # for a Krylov method (whose losses fall monotonically), not for noisy mini-batch or
        # extrapolated losses.
        self.tracks_progress = best.keeps_point or estimate is not None
        self.plateau = Plateau(problem, criteria, history, best_residual)
        self._misses: list[float] = []  # true residuals where estimates passed and the truth did not

    def _due(self, steps: int, every: int) -> bool:
        return not self.every_step or steps % every == 0

    def check(self, value: float, block_end: bool, interrupted: bool) -> Optional[Verdict]:
        c, best, steps = self.criteria, self.best, len(self.history)
        if best.nonfinite is not None or not math.isfinite(value):
            bad = value if not math.isfinite(value) or best.nonfinite is None else best.nonfinite
            return Status.DIVERGED, diverged_message(bad, best.best_loss, steps - 1)
        if c.tol and best.best_loss <= c.tol:
            loss = self._confirmed_loss(steps) if self.estimated else best.best_loss
            if loss is not None and loss <= c.tol:
                return Status.TOL, f"tol reached: loss {loss:.10g} <= tol {c.tol:.10g}"
            if loss is not None and self.estimate is not None:
                verdict = self._missed()
                if verdict is not None:
                    return verdict
        if not block_end:
            return None
        if c.residual_tol:
            verdict = self._residual_rule(steps, c.residual_tol)
            if verdict is not None:
                return verdict
        if interrupted:
            return Status.INTERRUPTED, f"interrupted at step {steps}; the best solution so far is returned"
        if (self.tracks_progress and c.stall_steps and c.any_active and steps > c.stall_steps
                and self._due(steps, STALL_CHECK_EVERY)):
            earlier, lowest = self.history.best(steps - 1 - c.stall_steps), self.history.best(steps - 1)
            if earlier - lowest <= STALL_IMPROVEMENT * abs(earlier) and self.plateau.residual_stalled(steps):
                # Recurrences that stopped short of the tolerance restart from the true residual
                # first (they carry rounding from a large start); a stall is a stall only then.
                return self._missed() if self.estimate is not None else self.explain_stall()
            if earlier - lowest <= SLOW_PROGRESS * abs(earlier) and self.plateau.hopeless():
                return self.explain_stall()
        if c.rtol and steps > c.rtol_every and self._due(steps - 1, c.rtol_every):
            previous = self.history.loss(steps - 1 - c.rtol_every)
            scale = max(abs(previous), abs(value))
            change = abs(previous - value) / scale if scale > 0 else 0.0
            if change < c.rtol:
                if looks_singular(self.problem):  # a plateau of a singular problem is no convergence
                    return self.explain_stall()
                return Status.RTOL, f"relative change below rtol: {change:.3g} < {c.rtol:g} over {c.rtol_every} steps"
        return None

    def _confirmed_loss(self, steps: int) -> Optional[float]:
        """The loss at the returned point, from the data (None: not due yet; a full pass over a
        data set is made at most every residual_every steps)."""
        if self.problem.stochastic and not self._due(steps, self.criteria.residual_every):
            return None
        with self.best.loaded():
            return float(self.problem.losses().sum())

    def _missed(self) -> Optional[Verdict]:
        """Estimates passed a tolerance the truth did not: restart the recurrences from the true
        residual, and stop (explained) if the truth stopped improving."""
        assert self.estimate is not None
        residual = self.best_residual()
        if self._misses and residual > MISS_PROGRESS * self._misses[-1]:
            return self.explain_stall()
        self._misses.append(residual)
        self.estimate.refresh()
        return None

    def _residual_rule(self, steps: int, tol: float) -> Optional[Verdict]:
        if self.estimate is not None:
            if self.estimate.residual_estimate() > tol:
                return None
            residual = self.best_residual()
            if residual <= tol:
                return Status.RESIDUAL_TOL, f"residual_tol reached: residual {residual:.3g} <= residual_tol {tol:g}"
            return self._missed()
        bound = None if self.estimated else self.problem.residual_bound(self.best.best_loss)
        if bound is not None and bound <= tol and self.problem.dtype != torch.float64:
            # A bound from a float32 loss carries the loss's own rounding: confirm in float64.
            residual = self.best_residual()
            if residual <= tol:
                return Status.RESIDUAL_TOL, f"residual_tol reached: residual {residual:.3g} <= residual_tol {tol:g}"
            bound = None
        elif bound is not None and bound <= tol:
            return Status.RESIDUAL_TOL, f"residual_tol reached: residual <= {bound:.3g} <= residual_tol {tol:g}"
        if bound is None and self._due(steps, self.criteria.residual_every):
            residual = self.best_residual()
            if residual <= tol:
                return Status.RESIDUAL_TOL, f"residual_tol reached: residual {residual:.3g} <= residual_tol {tol:g}"
        return None

    def explain_stall(self) -> Verdict:
        return explain_stall(self.problem, self.criteria, self.best.best_loss, self.best_residual(),
                                       self.criteria.stall_steps, *self.advice)

    def at_max_steps(self, max_steps: Optional[int]) -> Verdict:
        """The step budget ran out: a plateau (singular, precision floor, stall) is explained as
        such; otherwise the message says what to change."""
        c, best, steps = self.criteria, self.best, len(self.history)
        if self.tracks_progress and c.any_active and (self.plateau.flat_at_end(steps) or looks_singular(self.problem)):
            return self.explain_stall()
        return max_steps_reached(c, max_steps, steps, best.best_loss)


class Plateau:
    """Whether a flat or slow stretch of a run is a real stall: the residual stopped falling too,
    the problem cannot converge (singular, or its precision floor is above residual_tol), or
    the end of the run is flat."""

    def __init__(self, problem: "Problem", criteria: "Criteria", history: "LossHistory",
                 best_residual: Callable[[], float]) -> None:
        self.problem, self.criteria, self.history, self.best_residual = problem, criteria, history, best_residual
        self._residual_checks: list[tuple[int, float]] = []  # (step, residual) at stall checks

    def residual_stalled(self, steps: int) -> bool:
        """With residual_tol set, a flat loss is not enough: when the minimum loss is not zero
        (least squares, an energy loss) the loss changes like the residual squared while the
        residual still falls (slowly and not monotonically, for CG on an ill-conditioned
        problem, with plateaus of O(√κ) steps); at a real stall (singular matrix, precision
        floor) the residual does not move at all."""
        if not self.criteria.residual_tol:
            return True
        self._residual_checks.append((steps, self.best_residual()))
        window = max(self.criteria.stall_steps, steps // 2)
        before = [r for step, r in self._residual_checks if step <= steps - window]
        if not before:
            return False
        return min(r for _, r in self._residual_checks) > RESIDUAL_PROGRESS * min(before)

    def hopeless(self) -> bool:
        """Slow progress that cannot end in convergence: a problem that needs a nonsingular
        matrix is singular to working precision (κ·eps ≥ 1), or the precision floor eps·κ is
        above residual_tol.  One condition-number estimate, made only once progress is slow."""
        cond = self.condition_number()
        if cond is None:
            return False
        floor = cond * torch.finfo(self.problem.dtype).eps
        singular = self.problem.singular_advice is not None and floor >= 1
        # an infinite κ of a problem that tolerates singularity (rank-deficient least squares)
        # says nothing about its floor: it converges on A's range
        limited = math.isfinite(cond) and bool(self.criteria.residual_tol and floor >= self.criteria.residual_tol)
        return singular or limited

    def condition_number(self) -> Optional[float]:
        """The problem's κ, computed once (its data do not change during a run)."""
        if not hasattr(self, "_cond"):
            self._cond = estimate_condition(self.problem)
        return self._cond

    def flat_at_end(self, steps: int) -> bool:
        """The run's last tenth (at least END_WINDOW steps) barely improved the lowest loss."""
        window = max(END_WINDOW, steps // 10)
        lowest = self.history.best(steps - 1) if steps else math.inf
        if steps <= window or not math.isfinite(lowest):
            return False
        earlier = self.history.best(steps - 1 - window)
        return earlier - lowest <= END_IMPROVEMENT * abs(earlier)
