"""The coupled Newton–Schulz iteration for the square root of an SPD matrix (and its inverse).

For SPD M scaled by ``c ≥ λ_max(M)`` (a guaranteed bound: min(‖M‖_F, ‖M‖_∞)), the iteration

    Y₀ = M / c,   Z₀ = I,   T = (3I − Z Y) / 2,   Y ← Y T,   Z ← T Z

converges quadratically to Y = (M/c)^½ and Z = (M/c)^−½ (Higham, *Functions of Matrices*,
§6.3: the Newton–Schulz iteration for the sign of [[0, M/c], [I, 0]]; stable, and inverse-free:
three matrix products per step).  Eigenvalues of M/c far below 1 first grow by the factor ¾·3²
≈ 2.25 per step; the *scaled* variant used here multiplies Y and Z by α first, with α chosen
for the interval [ℓ, 1] known to hold the square roots of the eigenvalues of ZY (Chen & Chow,
2014: α = √(3 / (1 + ℓ + ℓ²)), after which the interval is [ℓ', 1]), which multiplies a small
eigenvalue by about 6.75 per step instead: κ = 10⁶ takes 12 steps instead of 23 (n = 80, 100).  ℓ
comes from a lower bound on λ_min(M)/c; an ℓ above the truth still converges (only the
acceleration is smaller), and c is never below λ_max, where scaling could flip a sign.

:class:`NewtonSchulz` runs it as a self-evaluating torch.optim optimizer: ``step()`` writes
X = √c·Y (or Z/√c for the inverse root) into the problem's unknown and returns the problem's loss
there; ``residual_estimate()`` is ‖ZY − I‖_F, which bounds the problem's relative residual in
exact arithmetic (equals it, divided by √n, for the inverse root); the engine confirms it from
the data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor
from torch.optim import Optimizer

from ..errors import ArgumentError


@dataclass
class RootForm:
    """A matrix square-root problem for :class:`NewtonSchulz`.

    Args:
        matrix: M (…, n, n), symmetric positive definite.
        inverse: the unknown is M^−½ (else M^½).
        loss: X -> the problem's loss at X (float).
        scale: c ≥ λ_max(M) per member (…, 1, 1).
        floor: a lower bound on λ_min(M)/c per member (…, 1, 1), for the scaling (0: unknown).
    """

    matrix: Tensor
    inverse: bool
    loss: Callable[[Tensor], float]
    scale: Tensor
    floor: Tensor


class NewtonSchulz(Optimizer):
    """The scaled coupled Newton–Schulz iteration on a :class:`RootForm`, one step per ``step()``.

    Args:
        params: the problem's unknown X (exactly one tensor, written in place).
        form: the problem's :class:`RootForm` (``problem.root_form()``).
        scaled: accelerate the first steps (see the module note); False gives the plain iteration.

    The iteration starts from M itself, not from the unknown's current value (it is not a
    descent on the loss): a warm start given to the problem is not used by this method.
    """

    self_evaluating = True
    tuning_free = True  # no learning rate to tune: a stall is not the step size's fault

    def __init__(self, params: Iterable[Any], form: RootForm, scaled: bool = True) -> None:
        super().__init__(params, defaults={})
        flat = [p for group in self.param_groups for p in group["params"]]
        if len(flat) != 1:
            raise ArgumentError(f"NewtonSchulz optimizes exactly one tensor (the square root); got {len(flat)}")
        self.param = flat[0]
        self.form = form
        self.scaled = bool(scaled)
        self.products = 0  # n × n matrix products (per batch member), the cost unit of this method

    @property
    def stats(self) -> dict[str, int]:
        return {"matrix products": self.products}

    @torch.no_grad()
    def refresh(self) -> None:
        """(Re)start the iteration from M: Y = M/c, Z = I."""
        M, scale = self.form.matrix, self.form.scale
        identity = torch.eye(M.shape[-1], dtype=M.dtype, device=M.device).expand_as(M)
        Y, Z = M / scale, identity.clone()
        # ℓ bounds the singular values of the block [[0, Y], [Z, 0]] from below: √(λ_min / c).
        self.state[self.param].update(Y=Y, Z=Z, P=Y.clone(), low=self.form.floor.clamp(0.0, 1.0).sqrt())

    def iterate(self) -> float:
        """One step (call under ``torch.no_grad()``); the problem's loss at the new X."""
        state = self.state[self.param]
        if "Y" not in state:
            self.refresh()
        Y, Z, P, low = state["Y"], state["Z"], state["P"], state["low"]
        if self.scaled and bool((low < 0.99).any()):
            alpha = torch.sqrt(3 / (1 + low + low.square()))
            Y, Z, P = Y * alpha, Z * alpha, P * alpha.square()
            state["low"] = 0.5 * alpha * low * (3 - alpha.square() * low.square())
        identity = torch.eye(Y.shape[-1], dtype=Y.dtype, device=Y.device)
        T = 1.5 * identity - 0.5 * P
        Y, Z = Y @ T, T @ Z
        P = Z @ Y
        self.products += 3 * P[..., 0, 0].numel()
        state.update(Y=Y, Z=Z, P=P)
        root = self.param
        root.copy_(Z / self.form.scale.sqrt() if self.form.inverse else Y * self.form.scale.sqrt())
        return self.form.loss(root)

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Tensor]] = None) -> Tensor:  # type: ignore[override]
        """One step; the loss at the new X (the closure is not used)."""
        return torch.as_tensor(self.iterate(), dtype=self.param.dtype)

    def loss(self) -> float:
        return self.form.loss(self.param)

    def residual_estimate(self) -> float:
        """‖ZY − I‖_F (÷ √n for the inverse root), the worst member: the problem's residual in
        exact arithmetic (an upper bound on it for the root itself)."""
        state = self.state[self.param]
        if "P" not in state:
            self.refresh()
        P = state["P"]
        n = P.shape[-1]
        error = torch.linalg.matrix_norm(P - torch.eye(n, dtype=P.dtype, device=P.device))
        return float(error.max()) / (math.sqrt(n) if self.form.inverse else 1.0)
