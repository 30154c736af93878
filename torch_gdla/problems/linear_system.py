"""Linear systems and least squares by gradient descent (the linear-system tutorial).

:class:`LinearSystem` minimises the mean-squared error of ``A x − b``: the solution of a
square system, the least-squares solution of an overdetermined one and the minimum-norm
solution of an underdetermined one.  Its variants, which ``LinearSystem(...)`` builds from the
arguments: :class:`SPDLinearSystem` (``assume="spd"``: the energy loss) and
``RegularisedLeastSquares`` (``weights``, ``l2``, ``l1``, ``nonnegative``; in ``regularised.py``).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn

from ..errors import ArgumentError, UnsupportedInputError
from ..matrices import MatrixLike, VectorLike
from ..operators import (
    LinearOperator,
    OperatorLike,
    accurate,
    is_sparse,
    is_symmetric,
    matmul,
    norm_estimate,
    rmatmul,
)
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
from .energy import check_assumption
from .family import Arguments, Family, check_variant
from .losses import batched_mse
from .preconditioning import PreconditionerLike, check_preconditioner
from .preconditioning import build as build_preconditioner
from .starts import seeded_uniform

REGULARISATION = ("weights", "l2", "l1", "nonnegative")
# Power iteration underestimates ‖A‖₂ by a few per cent: a step 1/L from it is made safe by this.
NORM_MARGIN = 1.1
# Dense matrices up to this order have their condition number computed for an error estimate
# (an SVD: milliseconds); larger ones only from a Krylov method's own estimate.
SMALL_ORDER = 1024


def _selects_regularisation(arguments: Arguments) -> bool:
    """True unless weights, l2, l1 and nonnegative are absent or at their defaults (anything
    else, valid or not, goes to ``RegularisedLeastSquares``, which validates it)."""
    def nonzero(value: Any) -> bool:
        try:
            return bool(value != 0)
        except (TypeError, ValueError, RuntimeError):
            return True

    return (arguments.get("weights") is not None or nonzero(arguments.get("l2", 0.0))
            or nonzero(arguments.get("l1", 0.0)) or arguments.get("nonnegative", False) is not False)


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



def adjoint(A: Any) -> Any:
    """``S -> Aᵀ S`` for a Krylov method's every step.  A sparse A's transpose is built once, as
    CSR, at the first call: torch's sparse × vector kernel turns a transposed CSR (a CSC view)
    or COO back into CSR — a sort of the nnz entries — on every call (measured: 1.8 ms against
    27 µs per Aᵀv for a 20 000 × 2 000 matrix with 10 entries a row).  Built lazily, so conjugate
    gradient, which never applies Aᵀ, stores no copy."""
    if not is_sparse(A):
        return lambda S: rmatmul(A, S)
    built: list[Any] = []

    def apply_t(S: Tensor) -> Tensor:
        if not built:
            built.append((A.t().coalesce() if A.layout == torch.sparse_coo else A.mT).to_sparse_csr())
        return matmul(built[0], S)
    return apply_t

class LinearProblem(Problem):
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
        m, n = self.A.shape[-2:]
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
        return isinstance(self.A, Tensor) and self.A.layout == torch.strided

    def _columns(self, tensor: Tensor) -> Tensor:
        return tensor.unsqueeze(-1) if self.vector_rhs else tensor

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
        if not self.least_squares:
            return torch.linalg.solve(self.A, self.b.unsqueeze(-1)).squeeze(-1) if self.vector_rhs else torch.linalg.solve(self.A, self.b)
        solution = torch.linalg.pinv(self.A) @ self._columns(self.b)
        return solution.squeeze(-1) if self.vector_rhs else solution


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
        from ..optim import Krylov

        form = self.linear_form()
        return Krylov(self.parameters(), form, on_indefinite="raise" if form.energy else "cgls")

    def _form(self, apply: Any, apply_t: Any, rhs: Tensor, symmetric: bool, energy: bool, scale: float,
              weights: Optional[Tensor] = None, l2: float = 0.0, normal_residual: Optional[bool] = None) -> LinearForm:
        normal = self.least_squares if normal_residual is None else normal_residual
        return LinearForm(apply=apply, apply_t=apply_t, rhs=rhs, columns=self._columns, spd=symmetric, energy=energy,
                          scale=scale, normal_residual=normal, residual_norms=self._rhs_norms, l2=l2,
                          preconditioner=build_preconditioner(self.preconditioner, self.A, symmetric, weights, l2),
                          cgls_preconditioner=build_preconditioner(self.preconditioner, self.A, False, weights, l2))




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
    assume: Optional[str] = None

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
        A: MatrixLike,
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

    def forward(self) -> Tensor:
        difference = matmul(self.A, self._columns(self.x)) - self._columns(self.b)
        return batched_mse(difference, len(self.batch_shape))

    @torch.no_grad()
    def losses(self) -> Tensor:
        difference = matmul(self.A, self._columns(self.x)) - self._columns(self.b)
        return batched_mse(difference, len(self.batch_shape), reduce_batch=False)


    def attach(self, solution: Tensor) -> Tensor:
        """x attached to the graph of A and b (if they require grad): a square A as
        ``gdla.linalg.solve`` differentiates it, a rectangular one as ``gdla.linalg.lstsq``."""
        if self._given is None:
            return solution
        from ..linalg import solvers

        return solvers.attach_solution(self._given[0], self._given[1], solution, self.assume, self.least_squares)

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
        residual = matmul(A, x.to(_dtype_of(A))) - b.to(_dtype_of(A))
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
        if not self.dense:
            return None
        return "A @ x (compare with b)", _from(matmul(self.A, self._columns(self.x.detach())), self.vector_rhs)

    def error_estimate(self, residual: float, method: Any) -> Optional[float]:
        """κ·residual (κ² for the normal-equation residual of least squares): κ from the Krylov
        method's Lanczos coefficients, else the condition number of a small dense A (≤ 1024)."""
        factor = method.error_factor() if hasattr(method, "error_factor") else None
        if factor is None and self.dense and self.A.shape[-1] <= SMALL_ORDER:
            factor = self.condition_number()
        return None if factor is None else factor * residual

    @torch.no_grad()
    def condition_number(self) -> Optional[float]:
        """cond(A) of the worst member, squared for least squares (which works on AᵀA); None
        (unknown) for a sparse A or an operator, which it would cost a factorisation to know."""
        if not self.dense:
            return None
        cond = float(condition(self.A))
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


def _from(columns: Tensor, vector: bool) -> Tensor:
    return columns.squeeze(-1) if vector else columns


def _dtype_of(A: OperatorLike) -> torch.dtype:
    return A.dtype


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


