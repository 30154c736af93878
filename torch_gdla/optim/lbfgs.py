"""L-BFGS written to the torch.optim contract, one iteration per ``step(closure)``.

``torch.optim.LBFGS`` runs up to ``max_iter`` iterations in one ``step()`` and re-evaluates the
loss at the start of every call.  Here a step is one iteration, so the engine's stopping rules
(stall, residual, max_steps) judge every iteration, and the loss and gradient at the current
point are kept from the line search that found it, so an iteration costs only its line-search
evaluations (one, mostly), as ``scipy.optimize.minimize(method="L-BFGS-B")`` does.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor

from ..errors import ArgumentError
from ..validation import check_number, check_positive_int
from .line_search import Trial, strong_wolfe

Closure = Callable[[], Tensor]


# The two-loop recursion (Nocedal & Wright, Alg. 7.4) needs only inner products of g with the
# kept s and y, and of the s and y with each other: those come from ONE product of the
# stacked (2m × d) pairs with g, and the small Gram matrices grow by one row and column per
# new pair; the recursion itself then runs on m numbers on the host (Python floats: cheaper
# than tensor operations at this size), and the direction is one more product.  The textbook
# arithmetic in 4 tensor operations instead of ~4m.
def direction(state: dict[str, Any], g: Tensor, memory: int) -> Tensor:
    """−H g over the pairs kept in ``state`` (oldest first)."""
    order: list[int] = state["order"]
    if not order:
        return g.neg()
    pairs: Tensor = state["pairs"]  # rows: s of every slot, then y of every slot
    products = (pairs @ g).tolist()
    SY, YY, rho, gamma, k = state["SY"], state["YY"], state["rho"], state["gamma"], len(order)
    alpha = [0.0] * k
    for i in range(k - 1, -1, -1):  # α_i = ρ_i s_iᵀq, q = g − Σ_{j>i} α_j y_j
        row, total = SY[i], products[order[i]]
        for j in range(i + 1, k):
            total -= alpha[j] * row[j]
        alpha[i] = rho[i] * total
    beta = [0.0] * k
    for i in range(k):  # β_i = ρ_i y_iᵀr, r = γ(g − Y α) + Σ_{j<i} (α_j − β_j) s_j
        row, total = YY[i], products[memory + order[i]]
        for j in range(k):
            total -= alpha[j] * row[j]
        total *= gamma
        for j in range(i):
            total += (alpha[j] - beta[j]) * SY[j][i]
        beta[i] = rho[i] * total
    coefficients = [0.0] * (2 * memory)
    for i, slot in enumerate(order):
        coefficients[slot], coefficients[memory + slot] = alpha[i] - beta[i], -gamma * alpha[i]
    combination = torch.tensor(coefficients, dtype=pairs.dtype, device=pairs.device) @ pairs
    return -(gamma * g + combination)

def remember(state: dict[str, Any], s: Tensor, y: Tensor, memory: int) -> None:
    """Keep the curvature pair (s, y), forgetting the oldest of ``memory``."""
    if "pairs" not in state:
        state["pairs"] = s.new_zeros(2 * memory, s.numel())
    order: list[int] = state["order"]
    ys, yy, ss = float(y.dot(s)), float(y.dot(y)), float(s.dot(s))
    # Only pairs of positive curvature keep H positive definite; the strong-Wolfe conditions
    # guarantee it in exact arithmetic, rounding can break it near the floor.
    if not math.isfinite(ys) or ys <= 1e-10 * math.sqrt(yy * ss):
        return
    SY, YY, rho = state["SY"], state["YY"], state["rho"]
    if len(order) == memory:  # forget the oldest pair
        slot = order.pop(0)
        for gram in (SY, YY):
            gram.pop(0)
            for row in gram:
                row.pop(0)
        rho.pop(0)
    else:
        slot = len(order)
    pairs = state["pairs"]
    pairs[slot], pairs[memory + slot] = s, y
    order.append(slot)
    new = (pairs @ torch.stack([s, y], dim=1)).tolist()  # [Sᵀs, Sᵀy; Yᵀs, Yᵀy] over the slots
    for i, other in enumerate(order[:-1]):
        SY[i].append(new[other][1])  # s_iᵀ y_new
        YY[i].append(new[memory + other][1])
    SY.append([new[memory + other][0] for other in order])  # s_newᵀ y_j, the last s_newᵀ y_new
    YY.append([new[memory + other][1] for other in order])
    rho.append(1.0 / ys)
    state["gamma"] = ys / yy

def forget(state: dict[str, Any]) -> None:
    """Drop every pair (the next direction is −∇f)."""
    for key in ("order", "SY", "YY", "rho"):  # lists of Python numbers: checkpoints load them weights-only
        state[key] = []


class LBFGS(torch.optim.LBFGS):
    """Limited-memory BFGS with a strong-Wolfe line search (Nocedal & Wright, Alg. 7.4 and 3.5).

    Each ``step(closure)`` is one iteration: the two-loop recursion gives the direction from the
    last ``history_size`` curvature pairs, scaled by γ = sᵀy / yᵀy; the line search
    (:func:`~.line_search.strong_wolfe`, cubic interpolation, constants ``c1``, ``c2``) tries the unit
    step first (the first iteration: a step of length 1 along the normalised gradient, as
    L-BFGS-B's first iteration).  The loss and gradient at the accepted point are kept for the
    next step; they are re-evaluated only if the parameters were changed in between.

    A line search that fails along −∇f (after the history is dropped) means the loss cannot be
    decreased at this precision: later steps then evaluate the loss once and leave the point
    alone, so the solver's stall rule ends the run and names the floor.

    Args:
        params: parameters (one group).
        history_size: curvature pairs kept (L-BFGS-B's default is 10).
        max_ls: line-search evaluations per iteration at most.
        c1, c2: the strong-Wolfe constants (sufficient decrease, curvature).
    """

    tuning_free = True  # no learning rate to tune: a stall is not the step size's fault

    def __init__(self, params: Iterable[Any], history_size: int = 10, max_ls: int = 25, c1: float = 1e-4,
                 c2: float = 0.9) -> None:
        check_positive_int(history_size, "history_size")
        check_positive_int(max_ls, "max_ls")
        check_number(c1, "c1", positive=True, meaning="the sufficient-decrease constant, e.g. 1e-4")
        check_number(c2, "c2", positive=True, meaning="the curvature constant, e.g. 0.9")
        if not c1 < c2 < 1:
            raise ArgumentError(f"the strong-Wolfe constants need 0 < c1 < c2 < 1; got c1={c1}, c2={c2}")
        # A torch.optim.LBFGS with a strong-Wolfe search taking one iteration per step (so it is
        # known, e.g. to the solver's advice, as the tuning-free method it is); torch's step, its
        # tolerances and max_iter/max_eval are not used.
        super().__init__(params, lr=1.0, max_iter=1, history_size=history_size, line_search_fn="strong_wolfe")
        for group in (self.defaults, *self.param_groups):
            group.update(max_ls=max_ls, c1=c1, c2=c2)

    # -- flat views --------------------------------------------------------------------------------
    def _flat_params(self) -> Tensor:
        """A copy of the parameters, flattened."""
        return torch.cat([p.detach().reshape(-1) for p in self._params])

    def _flat_grad(self) -> Tensor:
        """A copy of the gradient, flattened (zero where a parameter has none)."""
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1)
                          for p in self._params])

    def _set(self, flat: Tensor, t: float = 0.0, d: Optional[Tensor] = None) -> None:
        """The parameters = flat (+ t·d)."""
        offset = 0
        for p in self._params:
            n = p.numel()
            p.copy_(flat[offset: offset + n].view_as(p))
            if d is not None:
                p.add_(d[offset: offset + n].view_as(p), alpha=t)
            offset += n

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As ``Optimizer.zero_grad``, without its profiler record (called once per evaluation)."""
        for p in self._params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.detach_().zero_()

    def _evaluate(self, closure: Closure) -> tuple[float, Tensor]:
        with torch.enable_grad():
            loss = float(closure().detach())
        return loss, self._flat_grad()

    def _evaluate_at(self, closure: Closure, x: Tensor, t: float, d: Tensor) -> tuple[float, Tensor]:
        self._set(x, t, d)
        return self._evaluate(closure)

    # -- one iteration -------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Closure] = None) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise RuntimeError("LBFGS needs a closure that re-evaluates the loss and its gradient")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        if "order" not in state:
            forget(state)
        x = self._flat_params()
        evaluated = False
        kept = state.get("x")
        if kept is not None and kept.shape == x.shape and torch.equal(kept, x):
            loss, g = state["loss"], state["g"]
        else:
            loss, g = self._evaluate(closure)
            evaluated = True
            state["stuck"] = False
        if state.get("stuck") or not math.isfinite(loss) or not bool(torch.isfinite(g).all()) or not bool(g.any()):
            if not evaluated:  # the engine needs one evaluation per step; nothing else is done
                loss, g = self._evaluate(closure)
            return torch.tensor(loss)
        d = direction(state, g, group["history_size"])
        gtd = float(g.dot(d))
        if not gtd < 0:  # rounding made H indefinite: drop the history, go downhill
            forget(state)
            d, gtd = g.neg(), -float(g.dot(g))
        t = 1.0 if state["order"] else 1.0 / float(g.norm())

        def evaluate(step: float) -> Trial:
            self._set(x, step, d)
            value, gradient = self._evaluate(closure)
            return Trial(step, value, gradient, float(gradient.dot(d)))

        eps = torch.finfo(x.dtype).eps
        # The bracket is resolved down to steps that move x by a few ulps.
        tolerance = eps * max(1.0, float(x.norm())) / max(float(d.norm()), torch.finfo(x.dtype).tiny)
        # Losses this close compare as equal (the engine's best-so-far tie rule uses the same 8 ulps).
        tie = 8 * eps * abs(loss)
        found = strong_wolfe(evaluate, Trial(0.0, loss, g, gtd), t, group["c1"], group["c2"], group["max_ls"], tolerance,
                             tie)
        if found.t == 0.0 or found.g is None:
            self._set(x)
            # No decrease along this direction: retry along −∇f next step; if even that fails,
            # the loss is at its floor (see the class docstring).
            state["stuck"] = not state["order"]
            forget(state)
            state.update(x=x, loss=loss, g=g)
            return torch.tensor(loss)
        self._set(x, found.t, d)
        x_new = self._flat_params()
        remember(state, x_new - x, found.g - g, group["history_size"])
        state.update(x=x_new, loss=found.f, g=found.g)
        return torch.tensor(loss)
