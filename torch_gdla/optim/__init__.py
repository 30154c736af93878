"""torch.optim-style optimizers: param_groups, state, ``step(closure)``."""
from .conjugate_gradient import ConjugateGradient
from .staged import Stage, Staged

__all__ = ["ConjugateGradient", "Stage", "Staged"]
