"""Nonlinear conjugate gradient written to the torch.optim contract."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lbfgs import _strong_wolfe

from ..errors import ArgumentError
from ..validation import check_nonnegative_int, check_number, check_positive_int

# The probe's gradient change should be within this factor of the gradient (see _quadratic_step);
# a first probe outside the range is rescaled, at most PROBE_TRIES evaluations in all.
PROBE_RANGE = 1e3
PROBE_TRIES = 6


class ConjugateGradient(Optimizer):
    """Polak–Ribière+ conjugate gradient; one iteration per ``step(closure)``.

    With ``quadratic=True`` (the loss is a quadratic function of the parameters, as for
    ``MatrixInverse`` and ``LinearSystem``) the step length is exact: the curvature along the
    search direction comes from one extra gradient, ``H d = ∇f(x + s d) − ∇f(x)``, so an
    iteration costs two evaluations and the method is linear CG (n iterations at most in exact
    arithmetic, fewer when the Hessian has repeated eigenvalues).  Otherwise a strong-Wolfe
    line search picks the step.  Gradients are exact differences, never loss differences, so
    the method keeps converging where loss values no longer change in floating point.

    With ``batch_dims=b`` (quadratic losses only) the first ``b`` dimensions of every parameter
    index independent problems whose losses are summed (a batched problem): step lengths and
    conjugation coefficients are computed per member, so each member runs its own CG,
    unaffected by its neighbours' scale, and the step involves no host synchronisation.

    Args:
        params: parameters (one group).
        quadratic: use the exact step length of a quadratic loss.
        batch_dims: leading dimensions that index independent members (quadratic losses).
        restart_every: reset the direction to −∇f every this many iterations (default: never
            for quadratic losses, the number of unknowns otherwise).
        lr: initial step of the line search (non-quadratic losses only).
        max_ls: line-search evaluations per iteration at most (non-quadratic losses only).
    """

    tuning_free = True  # no learning rate to tune: a stall is not the step size's fault

    def __init__(self, params: Iterable[Any], quadratic: bool = False, restart_every: Optional[int] = None,
                 lr: float = 1.0, max_ls: int = 25, batch_dims: int = 0) -> None:
        check_number(lr, "lr", positive=True, meaning="the line search's first step")
        check_positive_int(max_ls, "max_ls")
        check_nonnegative_int(batch_dims, "batch_dims")
        check_positive_int(restart_every, "restart_every", allow_none=True)
        if batch_dims and not quadratic:
            raise ArgumentError("batch_dims is supported for quadratic losses only (quadratic=True)")
        defaults = dict(quadratic=quadratic, restart_every=restart_every, lr=lr, max_ls=max_ls, batch_dims=batch_dims)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ArgumentError("ConjugateGradient takes one parameter group")
        self._params: list[Tensor] = self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in self._params])

    def _flat_params(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._params])

    def _add(self, scale: float, direction: Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.add_(direction[offset: offset + n].view_as(p), alpha=scale)
            offset += n

    def _set(self, flat: Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.copy_(flat[offset: offset + n].view_as(p))
            offset += n

    def _evaluate_at(self, closure: Callable[[], Tensor], x: Tensor, t: float, d: Tensor) -> tuple[float, Tensor]:
        self._add(t, d)
        with torch.enable_grad():
            loss = float(closure().detach())
        grad = self._flat_grad()
        self._set(x)
        return loss, grad

    # -- quadratic losses: exact step, per batch member, no host synchronisation --------------------
    def _dot(self, a: list[Tensor], b: list[Tensor]) -> Tensor:
        bdims = self.param_groups[0]["batch_dims"]
        terms = [(x * y).sum(dim=tuple(range(bdims, x.dim()))) if x.dim() > bdims else x * y for x, y in zip(a, b)]
        total = terms[0]  # an optimizer has at least one parameter
        for term in terms[1:]:
            total = total + term
        return total

    def _per_member(self, scalar: Tensor, like: Tensor) -> Tensor:
        bdims = self.param_groups[0]["batch_dims"]
        return scalar.reshape(scalar.shape + (1,) * (like.dim() - bdims))

    def _grads(self) -> list[Tensor]:
        return [(p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone() for p in self._params]

    def _quadratic_step(self, closure: Callable[[], Tensor], loss: Tensor) -> Tensor:
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        g = self._grads()
        k = state.get("k", 0)
        # Linear CG needs no periodic restart (gradients are recomputed, not recurred, and a
        # non-descent direction restarts that member); restarting at n would discard the Krylov
        # space just when rounding makes CG need a few more than n iterations.
        restart = group["restart_every"]
        d = [-gi for gi in g]
        if (not restart or k % restart != 0) and "d" in state:
            previous_g, previous_d = state["g"], state["d"]
            denominator = self._dot(previous_g, previous_g)
            numerator = self._dot(g, [gi - pi for gi, pi in zip(g, previous_g)])
            beta = torch.where(denominator > 0, numerator / denominator.clamp_min(torch.finfo(denominator.dtype).tiny),
                               torch.zeros_like(numerator)).clamp_min(0)
            d = [-gi + self._per_member(beta, gi) * di for gi, di in zip(g, previous_d)]
            descent = self._dot(g, d) < 0  # else restart that member along -g
            d = [torch.where(self._per_member(descent, gi), di, -gi) for gi, di in zip(g, d)]
        state["k"] = k + 1
        state["g"], state["d"] = g, d
        gtd = self._dot(g, d)
        tiny = torch.finfo(gtd.dtype).tiny
        # The curvature dᵀHd comes from the gradient at a probe point x + t·d.  For it to be exact
        # to rounding, the gradient change must be of the order of the gradient itself: much
        # smaller and it drowns in the gradients' rounding, much larger and so does the gradient.
        # The last step length is such a t (CG's steps have similar lengths); the first probe is
        # rescaled until the change is within PROBE_RANGE of |g|, whatever the scale of the problem.
        g_norm = self._dot(g, g).sqrt()
        d_norm = self._dot(d, d).sqrt()
        x_norm = self._dot([p.detach() for p in self._params], [p.detach() for p in self._params]).sqrt()
        previous = state.get("alpha")
        first = torch.where(x_norm > 0, x_norm, torch.ones_like(x_norm)) / d_norm.clamp_min(tiny)
        probe = torch.where(previous > 0, previous, first) if previous is not None else first
        probe = torch.where(d_norm > 0, probe, torch.zeros_like(probe))
        start = [p.detach().clone() for p in self._params]  # restored by copy: x + t·d − t·d can lose x
        for _ in range(PROBE_TRIES):
            for p, di in zip(self._params, d):
                p.add_(self._per_member(probe, p) * di)
            with torch.enable_grad():
                closure()
            g_probe = self._grads()
            for p, x in zip(self._params, start):
                p.copy_(x)
            change = [gp - gi for gp, gi in zip(g_probe, g)]
            ratio = self._dot(change, change).sqrt() / g_norm.clamp_min(tiny)
            off = (d_norm > 0) & ((ratio < 1 / PROBE_RANGE) | (ratio > PROBE_RANGE))
            if not bool(off.any()):
                break
            # rescale towards |Δg| ≈ |g|; a change lost entirely to rounding was below eps·|g|: go 1/eps further
            lost = 1 / torch.finfo(ratio.dtype).eps
            scale = torch.where(ratio > 0, 1 / ratio.clamp_min(tiny), torch.full_like(ratio, lost))
            probe = torch.where(off, probe * scale.clamp(max=1 / tiny), probe)
        # dᵀHd·t; the step is −gᵀd / dᵀHd, formed without dᵀHd itself, which underflows for a
        # badly scaled problem (float32, |g| ~ 1e-11) while the step is representable.
        curvature = self._dot(d, change)
        # Members that are converged (d = 0) or not convex along d take no step.
        alpha = torch.where(curvature > 0, -(gtd * probe) / curvature.clamp_min(tiny), torch.zeros_like(curvature))
        for p, di in zip(self._params, d):
            p.add_(self._per_member(alpha, p) * di)
        state["alpha"] = alpha
        return loss

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Tensor]] = None) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise RuntimeError("ConjugateGradient needs a closure that re-evaluates the loss, as LBFGS does")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        with torch.enable_grad():
            loss = closure()
        if group["quadratic"]:
            return self._quadratic_step(closure, loss)
        value = float(loss.detach())
        g = self._flat_grad()
        if not math.isfinite(value) or not bool(torch.isfinite(g).all()):
            return loss
        k = state.get("k", 0)
        restart = group["restart_every"] or g.numel()
        d = -g
        if k % restart != 0 and "d" in state:
            previous_g, previous_d = state["g"], state["d"]
            denominator = previous_g.dot(previous_g)
            beta = max(0.0, float(g.dot(g - previous_g) / denominator)) if denominator > 0 else 0.0
            d = -g + beta * previous_d
            if float(g.dot(d)) >= 0:  # not a descent direction: restart
                d = -g
        gtd = float(g.dot(d))
        state["k"] = k + 1
        state["g"], state["d"] = g, d
        if gtd == 0.0:  # stationary point
            return loss
        x = self._flat_params()
        t0 = group["lr"] * (min(1.0, 1.0 / float(g.abs().sum())) if k == 0 else state.get("t0", 1.0))
        _, _, t, _ = _strong_wolfe(
            lambda x_, t_, d_: self._evaluate_at(closure, x_, t_, d_), x, t0, d, value, g, gtd,
            max_ls=group["max_ls"],
        )
        state["t0"] = max(float(t) * gtd / float(g.dot(-g)) if k > 0 else float(t), 1e-12)  # Nocedal & Wright (3.60)
        self._add(float(t), d)
        return loss
