"""Stopping rules as one plain settings object, and the default-tolerance policy."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional

import torch

from ..validation import check_nonnegative_int, check_positive_int, check_tolerance

if TYPE_CHECKING:
    from ..problems.base import Problem

# Residual tolerance used when the caller sets no tolerance at all: about the square root of the
# dtype's machine epsilon, which a loss-based method can reach even when the minimum loss is not
# zero (least squares), where loss differences vanish below sqrt(eps) relative change.
DEFAULT_RESIDUAL_TOL = {torch.float64: 1e-8, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 1e-2}


@dataclass
class Criteria:
    """Stopping rules (plain, serialisable settings).

    With none of tol, residual_tol and rtol, :meth:`for_problem` sets residual_tol to
    ``DEFAULT_RESIDUAL_TOL`` of the problem's dtype (stochastic problems get no default: one
    mini-batch proves nothing, so their runs end by max_steps or epochs).

    Args:
        tol: stop when the loss <= tol (absolute); 0 never stops on the loss.
        residual_tol: stop when the problem's relative residual <= residual_tol; 0 disables it.
        rtol: stop when |l1 - l2| / max(l1, l2) between losses rtol_every steps apart < rtol.
        rtol_every: steps between the two losses that rtol compares.
        residual_every: steps between residual evaluations when the loss gives no bound on it.
        stall_steps: with a tolerance set, stop early when the best loss improved by less than one
            part in a million over this many steps (the run is then explained: singular matrix,
            precision floor of the dtype, or a stalled optimizer); 0 disables it.
    """

    tol: Optional[float] = None
    residual_tol: Optional[float] = None
    rtol: Optional[float] = None
    rtol_every: int = 10
    residual_every: int = 10
    stall_steps: int = 200

    def __post_init__(self) -> None:
        for name in ("tol", "residual_tol", "rtol"):
            setattr(self, name, check_tolerance(getattr(self, name), name))
        check_positive_int(self.rtol_every, "rtol_every")
        check_positive_int(self.residual_every, "residual_every")
        check_nonnegative_int(self.stall_steps, "stall_steps")

    @property
    def any_active(self) -> bool:
        """True when some tolerance can end the run before max_steps."""
        return bool(self.tol) or bool(self.residual_tol) or bool(self.rtol)

    @property
    def unset(self) -> bool:
        return self.tol is None and self.residual_tol is None and self.rtol is None

    def for_problem(self, problem: "Problem") -> "Criteria":
        """These criteria with the default tolerance filled in for ``problem`` when none is set."""
        if self.tol and problem.tol_advice is not None:
            from ..errors import ArgumentError

            raise ArgumentError(f"tol={self.tol:g} cannot be used for {type(problem).__name__}: {problem.tol_advice}")
        if not self.unset:
            return self
        if problem.stochastic:
            return replace(self, tol=0.0)
        return replace(self, residual_tol=DEFAULT_RESIDUAL_TOL.get(problem.dtype, 1e-4))
