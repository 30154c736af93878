"""``eigh`` and ``sqrtm``: extreme eigenpairs and matrix square roots, differentiable in closed form.

Backward of ``λ, V = eigh(M, k)`` (the k extreme pairs): within the span of V it is the
standard formula (``torch.linalg.eigh``'s): ``V(diag(λ̄) + F∘(VᵀV̄))Vᵀ`` with
``F_ij = 1/(λ_j − λ_i)``, symmetrised as torch's is (M̄ is a gradient over symmetric M).  For
k < n each eigenvector also moves towards the discarded ones:
``dvᵢ ⊇ (λᵢI − M)⁻¹(I − VVᵀ) dM vᵢ``, so M̄ gains ``aᵢ vᵢᵀ`` with ``(λᵢI − M) aᵢ = (I − VVᵀ)v̄ᵢ``
on the orthogonal complement of V — the complement-system trick of the truncated SVD
(``decompositions.py``).  That system is positive definite (negated for the smallest pairs),
because λᵢ lies beyond every discarded eigenvalue, and conjugate gradient solves it: exact
gradients from k operator applications per step, no full eigendecomposition.  A repeated
eigenvalue makes its eigenvectors' gradient undefined (F infinite; the eigenvalues' stays
exact), and a zero gap at λₖ makes the complement system singular.

Backward of ``X = sqrtm(M)``: dX solves the Sylvester equation ``X dX + dX X = dM``, so with
X = Q diag(s) Qᵀ, ``M̄ = Q[sym(QᵀX̄Q) / (sᵢ + sⱼ)]Qᵀ`` — in closed form from the eigendecomposition
of X (an n × n ``eigh`` of the answer, no iteration).  For X = M^−½ the divided differences of
λ^−½ replace 1/(sᵢ + sⱼ): ``−tᵢ²tⱼ²/(tᵢ + tⱼ)`` with t the eigenvalues of X.
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..errors import UnsupportedInputError
from ..operators import LinearOperator, OperatorLike, is_sparse
from ..problems.eigen import EigenSolution, SymmetricEigen
from ..problems.spd import SPDLinearSystem
from ..problems.sqrtm import MatrixSqrt
from ..result import Result
from ._run import Options, run, wants_grad

# Computed eigenvalues closer than REPEATED·eps (relative to the largest) are copies of one
# repeated eigenvalue: rounding, not a gap (a repeated eigenvalue's Ritz values agree to ~residual²).
REPEATED = 1e3


def _in_span(values: Tensor, vectors: Tensor, g_values: Tensor, g_vectors: Tensor) -> Tensor:
    """The term within span(V).  Between copies of a repeated eigenvalue F is set to 0, not
    1/rounding: that is the exact gradient of every function of the eigenspace (its V̄ block is
    symmetric there, which F's antisymmetric coupling maps to 0), and individual vectors of an
    eigenspace have no gradient to give (torch.linalg.eigh returns inf/nan there)."""
    gaps = values.unsqueeze(-2) - values.unsqueeze(-1)  # λ_j − λ_i
    eye = torch.eye(values.shape[-1], dtype=torch.bool, device=values.device)
    scale = values.abs().amax(dim=-1, keepdim=True).unsqueeze(-1)
    same = eye | (gaps.abs() <= REPEATED * torch.finfo(values.dtype).eps * scale)
    F = torch.where(same, torch.zeros_like(gaps), 1 / torch.where(same, torch.ones_like(gaps), gaps))
    inner = F * (vectors.mT @ g_vectors) + torch.diag_embed(g_values)
    return vectors @ inner @ vectors.mT


def _outside_span(M: Tensor, values: Tensor, vectors: Tensor, g_vectors: Tensor, largest: bool,
                  options: Options) -> Tensor:
    """The complement terms of one (unbatched) member, by conjugate gradient per column."""
    V = vectors
    rhs = g_vectors - V @ (V.mT @ g_vectors)
    if not bool(rhs.any()):
        return torch.zeros_like(M)
    sign = 1.0 if largest else -1.0  # (λI − M) is positive definite on the complement for the largest

    def shifted(Y: Tensor) -> Tensor:
        product = sign * (Y * values - M @ Y)
        return product - V @ (V.mT @ product)  # stay in the complement

    n = M.shape[-1]
    operator = LinearOperator((n, n), shifted, dtype=M.dtype, device=M.device, symmetric=True, matmat=True)
    solution = run(SPDLinearSystem(operator, sign * rhs), options, "eigh (backward)").solution
    return solution @ V.mT


class _Eigh(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, M: Tensor, values: Tensor, vectors: Tensor, largest: bool,
                options: Options) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(M, values, vectors)
        ctx.largest, ctx.options = largest, options
        return values.clone(), vectors.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_values: Optional[Tensor], g_vectors: Optional[Tensor]) -> tuple[Any, ...]:
        M, values, vectors = ctx.saved_tensors
        g_values = torch.zeros_like(values) if g_values is None else g_values
        g_vectors = torch.zeros_like(vectors) if g_vectors is None else g_vectors
        grad = _in_span(values, vectors, g_values, g_vectors)
        if vectors.shape[-1] < M.shape[-1]:
            n, k = M.shape[-1], values.shape[-1]
            Ms, ls, Vs, gs = (M.reshape(-1, n, n), values.reshape(-1, k), vectors.reshape(-1, n, k),
                              g_vectors.reshape(-1, n, k))
            outside = [_outside_span(Ms[i], ls[i], Vs[i], gs[i], ctx.largest, ctx.options.adjoint())
                       for i in range(Ms.shape[0])]
            grad = grad + torch.stack(outside).reshape(M.shape)
        return (grad + grad.mT) / 2, None, None, None, None  # symmetric, as torch.linalg.eigh's


def attach_pairs(M: Tensor, pairs: EigenSolution, largest: bool) -> EigenSolution:
    """Pairs (found by any method) attached to the graph of M as :func:`eigh` attaches its answer."""
    return EigenSolution(*_Eigh.apply(M, pairs.eigenvalues, pairs.eigenvectors, largest, Options()))


def _graph_input(M: OperatorLike, name: str) -> Tensor:
    if isinstance(M, LinearOperator) or is_sparse(M):
        raise UnsupportedInputError(f"gdla.linalg.{name}: gradients with respect to a sparse M or an operator are "
                                    "not supported; pass M.detach(), or a dense M")
    return M


def eigh_ex(M: OperatorLike, k: Optional[int] = None, largest: bool = True, *, init: Optional[Tensor] = None,
            optimizer: Any = None, tol: Optional[float] = None, residual_tol: Optional[float] = None,
            rtol: Optional[float] = None, max_steps: Optional[int] = None,
            check: bool = False) -> tuple[EigenSolution, Result]:
    """:func:`eigh` that also returns the :class:`~torch_gdla.Result` (``check=False`` by default):
    its reason names eigenvalues too close to determine their vectors one by one."""
    options = Options(optimizer, tol, residual_tol, rtol, max_steps, check)
    graph = _graph_input(M, "eigh") if wants_grad(M) else None
    operand = M.detach() if isinstance(M, Tensor) else M
    n = M.shape[-1]
    result = run(SymmetricEigen(operand, k=n if k is None else k, largest=largest, init=init), options, "eigh")
    values, vectors = result.solution
    if graph is not None:
        values, vectors = _Eigh.apply(graph, values, vectors, largest, options)
    return EigenSolution(values, vectors), result


def eigh(M: OperatorLike, k: Optional[int] = None, largest: bool = True, **options: Any) -> EigenSolution:
    """The k largest (``largest=True``) or smallest eigenpairs of a symmetric M — all n when k
    is None — as ``(eigenvalues (…, k), eigenvectors (…, n, k))``, the extreme pair first
    (note: ``torch.linalg.eigh`` returns all pairs in ascending order), vectors orthonormal
    with their largest-magnitude entry positive.  M: dense (…, n, n), ``torch.sparse`` or a
    ``LinearOperator(symmetric=True)``.  ``init=`` warm-starts from previous eigenvectors.
    Options as for :func:`~torch_gdla.linalg.solve`.  Differentiable in a dense M (see the
    module's note: exact for k < n too, by conjugate gradient on the complement)."""
    options.setdefault("check", True)
    return eigh_ex(M, k, largest, **options)[0]


class _Root(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, M: Tensor, X: Tensor, inverse: bool) -> Tensor:
        ctx.save_for_backward(X)
        ctx.inverse = inverse
        return X.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], None, None]:
        (X,) = ctx.saved_tensors
        s, Q = torch.linalg.eigh((X + X.mT) / 2)
        pair = s.unsqueeze(-1) + s.unsqueeze(-2)
        F = -(s.square().unsqueeze(-1) * s.square().unsqueeze(-2)) / pair if ctx.inverse else 1 / pair
        inner = Q.mT @ grad @ Q
        return Q @ (F * (inner + inner.mT) / 2) @ Q.mT, None, None  # symmetric, as through torch.linalg.eigh


def attach_root(M: Tensor, X: Tensor, inverse: bool) -> Tensor:
    """X (found by any method) attached to the graph of M as :func:`sqrtm` attaches its answer."""
    return _Root.apply(M, X, inverse)


def sqrtm_ex(M: Tensor, *, inverse: bool = False, optimizer: Any = None, tol: Optional[float] = None,
             residual_tol: Optional[float] = None, rtol: Optional[float] = None, max_steps: Optional[int] = None,
             check: bool = False) -> tuple[Tensor, Result]:
    """:func:`sqrtm` that also returns the :class:`~torch_gdla.Result` (``check=False`` by default)."""
    options = Options(optimizer, tol, residual_tol, rtol, max_steps, check)
    result = run(MatrixSqrt(M.detach(), inverse=inverse), options, "sqrtm")
    X = result.solution
    if wants_grad(M):
        X = _Root.apply(M, X, inverse)
    return X, result


def sqrtm(M: Tensor, **options: Any) -> Tensor:
    """The principal square root X of a symmetric positive definite M (…, n, n): X X = M, X
    SPD; ``inverse=True`` gives M^−½.  By the scaled coupled Newton–Schulz iteration (matrix
    products only).  Options as for :func:`~torch_gdla.linalg.solve`.  Differentiable in M
    (closed form through the eigendecomposition of X; see the module's note)."""
    options.setdefault("check", True)
    return sqrtm_ex(M, **options)[0]
