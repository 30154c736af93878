"""Matrices for problems: sources (recipes selectable from YAML by ``class_path``), the gallery of
classic test matrices, and safe reading and writing of matrix files.

``sources``: ``Source`` and the general recipes (``Explicit``, ``Random``, ``Diagonal``,
``LowRank``, ``RandomMask``, ``File``); ``gallery``: ``Hilbert``, ``Pascal``, ``Lehmer``,
``Vandermonde``, ``Frank``, ``Kahan``, ``Wilkinson``, ``Tridiagonal``, ``Conditioned``,
``IdentityPlusNoise``, each with its definition and condition-number growth; ``sparse``:
``Poisson2D`` (built sparse); ``files``: ``load``
and ``save`` (``.pt``, ``.npy``, ``.csv``, ``.mtx``), never executing code from a file.  Every
public name is importable from here (``torch_gdla.matrices.Hilbert`` in a config).
"""
from __future__ import annotations

from ..validation import DTYPES
from .files import check_writable, load, save, save_solution
from .gallery import (
    Conditioned,
    Frank,
    Hilbert,
    IdentityPlusNoise,
    Kahan,
    Lehmer,
    Pascal,
    Tridiagonal,
    Vandermonde,
    Wilkinson,
)
from .sources import (
    Constant,
    Diagonal,
    Explicit,
    File,
    LowRank,
    MatrixLike,
    Random,
    RandomMask,
    Source,
    VectorLike,
)
from .sparse import Poisson2D

__all__ = [
    "MatrixLike", "VectorLike", "Source", "Explicit", "Random", "Diagonal", "File", "load", "save", "DTYPES",
    "IdentityPlusNoise", "Conditioned", "Hilbert", "Pascal", "Lehmer", "Vandermonde", "Frank", "Kahan",
    "Wilkinson", "Tridiagonal", "check_writable", "save_solution", "LowRank", "RandomMask", "Poisson2D",
    "Constant",
]
