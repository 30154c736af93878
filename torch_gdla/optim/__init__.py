"""torch.optim-style optimizers: param_groups, state, ``step(closure)``."""
from .conjugate_gradient import ConjugateGradient
from .krylov import Krylov, LinearForm
from .newton_schulz import NewtonSchulz, RootForm
from .rayleigh_ritz import EigenForm, RayleighRitz
from .proximal import ProximalGradient
from .staged import Stage, Staged

__all__ = ["ConjugateGradient", "Krylov", "LinearForm", "ProximalGradient", "Stage", "Staged", "RayleighRitz", "EigenForm",
           "NewtonSchulz", "RootForm"]
