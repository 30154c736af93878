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
from torch.optim import Optimizer
from torch.optim.lbfgs import _strong_wolfe

from ..errors import ArgumentError
from ..validation import check_number, check_positive_int

Closure = Callable[[], Tensor]


class LBFGS(Optimizer):
    """Limited-memory BFGS with a strong-Wolfe line search (Nocedal & Wright, Alg. 7.4 and 3.5).

    Each ``step(closure)`` is one iteration: the two-loop recursion gives the direction from the
    last ``history_size`` curvature pairs, scaled by γ = sᵀy / yᵀy; the line search
    (torch's ``_strong_wolfe``, cubic interpolation, constants ``c1``, ``c2``) tries the unit
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

    def __init__(self, params: Iterable[Any], history_size: int = 10, max_ls: int = 25, c1: float = 1e-4,
                 c2: float = 0.9) -> None:
        check_positive_int(history_size, "history_size")
        check_positive_int(max_ls, "max_ls")
        check_number(c1, "c1", positive=True, meaning="the sufficient-decrease constant, e.g. 1e-4")
        check_number(c2, "c2", positive=True, meaning="the curvature constant, e.g. 0.9")
        if not c1 < c2 < 1:
            raise ArgumentError(f"the strong-Wolfe constants need 0 < c1 < c2 < 1; got c1={c1}, c2={c2}")
        super().__init__(params, dict(history_size=history_size, max_ls=max_ls, c1=c1, c2=c2))
        if len(self.param_groups) != 1:
            raise ArgumentError("LBFGS takes one parameter group")
        self._params: list[Tensor] = self.param_groups[0]["params"]

    # -- flat views --------------------------------------------------------------------------------
    def _flat_params(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._params])

    def _flat_grad(self) -> Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().reshape(-1)
                          for p in self._params])

    def _set(self, flat: Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.copy_(flat[offset: offset + n].view_as(p))
            offset += n

    def _evaluate(self, closure: Closure) -> tuple[float, Tensor]:
        with torch.enable_grad():
            loss = float(closure().detach())
        return loss, self._flat_grad()

    def _evaluate_at(self, closure: Closure, x: Tensor, t: float, d: Tensor) -> tuple[float, Tensor]:
        self._set(x + t * d)
        return self._evaluate(closure)

    # -- the direction -------------------------------------------------------------------------------
    def _direction(self, g: Tensor, state: dict[str, Any]) -> Tensor:
        """−H g by the two-loop recursion over the kept pairs (oldest first in the lists)."""
        pairs: list[tuple[Tensor, Tensor, Tensor]] = state["pairs"]
        q = g.neg()
        alphas = []
        for s, y, rho in reversed(pairs):
            alpha = rho * s.dot(q)
            q.sub_(alpha * y)
            alphas.append(alpha)
        if pairs:
            q.mul_(state["gamma"])
        for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
            beta = rho * y.dot(q)
            q.add_((alpha - beta) * s)
        return q

    def _remember(self, state: dict[str, Any], s: Tensor, y: Tensor) -> None:
        ys = float(y.dot(s))
        # Only pairs of positive curvature keep H positive definite; the strong-Wolfe conditions
        # guarantee it in exact arithmetic, rounding can break it near the floor.
        if ys <= 1e-10 * float(y.dot(y)) ** 0.5 * float(s.dot(s)) ** 0.5 or not math.isfinite(ys):
            return
        pairs = state["pairs"]
        if len(pairs) == self.param_groups[0]["history_size"]:
            pairs.pop(0)
        pairs.append((s, y, torch.tensor(1.0 / ys, dtype=s.dtype, device=s.device)))
        state["gamma"] = ys / float(y.dot(y))

    # -- one iteration -------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Closure] = None) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise RuntimeError("LBFGS needs a closure that re-evaluates the loss and its gradient")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("pairs", [])
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
        d = self._direction(g, state)
        gtd = float(g.dot(d))
        if not gtd < 0:  # rounding made H indefinite: drop the history, go downhill
            state["pairs"].clear()
            d, gtd = g.neg(), -float(g.dot(g))
        t = 1.0 if state["pairs"] else 1.0 / float(g.norm())
        eps = torch.finfo(x.dtype).eps
        loss_new, g_new, t, _ = _strong_wolfe(
            lambda x_, t_, d_: self._evaluate_at(closure, x_, t_, d_), x, t, d, loss, g, gtd,
            c1=group["c1"], c2=group["c2"], tolerance_change=eps * max(1.0, float(x.norm())),
            max_ls=group["max_ls"])
        if not loss_new < loss:
            self._set(x)
            # No decrease along this direction: retry along −∇f next step; if even that fails,
            # the loss is at its floor (see the class docstring).
            state["stuck"] = not state["pairs"]
            state["pairs"].clear()
            state.update(x=x, loss=loss, g=g)
            return torch.tensor(loss)
        x_new = x + t * d
        self._set(x_new)
        self._remember(state, x_new - x, g_new - g)
        state.update(x=self._flat_params(), loss=loss_new, g=g_new)
        return torch.tensor(loss)
