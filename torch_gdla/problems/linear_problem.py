"""What every linear-system variant shares (:class:`LinearProblem`): the data A and b, the
unknown x, the relative-residual scale, the direct reference, the sharding hooks and the Krylov
view of the loss; and the helpers the linear problems use (‖A‖₂ bound, condition number, the
default Krylov method).  The loss and its residual are each variant's (``linear_system.py``,
``spd.py``, ``regularised.py``).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor, nn

from ..errors import ArgumentError, UnsupportedInputError
from ..matrices import MatrixLike, VectorLike
from ..operators import LinearOperator, OperatorLike, norm_estimate, rmatmul
from ..optim.krylov import LinearForm
from ..validation import (
    as_float_tensor,
    as_operand,
    check_dense,
    check_finite,
    check_init,
    check_int,
    describe,
)
from .base import Problem
from .losses import MemberLosses
from .preconditioning import PreconditionerLike, check_preconditioner
from .preconditioning import build as build_preconditioner
from .starts import seeded_uniform

# Power iteration underestimates ‖A‖₂ by a few per cent: a step 1/L from it is made safe by this.
NORM_MARGIN = 1.1
# Dense matrices up to this order have their condition number computed for an error estimate
# (an SVD: milliseconds); larger ones only from a Krylov method's own estimate.
SMALL_ORDER = 1024
Apply = Callable[[Tensor], Tensor]


def _check_rhs(b: VectorLike, matrix: OperatorLike, matrix_name: str) -> tuple[Tensor, bool]:
    """b as a tensor of A's dtype, and whether it is one right-hand side (…, m) rather than k (…, m, k)."""
    rhs = as_float_tensor(b, "b")
    check_finite(rhs, describe(b, "b"))
    m, batch, dims = matrix.shape[-2], tuple(matrix.shape[:-2]), len(matrix.shape)
    if rhs.dim() == dims - 1 and rhs.shape[-1] == m:
        vector = True
    elif rhs.dim() == dims and rhs.shape[-2] == m:
        vector = False
    else:
        raise ArgumentError(
            f"b must have shape {(*batch, m)} (one right-hand side) or {(*batch, m, 'k')} (k right-hand sides) "
            f"to match {matrix_name} of shape {tuple(matrix.shape)}; got {tuple(rhs.shape)}"
        )
    if rhs.shape[: len(batch)] != batch:
        raise ArgumentError(
            f"b's batch dimensions {tuple(rhs.shape[:len(batch)])} must equal A's {tuple(batch)} "
            f"(A has shape {tuple(matrix.shape)}, b {tuple(rhs.shape)}); pass one right-hand side per batch member"
        )
    if rhs.numel() == 0:
        raise ArgumentError("b is empty; pass at least one right-hand side")
    return rhs.to(dtype=matrix.dtype, device=matrix.device), vector


def _start(init: Optional[Union[str, Tensor]], seed: int, shape: torch.Size, matrix: Tensor) -> Tensor:
    """x's start: zeros (default: the minimum-norm solution's row space), seeded uniform, or given."""
    if init is None or (isinstance(init, str) and init == "zeros"):
        return torch.zeros(shape, dtype=matrix.dtype, device=matrix.device)
    if isinstance(init, str) and init == "uniform":
        return seeded_uniform(shape, seed, matrix)
    if isinstance(init, str):
        raise ArgumentError(f"init must be 'zeros', 'uniform' or a tensor of shape {tuple(shape)}; got {init!r}")
    return check_init(init, "init", shape, matrix)


class LinearProblem(MemberLosses):
    """What every linear-system variant shares: the data A (…, m, n) and b (…, m) or (…, m, k),
    the unknown x (zeros, ``init="uniform"`` or a given start), the relative-residual scale,
    the direct reference and the sharding hooks (the columns of a several-right-hand-side b
    are independent).  The loss and its residual are the subclass's.

    A may be dense (batched), ``torch.sparse`` (COO, CSR, CSC; one 2-D matrix) or a
    :class:`~torch_gdla.operators.LinearOperator`; sparse matrices are never densified.  An
    operator is not a buffer: ``.to(dtype/device)`` cannot move it, so build it where it runs."""

    A: OperatorLike
    b: Tensor
    _rhs_norms: Tensor
    _given: Optional[tuple[Any, Any]]
    # "spd" for the energy form; how gradients reach A and b (attach) depends on it.
    assume: Optional[str] = None

    def __init__(self, A: Union[MatrixLike, LinearOperator], b: VectorLike,
                 init: Optional[Union[str, Tensor]] = None, seed: int = 314,
                 preconditioner: PreconditionerLike = None) -> None:
        super().__init__()
        self.preconditioner = check_preconditioner(preconditioner)
        # The caller's tensors, when gradients are to flow into them (see attach); kept as plain
        # references, outside the state_dict.
        self._given = (A, b) if _requires_grad(A, b) else None
        matrix = as_operand(A, "A")
        rhs, self.vector_rhs = _check_rhs(b, matrix, describe(A, "A"))
        check_int(seed, "seed")
        if isinstance(matrix, LinearOperator):
            self.A = matrix
        else:
            self.register_buffer("A", matrix)
        self.register_buffer("b", rhs)
        batch, n = tuple(matrix.shape[:-2]), matrix.shape[-1]
        shape = torch.Size((*batch, n) if self.vector_rhs else (*batch, n, rhs.shape[-1]))
        self.x = nn.Parameter(_start(init, seed, shape, rhs))
        self.seed = seed
        # Denominators of the relative residual, per member (0 means: report the absolute residual).
        columns = self._columns(rhs)
        self.register_buffer("_rhs_norms", self._member_norm(rmatmul(matrix, columns) if self.least_squares else columns))

    @property
    def shape(self) -> tuple[int, int]:
        """(m, n): the shape of each member's A."""
        m, n = self.A.shape[-2:]
        return m, n

    @property
    def least_squares(self) -> bool:
        """True for a non-square A (the residual is then the normal equations')."""
        m, n = self.shape
        return m != n

    @property
    def num_rhs(self) -> int:
        """k, the number of right-hand sides (1 for a vector b)."""
        return 1 if self.vector_rhs else self.b.shape[-1]

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size(self.A.shape[:-2])

    @property
    def dense(self) -> bool:
        """True when A is a dense tensor (direct references and condition numbers apply)."""
        return self.dense_matrix is not None

    @property
    def dense_matrix(self) -> Optional[Tensor]:
        """A when it is a dense tensor; None for a sparse A or an operator."""
        A = self.A
        return A if isinstance(A, Tensor) and A.layout == torch.strided else None

    def _columns(self, tensor: Tensor) -> Tensor:
        """b or x as columns (…, m, k), k = 1 for a vector."""
        return tensor.unsqueeze(-1) if self.vector_rhs else tensor

    def _from_columns(self, columns: Tensor) -> Tensor:
        """The inverse of :meth:`_columns`: a vector again where b is one."""
        return columns.squeeze(-1) if self.vector_rhs else columns

    @staticmethod
    def _member_norm(tensor: Tensor) -> Tensor:
        return torch.linalg.matrix_norm(tensor)

    def _relative(self, norms: Tensor) -> Tensor:
        # Relative to _rhs_norms, or absolute where that is 0.
        return torch.where(self._rhs_norms > 0, norms / self._rhs_norms.clamp_min(torch.finfo(norms.dtype).tiny), norms)

    @property
    def solution(self) -> Tensor:
        return self.x.detach()

    def reference(self) -> Tensor:
        """``solve(A, b)`` for square A, else the minimum-norm least-squares ``pinv(A) @ b``."""
        check_dense(self.A, "A", "the direct reference (torch.linalg) needs a dense matrix",
                    "compare with scipy.sparse.linalg.spsolve or lsqr instead")
        A, columns = self.A, self._columns(self.b)
        solution = torch.linalg.pinv(A) @ columns if self.least_squares else torch.linalg.solve(A, columns)
        return self._from_columns(solution)

    def attach(self, solution: Tensor) -> Tensor:
        """x attached to the graph of A and b (if they require grad): a square A as
        ``gdla.linalg.solve`` differentiates it, a rectangular one as ``gdla.linalg.lstsq``."""
        if self._given is None:
            return solution
        from ..linalg import solvers

        return solvers.attach_solution(self._given[0], self._given[1], solution, self.assume, self.least_squares)

    def error_estimate(self, residual: float, method: Any) -> Optional[float]:
        """κ·residual (κ² for the normal-equation residual of least squares): κ from the Krylov
        method's Lanczos coefficients, else :meth:`condition_number` of a small dense A."""
        factor = method.error_factor() if hasattr(method, "error_factor") else None
        if factor is None and self.dense and self.A.shape[-1] <= SMALL_ORDER:
            factor = self.condition_number()
        return None if factor is None else factor * residual

    # -- sharding: the columns of a several-right-hand-side b -----------------------------------
    @property
    def num_pieces(self) -> int:
        """k: the right-hand sides (columns of b), each an independent system."""
        if self.vector_rhs:
            raise UnsupportedInputError("a LinearSystem with one right-hand side has nothing independent to split; "
                                        "shard a system with b of shape (m, k), k > 1")
        return self.b.shape[-1]

    def split(self, indices: list[int]) -> Problem:
        """The right-hand sides ``indices`` alone, as the same variant (its options carried over)."""
        _ = self.num_pieces  # refuses a vector b
        index = torch.tensor(indices, device=self.b.device)
        matrix = self.A if isinstance(self.A, LinearOperator) else self.A.detach().clone()
        from .linear_system import LinearSystem  # the family root, which subclasses this class

        return LinearSystem(matrix, self.b.index_select(-1, index).clone(), **self._variant_arguments())

    def _variant_arguments(self) -> dict[str, Any]:
        """The constructor arguments, besides A and b, that rebuild this variant."""
        return {"preconditioner": self.preconditioner}

    # -- the Krylov view of the loss ---------------------------------------------------------------
    def linear_form(self) -> LinearForm:
        """The loss as a :class:`~torch_gdla.optim.LinearForm` for the default Krylov method."""
        raise NotImplementedError

    def default_optimizer(self) -> torch.optim.Optimizer:
        """The Krylov method of :meth:`linear_form`: conjugate gradient (one A application per
        step) for a symmetric A, CGLS (one A and one Aᵀ) otherwise, as scipy's cg and lsqr."""
        return krylov_method(self, self.linear_form())

    def _form(self, apply: Apply, apply_t: Apply, rhs: Tensor, symmetric: bool, energy: bool, scale: float,
              weights: Optional[Tensor] = None, l2: float = 0.0, normal_residual: Optional[bool] = None) -> LinearForm:
        normal = self.least_squares if normal_residual is None else normal_residual
        return LinearForm(apply=apply, apply_t=apply_t, rhs=rhs, columns=self._columns, spd=symmetric, energy=energy,
                          scale=scale, normal_residual=normal, residual_norms=self._rhs_norms, l2=l2,
                          preconditioner=build_preconditioner(self.preconditioner, self.A, symmetric, weights, l2),
                          # an energy form never switches to CGLS (a non-positive curvature is an error
                          # there), so an operator without column norms can still be Jacobi-preconditioned
                          cgls_preconditioner=None if energy else build_preconditioner(
                              self.preconditioner, self.A, False, weights, l2))


def krylov_method(problem: Problem, form: LinearForm) -> torch.optim.Optimizer:
    """The Krylov method of a linear form (``gdla.optim.Krylov``): conjugate gradient, which
    refuses a direction of non-positive curvature for an energy form (its matrix must be SPD)
    and switches to CGLS for an mse form (an indefinite symmetric matrix)."""
    from ..optim import Krylov

    return Krylov(problem.parameters(), form, on_indefinite="raise" if form.energy else "cgls")


def _requires_grad(*tensors: Any) -> bool:
    return any(isinstance(t, Tensor) and t.requires_grad for t in tensors)


def norm_bound(A: OperatorLike) -> float:
    """‖A‖₂: exact for a small dense A, else a power-iteration estimate raised by NORM_MARGIN so
    that a step 1/L built from it stays below the stability limit."""
    exact = isinstance(A, Tensor) and A.layout == torch.strided and A.shape[-1] <= 512
    return norm_estimate(A) * (1.0 if exact else NORM_MARGIN)


@torch.no_grad()
def condition(A: Tensor) -> Tensor:
    """cond₂ of the worst member of a dense A; a singular member (inf, or nan for a zero matrix)
    counts as infinitely ill-conditioned.  float16/bfloat16 are computed in float32 (no SVD there)."""
    matrix = A if A.dtype in (torch.float32, torch.float64) else A.float()
    return torch.linalg.cond(matrix).nan_to_num(nan=math.inf, posinf=math.inf).max()


