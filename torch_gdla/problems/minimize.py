"""Minimisation of a scalar function (the minimisation tutorial): x ≈ argmin f(x)."""
from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import Tensor, nn

from ..errors import ArgumentError, ArgumentTypeError
from ..functions import FUNCTIONS, resolve
from ..matrices import Source
from ..validation import as_float_tensor, check_dtype, check_finite
from .base import Problem

PointLike = Union[Tensor, Source, list[float], list[list[float]], float]


class Minimize(Problem):
    """The minimum of ``fn`` starting from ``x0``; the loss is ``fn(x)`` itself.

    Args:
        fn: a callable ``tensor -> scalar tensor`` written with torch operations (autograd
            differentiates it), the name of a registered function (``"sphere"``,
            ``"sixth_power"``, ``"rosenbrock"``; see ``torch_gdla.functions``), or the import
            path of your own function (``"mypackage.objectives.f"``).  Text is never evaluated.
        x0: the start: tensor, nested list, number or a ``gdla.matrices`` source.  It is
            cloned; the unknown ``x`` has its shape and its dtype (Python numbers give torch's
            default dtype).
        dtype: ``"float32"``/``"float64"`` to cast ``x0`` (handy in YAML); None keeps x0's.

    ``residual()`` is the first-order optimality measure ``‖∇f(x)‖₂ / max(1, |f(x)|)``: zero
    exactly at a stationary point, independent of the optimizer, and relative to the function's
    size once that exceeds 1.  The loss gives no bound on it, so ``residual_tol`` is checked
    every ``residual_every`` steps.  ``tol`` stops when ``f(x) ≤ tol``: for a function whose
    minimum value f* ≥ 0 is known (4 for the tutorial's functions) ``tol = f* + ε`` means "within ε
    of the minimum"; ``rtol`` is the tutorial's rule (relative change of f over 10 steps).
    """

    def __init__(self, fn: Union[str, Callable], x0: PointLike, dtype: Optional[str] = None) -> None:
        super().__init__()
        self.fn = resolve(fn, "fn")
        self.fn_name = fn if isinstance(fn, str) else getattr(fn, "__name__", type(fn).__name__)
        start = as_float_tensor(x0, "x0")
        if dtype is not None:
            start = start.to(check_dtype(dtype))
        if start.numel() == 0:
            raise ArgumentError("x0 is empty; pass the start point, e.g. x0=[1.0, -2.0]")
        check_finite(start, "x0")
        self.x = nn.Parameter(start.detach().clone())
        self._check_value(self.fn(self.x))

    def _check_value(self, value: object) -> Tensor:
        if not isinstance(value, Tensor):
            raise ArgumentTypeError(f"fn must return a tensor computed from x with torch operations (so autograd can "
                            f"differentiate it); {self.fn_name} returned {type(value).__name__}")
        if value.numel() != 1:
            raise ArgumentError(f"fn must return a scalar; {self.fn_name} returned shape {tuple(value.shape)}. "
                             "Reduce it (e.g. .sum()), or use gdla.derivative for elementwise functions")
        if not value.requires_grad:
            raise ArgumentError(f"fn's value does not depend on x through torch operations ({self.fn_name}); "
                             "write it with torch functions, not NumPy or Python floats")
        return value.reshape(())

    def forward(self) -> Tensor:
        return self.fn(self.x).reshape(())

    @property
    def solution(self) -> Tensor:
        return self.x.detach()

    @property
    def value(self) -> float:
        """f at the current point."""
        with torch.no_grad():
            return float(self.fn(self.x))

    def residuals(self) -> Tensor:
        with torch.enable_grad():
            x = self.x.detach().requires_grad_(True)
            value = self.fn(x).reshape(())
            (gradient,) = torch.autograd.grad(value, x)
        return (gradient.norm() / value.detach().abs().clamp_min(1.0)).detach()

    def extra_repr(self) -> str:
        return f"fn={self.fn_name}, " + super().extra_repr()


__all__ = ["Minimize", "FUNCTIONS"]
