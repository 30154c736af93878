"""Problems: one module per operation, each an ``nn.Module`` whose parameters are the unknown.

A family's constructor builds the variant its arguments ask for (``LinearSystem(A, b, l1=...)``
is a ``RegularisedLeastSquares``; see ``family.py``); every variant is an instance of its family.
"""
from .base import Problem
from .eigen import EigenSolution, SymmetricEigen
from .completion import MatrixCompletion
from .inverse import MatrixInverse
from .linear_system import LinearSystem
from .minimize import Minimize
from .pca import PCA, PCASolution
from .penalty_svd import PenaltySVD
from .regularised import RegularisedLeastSquares
from .spd import SPDLinearSystem, SPDMatrixInverse
from .sqrtm import MatrixSqrt
from .streamed import StreamedLeastSquares
from .svd import SVD

__all__ = ["Problem", "MatrixInverse", "SPDMatrixInverse", "LinearSystem", "SPDLinearSystem",
           "RegularisedLeastSquares", "Minimize", "SVD", "PenaltySVD", "MatrixCompletion", "StreamedLeastSquares",
           "SymmetricEigen", "EigenSolution", "MatrixSqrt", "PCA", "PCASolution"]
