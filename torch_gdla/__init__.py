"""torch_gdla: linear algebra solved by gradient descent, with autograd and torch.optim.

Plain-PyTorch names are imported eagerly; the Lightning parts (``SolverModule``) and the
torchmetrics parts (``metrics``) are loaded on first use, so ``import torch_gdla`` costs about
what ``import torch`` does.
"""
from __future__ import annotations

from typing import Any

from . import errors, functions, linalg, matrices, optim, sharding
from .derivative import derivative, gradient
from .engine import Criteria, Iteration
from .operators import LinearOperator, aslinearoperator
from .problems import (
    SVD,
    LinearSystem,
    MatrixCompletion,
    MatrixInverse,
    PenaltySVD,
    Problem,
    RegularisedLeastSquares,
    SPDLinearSystem,
    SPDMatrixInverse,
)
from .problems.eigen import EigenSolution, SymmetricEigen
from .problems.minimize import Minimize
from .problems.pca import PCA, PCASolution
from .problems.sqrtm import MatrixSqrt
from .problems.streamed import StreamedLeastSquares
from .result import Result, Status
from .solve import solve

__version__ = "0.1.0"

__all__ = [
    "Criteria", "Iteration", "LinearSystem", "SVD", "MatrixInverse", "Problem", "Result", "SolverModule",
    "Status", "matrices", "metrics", "optim", "solve",
    "Minimize", "derivative", "functions", "gradient",
    "StreamedLeastSquares", "sharding",
    "SPDMatrixInverse", "SPDLinearSystem", "RegularisedLeastSquares", "PenaltySVD", "MatrixCompletion",
    "LinearOperator", "aslinearoperator", "linalg", "errors",
    "SymmetricEigen", "EigenSolution", "MatrixSqrt", "PCA", "PCASolution",
]

_LAZY = {"SolverModule": ("torch_gdla.lightning", "SolverModule"), "metrics": ("torch_gdla.metrics", None)}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value = getattr(module, attribute) if attribute else module
        globals()[name] = value
        return value
    raise AttributeError(f"module 'torch_gdla' has no attribute {name!r}")
