"""torch.optim-style optimizers: param_groups, state, ``step(closure)``."""
from .conjugate_gradient import ConjugateGradient
from .krylov import Krylov, LinearForm
from .lbfgs import LBFGS
from .newton_schulz import NewtonSchulz, RootForm
from .proximal import ProximalGradient
from .rayleigh_ritz import EigenForm, RayleighRitz
from .staged import Stage, Staged
from .subspace import BlockKrylov, SubspaceForm

__all__ = ["BlockKrylov", "SubspaceForm", "ConjugateGradient", "Krylov", "LBFGS", "LinearForm", "ProximalGradient",
           "Stage", "Staged", "RayleighRitz", "EigenForm", "NewtonSchulz", "RootForm"]
