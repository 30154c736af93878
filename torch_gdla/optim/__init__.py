"""torch.optim-style optimizers: param_groups, state, ``step(closure)``."""
from .conjugate_gradient import ConjugateGradient

__all__ = ["ConjugateGradient"]
