"""Krylov methods for problems whose loss is a linear least-squares or SPD energy form.

A quadratic problem can describe its loss as a :class:`LinearForm` (an operator, a right-hand
side, how the unknown reads as columns); :class:`Krylov` then runs the classical method on it,
written to the torch.optim contract:

* conjugate gradient (CG, Hestenes–Stiefel) for a symmetric positive definite operator: ONE
  operator application per iteration, as ``scipy.sparse.linalg.cg``;
* CGLS (CG on the normal equations, without forming AᵀA) otherwise: ONE ``A`` and ONE ``Aᵀ``
  application per iteration, as ``scipy.sparse.linalg.lsqr``.

Each column of the unknown (a right-hand side, a row of an inverse) and each batch member runs
its own recurrence.  The loss and the residual come from the recurrences, so ``step()`` needs no
closure (``self_evaluating``); the engine confirms any convergence they suggest with the
problem's own residual, computed from the data, and calls :meth:`Krylov.refresh` (residual
replacement) if the recurrences have drifted.  ``preconditioner`` applies M⁻¹ (preconditioned
CG; for CGLS a right preconditioner, which must be symmetric, e.g. a diagonal).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor
from torch.optim import Optimizer

from ..errors import ArgumentError, NotConvergedError

Block = Callable[[Tensor], Tensor]


@dataclass
class LinearForm:
    """A problem's loss in Krylov terms; blocks have shape ``(*batch, rows, k)``.

    Args:
        apply: ``P -> A P`` (weighted rows already applied for a weighted problem).
        apply_t: ``S -> Aᵀ S``.
        rhs: ``B``.
        columns: the unknown parameter -> its ``(*batch, n, k)`` column view (writes go through).
        spd: A is symmetric positive definite: CG; else CGLS on ``‖AX − B‖² + l2‖X‖²``.
        energy: the loss is ``scale·Σ(½xᵀAx − bᵀx)`` (SPD only); else ``scale·(‖AX − B‖² + l2‖X‖²)``.
        scale: the loss's factor.
        normal_residual: the problem's residual is ``‖Aᵀ(B − AX) − l2 X‖`` per member (least
            squares); else ``‖B − AX‖``.
        residual_norms: the residual's per-member denominators (0: absolute).
        l2: ridge damping (CGLS only).
        preconditioner: ``P -> M⁻¹ P`` or None.
        counts: columns per application (k), for the operator-application statistics.
    """

    apply: Block
    apply_t: Block
    rhs: Tensor
    columns: Callable[[Tensor], Tensor]
    spd: bool
    energy: bool
    scale: float
    normal_residual: bool
    residual_norms: Tensor
    l2: float = 0.0
    preconditioner: Optional[Block] = None
    cgls_preconditioner: Optional[Block] = None  # after a switch from CG (an indefinite A) to CGLS


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-column inner products (*batch, rows, k) -> (*batch, k), accumulated in float64: the
    squared norms of CG and CGLS span the square of the data's range, which under- or overflows
    float32 for a badly scaled problem (entries ~1e-9 give ‖Aᵀ A p‖² ~ 1e-36) long before the
    iterates do."""
    if a.dtype != torch.float64:
        a, b = a.double(), b.double()
    if a.dim() == 2 and a.shape[-1] == 1:  # one vector: BLAS dot, without a temporary
        return torch.dot(a[:, 0], b[:, 0]).reshape(1)
    return (a * b).sum(dim=-2)


def _column(scalars: Tensor, like: Tensor) -> Tensor:
    """Per-column scalars (*batch, k) as a (*batch, 1, k) factor in ``like``'s dtype."""
    return scalars.unsqueeze(-2).to(like.dtype)


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator/denominator where the denominator is positive, else 0 (a converged column)."""
    return torch.where(denominator > 0, numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny),
                       torch.zeros_like(numerator))


class Krylov(Optimizer):
    """CG or CGLS on a :class:`LinearForm`, one iteration per ``step()``.

    Args:
        params: the problem's parameters (exactly one tensor: the unknown).
        form: the problem's :class:`LinearForm` (``problem.linear_form()``).
        on_indefinite: what to do when CG meets a direction of non-positive curvature (A is not
            positive definite): ``"raise"`` (the caller declared A SPD) or ``"cgls"`` (switch to
            CGLS from the current point: the default for a matrix found symmetric).
    """

    self_evaluating = True  # step() returns the loss at the new iterate; the closure is not called

    def __init__(self, params: Iterable[Any], form: LinearForm, on_indefinite: str = "raise") -> None:
        super().__init__(params, defaults={})
        flat = [p for group in self.param_groups for p in group["params"]]
        if len(flat) != 1:
            raise ArgumentError(f"Krylov optimizes exactly one tensor (the problem's unknown); got {len(flat)}")
        if on_indefinite not in ("raise", "cgls"):
            raise ArgumentError(f"on_indefinite must be 'raise' or 'cgls'; got {on_indefinite!r}")
        self.param = flat[0]
        self.form = form
        self.on_indefinite = on_indefinite
        self.method = "cg" if form.spd else "cgls"
        self.applications = 0  # A applications (columns), as scipy counts matvecs
        self.adjoint_applications = 0  # Aᵀ applications (columns)

    # -- operator applications, counted -----------------------------------------------------------------
    def _A(self, P: Tensor) -> Tensor:
        self.applications += P.shape[-1] * max(1, P[..., 0, 0].numel())
        return self.form.apply(P)

    def _At(self, S: Tensor) -> Tensor:
        self.adjoint_applications += S.shape[-1] * max(1, S[..., 0, 0].numel())
        return self.form.apply_t(S)

    def _M(self, R: Tensor) -> Tensor:
        return R if self.form.preconditioner is None else self.form.preconditioner(R)

    @property
    def stats(self) -> dict[str, int]:
        return {"matvecs": self.applications, "rmatvecs": self.adjoint_applications}

    # -- recurrences --------------------------------------------------------------------------------------
    @torch.no_grad()
    def refresh(self) -> None:
        """Restart the recurrences from the true residual at the current point (residual
        replacement): costs one A application (and one Aᵀ for CGLS)."""
        X = self.form.columns(self.param)
        state = self.state[self.param]
        S = self.form.rhs - self._A(X) if bool(X.any()) else self.form.rhs.clone()
        if self.method == "cg":
            R = S
        else:
            R = self._At(S)
            if self.form.l2:
                R = R - self.form.l2 * X
        Z = self._M(R)
        rz = _dot(R, Z)
        plain = self.form.preconditioner is None
        state.update(ss=rz if plain and self.method == "cg" else _dot(S, S), rr=rz if plain else _dot(R, R))
        if "floor" not in state:
            # A column whose rᵀz falls to rounding level — eps² of its value at x = 0, the scale of
            # the problem — has converged as far as the arithmetic allows; stepping it further
            # divides noise by noise (an inconsistent singular system would blow up), so its step
            # is zero from then on.
            at_zero = rz if not bool(X.any()) else self._rz_at_zero()
            state["floor"] = at_zero * torch.finfo(self.param.dtype).eps ** 2  # the data's eps, not float64's
        state.update(S=S, R=R, P=Z.clone(), rz=rz, indefinite=torch.zeros((), dtype=torch.bool, device=R.device))

    def _rz_at_zero(self) -> Tensor:
        """rᵀM⁻¹r at x = 0: r = B (CG) or AᵀB (CGLS; one Aᵀ application)."""
        R = self.form.rhs if self.method == "cg" else self._At(self.form.rhs)
        return _dot(R, self._M(R))

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Tensor]] = None) -> Tensor:  # type: ignore[override]
        state = self.state[self.param]
        if "R" not in state:
            self.refresh()
        if self.method == "cg":
            self._cg(state)
        else:
            self._cgls(state)
        if not bool((state["rz"] <= state["floor"]).all()):
            state["settled"] = False
        elif not state.get("settled", False):
            # Every column's recurrence is at its rounding floor: restart once from the true
            # residual (residual replacement) — a start far from the solution leaves rounding of
            # its own size in the recurrences, which the true residual does not have.
            state["settled"] = True
            self.refresh()
        return self.loss()

    def _cg(self, state: dict[str, Tensor]) -> None:
        X, P, R, rz = self.form.columns(self.param), state["P"], state["R"], state["rz"]
        Q = self._A(P)
        curvature = _dot(P, Q)
        active = rz > state["floor"]
        state["indefinite"] = state["indefinite"] | (active & (curvature <= 0)).any()
        if self.param.device.type == "cpu" and bool(state["indefinite"]):
            return self._indefinite(state)
        alpha = _column(_ratio(torch.where(active, rz, torch.zeros_like(rz)), curvature), P)
        X.addcmul_(alpha, P)
        R.addcmul_(alpha, Q, value=-1)
        Z = self._M(R)
        rz_new = _dot(R, Z)
        P.mul_(_column(_ratio(rz_new, rz), P)).add_(Z)
        rr = rz_new if self.form.preconditioner is None else _dot(R, R)
        state.update(S=R, rz=rz_new, ss=rr, rr=rr)

    def _cgls(self, state: dict[str, Tensor]) -> None:
        X, P, R, S, rz = self.form.columns(self.param), state["P"], state["R"], state["S"], state["rz"]
        Q = self._A(P)
        denominator = _dot(Q, Q) + self.form.l2 * _dot(P, P) if self.form.l2 else _dot(Q, Q)
        alpha = _column(_ratio(torch.where(rz > state["floor"], rz, torch.zeros_like(rz)), denominator), P)
        X.addcmul_(alpha, P)
        S.addcmul_(alpha, Q, value=-1)
        R = self._At(S)
        if self.form.l2:
            R = R - self.form.l2 * X
        Z = self._M(R)
        rz_new = _dot(R, Z)
        P.mul_(_column(_ratio(rz_new, rz), P)).add_(Z)
        rr = rz_new if self.form.preconditioner is None else _dot(R, R)
        state.update(R=R, rz=rz_new, ss=_dot(S, S), rr=rr)

    def _indefinite(self, state: dict[str, Tensor]) -> None:
        if self.on_indefinite == "raise":
            raise NotConvergedError(
                'the matrix is not positive definite: conjugate gradient met a direction p with pᵀAp <= 0. '
                'Drop assume="spd" (the default least-squares method needs no definiteness)')
        self.method = "cgls"  # a symmetric but indefinite matrix: CG on the normal equations instead
        self.form.preconditioner = self.form.cgls_preconditioner
        self.refresh()

    # -- what the engine reads ------------------------------------------------------------------------------
    @torch.no_grad()
    def loss(self) -> Tensor:
        """The problem's loss at the current iterate, from the recurrences (no application)."""
        form, state = self.form, self.state[self.param]
        X = form.columns(self.param)
        if form.energy:  # ½xᵀAx − bᵀx = −½xᵀ(b + r) with r = b − Ax
            value = -0.5 * _dot(X, form.rhs + state["S"]).sum()
        else:  # ‖S‖² per column, kept by the step
            value = state["ss"].sum() + (form.l2 * _dot(X, X).sum() if form.l2 else 0.0)
        return (form.scale * value).to(self.param.dtype)

    @torch.no_grad()
    def residual_estimate(self) -> Tensor:
        """The problem's relative residual per member, from the recurrences."""
        state = self.state[self.param]
        if bool(state.get("indefinite", False)):
            self._indefinite(state)
        if "R" not in state:
            self.refresh()
        squares = state["rr"] if self.form.normal_residual else state["ss"]
        norms = squares.sum(dim=-1).sqrt().to(self.param.dtype)  # columns of a member together
        denominators = self.form.residual_norms
        return torch.where(denominators > 0, norms / denominators.clamp_min(torch.finfo(norms.dtype).tiny), norms)
