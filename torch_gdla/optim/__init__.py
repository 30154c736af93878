"""torch.optim-style optimizers: param_groups, state, ``step(closure)``."""
from .conjugate_gradient import ConjugateGradient
from .krylov import Krylov, LinearForm
from .proximal import ProximalGradient
from .staged import Stage, Staged

__all__ = ["ConjugateGradient", "Krylov", "LinearForm", "ProximalGradient", "Stage", "Staged"]
