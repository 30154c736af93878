"""Best-so-far tracking: the point a run returns, and the losses its stopping rules judge.

Every loss evaluation goes through :meth:`BestSoFar.observe`.  Three strategies share one
interface and one tie rule (:func:`improves`):

* :class:`HostBest` reads each loss on the host (free on the CPU) and copies the parameters
  when the loss ties or beats the lowest seen;
* :class:`DeviceBest` keeps everything on the device (no synchronisation per step, for GPUs):
  the kept point is updated with ``torch.where``, and frozen at the step where ``tol`` is met or
  the loss turns non-finite, so those steps are still found exactly when the host reads a
  block's losses once, at its end;
* :class:`LastIterate` keeps no point (stochastic losses, proximal methods): the solution is the
  last iterate.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Optional, Sequence, Union, overload

import torch
from torch import Tensor


@overload
def improves(value: float, lowest: float, tie: float) -> bool: ...


@overload
def improves(value: Tensor, lowest: Tensor, tie: float) -> Tensor: ...


def improves(value: Any, lowest: Any, tie: float) -> Any:
    """``value`` ties or beats the lowest loss seen: within ``tie·|lowest|`` above it.

    A loss within a few ulps of the lowest is a tie that rounding cannot break; near a non-zero
    minimum (least squares) every later iterate ties, and the later one of a convergent method
    is the better answer, so ties move the kept point forward.  Works on floats and tensors."""
    return value <= lowest + tie * abs(lowest)


class BestSoFar:
    """Interface: the kept point, the loss at it, the lowest loss seen, non-finite losses."""

    keeps_point = True

    def __init__(self, params: Sequence[Tensor]) -> None:
        self.params = params
        self.tie = 8 * torch.finfo(params[0].dtype).eps if params else 0.0
        self.best_loss = math.inf  # the loss of the kept point
        self.min_loss = math.inf  # the lowest loss seen: ties are measured from it
        self.nonfinite: Optional[float] = None  # the first NaN/Inf loss seen
        self.point = [p.detach().clone() for p in params]  # the start, until something beats it

    def observe(self, loss: Tensor) -> Any:
        """Account for one evaluation; returns the loss as the run records it (float or tensor)."""
        raise NotImplementedError

    def observe_reported(self, loss: Union[Tensor, float]) -> float:
        """Account for a loss an optimizer reports from its own recurrences (no evaluation, so no
        point to keep): only :class:`LastIterate` tracks such a run."""
        raise TypeError(f"{type(self).__name__} keeps a point; a reported loss comes with none (use LastIterate)")

    @torch.no_grad()
    def load(self) -> None:
        """Put the kept point into the parameters (the end of a run)."""
        if self.keeps_point:
            for p, saved in zip(self.params, self.point):
                p.copy_(saved)

    @contextlib.contextmanager
    def loaded(self) -> Iterator[None]:
        """The parameters hold the kept point inside the block, the iterate again after it."""
        if not self.keeps_point:
            yield
            return
        with torch.no_grad():
            current = [p.detach().clone() for p in self.params]
            self.load()
        try:
            yield
        finally:
            with torch.no_grad():
                for p, saved in zip(self.params, current):
                    p.copy_(saved)

    def state_dict(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "min_loss": self.min_loss, "best": [t.clone() for t in self.point]}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_loss = state["best_loss"]
        self.min_loss = state.get("min_loss", self.best_loss)
        for saved, t in zip(self.point, state["best"]):
            saved.copy_(t)


class HostBest(BestSoFar):
    """Reads every loss on the host; copies the parameters when it improves."""

    def observe(self, loss: Tensor) -> float:
        value = loss.item()
        if improves(value, self.min_loss, self.tie):  # False for NaN
            self.min_loss = min(self.min_loss, value)
            self.best_loss = value
            for saved, p in zip(self.point, self.params):
                saved.copy_(p.detach())
        elif not math.isfinite(value) and self.nonfinite is None:
            self.nonfinite = value
        return value


class LastIterate(HostBest):
    """No kept point: the solution is the last iterate, ``best_loss`` the latest loss (which the
    stopping rules confirm from the data before trusting: it may be a mini-batch's, or a trial
    point's)."""

    keeps_point = False

    def observe(self, loss: Union[Tensor, float]) -> float:
        value = loss if isinstance(loss, float) else loss.item()  # a Krylov method reports a float
        if math.isfinite(value):
            self.best_loss = value
            self.min_loss = min(self.min_loss, value)
        elif self.nonfinite is None:
            self.nonfinite = value
        return value

    observe_reported = observe


class DeviceBest(BestSoFar):
    """Tracks the kept point on the device; the host reads a block's records once.

    ``tol`` (0/None: off) freezes the kept point at the first step where the best loss meets it,
    as a non-finite loss does, so the steps a block runs past that point change nothing."""

    def __init__(self, params: Sequence[Tensor], tol: Optional[float]) -> None:
        super().__init__(params)
        device = params[0].device
        self.tol = tol
        self._best = torch.tensor(math.inf, dtype=torch.float64, device=device)
        self._min = torch.tensor(math.inf, dtype=torch.float64, device=device)
        self._bad = torch.tensor(0.0, dtype=torch.float64, device=device)  # first non-finite loss, or 0
        self._bad_seen = torch.tensor(False, device=device)
        self._frozen = torch.tensor(False, device=device)

    def observe(self, loss: Tensor) -> Tensor:
        value = loss.detach().to(torch.float64)
        better = improves(value, self._min, self.tie) & ~self._frozen
        self._min = torch.where(better, torch.minimum(value, self._min), self._min)
        self._best = torch.where(better, value, self._best)
        for saved, p in zip(self.point, self.params):
            saved.copy_(torch.where(better, p.detach(), saved))
        bad = ~torch.isfinite(value)
        self._bad = torch.where(bad & ~self._bad_seen, value, self._bad)
        self._bad_seen = self._bad_seen | bad
        return value

    def end_step(self, value: Tensor) -> Tensor:
        """Close a step whose loss is ``value``: freeze on tol or a non-finite loss, and return the
        step's record (loss, best loss, non-finite seen, first non-finite loss) on the device."""
        stop = self._bad_seen
        if self.tol:
            stop = stop | (self._best <= self.tol)
        self._frozen = self._frozen | stop
        return torch.stack([value, self._best, self._bad_seen.to(torch.float64), self._bad])

    def read(self, records: list[Tensor]) -> list[tuple[float, float, Optional[float]]]:
        """One synchronisation: the block's (loss, best loss, first non-finite loss or None) per step."""
        rows = torch.stack(records).cpu().tolist()
        return [(value, best, bad if seen else None) for value, best, seen, bad in rows]

    def sync(self, best_loss: float, nonfinite: Optional[float]) -> None:
        """Mirror a read record on the host (the rules judge these)."""
        self.best_loss = best_loss
        self.nonfinite = nonfinite

    @torch.no_grad()
    def load(self) -> None:
        super().load()
        if math.isfinite(float(self._best)):
            self.best_loss = float(self._best)  # the loss of the point the device kept

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._best.fill_(self.best_loss)
        self._min.fill_(self.min_loss)
