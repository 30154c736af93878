"""Lightning side of torch_gdla: ``SolverModule`` trains any problem.  Lightning is imported
here only (``import torch_gdla`` loads this package on first use of ``gdla.SolverModule``)."""
from .module import SolverModule

__all__ = ["SolverModule"]
