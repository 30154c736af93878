"""The Lightning-free engine: build a run once, step it, stop it honestly.

``Criteria`` (the stopping rules) -> ``build_optimizer`` -> ``Iteration`` (``run``/``finish``).
"""
from .criteria import DEFAULT_RESIDUAL_TOL, Criteria
from .iteration import Iteration
from .optimizers import OptimizerFactory, build_optimizer

__all__ = ["Criteria", "DEFAULT_RESIDUAL_TOL", "Iteration", "OptimizerFactory", "build_optimizer"]
