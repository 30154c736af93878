"""Building the optimizer a run uses, from the user's factory or the problem's default."""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from ..errors import ArgumentTypeError
from ..problems.base import Problem
from ..validation import check_optimizer_factory

OptimizerFactory = Callable[..., torch.optim.Optimizer]


def build_optimizer(factory: Optional[OptimizerFactory], problem: Problem) -> torch.optim.Optimizer:
    """Call the user's optimizer factory on the problem's parameters, checking what comes back;
    None gives the problem's tuning-free default."""
    if factory is None:
        return problem.default_optimizer()
    check_optimizer_factory(factory)
    try:
        optimizer: Any = factory(problem.parameters())
    except TypeError as error:
        raise ArgumentTypeError(
            f"optimizer could not be called with the parameters ({error}); pass a callable params -> Optimizer, "
            "e.g. functools.partial(torch.optim.SGD, lr=0.1)"
        ) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ArgumentTypeError(
            f"optimizer must return a torch.optim.Optimizer when called with the parameters; got "
            f"{type(optimizer).__name__}. Pass the class or a functools.partial of it, not an instance"
        )
    return optimizer
