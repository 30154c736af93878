"""The exceptions torch_gdla raises.

Each subclasses the built-in exception a caller would already catch (``ValueError`` for a bad
value, ``TypeError`` for a wrong type, ``RuntimeError`` for a run that failed), so existing
``except ValueError`` code keeps working, while ``except gdla.errors.GdlaError`` catches every
error that comes from this library and not from torch.
"""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["GdlaError", "ArgumentError", "ArgumentTypeError", "ShapeError", "UnsupportedInputError",
           "NotConvergedError"]


class GdlaError(Exception):
    """Base class of every torch_gdla error."""


class ArgumentError(GdlaError, ValueError):
    """An argument has a value the library cannot use; the message names it and the fix."""


class ArgumentTypeError(GdlaError, TypeError):
    """An argument has the wrong type (an integer tensor where floats are needed, an optimizer
    instance where a factory is needed, ...)."""


class ShapeError(ArgumentError):
    """Arguments whose shapes do not fit together (a right-hand side of the wrong length, ...)."""


class UnsupportedInputError(ArgumentError, NotImplementedError):
    """A valid input that this operation cannot take (e.g. a sparse matrix for an explicit
    inverse, a direct reference of a lasso); the message says what to use instead.  Also a
    ``NotImplementedError``, which such cases raised before."""


class NotConvergedError(GdlaError, RuntimeError):
    """A run that was asked to succeed (``check=True``) did not; ``result`` tells how it ended."""

    def __init__(self, message: str, result: Optional[Any] = None) -> None:
        super().__init__(message)
        self.result = result
