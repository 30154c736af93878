"""Problems: one file per operation, each an ``nn.Module`` whose parameters are the unknown."""
from .base import Problem
from .inverse import MatrixInverse
from .linear_system import LinearSystem

__all__ = ["Problem", "MatrixInverse", "LinearSystem"]
