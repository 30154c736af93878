"""A strong-Wolfe line search on host numbers (Nocedal & Wright, Algorithms 3.5 and 3.6).

The same method as torch's ``_strong_wolfe`` (bracketing, then zoom by safeguarded cubic
interpolation), with the bookkeeping on Python floats: only the evaluation itself touches
tensors, so a step accepted at its first trial, the usual case for quasi-Newton directions,
costs one evaluation and a few microseconds.

Near a minimum whose value is not zero, loss differences drop below the rounding of the loss
long before the gradient vanishes (at ‖x − x*‖ ≈ √eps), and the sufficient-decrease test can no
longer be decided.  There, within ``tie`` of the start's loss, the approximate Wolfe conditions
of Hager & Zhang (2005) decide instead — gᵀd ≤ (1 − 2·c1)·|g₀ᵀd|, read off the gradient — and
losses within ``tie`` compare as equal, so the search keeps converging on the gradient.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

from torch import Tensor


class Trial(NamedTuple):
    """A point x + t·d: its step, loss, gradient and directional derivative gᵀd."""

    t: float
    f: float
    g: Optional[Tensor]
    gtd: float


Evaluate = Callable[[float], Trial]


def cubic_minimum(a: Trial, b: Trial, low: float, high: float) -> float:
    """The minimiser of the cubic through (a.t, a.f, a.gtd), (b.t, b.f, b.gtd), clamped to
    [low, high]; the bisection of [low, high] where the cubic has no minimum."""
    d1 = a.gtd + b.gtd - 3 * (a.f - b.f) / (a.t - b.t) if a.t != b.t else math.nan
    square = d1 * d1 - a.gtd * b.gtd
    if not math.isfinite(square) or square < 0:
        return (low + high) / 2
    d2 = math.copysign(math.sqrt(square), b.t - a.t)
    denominator = b.gtd - a.gtd + 2 * d2
    if denominator == 0:
        return (low + high) / 2
    t = b.t - (b.t - a.t) * (b.gtd + d2 - d1) / denominator
    return min(max(t, low), high) if math.isfinite(t) else (low + high) / 2


def _sufficient(start: Trial, trial: Trial, c1: float, tie: float) -> bool:
    """Sufficient decrease: Armijo's test, or within ``tie`` of f₀ the approximate one."""
    if not math.isfinite(trial.f):
        return False
    if trial.f <= start.f + c1 * trial.t * start.gtd:
        return True
    return trial.f <= start.f + tie and trial.gtd <= (1 - 2 * c1) * -start.gtd


def strong_wolfe(evaluate: Evaluate, start: Trial, t: float, c1: float, c2: float, max_evals: int,
                 tolerance: float, tie: float = 0.0) -> Trial:
    """A step satisfying the strong Wolfe conditions f ≤ f₀ + c1·t·g₀ᵀd and |gᵀd| ≤ c2·|g₀ᵀd|
    (or their approximate form within ``tie`` of f₀, see the module docstring), or, when
    ``max_evals`` evaluations or a bracket narrower than ``tolerance`` (in t) do not find one,
    the best point seen (``start`` itself, t = 0, if no step qualified)."""
    previous, evals = start, 0
    while evals < max_evals:
        trial = evaluate(t)
        evals += 1
        if not _sufficient(start, trial, c1, tie) or (evals > 1 and trial.f > previous.f + tie):
            return _zoom(evaluate, start, previous, trial, c1, c2, max_evals - evals, tolerance, tie)
        if abs(trial.gtd) <= -c2 * start.gtd:
            return trial
        if trial.gtd >= 0:
            return _zoom(evaluate, start, trial, previous, c1, c2, max_evals - evals, tolerance, tie)
        # Still descending at t: extrapolate, between a little and ten times further.
        low, high = t + 0.01 * (t - previous.t), 10 * t
        previous, t = trial, cubic_minimum(previous, trial, low, high)
    return previous


def _zoom(evaluate: Evaluate, start: Trial, low: Trial, high: Trial, c1: float, c2: float, max_evals: int,
          tolerance: float, tie: float) -> Trial:
    """Algorithm 3.6: ``low`` satisfies sufficient decrease and is the lower end; the minimiser
    lies between ``low`` and ``high``."""
    while max_evals > 0 and abs(high.t - low.t) > tolerance:
        if math.isfinite(high.f):
            t = cubic_minimum(low, high, min(low.t, high.t), max(low.t, high.t))
        else:
            t = (low.t + high.t) / 2  # an overflowing trial: bisect
        # Keep away from the ends (10 % of the bracket), where interpolation stalls.
        margin = 0.1 * abs(high.t - low.t)
        t = min(max(t, min(low.t, high.t) + margin), max(low.t, high.t) - margin)
        trial = evaluate(t)
        max_evals -= 1
        if not _sufficient(start, trial, c1, tie) or trial.f > low.f + tie:
            high = trial
            continue
        if abs(trial.gtd) <= -c2 * start.gtd:
            return trial
        if trial.gtd * (high.t - low.t) >= 0:
            high = low
        low = trial
    return low
