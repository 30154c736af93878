"""Derivatives by autograd (the tutorials' "Gradient Computation" sections).

``derivative(f, x, order)``: f is elementwise (``f(x)[i]`` depends on ``x[i]`` only), so the
gradient of ``f(x).sum()`` is ``f'(x)`` at every point at once — the tutorials' "loss = sum" trick —
and repeating it gives higher orders.  ``gradient(f, *xs)``: the partial derivatives of a
scalar function of several variables, e.g. z = x·y⁵.
"""
from __future__ import annotations

from typing import Any, Callable, Union

import torch
from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError
from .validation import as_float_tensor, check_nonnegative_int


def _point(value: Any, name: str) -> Tensor:
    # A fresh leaf: the caller's tensor is neither modified nor given a .grad.
    return as_float_tensor(value, name).detach().clone().requires_grad_(True)


def derivative(f: Callable[[Tensor], Tensor], x: Any, order: int = 1) -> Tensor:
    """``f⁽ᵒʳᵈᵉʳ⁾(x)`` at every entry of ``x`` for an elementwise ``f`` (order 0 is ``f(x)``).

    A graph is kept (``create_graph``) only for the differentiations that another one follows,
    so order 1 costs one backward pass and no extra memory.  Once a derivative no longer
    depends on x (f'' = 2 for x² + 4), every higher order is exactly zero.  The result is
    detached, with x's shape and dtype (Python numbers and lists give torch's default dtype).
    """
    check_nonnegative_int(order, "order")
    if not callable(f):
        raise ArgumentTypeError(f"f must be a callable tensor -> tensor (elementwise); got {type(f).__name__}")
    point = _point(x, "x")
    with torch.enable_grad():
        values = f(point)
        if not isinstance(values, Tensor) or values.shape != point.shape:
            shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
            raise ArgumentError(f"f must be elementwise (return x's shape {tuple(point.shape)}); got {shape}. "
                             "For a scalar function of several variables use gdla.gradient(f, *xs)")
        for k in range(order):
            if not values.requires_grad:  # a constant: this and all higher derivatives vanish
                return torch.zeros_like(point).detach()
            (values,) = torch.autograd.grad(values.sum(), point, create_graph=k + 1 < order,
                                            allow_unused=True, materialize_grads=True)
    return values.detach()


def gradient(f: Callable[..., Tensor], *xs: Any) -> Union[Tensor, tuple[Tensor, ...]]:
    """The partial derivatives of a scalar function ``f(*xs)`` at the given point.

    ``gradient(lambda x, y: x * y**5, 3.0, 7.0)`` is ``(∂z/∂x, ∂z/∂y) = (16807, 36015)``.  One
    argument gives one tensor (∇f, of x's shape), several give a tuple in argument order.
    """
    if not callable(f):
        raise ArgumentTypeError(f"f must be a callable returning a scalar tensor; got {type(f).__name__}")
    if not xs:
        raise ArgumentError("gradient needs the point: gradient(f, x) or gradient(f, x, y, ...)")
    points = [_point(x, f"xs[{i}]") for i, x in enumerate(xs)]
    with torch.enable_grad():
        value = f(*points)
        if not isinstance(value, Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ArgumentError(f"f must return a scalar tensor; got {shape}. For an elementwise function use "
                             "gdla.derivative(f, x), which differentiates f(x).sum()")
        if not value.requires_grad:
            grads: tuple[Tensor, ...] = tuple(torch.zeros_like(p) for p in points)
        else:
            grads = torch.autograd.grad(value.reshape(()), points, allow_unused=True, materialize_grads=True)
    detached = tuple(g.detach() for g in grads)
    return detached[0] if len(detached) == 1 else detached
