"""torch.optim-style optimizers: param_groups, state, ``step(closure)``."""
from .conjugate_gradient import ConjugateGradient
from .proximal import ProximalGradient
from .staged import Stage, Staged

__all__ = ["ConjugateGradient", "ProximalGradient", "Stage", "Staged"]
