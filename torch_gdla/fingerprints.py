"""Problem fingerprints: what a checkpoint records of the problem it belongs to, so that a resume
into a different problem (another matrix of the same shape, another dtype, another operation) is
refused instead of silently continuing the old run with the old data.

A fingerprint is a small dict of plain values (it loads with ``torch.load(weights_only=True)``):
the problem's class, its dtype, and for each of its given tensors
(:meth:`~torch_gdla.problems.base.Problem.given_tensors`) the shape, the dtype and a hash of the
values.  :func:`difference` compares two and names the first part that differs.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Optional

import torch
from torch import Tensor

__all__ = ["FINGERPRINT_KEY", "fingerprint", "difference", "UnverifiedCheckpointWarning"]

FINGERPRINT_KEY = "torch_gdla_problem"  # where SolverModule.on_save_checkpoint stores it
VERSION = 1
# Tensors with more entries than this are hashed from a strided sample (see _tensor).
SAMPLE = 1 << 16


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint written before checkpoints carried a fingerprint: it is resumed, unchecked."""


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@torch.no_grad()
def _tensor(tensor: Tensor) -> dict[str, Any]:
    entry: dict[str, Any] = {"shape": list(tensor.shape), "dtype": _name(tensor.dtype)}
    if tensor.layout != torch.strided:  # problems hold dense tensors today; keep the layout and size
        entry["layout"] = str(tensor.layout)
        return entry
    flat = tensor.detach().reshape(-1)
    # A checkpoint is written every N steps and the matrix may be large and on a GPU: hashing all
    # of it would copy it to the host and hash gigabytes each time, costing more than the steps
    # between checkpoints.  Up to SAMPLE entries are hashed exactly; beyond that, an evenly
    # strided sample of about SAMPLE entries (any other seed, file or generator changes it with
    # near certainty) plus the sum, the 2-norm and the 1-norm of all entries, reduced where the
    # tensor lives in its own dtype (a float64 copy of a float32 matrix would cost 15× more);
    # they catch a change of scale, or of skipped entries beyond rounding.  A change that keeps
    # every sampled entry and moves the sums by less than rounding goes unnoticed.
    stride = max(1, -(-flat.numel() // SAMPLE))
    sample = flat[::stride].cpu().contiguous()
    entry["sha256"] = hashlib.sha256(sample.view(torch.uint8).numpy().tobytes()).hexdigest()
    if stride > 1:
        entry["sampled_every"] = stride
        if flat.is_floating_point():
            entry["sum"] = float(flat.sum())
            entry["norm"] = float(torch.linalg.vector_norm(flat))
            entry["l1"] = float(torch.linalg.vector_norm(flat, ord=1))
        elif not flat.is_complex():
            entry["sum"] = int(flat.sum())  # integers and booleans: exact
    return entry


def fingerprint(problem: Any) -> dict[str, Any]:
    """The fingerprint of ``problem``: class, dtype, and shape/dtype/hash of its given tensors."""
    cls = type(problem)
    return {"version": VERSION, "class": f"{cls.__module__}.{cls.__qualname__}", "dtype": _name(problem.dtype),
            "tensors": {name: _tensor(value) for name, value in problem.given_tensors().items()}}


def _shape(shape: Any) -> str:
    return str(tuple(shape))


def _close(a: Any, b: Any, tolerance: float) -> bool:
    if a is None or b is None or isinstance(a, int) or isinstance(b, int):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= tolerance


def _values_equal(saved: dict[str, Any], current: dict[str, Any]) -> bool:
    if saved.get("sha256") != current.get("sha256") or saved.get("sampled_every") != current.get("sampled_every"):
        return False
    # The same values reduced on another device, or with another thread count, differ by the
    # rounding of another summation order: a few eps·log2(n) relative to the 1-norm (for the sum)
    # or to the 2-norm (for the norm).
    dtype = getattr(torch, current["dtype"], None)
    eps = torch.finfo(dtype).eps if isinstance(dtype, torch.dtype) and dtype.is_floating_point else 0.0
    relative = 16 * eps * math.log2(max(2, math.prod(current["shape"])))

    def scale(key: str) -> float:
        value = current.get(key)
        return relative * value if isinstance(value, float) and math.isfinite(value) else 0.0

    return (_close(saved.get("sum"), current.get("sum"), scale("l1"))
            and _close(saved.get("norm"), current.get("norm"), scale("norm"))
            and _close(saved.get("l1"), current.get("l1"), scale("l1")))


def difference(saved: Any, current: dict[str, Any]) -> Optional[str]:
    """What differs between the checkpoint's fingerprint ``saved`` and this problem's
    ``current`` one, as a phrase ("the values of A differ: ..."); None when they match."""
    if not isinstance(saved, dict) or "class" not in saved or "tensors" not in saved:
        return "its problem fingerprint is unreadable"
    if saved["class"] != current["class"]:
        return (f"the problem is a {saved['class'].rsplit('.', 1)[-1]} there and a "
                f"{current['class'].rsplit('.', 1)[-1]} in this one ({saved['class']} vs {current['class']})")
    if saved.get("dtype") != current["dtype"]:
        return f"the dtype is {saved.get('dtype')} there and {current['dtype']} in this one"
    tensors, ours = saved["tensors"], current["tensors"]
    if set(tensors) != set(ours):
        return (f"the given tensors are {', '.join(sorted(tensors)) or 'none'} there and "
                f"{', '.join(sorted(ours)) or 'none'} in this one")
    for name, entry in ours.items():
        if list(tensors[name].get("shape", [])) != entry["shape"]:
            return f"the shape of {name} is {_shape(tensors[name].get('shape', []))} there and {_shape(entry['shape'])} in this one"
    for name, entry in ours.items():
        if tensors[name].get("dtype") != entry["dtype"]:
            return f"{name} is {tensors[name].get('dtype')} there and {entry['dtype']} in this one"
    for name, entry in ours.items():
        if not _values_equal(tensors[name], entry):
            return f"the values of {name} differ (same shape {_shape(entry['shape'])}, different entries)"
    return None
