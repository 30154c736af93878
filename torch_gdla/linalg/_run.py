"""What every function of ``gdla.linalg`` shares: its options, and running a problem through the
engine (no Lightning, no files, no printing)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from ..engine import Criteria, Iteration, build_optimizer
from ..errors import NotConvergedError
from ..problems.base import Problem
from ..result import Result
from ..validation import check_positive_int

# Steps at most when max_steps is not given: enough for any problem the default methods solve
# (they need at most a few times the order of the matrix), bounded for those they cannot.
DEFAULT_MAX_STEPS = 10_000


@dataclass
class Options:
    """The keyword options every function takes (see :func:`torch_gdla.linalg.solve`)."""

    optimizer: Optional[Callable[..., torch.optim.Optimizer]] = None
    tol: Optional[float] = None
    residual_tol: Optional[float] = None
    rtol: Optional[float] = None
    max_steps: Optional[int] = None
    check: bool = True

    def __post_init__(self) -> None:
        self.criteria = Criteria(tol=self.tol, residual_tol=self.residual_tol, rtol=self.rtol)
        check_positive_int(self.max_steps, "max_steps", allow_none=True)

    def adjoint(self) -> "Options":
        """The options of a backward pass's solve: the same tolerances, the library's method,
        and an error (not a silent wrong gradient) if it does not converge."""
        return Options(tol=self.tol, residual_tol=self.residual_tol, rtol=self.rtol, max_steps=self.max_steps)


def run(problem: Problem, options: Options, name: str) -> Result:
    """Minimise ``problem`` with the options; raise :class:`NotConvergedError` when it does not
    converge and ``options.check`` is set (``name`` is the function, for the message)."""
    max_steps = options.max_steps or DEFAULT_MAX_STEPS
    optimizer = build_optimizer(options.optimizer, problem)
    iteration = Iteration(problem, optimizer, options.criteria, max_steps=max_steps)
    iteration.run(max_steps)
    result = iteration.finish()
    if options.check and not result.converged:
        raise NotConvergedError(f"gdla.linalg.{name} did not converge: {result.reason}. Call gdla.linalg.{name}_ex "
                                "(check=False) to get the result anyway", result)
    return result


def wants_grad(*tensors: Any) -> bool:
    """True when autograd is on and one of ``tensors`` requires grad."""
    return torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)
