"""Input validation: every user-facing argument is checked here, with a message that
names the argument and says what to pass instead."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def as_float_tensor(value: Any, name: str) -> Tensor:
    """Turn `value` (tensor, array, nested list, matrix source) into a floating tensor.

    Python/NumPy numbers are converted to torch's default dtype; integer, bool and complex
    *tensors* are refused, because silently changing their dtype hides a mistake.
    """
    if hasattr(value, "tensor") and callable(value.tensor):  # a gdla.matrices source
        value = value.tensor()
    if isinstance(value, Tensor):
        tensor = value
        if tensor.is_complex():
            raise TypeError(
                f"{name} is complex ({tensor.dtype}); torch_gdla solves real problems only: "
                f"pass {name}.real, or split a complex system into its real 2x2 block form"
            )
        if not tensor.is_floating_point():
            raise TypeError(
                f"{name} has dtype {tensor.dtype}; pass a floating tensor, "
                f"e.g. {name}.float() or {name}.double()"
            )
        return tensor
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(
            f"{name} must be a tensor, an array or a nested list of numbers; "
            f"got {type(value).__name__} ({error})"
        ) from None
    if tensor.is_complex():
        raise TypeError(f"{name} is complex; torch_gdla solves real problems only")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def check_finite(tensor: Tensor, name: str) -> None:
    if not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ValueError(f"{name} contains {bad} NaN or Inf entries; clean the input before solving")


def as_matrix(value: Any, name: str) -> Tensor:
    """A finite, non-empty floating tensor with at least two dimensions (leading ones batch)."""
    tensor = as_float_tensor(value, name)
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
    return float(value)


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return value


def check_init(init: Any, name: str, shape: torch.Size, like: Tensor) -> Tensor:
    """A warm start: must match the unknown's shape; cast to the problem's dtype/device."""
    tensor = as_float_tensor(init, name)
    if tensor.shape != shape:
        raise ValueError(f"{name} must have the unknown's shape {tuple(shape)}; got {tuple(tensor.shape)}")
    check_finite(tensor, name)
    return tensor.detach().to(dtype=like.dtype, device=like.device).clone()
