"""Named test functions for :class:`~torch_gdla.Minimize`, so a YAML config can write
``fn: sphere`` without any text ever being evaluated.

Each function takes the point ``x`` (a tensor of any shape; all entries are variables) and
returns a scalar tensor.  ``MINIMA`` records each one's minimum value and where it lies.
"""
from __future__ import annotations

import importlib
from typing import Callable, NamedTuple

from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError

Function = Callable[[Tensor], Tensor]


def sphere(x: Tensor) -> Tensor:
    """The minimisation tutorial's first example, ``x² + y² + 4`` for any number of variables: minimum 4 at 0."""
    return x.square().sum() + 4.0


def sixth_power(x: Tensor) -> Tensor:
    """The minimisation tutorial's hard example, ``x⁶ + y⁶ + z⁶ + w⁶ + 4``: minimum 4 at 0, so flat there that
    the gradient vanishes like |x|⁵ while it grows like |x|⁵ far out (plain SGD blows up)."""
    return x.pow(6).sum() + 4.0


def rosenbrock(x: Tensor) -> Tensor:
    """``Σ 100 (x_{i+1} − x_i²)² + (1 − x_i)²`` over the flattened entries (at least two):
    minimum 0 at all ones, at the end of a long curved valley."""
    flat = x.reshape(-1)
    if flat.numel() < 2:
        raise ArgumentError(f"rosenbrock needs at least 2 variables; x0 has {flat.numel()}")
    return (100.0 * (flat[1:] - flat[:-1].square()).square() + (1.0 - flat[:-1]).square()).sum()


class Minimum(NamedTuple):
    value: float
    at: float  # every coordinate of the minimiser has this value


FUNCTIONS: dict[str, Function] = {"sphere": sphere, "sixth_power": sixth_power, "rosenbrock": rosenbrock}
MINIMA: dict[str, Minimum] = {"sphere": Minimum(4.0, 0.0), "sixth_power": Minimum(4.0, 0.0), "rosenbrock": Minimum(0.0, 1.0)}


def resolve(fn: str | Function, name: str = "fn") -> Function:
    """A callable from ``fn``: a registered name, a dotted import path ``package.module.function``
    (imported, never evaluated, exactly as a ``class_path`` is), or a callable, returned as is."""
    if callable(fn):
        return fn
    if not isinstance(fn, str):
        raise ArgumentTypeError(f"{name} must be a callable (tensor -> scalar tensor) or the name of one of "
                        f"{', '.join(sorted(FUNCTIONS))}; got {type(fn).__name__}")
    if fn in FUNCTIONS:
        return FUNCTIONS[fn]
    module_name, _, attribute = fn.rpartition(".")
    if not module_name or not attribute.isidentifier() or not all(part.isidentifier() for part in module_name.split(".")):
        raise ArgumentError(f"{name}={fn!r} is not a known function: use one of {', '.join(sorted(FUNCTIONS))}, "
                         "or the import path of your own function, e.g. 'mypackage.objectives.loss'")
    try:
        value = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ArgumentError(f"{name}={fn!r} could not be imported ({error}); known names: "
                         f"{', '.join(sorted(FUNCTIONS))}") from None
    if not callable(value):
        raise ArgumentTypeError(f"{name}={fn!r} names a {type(value).__name__}, not a callable")
    return value
