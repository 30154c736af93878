"""Linear systems and least squares by gradient descent (the linear-system tutorial).

:class:`LinearSystem` minimises the mean-squared error of ``A x − b``: the solution of a
square system, the least-squares solution of an overdetermined one and the minimum-norm
solution of an underdetermined one.  Its variants, which ``LinearSystem(...)`` builds from the
arguments: ``SPDLinearSystem`` (``assume="spd"``: the energy loss; in ``spd.py``) and
``RegularisedLeastSquares`` (``weights``, ``l2``, ``l1``, ``nonnegative``; in ``regularised.py``).
What they share is :class:`~torch_gdla.problems.linear_problem.LinearProblem`.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor

from ..errors import ArgumentError
from ..matrices import MatrixLike, VectorLike
from ..operators import LinearOperator, accurate, adjoint, is_symmetric, matmul, rmatmul
from ..optim.krylov import LinearForm
from .energy import check_assumption
from .family import Arguments, Family, check_variant, differs
from .linear_problem import LinearProblem, condition, norm_bound
from .losses import batched_mse
from .preconditioning import PreconditionerLike

REGULARISATION = ("weights", "l2", "l1", "nonnegative")


def _selects_regularisation(arguments: Arguments) -> bool:
    """True unless weights, l2, l1 and nonnegative are absent or at their defaults (anything
    else, valid or not, goes to ``RegularisedLeastSquares``, which validates it)."""
    return (arguments.get("weights") is not None or differs(arguments.get("l2", 0.0), 0)
            or differs(arguments.get("l1", 0.0), 0) or arguments.get("nonnegative", False) is not False)


class LinearSystem(LinearProblem, metaclass=Family):
    """Solution ``x`` of ``A x = b`` in the least-squares sense.

    ``A`` has shape ``(..., m, n)`` (leading dimensions are a batch); ``b`` has shape
    ``(..., m)`` (one right-hand side) or ``(..., m, k)`` (k right-hand sides).  Square,
    over- and under-determined ``A`` are all accepted.  The start is ``x = 0`` (so gradient
    descent stays in the row space of A and reaches the minimum-norm solution of an
    underdetermined system, and the minimum-norm least-squares solution ``pinv(A) @ b`` of a
    rank-deficient one), a seeded uniform start with ``init="uniform"``, or a given tensor.
    The loss is ``mse(A x, b)`` per member (summed over a batch).

    Variants, built by this constructor from its arguments (each an instance of LinearSystem):

    * ``assume="spd"``: :class:`SPDLinearSystem`, the energy loss for a symmetric positive
      definite A (condition κ instead of κ²);
    * ``weights`` (one per row, >= 0), ``l2``, ``l1``, ``nonnegative=True``:
      ``RegularisedLeastSquares`` (weighted, ridge, lasso and non-negative least squares).

    Sharding (``gdla.sharding``): the columns of a several-right-hand-side b are independent.
    """

    quadratic = True

    @classmethod
    def _variant(cls, arguments: Arguments) -> tuple[type, Arguments]:
        assume = check_assumption(arguments.pop("assume", None))
        if _selects_regularisation(arguments):
            if assume is not None:
                raise ArgumentError('assume="spd" cannot be combined with weights, l2, l1 or nonnegative; drop assume="spd"')
            from .regularised import RegularisedLeastSquares

            return RegularisedLeastSquares, arguments
        for name in REGULARISATION:
            arguments.pop(name, None)
        if assume == "spd":
            from .spd import SPDLinearSystem

            return SPDLinearSystem, arguments
        return LinearSystem, arguments

    def __init__(
        self,
        A: Union[MatrixLike, LinearOperator],
        b: VectorLike,
        init: Optional[Union[str, Tensor]] = None,
        seed: int = 314,
        assume: Optional[str] = None,
        weights: Optional[VectorLike] = None,
        l2: float = 0.0,
        l1: float = 0.0,
        nonnegative: bool = False,
        preconditioner: PreconditionerLike = None,
    ) -> None:
        check_variant(self, LinearSystem, assume=assume, weights=weights, l2=l2, l1=l1, nonnegative=nonnegative)
        super().__init__(A, b, init=init, seed=seed, preconditioner=preconditioner)
        self._init_variant(weights=weights, l2=l2, l1=l1, nonnegative=nonnegative)

    def _init_variant(self, weights: Optional[VectorLike], l2: float, l1: float, nonnegative: bool) -> None:
        """What a variant sets up once A and b are checked (its own options; the SPD check).
        The plain system has nothing to add: ``check_variant`` has seen the options at their
        defaults."""

    def _loss(self, reduce_batch: bool) -> Tensor:
        difference = matmul(self.A, self._columns(self.x)) - self._columns(self.b)
        return batched_mse(difference, len(self.batch_shape), reduce_batch)

    def linear_form(self) -> LinearForm:
        """mse = ‖AX − B‖²/(m·k): CG on A when A is symmetric (checked in O(n²) or O(nnz); an
        indefinite A switches to CGLS at the first non-positive curvature), else CGLS."""
        A = self.A
        symmetric = not self.least_squares and is_symmetric(A)
        return self._form(lambda P: matmul(A, P), adjoint(A), self._columns(self.b), symmetric,
                          energy=False, scale=1.0 / (A.shape[-2] * self.num_rhs))

    @torch.no_grad()
    def residuals(self) -> Tensor:
        """Square: ‖Ax − b‖/‖b‖.  Least squares: the normal-equation residual ‖Aᵀ(Ax − b)‖/‖Aᵀb‖,
        which is zero at every least-squares solution even when Ax = b has none."""
        A, x, b = accurate(self.A), accurate(self._columns(self.x)), accurate(self._columns(self.b))  # float64
        residual = matmul(A, x.to(A.dtype)) - b.to(A.dtype)
        if self.least_squares:
            residual = rmatmul(A, residual)
        return self._relative(self._member_norm(residual))

    def residual_bound(self, loss: float) -> Optional[float]:
        if self.least_squares:
            return None
        smallest = float(self._rhs_norms.min())
        if smallest == 0.0:
            return None
        return math.sqrt(max(loss, 0.0) * self.A.shape[-2] * self.num_rhs) / smallest

    @property
    def residual_meaning(self) -> str:  # type: ignore[override]
        return "‖Aᵀ(Ax − b)‖/‖Aᵀb‖ (least squares)" if self.least_squares else "‖Ax − b‖/‖b‖"

    @torch.no_grad()
    def check(self) -> Optional[tuple[str, Tensor]]:
        """A @ x next to b (for a dense A): equal entry by entry when x solves the system."""
        A = self.dense_matrix
        if A is None:
            return None
        return "A @ x (compare with b)", self._from_columns(A @ self._columns(self.x.detach()))

    @torch.no_grad()
    def condition_number(self) -> Optional[float]:
        """cond(A) of the worst member, squared for least squares (which works on AᵀA); None
        (unknown) for a sparse A or an operator, which it would cost a factorisation to know."""
        A = self.dense_matrix
        if A is None:
            return None
        cond = float(condition(A))
        return cond * cond if self.least_squares else cond

    @property
    def singular_advice(self) -> Optional[str]:  # type: ignore[override]
        """Advice for a singular square system, which has no exact solution; None for least
        squares, which has a solution whatever the rank."""
        if self.least_squares:
            return None
        return ("Ax = b has no exact solution: the x returned is the least-squares one the run reached "
                "(pinv(A) @ b from a zero start); accept it, or regularise with l2=...")

    @torch.no_grad()
    def lipschitz(self) -> float:
        """The Lipschitz constant of the loss's gradient (the largest member's): 2/(m·k)·‖A‖₂².
        ``1/lipschitz()`` is a step length that always converges (‖A‖₂ is estimated for a large
        or sparse A; see ``norm_bound``)."""
        return 2.0 / (self.A.shape[-2] * self.num_rhs) * norm_bound(self.A) ** 2

