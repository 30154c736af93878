"""Problems: one file per operation, each an ``nn.Module`` whose parameters are the unknown."""
from .base import Problem
from .inverse import MatrixInverse
from .linear_system import LinearSystem
from .minimize import Minimize
from .streamed import StreamedLeastSquares
from .svd import SVD

__all__ = ["Problem", "MatrixInverse", "LinearSystem", "Minimize", "SVD", "StreamedLeastSquares"]
