"""Nonlinear conjugate gradient written to the torch.optim contract."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lbfgs import _strong_wolfe


class ConjugateGradient(Optimizer):
    """Polak–Ribière+ conjugate gradient; one iteration per ``step(closure)``.

    With ``quadratic=True`` (the loss is a quadratic function of the parameters, as for
    ``MatrixInverse`` and ``LinearSystem``) the step length is exact: the curvature along the
    search direction comes from one extra gradient, ``H d = ∇f(x + s d) − ∇f(x)``, so an
    iteration costs two evaluations and the method is linear CG (n iterations at most in exact
    arithmetic, fewer when the Hessian has repeated eigenvalues).  Otherwise a strong-Wolfe
    line search picks the step.  Gradients are exact differences, never loss differences, so
    the method keeps converging where loss values no longer change in floating point.

    Args:
        params: parameters (one group).
        quadratic: use the exact step length of a quadratic loss.
        restart_every: reset the direction to −∇f every this many iterations (default: the
            number of unknowns).
        lr: initial step of the line search (non-quadratic losses only).
        max_ls: line-search evaluations per iteration at most (non-quadratic losses only).
    """

    def __init__(self, params: Iterable[Any], quadratic: bool = False, restart_every: Optional[int] = None,
                 lr: float = 1.0, max_ls: int = 25) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be positive; got {lr}")
        defaults = dict(quadratic=quadratic, restart_every=restart_every, lr=lr, max_ls=max_ls)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("ConjugateGradient takes one parameter group")
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

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Tensor]] = None) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise RuntimeError("ConjugateGradient needs a closure that re-evaluates the loss, as LBFGS does")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        with torch.enable_grad():
            loss = closure()
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
        if group["quadratic"]:
            # Probe far enough that H d is well above the rounding of the gradients.
            probe = max(1.0, float(x.norm())) / float(d.norm())
            _, g_probe = self._evaluate_at(closure, x, probe, d)
            curvature = float(d.dot(g_probe - g)) / probe
            if curvature > 0:
                self._add(-gtd / curvature, d)
                return loss
            # Non-positive curvature: the loss is not convex along d; fall back to a line search.
        t0 = group["lr"] * (min(1.0, 1.0 / float(g.abs().sum())) if k == 0 else state.get("t0", 1.0))
        _, _, t, _ = _strong_wolfe(
            lambda x_, t_, d_: self._evaluate_at(closure, x_, t_, d_), x, t0, d, value, g, gtd,
            max_ls=group["max_ls"],
        )
        state["t0"] = max(float(t) * gtd / float(g.dot(-g)) if k > 0 else float(t), 1e-12)  # Nocedal & Wright (3.60)
        self._add(float(t), d)
        return loss
