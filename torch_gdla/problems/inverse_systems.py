"""A one-sided inverse as independent linear systems (:class:`InverseSystems`): ``X M = I`` is
``Mᵀ Xᵀ = I`` (``side="left"``: the rows of X are the unknown columns), ``M X = I`` is itself
(``side="right"``: the columns of X).  That view gives ``MatrixInverse`` its Krylov method (the
columns solved together) and its sharding (a set of columns is a ``LinearSystem``).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ..errors import UnsupportedInputError
from ..operators import is_symmetric
from ..optim.krylov import LinearForm
from .base import Problem
from .linear_problem import krylov_method
from .linear_system import LinearSystem


class InverseSystems(Problem):
    """The systems view of ``MatrixInverse`` (``side="both"`` couples rows and columns: it has
    none, and falls back to the base conjugate gradient and refuses to split)."""

    M: Tensor
    identity: Tensor
    side: str
    assume: Optional[str]

    def _system_matrix(self) -> Tensor:
        """Mᵀ for ``side="left"``, M for ``side="right"``: the matrix of the systems."""
        return self.M.mT if self.side == "left" else self.M

    # -- the Krylov view of the loss -------------------------------------------------------------------
    def linear_form(self) -> Optional[LinearForm]:
        """X M = I as Mᵀ Xᵀ = I (``side="left"``: the rows of X are the columns solved) or M X = I
        (``"right"``), mse = ‖·‖²/n²; None for ``side="both"``, which is no single system."""
        if self.side == "both":
            return None
        M, n = self.M, self.M.shape[-1]
        operator = self._system_matrix()
        symmetric = is_symmetric(M)
        return LinearForm(apply=lambda P: operator @ P, apply_t=lambda S: operator.mT @ S,
                          rhs=self.identity.expand_as(M), columns=self._unknown_columns, spd=symmetric,
                          energy=self.assume == "spd", scale=1.0 / (n * n), normal_residual=False,
                          residual_norms=torch.full(M.shape[:-2], math.sqrt(n), dtype=M.dtype, device=M.device))

    def _unknown_columns(self, X: Tensor) -> Tensor:
        # side="left": the rows of X, as the columns of a view of Xᵀ (writes go through to X).
        return X.mT if self.side == "left" else X

    def default_optimizer(self) -> torch.optim.Optimizer:
        """A Krylov method on :meth:`linear_form` (conjugate gradient for a symmetric M: one
        n×n×n product per step; CGLS otherwise: two); ``side="both"``: the base conjugate gradient."""
        form = self.linear_form()
        return super().default_optimizer() if form is None else krylov_method(self, form)

    # -- sharding: rows (side="left") or columns (side="right") of X ---------------------------
    @property
    def num_pieces(self) -> int:
        """n: the rows of X for ``side="left"``, its columns for ``side="right"``."""
        if self.side == "both":
            raise UnsupportedInputError('MatrixInverse(side="both") couples the rows and the columns of X, so it does '
                                        'not split; shard side="left" (rows) or side="right" (columns)')
        return self.M.shape[-1]

    def split(self, indices: list[int]) -> Problem:
        """The pieces ``indices`` as one ``LinearSystem`` with ``len(indices)`` right-hand sides:
        ``Mᵀ Y = I[:, indices]`` (Y = the rows' transpose) for ``side="left"``, ``M Y = I[:, indices]``
        for ``side="right"``; the energy form (``assume``) carries over."""
        _ = self.num_pieces  # refuses side="both"
        M, n = self.M, self.M.shape[-1]
        index = torch.tensor(indices, device=M.device)
        identity = torch.eye(n, dtype=M.dtype, device=M.device).index_select(-1, index)
        identity = identity.expand(*M.shape[:-2], n, len(indices))
        return LinearSystem(self._system_matrix().detach().clone(), identity.clone(), assume=self.assume)

    def join(self, pieces: Tensor) -> Tensor:
        """X from the pieces' solutions stacked as columns: their transpose for ``side="left"``."""
        return pieces.mT.contiguous() if self.side == "left" else pieces
