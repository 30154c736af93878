"""Minimisation of a scalar function (the minimisation tutorial): x ≈ argmin f(x)."""
from __future__ import annotations

from typing import Callable, Optional, Union

import torch
from torch import Tensor, nn

from ..errors import ArgumentError, ArgumentTypeError
from ..functions import FUNCTIONS, resolve
from ..matrices import Source
from ..validation import DtypeLike, as_float_tensor, check_dtype, check_finite, check_number
from .base import Problem

PointLike = Union[Tensor, Source, list[float], list[list[float]], float]

FunctionLike = Union[str, Callable[[Tensor], Tensor]]


class Minimize(Problem):
    """The minimum of ``fn`` starting from ``x0``; the loss is ``fn(x)`` itself.

    Args:
        fn: a callable ``tensor -> scalar tensor`` written with torch operations (autograd
            differentiates it), or the name of a registered function (``"sphere"``,
            ``"sixth_power"``, ``"rosenbrock"``, or your own, registered with
            ``@gdla.functions.register``; see ``torch_gdla.functions``).  A string is looked up
            in that registry only: never evaluated, never imported.
        x0: the start: tensor, nested list, number or a ``gdla.matrices`` source.  It is
            cloned; the unknown ``x`` has its shape and its dtype (Python numbers give torch's
            default dtype).
        dtype: ``"float32"``/``"float64"`` to cast ``x0`` (handy in YAML); None keeps x0's.
        gradient_scale: the gradient norm the residual is measured against (below); None (the
            default) takes ‖∇f(x0)‖, or 1 when x0 is already stationary; ``1.0`` makes the
            residual the plain ‖∇f(x)‖.

    ``residual()`` is the first-order optimality measure ``‖∇f(x)‖₂ / ‖∇f(x0)‖₂``: zero exactly
    at a stationary point, independent of the optimizer, and unchanged when a constant is added
    to f or f is multiplied by one (its units), so ``residual_tol=1e-8`` means "the gradient
    fell by eight orders of magnitude from the start".  (A measure relative to |f| would accept
    points far from the minimum of a function with a large constant part.)  The loss gives no
    bound on it, so ``residual_tol`` is checked every ``residual_every`` steps.  ``tol`` stops
    when ``f(x) ≤ tol``: for a function whose minimum value f* is known (4 for the tutorial's
    functions) ``tol = f* + ε`` means "within ε of the minimum"; ``rtol`` is the tutorial's rule
    (relative change of f over 10 steps).  The default optimizer is L-BFGS
    (``gdla.optim.LBFGS``, one iteration per step).
    """

    _gradient_scale: Tensor

    def __init__(self, fn: FunctionLike, x0: PointLike, dtype: Optional[DtypeLike] = None,
                 gradient_scale: Optional[float] = None) -> None:
        super().__init__()
        self.fn = resolve(fn, "fn")
        self.fn_name = fn if isinstance(fn, str) else getattr(fn, "__name__", type(fn).__name__)
        start = as_float_tensor(x0, "x0")
        if dtype is not None:
            start = start.to(check_dtype(dtype, allow_torch=True))
        if start.numel() == 0:
            raise ArgumentError("x0 is empty; pass the start point, e.g. x0=[1.0, -2.0]")
        check_finite(start, "x0")
        self.x = nn.Parameter(start.detach().clone())
        self._check_value(self.fn(self.x))
        if gradient_scale is None:
            norm = float(self._gradient().norm())
            # A stationary start has no gradient to measure against: the plain norm (0 there).
            scale = norm if norm > 0 and norm < float("inf") else 1.0
        else:
            scale = check_number(gradient_scale, "gradient_scale", positive=True,
                                 meaning="the gradient norm the residual is relative to, e.g. 1.0")
        self.register_buffer("_gradient_scale", torch.tensor(scale, dtype=start.dtype, device=start.device))

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

    @property
    def gradient_scale(self) -> float:
        """The gradient norm the residual is relative to (‖∇f(x0)‖ unless given)."""
        return float(self._gradient_scale)

    def _gradient(self) -> Tensor:
        with torch.enable_grad():
            x = self.x.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(self.fn(x).reshape(()), x)
        return gradient.detach()

    def residuals(self) -> Tensor:
        """‖∇f(x)‖₂ / gradient_scale (see the class docstring)."""
        return self._gradient().norm() / self._gradient_scale

    def default_optimizer(self) -> torch.optim.Optimizer:
        """L-BFGS with a strong-Wolfe line search, one iteration per step (``gdla.optim.LBFGS``):
        on Rosenbrock it needs about the loss evaluations of scipy's L-BFGS-B (bench/
        peers_svd_minimize.py), where conjugate gradient needed twenty times more."""
        from ..optim import LBFGS

        return LBFGS(self.parameters())

    def extra_repr(self) -> str:
        return f"fn={self.fn_name}, " + super().extra_repr()


# What a config may give for fn is a string (a registered name).  Config parsers read the
# signature: annotated ``Callable`` (or ``Any``), jsonargparse would import the module of any
# ``class_path`` written under fn — running its code — before this class could refuse it, and
# it reads annotations under ``if TYPE_CHECKING`` too.  So the runtime annotation is ``str``;
# type checkers see the source's, and Python callers may still pass a callable.
Minimize.__init__.__annotations__["fn"] = str


__all__ = ["Minimize", "FUNCTIONS"]
