"""The optional hooks of the problem contract, grouped by who calls them; ``Problem`` derives
from all three, so every problem has the defaults (documented together on ``Problem``).

* :class:`DiagnosisHooks`: what explains a run to its reader — the residual's meaning, a check
  to compare with the data, error estimates, the condition number, loss floors, advice;
* :class:`ReferenceHooks`: the comparison with a direct ``torch.linalg`` answer, and the
  quality measures the Lightning side logs;
* :class:`ShardingHooks`: how the unknown splits into independent pieces (``gdla.sharding``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, cast

import torch
from torch import Tensor

from ..errors import UnsupportedInputError

if TYPE_CHECKING:
    from .base import Problem

Measure = Callable[[], Tensor]


class DiagnosisHooks:
    """Hooks that explain a run (the summary, a stall's diagnosis); every default says "unknown"."""

    # Advice when a (numerically) singular matrix makes the problem unsolvable; None when
    # singularity is not fatal.
    singular_advice: Optional[str] = None
    # Why ``tol`` (a threshold on the loss) means nothing for this problem — e.g. an energy loss,
    # negative at the solution and of unknown minimum — or None where it applies; a run given
    # tol is then refused with this message.
    tol_advice: Optional[str] = None
    # What ``residual()`` measures, for a reader ("‖XM − I‖/‖I‖").
    residual_meaning: str = ""

    def check(self) -> Optional[tuple[str, Tensor]]:
        """Something to compare with the data at the solution, e.g. ``("X @ M", X @ M)`` (≈ I)."""
        return None

    def error_estimate(self, residual: float, method: Any) -> Optional[float]:
        """An estimate of the solution's relative error from its residual (κ·residual for a
        linear system, κ from ``method`` when it can tell — a Krylov method's Lanczos
        coefficients); None (default) when the problem does not know one."""
        return None

    def residual_floor(self) -> Optional[float]:
        """The smallest residual this loss can resolve in its dtype, when the loss itself sets a
        floor above eps·κ; None when it does not."""
        return None

    def caveat(self) -> Optional[str]:
        """A limit of the current solution that its residual does not show (the run's reason
        carries it, e.g. eigenvalues that are not separated), or None."""
        return None

    def condition_number(self) -> Optional[float]:
        """The 2-norm condition number that limits the attainable accuracy (worst member), or
        None when it does not apply.  Called only to explain a run that stalled."""
        return None


class ReferenceHooks:
    """The comparison with a direct answer, and the solution-quality measures."""

    def reference(self) -> Any:
        """The answer of a direct ``torch.linalg`` solver, for comparison (costs a direct solve)."""
        raise UnsupportedInputError(f"{type(self).__name__} has no direct reference solution")

    @torch.no_grad()
    def reference_errors(self, reference: Any) -> Tensor:
        """‖X − X_ref‖_F / ‖X_ref‖_F per batch member (the absolute error where X_ref = 0)."""
        problem = cast("Problem", self)  # a mixin of Problem, whose solution and batch it reads
        solution = problem.solution
        member_dims = tuple(range(len(problem.batch_shape), reference.dim()))
        if not member_dims:  # a scalar unknown
            return (solution - reference).abs()
        error = torch.linalg.vector_norm(solution - reference, dim=member_dims)
        scale = torch.linalg.vector_norm(reference, dim=member_dims)
        return torch.where(scale > 0, error / scale.clamp_min(torch.finfo(scale.dtype).tiny), error)

    def measures(self, reference: bool = False) -> dict[str, Measure]:
        """Solution-quality measures: name -> a function returning one value per batch member.

        The default is the residual, plus ``reference_error`` (the relative error against
        :meth:`reference`, computed once and kept) when ``reference`` is True.  Problems add
        their own (an SVD adds ``orthogonality``); measures that cost a pass over the data are
        left out.  The Lightning side logs each as a torchmetrics metric.
        """
        measures: dict[str, Measure] = {"residual": cast("Problem", self).residuals}
        if reference:
            measures["reference_error"] = self._reference_error_measure()
        return measures

    def _reference_error_measure(self) -> Measure:
        cache: list[Any] = []

        def reference_error() -> Tensor:
            if not cache:
                cache.append(self.reference())
            return self.reference_errors(cache[0])

        return reference_error


class ShardingHooks:
    """How the unknown splits into independent pieces for ``gdla.sharding`` (default: it does not)."""

    @property
    def num_pieces(self) -> int:
        """How many independent pieces the unknown splits into."""
        raise UnsupportedInputError(
            f"{type(self).__name__} does not split into independent pieces; gdla.sharding takes a MatrixInverse or "
            "a LinearSystem with several right-hand sides")

    def split(self, indices: list[int]) -> Problem:
        """The problem of the pieces ``indices`` alone (a copy of the data it needs)."""
        raise UnsupportedInputError(f"{type(self).__name__} cannot be split; see num_pieces")

    def join(self, pieces: Tensor) -> Tensor:
        """The solution from every piece's solution, stacked along the last dimension in order."""
        return pieces
