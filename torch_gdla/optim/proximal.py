"""Proximal gradient (ISTA / FISTA) written to the torch.optim contract."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
from torch import Tensor
from torch.optim import Optimizer

from ..errors import ArgumentError
from ..validation import check_number


class ProximalGradient(Optimizer):
    """Proximal gradient for ``loss(x) = smooth(x) + l1·‖x‖₁``, optionally subject to ``x ≥ 0``.

    The closure returns the *whole* loss, ``l1·‖x‖₁`` included (so the same loss trains with
    Adam or SGD as a subgradient method).  The ``l1`` term's autograd gradient is
    ``l1·sign(x)`` (``0`` at ``x = 0``), which this optimizer removes to get the smooth
    gradient ``g``; each step is then the exact proximal step

        x ← prox(y − lr·g),   prox(v) = sign(v)·max(|v| − lr·l1, 0)   (then max(·, 0) if nonnegative)

    which produces exact zeros, so optimality measures such as the lasso's minimum-norm
    subgradient or the projected gradient of non-negative least squares go to zero.
    ``nonnegative`` alone (``l1 = 0``) is projected gradient descent.

    With ``accelerated=True`` (FISTA, Beck & Teboulle 2009) the gradient is taken at the
    extrapolated point ``y = x + β(x − x_prev)`` (projected onto ``x ≥ 0`` when nonnegative,
    so every evaluated point is feasible), with the gradient-based adaptive restart of
    O'Donoghue & Candès (2015) that recovers linear convergence on strongly convex problems.
    After each step the parameters hold the proximal iterate ``x``; the closure is called once
    per step, at ``y``.

    Args:
        params: parameters (one group).
        lr: step length; ``1/L`` for a smooth part whose gradient is ``L``-Lipschitz converges
            (``gdla.LinearSystem(..., l1=...).default_optimizer()`` computes it).
        l1: weight of ``‖x‖₁`` *as it appears in the loss* (in loss units).
        nonnegative: keep ``x ≥ 0``.
        accelerated: FISTA momentum (with adaptive restart) instead of plain ISTA.
    """

    tuning_free = True  # no learning rate to tune: a stall is not the step size's fault

    def __init__(self, params: Iterable[Any], lr: float, l1: float = 0.0, nonnegative: bool = False,
                 accelerated: bool = True) -> None:
        defaults = dict(lr=check_number(lr, "lr", positive=True, meaning="1/L for an L-Lipschitz gradient"),
                        l1=check_number(l1, "l1"), nonnegative=bool(nonnegative), accelerated=bool(accelerated))
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ArgumentError("ProximalGradient takes one parameter group")

    @staticmethod
    def _prox(v: Tensor, threshold: float, nonnegative: bool) -> Tensor:
        if threshold > 0:
            v = torch.sign(v) * (v.abs() - threshold).clamp_min(0)
        return v.clamp_min(0) if nonnegative else v

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise RuntimeError("ProximalGradient needs a closure that re-evaluates the loss")
        group = self.param_groups[0]
        lr, l1, nonnegative, accelerated = group["lr"], group["l1"], group["nonnegative"], group["accelerated"]
        params: list[Tensor] = [p for p in group["params"]]
        states = [self.state[p] for p in params]
        if not states[0]:
            for p, state in zip(params, states):
                start = self._prox(p.detach(), 0.0, nonnegative)  # a feasible start
                p.copy_(start)
                state["x"] = start.clone()
                state["previous"] = start.clone()
            states[0]["t"] = 1.0
            states[0]["beta"] = 0.0
        beta = states[0]["beta"] if accelerated else 0.0
        # Move to the extrapolated point y and evaluate the loss and its gradient there.
        points = []
        for p, state in zip(params, states):
            y = state["x"] + beta * (state["x"] - state["previous"]) if beta else state["x"].clone()
            if nonnegative:
                y.clamp_min_(0)
            p.copy_(y)
            points.append(y)
        with torch.enable_grad():
            loss = closure()
        restart = 0.0
        for p, state, y in zip(params, states, points):
            grad = p.grad if p.grad is not None else torch.zeros_like(p)
            if l1 > 0:
                grad = grad - l1 * torch.sign(y)  # the smooth part's gradient
            x_new = self._prox(y - lr * grad, lr * l1, nonnegative)
            restart += float(((y - x_new) * (x_new - state["x"])).sum())
            state["previous"] = state["x"]
            state["x"] = x_new
            p.copy_(x_new)
        if accelerated:
            state0 = states[0]
            if restart > 0:  # the momentum points uphill: restart it
                state0["t"], state0["beta"] = 1.0, 0.0
            else:
                t = state0["t"]
                t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
                state0["t"], state0["beta"] = t_next, (t - 1.0) / t_next
        return loss
