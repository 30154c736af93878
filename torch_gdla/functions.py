"""The registry of functions that :class:`~torch_gdla.Minimize` may name by a string.

A config writes ``fn: sphere``; that text is looked up here and nowhere else.  It is never
evaluated and never imported: a string can reach only a function that Python code registered
(a name like ``"os.system"`` would otherwise reach, and call, any importable callable, and
merely importing a module runs its code).  Your own function joins the registry with the
decorator::

    @gdla.functions.register               # registered as "my_loss" (its __name__)
    def my_loss(x): ...

    @gdla.functions.register("ring")       # registered as "ring"
    def ring_loss(x): ...

in a module your program imports before it builds the problem (for the CLI, a launcher script
that imports it and then calls ``torch_gdla.cli.main()``).  A registered function is also found
by its full import path (``"torch_gdla.functions.sphere"``), looked up, not imported.  A Python
callable passed to ``Minimize`` directly needs no registration.

Each function takes the point ``x`` (a tensor of any shape; all entries are variables) and
returns a scalar tensor.  ``MINIMA`` records the built-in ones' minimum values and where they lie.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union, overload

from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError

Function = Callable[[Tensor], Tensor]

__all__ = ["FUNCTIONS", "MINIMA", "Minimum", "register", "resolve", "unregister", "sphere", "sixth_power", "rosenbrock"]

# name -> function; also every registered function's full import path (module.qualname).
FUNCTIONS: dict[str, Function] = {}
_PATHS: dict[str, Function] = {}


def _path(fn: Function) -> Optional[str]:
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    return f"{module}.{name}" if module and name and "<" not in name else None


def _add(name: str, fn: Function) -> Function:
    if not callable(fn):
        raise ArgumentTypeError(f"register() takes a callable tensor -> scalar tensor; got {type(fn).__name__}")
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ArgumentError(f"a registered function needs a non-empty name without spaces; got {name!r}")
    known = FUNCTIONS.get(name)
    if known is not None and known is not fn:
        # Re-registering a name silently would change what every config that names it runs.
        raise ArgumentError(f"a function is already registered as {name!r} ({_path(known) or known!r}); "
                            "choose another name")
    FUNCTIONS[name] = fn
    path = _path(fn)
    if path is not None:
        _PATHS[path] = fn
    return fn


@overload
def register(fn: Function) -> Function: ...


@overload
def register(fn: str) -> Callable[[Function], Function]: ...


def register(fn: Union[Function, str]) -> Union[Function, Callable[[Function], Function]]:
    """Register a function so that configs (and ``Minimize("name", ...)``) may name it.

    ``@register`` registers under the function's ``__name__``; ``@register("name")`` under
    ``name``.  Returns the function unchanged.  Registering another function under a taken
    name is an error (configs naming it would silently change meaning)."""
    if isinstance(fn, str):
        given = fn
        return lambda function: _add(given, function)
    name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        raise ArgumentError("register a lambda (or a callable object) under a name: register('name')(fn)")
    return _add(name, fn)


def unregister(name: str) -> Function:
    """Remove a registered function (and its import-path alias); returns it."""
    fn = FUNCTIONS.pop(name)
    path = _path(fn)
    if path is not None and _PATHS.get(path) is fn:
        del _PATHS[path]
    return fn


def known_names() -> str:
    """The registered names, sorted, for messages."""
    return ", ".join(sorted(FUNCTIONS))


def resolve(fn: Union[str, Function], name: str = "fn") -> Function:
    """A callable from ``fn``: a callable is returned as is; a string must be a registered name
    (or a registered function's full import path).  Nothing is imported or evaluated."""
    if callable(fn):
        return fn
    if not isinstance(fn, str):
        raise ArgumentTypeError(f"{name} must be a callable (tensor -> scalar tensor) or the name of a registered "
                                f"function ({known_names()}); got {type(fn).__name__}")
    found = FUNCTIONS.get(fn) or _PATHS.get(fn)
    if found is None:
        raise ArgumentError(
            f"{name}={fn!r} is not a known function: use one of {known_names()}. A string is looked up among the "
            "functions registered in torch_gdla.functions, never imported or evaluated: register your own with "
            "@torch_gdla.functions.register (or register('name')) in a module imported before the problem is built, "
            "or pass the callable itself")
    return found


@register
def sphere(x: Tensor) -> Tensor:
    """The minimisation tutorial's first example, ``x² + y² + 4`` for any number of variables: minimum 4 at 0."""
    return x.square().sum() + 4.0


@register
def sixth_power(x: Tensor) -> Tensor:
    """The minimisation tutorial's hard example, ``x⁶ + y⁶ + z⁶ + w⁶ + 4``: minimum 4 at 0, so flat there that
    the gradient vanishes like |x|⁵ while it grows like |x|⁵ far out (plain SGD blows up)."""
    return x.pow(6).sum() + 4.0


@register
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


MINIMA: dict[str, Minimum] = {"sphere": Minimum(4.0, 0.0), "sixth_power": Minimum(4.0, 0.0), "rosenbrock": Minimum(0.0, 1.0)}
