"""``svd``: the top-k singular triplets, differentiable by the closed-form formulas on the
converged factors.

Backward of ``U, S, V = svd(M, rank=k)``: within the span of U and V it is the standard formula
(``torch.linalg.svd``'s): ``U[(F∘(UᵀŪ − ŪᵀU))S + diag(S̄) + S(F∘(VᵀV̄ − V̄ᵀV))]Vᵀ`` with
``F_ij = 1/(s_j² − s_i²)``.  Outside it, a truncated SVD couples each triplet to the discarded
spectrum: for each i, ``[[sᵢI, −M], [−Mᵀ, sᵢI]] [a; c] = [(I − UUᵀ)ūᵢ; (I − VVᵀ)v̄ᵢ]`` on the
orthogonal complements, and Ā gains ``a vᵢᵀ + uᵢ cᵀ``.  That system is symmetric positive
definite when sᵢ is above every discarded singular value, and it is solved by conjugate gradient
(two products with M per step): the exact gradient, which reduces to ``(I − UUᵀ)ŪS⁻¹Vᵀ + …``
when M has rank k.  Repeated singular values make the singular vectors non-unique: F is then
infinite and the gradient of U and V undefined (that of S stays exact); a zero gap between sₖ
and the next singular value makes the complement system singular.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..operators import LinearOperator
from ..problems.spd import SPDLinearSystem
from ..problems.svd import SVD
from ..result import Result
from ._run import Options, run, wants_grad


class SVDResult(NamedTuple):
    """``M ≈ U diag(S) Vᵀ``: the top-k triplets, S descending."""

    U: Tensor
    S: Tensor
    V: Tensor


def _in_span(U: Tensor, S: Tensor, V: Tensor, gU: Tensor, gS: Tensor, gV: Tensor) -> Tensor:
    squares = S.square()
    gaps = squares.unsqueeze(-2) - squares.unsqueeze(-1)  # s_j² − s_i²
    eye = torch.eye(S.shape[-1], dtype=torch.bool, device=S.device)
    F = torch.where(eye, torch.zeros_like(gaps), 1 / torch.where(eye, torch.ones_like(gaps), gaps))
    J, K = U.mT @ gU, V.mT @ gV
    inner = (F * (J - J.mT)) * S.unsqueeze(-2) + S.unsqueeze(-1) * (F * (K - K.mT)) + torch.diag_embed(gS)
    return U @ inner @ V.mT


def _outside_span(M: Tensor, U: Tensor, S: Tensor, V: Tensor, gU: Tensor, gV: Tensor, options: Options) -> Tensor:
    """The complement terms of one (unbatched) member, by conjugate gradient on the block system."""
    m, n = M.shape
    rhs = torch.cat([gU - U @ (U.mT @ gU), gV - V @ (V.mT @ gV)])
    if not bool(rhs.any()):
        return torch.zeros_like(M)

    def block(Y: Tensor) -> Tensor:
        Y1, Y2 = Y[:m], Y[m:]
        top = Y1 * S - M @ Y2
        bottom = Y2 * S - M.mT @ Y1
        return torch.cat([top - U @ (U.mT @ top), bottom - V @ (V.mT @ bottom)])  # stay in the complements

    operator = LinearOperator((m + n, m + n), block, dtype=M.dtype, device=M.device, symmetric=True, matmat=True)
    solution = run(SPDLinearSystem(operator, rhs), options, "svd (backward)").solution
    return solution[:m] @ V.mT + U @ solution[m:].mT


class _SVD(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, M: Tensor, U: Tensor, S: Tensor, V: Tensor, options: Options) -> tuple[Tensor, ...]:
        ctx.save_for_backward(M, U, S, V)
        ctx.options = options
        return U.clone(), S.clone(), V.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gU: Optional[Tensor], gS: Optional[Tensor], gV: Optional[Tensor]) -> tuple[Any, ...]:
        M, U, S, V = ctx.saved_tensors
        gU = torch.zeros_like(U) if gU is None else gU
        gS = torch.zeros_like(S) if gS is None else gS
        gV = torch.zeros_like(V) if gV is None else gV
        grad = _in_span(U, S, V, gU, gS, gV)
        def members(t: Tensor, dims: int) -> Tensor:
            return t.reshape(-1, *t.shape[-dims:])

        Ms, Us, Ss, Vs, gUs, gVs = (members(M, 2), members(U, 2), members(S, 1), members(V, 2), members(gU, 2),
                                    members(gV, 2))
        outside = [_outside_span(Ms[i], Us[i], Ss[i], Vs[i], gUs[i], gVs[i], ctx.options.adjoint())
                   for i in range(Ms.shape[0])]
        return grad + torch.stack(outside).reshape(M.shape), None, None, None, None


def svd_ex(M: Tensor, rank: Optional[int] = None, *, init: Any = None, optimizer: Any = None,
           tol: Optional[float] = None, residual_tol: Optional[float] = None, rtol: Optional[float] = None,
           max_steps: Optional[int] = None, check: bool = False) -> tuple[SVDResult, Result]:
    """:func:`svd` that also returns the :class:`~torch_gdla.Result` (``check=False`` by default)."""
    options = Options(optimizer, tol, residual_tol, rtol, max_steps, check)
    result = run(SVD(M.detach(), rank=rank), options, "svd")
    U, S, V = result.solution
    if wants_grad(M):
        U, S, V = _SVD.apply(M, U, S, V, options)
    return SVDResult(U, S, V), result


def svd(M: Tensor, rank: Optional[int] = None, **options: Any) -> SVDResult:
    """The top-``rank`` singular triplets of M (…, m, n) — all min(m, n) when rank is None — as
    ``(U, S, V)`` with orthonormal columns, S descending and signs normalised (the largest entry
    of each U column positive).  Note ``V``, not torch's ``Vh``.  Options as for
    :func:`~torch_gdla.linalg.solve`.  Differentiable in M (see the module's note: exact for
    the truncated case too, by one conjugate-gradient solve on the complements)."""
    options.setdefault("check", True)
    return svd_ex(M, rank, **options)[0]
