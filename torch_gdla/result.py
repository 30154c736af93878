"""What a solve returns: the solution and an honest account of how the run ended."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from torch import Tensor


class Status(str, Enum):
    """How a run ended.  ``converged`` is True only for the first three; ``COMPLETED`` is a run
    that did what it was configured to do (a fixed number of steps, no tolerance to check)."""

    TOL = "tol reached"
    RESIDUAL_TOL = "residual_tol reached"
    RTOL = "relative change below rtol"
    COMPLETED = "completed the configured steps"
    MAX_STEPS = "max_steps reached"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    STALLED = "stalled"
    SINGULAR = "matrix looks singular"
    PRECISION = "tolerance below the dtype's precision floor"

    @property
    def converged(self) -> bool:
        return self in (Status.TOL, Status.RESIDUAL_TOL, Status.RTOL)


@dataclass
class Result:
    """The outcome of ``gdla.solve`` (or of a ``SolverModule`` fit).

    Attributes:
        solution: the best estimate seen (lowest loss evaluated); the problem's parameters hold it.
        converged: True only when the run's own tolerance holds at ``solution``.
        status: a :class:`Status`; ``reason`` is its message with the details and what to do.
        steps: optimizer steps taken; ``evaluations``: loss evaluations (line-search trials included).
        loss: the loss at ``solution``; ``residual``: ``problem.residual()`` at ``solution``.
        history: the loss at every optimizer step (1-D, length ``steps``).
        metrics: solution-quality metrics of the problem, by name.
        residuals: ``problem.residuals()`` per batch member (0-d for an unbatched problem).
        member_converged: per batch member, whether that member meets the run's tolerance
            (``tol`` on its own loss, or ``residual_tol`` on its own residual); the run stops
            only when the worst member does.  None for unbatched problems.
        stats: what the method counted, when it counts: ``matvecs`` / ``rmatvecs`` (operator
            applications of a Krylov method, one per vector, as scipy counts them).
        residual_meaning: what ``residual`` measures (e.g. ``‖Ax − b‖/‖b‖``), for the summary.
        error_estimate: an estimate of the solution's relative error, ‖x − x*‖/‖x*‖ ≲ κ·residual
            (κ² for least squares' normal-equation residual), with κ from the Krylov method's
            Lanczos coefficients or a small dense matrix's condition number; None when unknown.
            The residual is what a tolerance guarantees; this is what it means for the answer.
    """

    solution: Any
    converged: bool
    status: Status
    reason: str
    steps: int
    evaluations: int
    loss: float
    residual: float
    history: Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    residuals: Optional[Tensor] = None
    member_converged: Optional[Tensor] = None
    stats: dict[str, int] = field(default_factory=dict)
    error_estimate: Optional[float] = None
    residual_meaning: str = ""

    def milestones(self, thresholds: tuple[float, ...] = (1e-4, 1e-8, 1e-12)) -> list[tuple[float, int]]:
        """(threshold, step) for each threshold the loss fell below during the run, with the
        first step at which it did (the loss of step s is the one evaluated before its update,
        so step s means "after s − 1 updates")."""
        history = self.history
        if len(history) == 0 or bool((history < 0).any()):  # an energy loss: thresholds mean nothing
            return []
        found = []
        for threshold in thresholds:
            below = (history <= threshold).nonzero()
            if len(below) and float(history[0]) > threshold:
                found.append((threshold, int(below[0]) + 1))
        return found

    def summary(self) -> str:
        converged = "n/a (no tolerance was set)" if self.status is Status.COMPLETED else str(self.converged)
        lines = [
            f"converged:   {converged}",
            f"reason:      {self.reason}",
            f"steps:       {self.steps}",
            f"evaluations: {self.evaluations}",
            f"loss:        {self.loss:.6g}",
            f"residual:    {self.residual:.6g}" + (f"  ({self.residual_meaning}; 0 is exact)" if self.residual_meaning else ""),
        ]
        if self.error_estimate is not None:
            lines.append(f"error:       ≲ {self.error_estimate:.3g} (relative, estimated: condition number × residual)")
        milestones = self.milestones()
        if milestones:
            lines.append("loss below:  " + ", ".join(f"{t:g} at step {s}" for t, s in milestones))
        lines += [f"{name + ':':<12} {value:.6g}" for name, value in self.metrics.items()]
        if self.stats:
            lines.append("applied:     " + ", ".join(f"{value} {name}" for name, value in self.stats.items()))
        if self.member_converged is not None:
            lines.append(f"members:     {int(self.member_converged.sum())} of {self.member_converged.numel()} converged")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Result(converged={self.converged}, reason={self.reason!r}, steps={self.steps}, "
            f"evaluations={self.evaluations}, loss={self.loss:.6g}, residual={self.residual:.6g})"
        )
