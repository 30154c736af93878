"""Input validation: every user-facing argument is checked here, with a message that
names the argument and says what to pass instead."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def describe(value: Any, name: str) -> str:
    """The argument's name for a message; a matrix source (e.g. ``File``) is named with it, so
    an error in a config points at the file or recipe that produced the matrix."""
    if hasattr(value, "tensor") and callable(value.tensor) and not isinstance(value, Tensor):
        return f"{name} (from {value!r})"
    return name


def as_float_tensor(value: Any, name: str) -> Tensor:
    """Turn `value` (tensor, array, nested list, matrix source) into a floating tensor.

    Python/NumPy numbers are converted to torch's default dtype; integer, bool and complex
    *tensors* are refused, because silently changing their dtype hides a mistake.
    """
    source = hasattr(value, "tensor") and callable(value.tensor) and not isinstance(value, Tensor)
    label = describe(value, name)
    if source:
        try:
            value = value.tensor()
        except (FileNotFoundError, ValueError, TypeError) as error:  # name the argument the source is for
            try:
                named = type(error)(f"{name}: {error}")
            except Exception:  # an exception type with another signature: keep it as it is
                raise error from None
            raise named from None
    if isinstance(value, Tensor):
        tensor = value
        if tensor.is_complex():
            raise TypeError(
                f"{label} is complex ({tensor.dtype}); torch_gdla solves real problems only: "
                f"pass {name}.real, or split a complex system into its real 2x2 block form"
            )
        if not tensor.is_floating_point():
            fix = ("set the source's dtype (e.g. dtype: float64 in its init_args) or store the matrix as floats"
                   if source else f"e.g. {name}.float() or {name}.double()")
            raise TypeError(f"{label} has dtype {tensor.dtype}; pass a floating tensor: {fix}")
        return tensor
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(
            f"{name} must be a tensor, an array or a nested list of numbers; "
            f"got {type(value).__name__} ({error})"
        ) from None
    if tensor.is_complex():
        raise TypeError(
            f"{name} is complex; torch_gdla solves real problems only: pass its real part, "
            "or split a complex system into its real 2x2 block form"
        )
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def check_finite(tensor: Tensor, name: str) -> None:
    if not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ValueError(
            f"{name} contains {bad} NaN or Inf entries; pass finite values "
            "(fix the data that produced them, or replace them, e.g. with torch.nan_to_num)"
        )


def as_matrix(value: Any, name: str) -> Tensor:
    """A finite, non-empty floating tensor with at least two dimensions (leading ones batch)."""
    tensor = as_float_tensor(value, name)
    name = describe(value, name)
    if tensor.dim() < 2:
        raise ValueError(
            f"{name} must be a matrix (2-D, or more with leading batch dimensions); "
            f"got shape {tuple(tensor.shape)}"
            + ("; for a single row or column use .reshape(1, -1) or .reshape(-1, 1)" if tensor.dim() == 1 else "")
        )
    if tensor.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(tensor.shape)}); pass a matrix with at least one entry")
    check_finite(tensor, name)
    return tensor


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def check_tolerance(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number >= 0 (or None to disable it); got {value!r}")
    if name == "rtol" and value >= 1:
        raise ValueError(
            f"rtol must be below 1 (it bounds the relative change of the loss, which is at most 1, so rtol={value!r} "
            "would stop at the first check); pass e.g. rtol=1e-6, or None to disable it"
        )
    return float(value)


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return value


def check_int(value: Any, name: str) -> int:
    """An integer (a seed); bool and float are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer; got {value!r} ({type(value).__name__})")
    return value


def check_optimizer_factory(factory: Any, name: str = "optimizer") -> None:
    """Fail before the run on an optimizer that cannot be called with the parameters."""
    import functools
    import inspect

    if not callable(factory):
        hint = (" (an optimizer instance: pass the class or functools.partial(torch.optim.SGD, lr=0.1) instead)"
                if isinstance(factory, torch.optim.Optimizer) else "")
        raise TypeError(
            f"{name} must be a callable taking the parameters, e.g. functools.partial(torch.optim.SGD, lr=0.1); "
            f"got {type(factory).__name__}{hint}"
        )
    target = factory.func if isinstance(factory, functools.partial) else factory
    if isinstance(target, type) and not issubclass(target, torch.optim.Optimizer):
        raise TypeError(
            f"{name} must build a torch.optim.Optimizer; {target.__name__} is not an optimizer class. "
            "Pass e.g. torch.optim.Adam or functools.partial(torch.optim.SGD, lr=0.1)"
        )
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: checked when called
        return
    try:
        signature.bind(object())
    except TypeError as error:
        raise TypeError(
            f"{name} must accept the parameters as its one positional argument, like torch.optim.SGD(params, ...); "
            f"{getattr(factory, '__name__', repr(factory))}{signature} cannot be called that way ({error})"
        ) from None


def check_init(init: Any, name: str, shape: torch.Size, like: Tensor) -> Tensor:
    """A warm start: must match the unknown's shape; cast to the problem's dtype/device."""
    tensor = as_float_tensor(init, name)
    if tensor.shape != shape:
        raise ValueError(f"{name} must have the unknown's shape {tuple(shape)}; got {tuple(tensor.shape)}")
    check_finite(tensor, name)
    return tensor.detach().to(dtype=like.dtype, device=like.device).clone()
