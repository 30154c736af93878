"""Input validation for problems, optimizers and settings.

Every user-facing argument is checked with one of these functions, so each kind of mistake gets
the same message everywhere: it names the argument, says what was given and what to pass
instead.  Problem authors use them too (``from torch_gdla.validation import as_matrix``).
Errors are :mod:`torch_gdla.errors` classes, which subclass ``ValueError``/``TypeError``.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Literal, Optional, Union, overload

import torch
from torch import Tensor

from .errors import ArgumentError, ArgumentTypeError, UnsupportedInputError

__all__ = [
    "DTYPES", "DtypeLike", "as_float_tensor", "as_matrix", "as_operand", "check_dense", "check_bool", "check_choice",
    "check_dtype", "check_finite",
    "check_init", "check_int", "check_nonnegative_int", "check_number", "check_optimizer_factory",
    "check_positive_int", "check_tolerance", "describe", "is_source", "check_symmetric",
]

# dtype names accepted wherever a dtype can be written as text (YAML configs).
# A dtype argument: a name ("float64", as configs write it) or a torch.dtype (as code writes it).
DtypeLike = Union[str, torch.dtype]
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def is_source(value: Any) -> bool:
    """True for a matrix source (an object whose ``tensor()`` builds the matrix, e.g. ``File``)."""
    return hasattr(value, "tensor") and callable(value.tensor) and not isinstance(value, Tensor)


def describe(value: Any, name: str) -> str:
    """The argument's name for a message; a matrix source (e.g. ``File``) is named with it, so
    an error in a config points at the file or recipe that produced the matrix."""
    return f"{name} (from {value!r})" if is_source(value) else name


# -- numbers and flags ----------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(value: Any, name: str) -> int:
    """An integer (a seed); bool and float are refused."""
    if not _is_int(value):
        raise ArgumentTypeError(f"{name} must be an integer; got {value!r} ({type(value).__name__})")
    return value


@overload
def check_positive_int(value: Any, name: str, *, allow_none: Literal[False] = ..., meaning: str = "") -> int: ...


@overload
def check_positive_int(value: Any, name: str, *, allow_none: bool, meaning: str = "") -> Optional[int]: ...


def check_positive_int(value: Any, name: str, *, allow_none: bool = False, meaning: str = "") -> Optional[int]:
    """An integer > 0 (None too when ``allow_none``); ``meaning`` explains the argument in the message."""
    if value is None and allow_none:
        return None
    if not _is_int(value) or value <= 0:
        what = f" ({meaning})" if meaning else ""
        none = " or None" if allow_none else ""
        raise ArgumentError(f"{name} must be a positive integer{what}{none}; got {value!r}")
    return value


def check_nonnegative_int(value: Any, name: str, *, meaning: str = "") -> int:
    if not _is_int(value) or value < 0:
        what = f" ({meaning})" if meaning else ""
        raise ArgumentError(f"{name} must be an integer >= 0{what}; got {value!r}")
    return value


def check_number(value: Any, name: str, *, positive: bool = False, meaning: str = "") -> float:
    """A finite real number, >= 0 (or > 0 with ``positive``); returned as a float."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > 0 if positive else value >= 0)
    if not ok:
        kind = "a finite number > 0" if positive else "a finite number >= 0"
        what = f" ({meaning})" if meaning else ""
        raise ArgumentError(f"{name} must be {kind}{what}; got {value!r}")
    return float(value)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be True or False; got {value!r}")
    return value


def check_choice(value: Any, name: str, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise ArgumentError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def check_tolerance(value: Optional[float], name: str) -> Optional[float]:
    """A stopping tolerance: a finite number >= 0, or None (disabled); ``rtol`` must be below 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0 or math.isinf(value):
        raise ArgumentError(f"{name} must be a finite number >= 0 (or None to disable it); got {value!r}")
    if name == "rtol" and value >= 1:
        raise ArgumentError(
            f"rtol must be below 1 (it bounds the relative change of the loss, which is at most 1, so rtol={value!r} "
            "would stop at the first check); pass e.g. rtol=1e-6, or None to disable it"
        )
    return float(value)


def check_dtype(value: Any, name: str = "dtype", *, allow_torch: bool = False) -> Optional[torch.dtype]:
    """A floating dtype given by name (``"float64"``), or a ``torch.dtype`` when ``allow_torch``;
    None stays None (keep the input's dtype)."""
    if value is None:
        return None
    if allow_torch and isinstance(value, torch.dtype):
        if not value.is_floating_point:
            raise ArgumentError(f"{name} must be a floating dtype; got {value}")
        return value
    if not isinstance(value, str) or value not in DTYPES:
        also = " or a torch.dtype" if allow_torch else ""
        raise ArgumentError(f"{name} must be one of {', '.join(DTYPES)}{also} (or None); got {value!r}")
    return DTYPES[value]


# -- tensors --------------------------------------------------------------------------------------
def as_float_tensor(value: Any, name: str) -> Tensor:
    """Turn `value` (tensor, array, nested list, matrix source) into a floating tensor.

    Python/NumPy numbers are converted to torch's default dtype; integer, bool and complex
    *tensors* are refused, because silently changing their dtype hides a mistake.
    """
    source = is_source(value)
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
        # Given data is used detached: a solve never differentiates through it into the
        # caller's graph, and never writes the caller's .grad (the functional API attaches
        # gradients by implicit differentiation instead).  No copy: a large matrix is not doubled.
        tensor = value.detach()
        if tensor.device.type == "meta":
            raise ArgumentError(f"{label} is a meta tensor (a shape without values); pass a tensor that holds data, "
                                f"e.g. torch.empty_like({name}, device='cpu') filled with the matrix")
        if tensor.is_complex():
            raise ArgumentTypeError(
                f"{label} is complex ({tensor.dtype}); torch_gdla solves real problems only: "
                f"pass {name}.real, or split a complex system into its real 2x2 block form"
            )
        if not tensor.is_floating_point():
            fix = ("set the source's dtype (e.g. dtype: float64 in its init_args) or store the matrix as floats"
                   if source else f"e.g. {name}.float() or {name}.double()")
            raise ArgumentTypeError(f"{label} has dtype {tensor.dtype}; pass a floating tensor: {fix}")
        return tensor
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ArgumentTypeError(
            f"{name} must be a tensor, an array or a nested list of numbers; "
            f"got {type(value).__name__} ({error})"
        ) from None
    if tensor.is_complex():
        raise ArgumentTypeError(
            f"{name} is complex; torch_gdla solves real problems only: pass its real part, "
            "or split a complex system into its real 2x2 block form"
        )
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def check_finite(tensor: Tensor, name: str) -> None:
    # A sum is NaN or ±Inf whenever an entry is, so one reduction (no entry-wise mask of the
    # tensor's size: 3 ms for a 1000×1000 float64 matrix, a tenth of a conjugate-gradient solve)
    # settles the common case; only a non-finite sum — a bad entry, or finite entries whose sum
    # overflows — pays for the entry-wise check.
    if bool(torch.isfinite(tensor.sum())):
        return
    if not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).sum().item()
        raise ArgumentError(
            f"{name} contains {bad} NaN or Inf entries; pass finite values "
            "(fix the data that produced them, or replace them, e.g. with torch.nan_to_num)"
        )


def as_matrix(value: Any, name: str) -> Tensor:
    """A finite, non-empty floating tensor with at least two dimensions (leading ones batch);
    sparse matrices and operators are refused (see :func:`as_operand` for the problems that take them)."""
    check_dense(value, name, "this problem takes dense matrices only",
                f"pass {name}.to_dense() if it fits in memory, or use gdla.LinearSystem, which takes sparse matrices "
                "and LinearOperators")
    tensor = as_float_tensor(value, name)
    if describe(value, name) != name:  # a source: it may have built a sparse matrix
        check_dense(tensor, describe(value, name), "this problem takes dense matrices only",
                    "give the source dense=true (File) if it fits in memory, or use gdla.LinearSystem")
    return _check_matrix(tensor, describe(value, name))


def _check_matrix(tensor: Tensor, name: str) -> Tensor:
    if tensor.dim() < 2:
        raise ArgumentError(
            f"{name} must be a matrix (2-D, or more with leading batch dimensions); "
            f"got shape {tuple(tensor.shape)}"
            + ("; for a single row or column use .reshape(1, -1) or .reshape(-1, 1)" if tensor.dim() == 1 else "")
        )
    if tensor.numel() == 0:
        raise ArgumentError(f"{name} is empty (shape {tuple(tensor.shape)}); pass a matrix with at least one entry")
    check_finite(tensor, name)
    return tensor


def as_operand(value: Any, name: str) -> Any:
    """A matrix for a linear system: a dense tensor (checked as :func:`as_matrix`), a 2-D
    ``torch.sparse`` tensor (COO, CSR, CSC; its stored values checked, nothing densified) or a
    :class:`~torch_gdla.operators.LinearOperator` (taken as it is)."""
    from .operators import LinearOperator, is_sparse

    if isinstance(value, LinearOperator):
        return value
    tensor = as_float_tensor(value, name)  # builds a source's matrix; a sparse tensor stays sparse
    if not is_sparse(tensor):
        return _check_matrix(tensor, describe(value, name))
    name = describe(value, name)
    if tensor.dim() != 2 or tensor.dense_dim() != 0:
        raise ArgumentError(f"{name} is sparse with shape {tuple(tensor.shape)}; sparse matrices must be 2-D (one "
                            "system, no batch) with scalar entries: solve batch members one by one")
    if tensor.is_complex() or not tensor.is_floating_point():
        raise ArgumentTypeError(f"{name} is sparse with dtype {tensor.dtype}; pass floating values, e.g. {name}.double()")
    values = tensor.values() if tensor.layout == torch.sparse_coo else tensor.values()
    check_finite(values, name)
    if tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ArgumentError(f"{name} is empty (shape {tuple(tensor.shape)}); pass a matrix with at least one entry")
    from .operators import compact

    return compact(tensor)


def check_dense(value: Any, name: str, operation: str, instead: str) -> None:
    """Refuse a sparse matrix or a LinearOperator where ``operation`` needs a dense one."""
    from .operators import LinearOperator, is_sparse

    if isinstance(value, LinearOperator) or is_sparse(value):
        kind = "a LinearOperator" if isinstance(value, LinearOperator) else f"sparse ({value.layout})"
        raise UnsupportedInputError(f"{name} is {kind}, but {operation}; {instead}")


def check_init(init: Any, name: str, shape: torch.Size, like: Tensor) -> Tensor:
    """A warm start: must match the unknown's shape; cast to the problem's dtype/device."""
    tensor = as_float_tensor(init, name)
    if tensor.shape != shape:
        raise ArgumentError(f"{name} must have the unknown's shape {tuple(shape)}; got {tuple(tensor.shape)}")
    check_finite(tensor, name)
    return tensor.detach().to(dtype=like.dtype, device=like.device).clone()


# -- optimizers -----------------------------------------------------------------------------------
def check_optimizer_factory(factory: Any, name: str = "optimizer") -> None:
    """Fail before the run on an optimizer that cannot be called with the parameters."""
    if not callable(factory):
        hint = (" (an optimizer instance: pass the class or functools.partial(torch.optim.SGD, lr=0.1) instead)"
                if isinstance(factory, torch.optim.Optimizer) else "")
        raise ArgumentTypeError(
            f"{name} must be a callable taking the parameters, e.g. functools.partial(torch.optim.SGD, lr=0.1); "
            f"got {type(factory).__name__}{hint}"
        )
    target = factory.func if isinstance(factory, functools.partial) else factory
    if isinstance(target, type) and not issubclass(target, torch.optim.Optimizer):
        raise ArgumentTypeError(
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
        raise ArgumentTypeError(
            f"{name} must accept the parameters as its one positional argument, like torch.optim.SGD(params, ...); "
            f"{getattr(factory, '__name__', repr(factory))}{signature} cannot be called that way ({error})"
        ) from None



def check_symmetric(matrix: Any, name: str, operation: str) -> None:
    """Refuse a matrix that is not square and symmetric (to rounding: ‖M − Mᵀ‖_F ≤ 10·n·eps·‖M‖_F
    per member, O(n²) dense, O(nnz) sparse) where ``operation`` needs one; a LinearOperator must
    have been built with ``symmetric=True``.  The message gives the measured asymmetry."""
    from .errors import ShapeError
    from .operators import LinearOperator, is_sparse, is_symmetric

    if matrix.shape[-1] != matrix.shape[-2]:
        raise ShapeError(f"{operation} needs a square symmetric {name}; got shape {tuple(matrix.shape)}")
    if isinstance(matrix, LinearOperator):
        if not matrix.symmetric:
            raise ArgumentError(f"{operation} needs a symmetric {name}, and this LinearOperator was not built with "
                                "symmetric=True; pass LinearOperator(..., symmetric=True) if M = Mᵀ")
        return
    if is_symmetric(matrix):
        return
    with torch.no_grad():
        if is_sparse(matrix):
            coo = matrix.to_sparse_coo().coalesce()
            difference = float(torch.linalg.vector_norm((coo - coo.t()).coalesce().values()))
            scale = float(torch.linalg.vector_norm(coo.values()))
        else:
            difference = float(torch.linalg.matrix_norm(matrix - matrix.mT).max())
            scale = float(torch.linalg.matrix_norm(matrix).max())
    raise ArgumentError(
        f"{operation} needs a symmetric {name}, but ‖{name} − {name}ᵀ‖_F / ‖{name}‖_F = {difference / scale:.3g}, more "
        f"than rounding; symmetrise it, e.g. ({name} + {name}.mT) / 2, if the asymmetry is noise (for the singular "
        "values of a general matrix use gdla.SVD)")
