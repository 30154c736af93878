"""Problem families: one public constructor, one class per variant.

``gdla.LinearSystem(A, b, l1=...)``, ``gdla.SVD(M, method="penalty")`` and the like keep their
one-constructor interface (and every config that names them), while each variant whose
behaviour differs is its own class.  The family's root class defines ``_variant``, which reads
the arguments and names the class to build; the root's metaclass, :class:`Family`, then calls
that class instead.  Every variant subclasses the root, so ``isinstance(p, gdla.LinearSystem)``
holds for all of them, and the root's ``__init__`` keeps the full signature that configs are
checked against.
"""
from __future__ import annotations

import abc
import functools
import inspect
from typing import Any

from ..errors import ArgumentError

Arguments = dict[str, Any]


class Family(abc.ABCMeta):
    """Metaclass of a family root: ``Root(...)`` builds ``Root._variant(arguments)``'s choice.

    Only a call of the root itself is redirected: a variant, or a user's subclass, is built by
    its own constructor (a subclass that passes an argument selecting another variant to the
    root's ``__init__`` is refused there, by :func:`check_variant`).  The arguments are bound to
    the root's ``__init__`` signature first, so a misspelt or missing argument fails as it
    would without the redirect, and the variant receives them by name.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "_variant" in vars(cls):
            try:
                bound = _signature(cls).bind(None, *args, **kwargs)  # None: self
            except TypeError as error:
                raise TypeError(f"{cls.__name__}(): {error}") from None
            arguments = dict(list(bound.arguments.items())[1:])
            variant, arguments = cls._variant(arguments)  # type: ignore[attr-defined]
            if variant is not cls:
                return variant(**arguments)
        return super().__call__(*args, **kwargs)


@functools.lru_cache(maxsize=None)
def _signature(cls: type) -> inspect.Signature:
    """The root's ``__init__`` signature, computed once (inspect is slow, and a family's root is
    called for every problem built, e.g. per call of ``gdla.linalg.solve``)."""
    return inspect.signature(getattr(cls, "__init__"))


def check_variant(instance: Any, root: Any, **selectors: Any) -> None:
    """Refuse selector arguments that ask for a variant ``instance`` is not.

    ``root.__init__`` calls this: a call through the root has been redirected already (so this
    passes), a variant passes the defaults, and a user's subclass of the root that passes, say,
    ``l1=...`` learns which variant to derive from instead of silently getting another loss.
    """
    if type(instance) is root:
        return  # only a call of the root builds the root, and it chose the root for these selectors
    variant, _ = root._variant(dict(selectors))
    if not isinstance(instance, variant):
        defaults = inspect.signature(root.__init__).parameters
        given = ", ".join(f"{name}={value!r}" for name, value in selectors.items()
                          if name not in defaults or differs(value, defaults[name].default))
        raise ArgumentError(
            f"{type(instance).__name__} derives from {root.__name__}, but {given} selects {variant.__name__}: "
            f"call gdla.{root.__name__}(...), or derive from {variant.__name__}"
        )


def differs(value: Any, default: Any) -> bool:
    """value != default, where a value that cannot be compared (a tensor of several entries) differs."""
    try:
        return bool(value != default)
    except (TypeError, ValueError, RuntimeError):  # e.g. a tensor of several entries
        return True
