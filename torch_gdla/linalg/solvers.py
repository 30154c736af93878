"""``solve``, ``lstsq`` and ``inv``: torch.linalg-shaped, iterative, differentiable.

Gradients come by implicit differentiation, not by unrolling the iterations: the backward pass
solves the adjoint (transposed) problems with the same iterative machinery, so its memory does
not grow with the number of forward iterations (each function saves A and its answer, nothing
else).  Double backward (``create_graph=True``) is not supported: it raises.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..errors import ShapeError, UnsupportedInputError
from ..operators import LinearOperator, OperatorLike, is_sparse, matmul
from ..problems.inverse import MatrixInverse
from ..problems.linear_system import LinearSystem
from ..problems.preconditioning import PreconditionerLike
from ..problems.spd import SPDLinearSystem, SPDMatrixInverse
from ..result import Result
from . import _small
from ._run import DEFAULT_MAX_STEPS, Options, run, wants_grad

Operand = Union[Tensor, LinearOperator]


def _transpose(A: OperatorLike) -> OperatorLike:
    if isinstance(A, LinearOperator):
        return A.T
    return A.t() if A.layout == torch.sparse_coo else A.mT


def _solve_detached(A: OperatorLike, b: Tensor, assume: Optional[str], preconditioner: PreconditionerLike,
                    init: Optional[Tensor], options: Options, name: str) -> tuple[Tensor, Result]:
    """The iterative solution, with no graph: (x, Result)."""
    A = A.detach() if isinstance(A, Tensor) else A
    b = b.detach()
    if _small.eligible(A, b, init, preconditioner, options.optimizer, options.tol, options.rtol,
                       options.residual_tol):
        result = _small.solve_small(A, b, assume == "spd", init, options.residual_tol,  # type: ignore[arg-type]
                                    options.max_steps or DEFAULT_MAX_STEPS)
        if result is not None:
            return result.solution, result
        # anything but a clean convergence: the engine runs from the start and explains
    problem = (SPDLinearSystem(A, b, init=init, preconditioner=preconditioner) if assume == "spd"
               else LinearSystem(A, b, init=init, preconditioner=preconditioner))
    result = run(problem, options, name)
    return result.solution, result


def _graph_input(A: Operand, b: Tensor, name: str) -> Tensor:
    """What stands for A in the autograd graph: A itself when dense, else an empty tensor (a
    sparse A or an operator receives no gradient)."""
    if isinstance(A, Tensor) and not is_sparse(A):
        return A
    if isinstance(A, Tensor) and A.requires_grad:
        raise UnsupportedInputError(f"gdla.linalg.{name}: gradients with respect to a sparse A are not supported; "
                                    "pass A.detach() (gradients still flow into b), or a dense A")
    return torch.empty(0, dtype=b.dtype, device=b.device)


def _as_columns(t: Tensor, vector: bool) -> Tensor:
    return t.unsqueeze(-1) if vector else t


class _Solve(torch.autograd.Function):
    """x = A⁻¹b; backward: λ = A⁻ᵀ x̄ (one iterative solve), b̄ = λ, Ā = −λ xᵀ."""

    @staticmethod
    def forward(ctx: Any, A_input: Tensor, b: Tensor, x: Tensor, A: OperatorLike, assume: Optional[str],
                options: Options) -> Tensor:
        ctx.save_for_backward(x)
        ctx.A, ctx.assume, ctx.options, ctx.vector = A, assume, options, x.dim() == b.dim() == len(A.shape) - 1
        return x.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
        (x,) = ctx.saved_tensors
        adjoint = ctx.A if ctx.assume == "spd" else _transpose(ctx.A)
        lam, _ = _solve_detached(adjoint, grad, ctx.assume, None, None, ctx.options.adjoint(), "solve (backward)")
        grad_A = -_as_columns(lam, ctx.vector) @ _as_columns(x, ctx.vector).mT if ctx.needs_input_grad[0] else None
        return grad_A, lam, None, None, None, None


def solve_ex(A: Operand, b: Tensor, *, assume: Optional[str] = None, preconditioner: PreconditionerLike = None,
             init: Optional[Tensor] = None, optimizer: Any = None, tol: Optional[float] = None,
             residual_tol: Optional[float] = None, rtol: Optional[float] = None, max_steps: Optional[int] = None,
             check: bool = False) -> tuple[Tensor, Result]:
    """:func:`solve` that also returns the :class:`~torch_gdla.Result` (status, steps, residual,
    operator applications) and, like ``torch.linalg.solve_ex``, does not raise by default when
    the run does not converge (``check=False``): read ``result.converged``."""
    if A.shape[-2] != A.shape[-1]:
        raise ShapeError(f"gdla.linalg.solve needs a square A; got shape {tuple(A.shape)}. For a rectangular A use "
                         "gdla.linalg.lstsq (least squares, or the minimum-norm solution)")
    options = Options(optimizer, tol, residual_tol, rtol, max_steps, check)
    graph = _graph_input(A, b, "solve") if wants_grad(A, b) else None
    x, result = _solve_detached(A, b, assume, preconditioner, init, options, "solve")
    if graph is not None:
        x = _Solve.apply(graph, b, x, A.detach() if isinstance(A, Tensor) else A, assume, options)
    return x, result


def solve(A: Operand, b: Tensor, **options: Any) -> Tensor:
    """The solution of ``A x = b`` for a square A — like ``torch.linalg.solve`` (leading batch
    dimensions; b of shape (…, n) or (…, n, k)) — by an iterative method: conjugate gradient
    for a symmetric A (one application of A per step), CGLS otherwise.

    Args:
        A: a dense tensor (…, n, n), a 2-D torch.sparse tensor (COO, CSR, CSC) or a
            :class:`~torch_gdla.LinearOperator`.
        b: the right-hand side(s).
        assume: ``"spd"`` declares A symmetric positive definite (conjugate gradient on its energy).
        preconditioner: None, ``"jacobi"``, a callable ``P -> M⁻¹P``, or a LinearOperator.
        init: a warm start, e.g. the previous call's answer when A changes slowly.
        optimizer: None (the tuning-free default) or a factory ``params -> torch.optim.Optimizer``.
        tol, residual_tol, rtol, max_steps: the stopping rules (default: residual_tol 1e-8 in
            float64, 1e-4 in float32; max_steps 10 000).
        check: raise :class:`~torch_gdla.errors.NotConvergedError`, naming the reason, when the
            run does not converge (default True here; :func:`solve_ex` returns the Result).

    Differentiable in b and in a dense A by implicit differentiation (backward: one adjoint solve).
    """
    options.setdefault("check", True)
    return solve_ex(A, b, **options)[0]


class _Lstsq(torch.autograd.Function):
    """x = A⁺b (the minimum-norm least-squares solution).  Backward, for A of constant rank:
    with z = A⁺ᵀx̄, b̄ = z and Ā = −z xᵀ + (b − Ax)(A⁺z)ᵀ + (A⁺ᵀx)(x̄ − A⁺A x̄)ᵀ (the derivative
    of the pseudo-inverse, Golub & Pereyra 1973): four iterative least-squares solves."""

    @staticmethod
    def forward(ctx: Any, A_input: Tensor, b: Tensor, x: Tensor, A: OperatorLike, options: Options) -> Tensor:
        ctx.save_for_backward(b, x)
        ctx.A, ctx.options, ctx.vector = A, options, x.dim() == b.dim() == len(A.shape) - 1
        return x.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
        b, x = ctx.saved_tensors
        A, options, vector = ctx.A, ctx.options.adjoint(), ctx.vector
        At = _transpose(A)

        def lstsq_of(matrix: OperatorLike, rhs: Tensor) -> Tensor:
            return _solve_detached(matrix, rhs, None, None, None, options, "lstsq (backward)")[0]

        z = lstsq_of(At, grad)
        if not ctx.needs_input_grad[0]:
            return None, z, None, None, None
        w = lstsq_of(A, z)
        u = lstsq_of(At, x)
        projected = lstsq_of(A, _from_columns(matmul(A, _as_columns(grad, vector)), vector))
        col = lambda t: _as_columns(t, vector)  # noqa: E731
        residual = col(b) - matmul(A, col(x))
        grad_A = -col(z) @ col(x).mT + residual @ col(w).mT + col(u) @ (col(grad) - col(projected)).mT
        return grad_A, z, None, None, None


def _from_columns(t: Tensor, vector: bool) -> Tensor:
    return t.squeeze(-1) if vector else t


def lstsq_ex(A: Operand, b: Tensor, *, preconditioner: PreconditionerLike = None, init: Optional[Tensor] = None,
             optimizer: Any = None, tol: Optional[float] = None, residual_tol: Optional[float] = None,
             rtol: Optional[float] = None, max_steps: Optional[int] = None,
             check: bool = False) -> tuple[Tensor, Result]:
    """:func:`lstsq` that also returns the :class:`~torch_gdla.Result` (``check=False`` by default)."""
    options = Options(optimizer, tol, residual_tol, rtol, max_steps, check)
    graph = _graph_input(A, b, "lstsq") if wants_grad(A, b) else None
    x, result = _solve_detached(A, b, None, preconditioner, init, options, "lstsq")
    if graph is not None:
        x = _Lstsq.apply(graph, b, x, A.detach() if isinstance(A, Tensor) else A, options)
    return x, result


def lstsq(A: Operand, b: Tensor, **options: Any) -> Tensor:
    """The minimum-norm least-squares solution ``A⁺b`` for A of any shape and rank (CGLS from
    x = 0, which stays in A's row space): like ``torch.linalg.lstsq(A, b).solution`` with the
    pseudo-inverse's answer for rank-deficient A.  Options as for :func:`solve` (no ``assume``).

    Differentiable in b and a dense A (four adjoint least-squares solves in backward); for
    rank-deficient A the gradient is the pseudo-inverse's derivative at constant rank (the
    minimum-norm solution jumps where the rank changes).  Returns x only (torch's lstsq returns
    a named tuple; use :func:`lstsq_ex` for the Result).
    """
    options.setdefault("check", True)
    return lstsq_ex(A, b, **options)[0]


class _Inv(torch.autograd.Function):
    """X = M⁻¹; backward in closed form from the answer itself: M̄ = −Xᵀ X̄ Xᵀ."""

    @staticmethod
    def forward(ctx: Any, M: Tensor, X: Tensor) -> Tensor:
        ctx.save_for_backward(X)
        return X.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (X,) = ctx.saved_tensors
        return -X.mT @ grad @ X.mT, None


def inv_ex(M: Tensor, *, assume: Optional[str] = None, init: Optional[Tensor] = None, optimizer: Any = None,
           tol: Optional[float] = None, residual_tol: Optional[float] = None, rtol: Optional[float] = None,
           max_steps: Optional[int] = None, check: bool = False) -> tuple[Tensor, Result]:
    """:func:`inv` that also returns the :class:`~torch_gdla.Result` (``check=False`` by default)."""
    options = Options(optimizer, tol, residual_tol, rtol, max_steps, check)
    start = init.detach() if isinstance(init, Tensor) else init
    problem = (SPDMatrixInverse(M.detach(), init=start) if assume == "spd"
               else MatrixInverse(M.detach(), init=start, assume=assume))
    result = run(problem, options, "inv")
    X = result.solution
    if wants_grad(M):
        X = _Inv.apply(M, X)
    return X, result


def inv(M: Tensor, **options: Any) -> Tensor:
    """The inverse of a square dense M (leading batch dimensions), like ``torch.linalg.inv``:
    conjugate gradient for a symmetric M (one n×n×n product per step), CGLS otherwise.
    ``init=`` warm-starts from a previous inverse (a slowly changing M).  Options as for
    :func:`solve`.  Differentiable in M (closed form: −Xᵀ X̄ Xᵀ, no extra solve)."""
    options.setdefault("check", True)
    return inv_ex(M, **options)[0]


# -- the same gradients for problems solved by gdla.solve / the engine (Problem.attach) ------------
def attach_solution(A: Operand, b: Tensor, x: Tensor, assume: Optional[str], least_squares: bool) -> Tensor:
    """x (found by any method) attached to the graph of A and b as solve/lstsq attach theirs."""
    options = Options()
    graph = _graph_input(A, b, "lstsq" if least_squares else "solve")
    operand = A.detach() if isinstance(A, Tensor) else A
    if least_squares:
        return _Lstsq.apply(graph, b, x, operand, options)
    return _Solve.apply(graph, b, x, operand, assume, options)


def attach_inverse(M: Tensor, X: Tensor) -> Tensor:
    """X (found by any method) attached to the graph of M as inv attaches its answer."""
    return _Inv.apply(M, X)
