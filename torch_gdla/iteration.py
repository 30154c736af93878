"""The solver loop without Lightning: optimizer steps, stopping rules, best-solution tracking.

``SolverModule`` drives an :class:`Iteration` in blocks of steps (one Lightning
``training_step`` per block), so Lightning's per-step costs are paid once per block while the
stopping rules are still checked after every optimizer step.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

import torch
from torch import Tensor

from .errors import ArgumentTypeError
from .problems.base import Problem
from .result import Result, Status
from .validation import (
    check_nonnegative_int,
    check_optimizer_factory,
    check_positive_int,
    check_tolerance,
)

# Residual tolerance used when the caller sets no tolerance at all: about the square root of the
# dtype's machine epsilon, which a loss-based method can reach even when the minimum loss is not
# zero (least squares), where loss differences vanish below sqrt(eps) relative change.
DEFAULT_RESIDUAL_TOL = {torch.float64: 1e-8, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 1e-2}


_NO_CLOSURE = ("the optimizer's step() did not call the closure; torch_gdla needs optimizers that evaluate the "
               "loss through step(closure)")


@dataclass
class Criteria:
    """Stopping rules (plain, serialisable settings).

    tol: stop when the loss ≤ tol (absolute).  ``0`` disables it.
    residual_tol: stop when ``problem.residual()`` ≤ residual_tol.  ``0`` disables it.
    rtol: stop when |l₁−l₂|/max(l₁,l₂) between losses ``rtol_every`` steps apart < rtol.
    residual_every: how often (steps) the residual is computed when the loss gives no bound on it.
    stall_steps: with a tolerance set, stop early when the best loss improved by less than one
        part in a million over this many steps (the run is then explained: singular matrix,
        precision floor of the dtype, or a stalled optimizer).  ``0`` disables it.
    When tol, residual_tol and rtol are all None, residual_tol defaults to ``DEFAULT_RESIDUAL_TOL``.
    """

    tol: Optional[float] = None
    residual_tol: Optional[float] = None
    rtol: Optional[float] = None
    rtol_every: int = 10
    residual_every: int = 10
    stall_steps: int = 200

    def __post_init__(self) -> None:
        for name in ("tol", "residual_tol", "rtol"):
            setattr(self, name, check_tolerance(getattr(self, name), name))
        check_positive_int(self.rtol_every, "rtol_every")
        check_positive_int(self.residual_every, "residual_every")
        check_nonnegative_int(self.stall_steps, "stall_steps")

    def resolved(self, dtype: torch.dtype) -> "Criteria":
        if self.tol is None and self.residual_tol is None and self.rtol is None:
            return Criteria(residual_tol=DEFAULT_RESIDUAL_TOL.get(dtype, 1e-4), rtol_every=self.rtol_every,
                            residual_every=self.residual_every, stall_steps=self.stall_steps)
        return self

    @property
    def any_active(self) -> bool:
        return bool(self.tol) or bool(self.residual_tol) or bool(self.rtol)


def build_optimizer(factory: Optional[Callable[..., Any]], problem: Problem) -> torch.optim.Optimizer:
    """Call the user's optimizer factory on the problem's parameters, checking what comes back."""
    if factory is None:
        return problem.default_optimizer()
    check_optimizer_factory(factory)
    try:
        optimizer = factory(problem.parameters())
    except TypeError as error:
        raise ArgumentTypeError(
            f"optimizer could not be called with the parameters ({error}); pass a callable params -> Optimizer, "
            "e.g. functools.partial(torch.optim.SGD, lr=0.1)"
        ) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ArgumentTypeError(
            f"optimizer must return a torch.optim.Optimizer when called with the parameters; got {type(optimizer).__name__}. "
            "Pass the class or a functools.partial of it, not an instance"
        )
    return optimizer



class Iteration:
    """Runs optimizer steps on ``problem`` and decides when to stop.

    Every loss evaluation goes through :meth:`closure`, which counts it and remembers the
    parameters with the lowest loss seen; the run's solution is always that best point, and
    every convergence test is made at it, so ``converged`` never claims more than holds.
    """

    def __init__(self, problem: Problem, optimizer: torch.optim.Optimizer, criteria: Criteria,
                 backward: Callable[[Tensor], Any] = Tensor.backward, deferred: Optional[bool] = None) -> None:
        self.problem = problem
        self.optimizer = optimizer
        self.criteria = criteria.resolved(problem.dtype)
        self.backward = backward
        self.params = [p for p in problem.parameters() if p.requires_grad]
        self.steps = 0
        self.evaluations = 0
        self.best_loss = math.inf  # the loss of the kept point, self.best
        self._min_loss = math.inf  # the lowest loss seen: ties are measured from it
        self.best = [p.detach().clone() for p in self.params]  # the start, until something beats it
        self._history = torch.empty(1024, dtype=torch.float64)
        self._history_view = self._history.numpy()
        self._best_history = self._history_view.copy()  # best loss after each step, for stall checks
        self.interrupt_requested = False  # set by a signal handler: stop cleanly after this step
        self.track_best = not (problem.stochastic or problem.last_iterate)
        self._tie = 8 * torch.finfo(problem.dtype).eps
        self._residual_checks: list[tuple[int, float]] = []  # (step, residual) at stall checks
        self._batch: Any = None
        # Deferred (default off the CPU, where reading a loss costs a device synchronisation):
        # losses stay on the device, the best point is tracked with torch.where, and the host
        # reads a block's losses once, at its end.  The step where tol is met or the loss turns
        # non-finite is still found exactly, and the best point is frozen there; residual, rtol
        # and stall rules are checked on the host at block ends.
        self.deferred = problem.device.type != "cpu" if deferred is None else deferred
        if self.deferred:
            device = self.best[0].device if self.best else problem.device
            self._best_t = torch.tensor(math.inf, dtype=torch.float64, device=device)
            self._min_t = torch.tensor(math.inf, dtype=torch.float64, device=device)
            self._frozen = torch.tensor(False, device=device)
            self._evaluated: list[Tensor] = []  # this block's loss tensors, one per evaluation
            self._evaluated_steps: list[int] = []
        self._step_value: Optional[Tensor] = None
        self._step_loss: Optional[float] = None
        self._nonfinite: Optional[float] = None
        self.status: Optional[Status] = None
        self.detail = ""

    # -- one evaluation -------------------------------------------------------------------
    def closure(self) -> Tensor:
        self.optimizer.zero_grad()
        loss = self.problem() if self._batch is None else self.problem(self._batch)
        self.backward(loss)
        value = loss.item()
        self.evaluations += 1
        if self._step_loss is None:
            self._step_loss = value
        if not self.track_best:
            if value == value and value not in (math.inf, -math.inf):
                self.best_loss = min(self.best_loss, value)
            elif self._nonfinite is None:
                self._nonfinite = value
        elif value <= self._min_loss + self._tie * abs(self._min_loss):
            # A loss within a few ulps of the lowest is a tie that rounding cannot break; near a
            # non-zero minimum (least squares) every later iterate ties, and the later one of a
            # convergent method is the better answer, so ties move the best point forward.
            # best_loss is the loss of the point kept, so every test made on it holds there.
            self._min_loss = min(self._min_loss, value)
            self.best_loss = value
            for saved, p in zip(self.best, self.params):
                saved.copy_(p.detach())
        elif value != value or value in (math.inf, -math.inf):
            if self._nonfinite is None:
                self._nonfinite = value
        return loss

    def _deferred_closure(self) -> Tensor:
        self.optimizer.zero_grad()
        loss = self.problem() if self._batch is None else self.problem(self._batch)
        self.backward(loss)
        value = loss.detach().to(torch.float64)
        self.evaluations += 1
        self._evaluated.append(value)
        self._evaluated_steps.append(self._block_step)
        if self._step_value is None:
            self._step_value = value
        if self.track_best:
            lowest = self._min_t
            improve = (value <= lowest + self._tie * lowest.abs()) & ~self._frozen
            self._min_t = torch.where(improve, torch.minimum(value, lowest), lowest)
            self._best_t = torch.where(improve, value, self._best_t)
            for saved, p in zip(self.best, self.params):
                saved.copy_(torch.where(improve, p.detach(), saved))
        return loss

    def _run_deferred(self, n_steps: int, step: Callable[[Callable[[], Tensor]], Any]) -> Optional[Status]:
        tol = self.criteria.tol
        step_values: list[Tensor] = []
        self._evaluated, self._evaluated_steps = [], []
        for self._block_step in range(n_steps):
            self._step_value = None
            step(self._deferred_closure)
            value = self._step_value
            if value is None:
                raise RuntimeError(_NO_CLOSURE)
            step_values.append(value)
            stop = ~torch.isfinite(value)
            if tol:
                stop = stop | (self._best_t <= tol)
            self._frozen = self._frozen | stop
        # One synchronisation per block: replay the block's losses through the host-side rules.
        values = torch.stack(step_values).cpu().tolist()
        evaluated = torch.stack(self._evaluated).cpu().tolist()
        by_step: list[list[float]] = [[] for _ in range(n_steps)]
        for index, loss in zip(self._evaluated_steps, evaluated):
            by_step[index].append(loss)
        for j, value in enumerate(values):
            for loss in by_step[j]:  # the closure's rule, replayed on the host
                if not math.isfinite(loss):
                    if self._nonfinite is None:
                        self._nonfinite = loss
                elif not self.track_best:
                    self.best_loss = min(self.best_loss, loss)
                elif loss <= self._min_loss + self._tie * abs(self._min_loss):
                    self._min_loss = min(self._min_loss, loss)
                    self.best_loss = loss
            status = self._record_step(value, block_end=j == len(values) - 1)
            if status is not None:
                return status
        return None

    # -- a block of steps ----------------------------------------------------------------------
    def run(self, n_steps: int, step: Optional[Callable[[Callable[[], Tensor]], Any]] = None,
            batch: Any = None) -> Optional[Status]:
        """Take up to ``n_steps`` optimizer steps (on ``batch`` for a data-driven problem); return
        a Status as soon as one stopping rule fires."""
        if self.status is not None:
            return self.status
        self._batch = batch
        step = step or self.optimizer.step
        if self.steps + n_steps > len(self._history):
            self._grow(self.steps + n_steps)
        try:
            return self._run_deferred(n_steps, step) if self.deferred else self._run_per_step(n_steps, step)
        except KeyboardInterrupt:
            self.status = Status.INTERRUPTED
            self.detail = f"interrupted at step {self.steps}; the best solution so far is returned"
            return self.status

    def _run_per_step(self, n_steps: int, step: Callable[[Callable[[], Tensor]], Any]) -> Optional[Status]:
        closure = self.closure
        for _ in range(n_steps):
            self._step_loss = None
            step(closure)
            if self._step_loss is None:
                raise RuntimeError(_NO_CLOSURE)
            status = self._record_step(self._step_loss)
            if status is not None:
                return status
        return None

    def _record_step(self, value: float, block_end: bool = True) -> Optional[Status]:
        """Write a finished step's loss into the history and apply the stopping rules."""
        self._history_view[self.steps] = value
        self._best_history[self.steps] = self.best_loss
        self.steps += 1
        status = self._check(value, block_end)
        if status is not None:
            self.status = status
        return status

    def _grow(self, capacity: int) -> None:
        # The history is a preallocated float64 tensor; writes go through a NumPy view of the
        # same memory (a tensor __setitem__ costs microseconds per step).
        size = max(1024, len(self._history))
        while size < capacity:
            size *= 2
        grown = torch.empty(size, dtype=torch.float64)
        grown[: self.steps] = self._history[: self.steps]
        self._history = grown
        self._history_view = grown.numpy()
        best = self._best_history
        self._best_history = self._history_view.copy()
        self._best_history[: self.steps] = best[: self.steps]

    def _check(self, value: float, block_end: bool = True) -> Optional[Status]:
        """The stopping rules after a step.  ``block_end=False`` (a deferred block's inner steps)
        applies only the rules the device tracked exactly there: divergence and tol.  Deferred
        runs apply the periodic rules (residual, rtol, stall) at every block end."""
        c = self.criteria
        if self._nonfinite is not None or not math.isfinite(value):
            bad = value if not math.isfinite(value) else self._nonfinite
            if not math.isfinite(self.best_loss):
                self.detail = (f"diverged: the loss is {bad} at the starting point; check the start (init=) and the "
                               "scale of the data, which overflow the loss (the starting point is returned)")
            else:
                self.detail = (f"diverged: loss became {bad} at step {self.steps - 1}; lower the learning rate "
                               f"(the best solution seen, loss {self.best_loss:.3g}, is returned)")
            return Status.DIVERGED
        if c.tol and self.best_loss <= c.tol:
            self.detail = f"tol reached: loss {self.best_loss:.10g} <= tol {c.tol:.10g}"
            return Status.TOL
        if not block_end:
            return None
        if c.residual_tol:
            bound = self.problem.residual_bound(self.best_loss)
            if bound is not None and bound <= c.residual_tol:
                self.detail = f"residual_tol reached: residual <= {bound:.3g} <= residual_tol {c.residual_tol:g}"
                return Status.RESIDUAL_TOL
            if bound is None and (self.deferred or self.steps % c.residual_every == 0):
                residual = self.best_residual()
                if residual <= c.residual_tol:
                    self.detail = f"residual_tol reached: residual {residual:.3g} <= residual_tol {c.residual_tol:g}"
                    return Status.RESIDUAL_TOL
        if self.interrupt_requested:
            self.detail = f"interrupted at step {self.steps}; the best solution so far is returned"
            return Status.INTERRUPTED
        if (self.track_best and c.stall_steps and c.any_active and self.steps > c.stall_steps
                and (self.deferred or self.steps % 10 == 0)):
            earlier = float(self._best_history[self.steps - 1 - c.stall_steps])
            if earlier - self.best_loss <= 1e-6 * abs(earlier) and self._residual_stalled():
                return self._explain_stall()
        if c.rtol and self.steps > c.rtol_every and (self.deferred or (self.steps - 1) % c.rtol_every == 0):
            previous = float(self._history_view[self.steps - 1 - c.rtol_every])
            scale = max(abs(previous), abs(value))
            change = abs(previous - value) / scale if scale > 0 else 0.0
            if change < c.rtol:
                if self._looks_singular():  # a plateau of a singular problem is no convergence
                    return self._explain_stall()
                self.detail = f"relative change below rtol: {change:.3g} < {c.rtol:g} over {c.rtol_every} steps"
                return Status.RTOL
        return None

    def _looks_singular(self) -> bool:
        if not (self.problem.singular_advice is not None):
            return False
        cond = self.problem.condition_number()
        return cond is not None and (cond != cond or cond * torch.finfo(self.problem.dtype).eps > 1e-2)

    def _residual_stalled(self) -> bool:
        """With residual_tol set, a flat loss is not enough: when the minimum loss is not zero
        (least squares, an energy loss) the loss changes like the residual squared while the
        residual still falls (slowly and not monotonically, for CG on an ill-conditioned
        problem, with plateaus of O(√κ) steps).  Stalled = the smallest residual checked fell by
        less than 1 % over the last half of the run (at least stall_steps steps); at a real stall
        (singular matrix, precision floor) it does not move at all."""
        if not self.criteria.residual_tol:
            return True
        self._residual_checks.append((self.steps, self.best_residual()))
        window = max(self.criteria.stall_steps, self.steps // 2)
        before = [r for step, r in self._residual_checks if step <= self.steps - window]
        if not before:
            return False
        return min(r for _, r in self._residual_checks) > 0.99 * min(before)

    def _explain_stall(self) -> Status:
        """The loss stopped improving before any tolerance held: say why, and what to do."""
        dtype = self.problem.dtype
        eps = torch.finfo(dtype).eps
        cond = self.problem.condition_number() if (self.problem.singular_advice is not None) or self.criteria.residual_tol else None
        residual = self.best_residual()
        dtype_name = str(dtype).replace("torch.", "")
        if (self.problem.singular_advice is not None) and cond is not None and (cond != cond or cond * eps > 1e-2):
            self.detail = (f"matrix looks singular: estimated condition number {cond:.3g} (1/eps of {dtype_name} is "
                           f"{1 / eps:.3g}); the loss plateaus at {self.best_loss:.3g} while the gradient vanishes. "
                           + self.problem.singular_advice)
            return Status.SINGULAR
        floor = eps * (cond if cond is not None and cond == cond else 1.0)
        if residual <= max(100 * floor, 10 * eps):
            target = self.criteria.residual_tol or self.criteria.tol
            self.detail = (f"tolerance below what {dtype_name} can reach: the residual stalls at {residual:.3g} "
                           f"(precision floor about eps {eps:.2g} x condition number {cond if cond else 1:.3g} = {floor:.2g}); "
                           f"use float64 or a tolerance above the floor (asked: {target:g})")
            return Status.PRECISION
        self.detail = (f"stalled: the loss stopped decreasing at {self.best_loss:.3g} (residual {residual:.3g}) "
                       f"over the last {self.criteria.stall_steps} steps; change the optimizer or its learning rate")
        return Status.STALLED

    # -- the best point ----------------------------------------------------------------------------
    @torch.no_grad()
    def best_residual(self) -> float:
        """``problem.residual()`` at the best point, without disturbing the optimizer's iterate."""
        if not self.track_best:
            return self.problem.residual()
        current = [p.detach().clone() for p in self.params]
        self._load(self.best)
        try:
            return self.problem.residual()
        finally:
            self._load(current)

    @torch.no_grad()
    def _load(self, tensors: list[Tensor]) -> None:
        for p, t in zip(self.params, tensors):
            p.copy_(t)

    @property
    def last_loss(self) -> float:
        """The loss of the latest step (NaN before the first)."""
        return float(self._history_view[self.steps - 1]) if self.steps else math.nan

    @property
    def history(self) -> Tensor:
        return self._history[: self.steps].clone()

    def finish(self, status: Optional[Status] = None, max_steps: Optional[int] = None) -> Result:
        """End the run: load the best point into the problem and describe the outcome."""
        status = status or self.status or Status.MAX_STEPS
        self.status = status
        if status is Status.MAX_STEPS and self.track_best and self.criteria.any_active and self._stalled_at_end():
            status = self._explain_stall()
        elif status is Status.MAX_STEPS:
            if self.criteria.any_active and self.track_best and self._looks_singular():
                status = self._explain_stall()
            elif self.criteria.any_active:
                self.detail = (f"max_steps reached: increase max_steps (now {max_steps or self.steps}) or change optimizer; "
                               f"best loss {self.best_loss:.3g}")
            else:
                self.detail = f"max_steps reached: ran all {self.steps} steps (no tolerance was set)"
        if self.track_best:
            self._load(self.best)
            if self.deferred and math.isfinite(float(self._best_t)):
                self.best_loss = float(self._best_t)  # the loss of the point the device kept
            loss = self.best_loss
        else:  # stochastic: the last iterate, and the mean loss of the last batches
            recent = self.history[-50:]
            loss = float(recent.mean()) if len(recent) else math.nan
        with torch.no_grad():
            residuals = self.problem.residuals().detach()
        return Result(
            solution=self.problem.solution, converged=status.converged, status=status,
            reason=self.detail or status.value, steps=self.steps, evaluations=self.evaluations,
            loss=loss, residual=float(residuals.max()), history=self.history,
            residuals=residuals, member_converged=self._member_converged(status, residuals),
        )

    def _stalled_at_end(self) -> bool:
        # The last tenth of the run (at least 50 steps) improved the best loss by less than 1 %.
        window = max(50, self.steps // 10)
        if self.steps <= window or not math.isfinite(self.best_loss):
            return False
        earlier = float(self._best_history[self.steps - 1 - window])
        return earlier - self.best_loss <= 1e-2 * abs(earlier)

    @torch.no_grad()
    def _member_converged(self, status: Status, residuals: Tensor) -> Optional[Tensor]:
        if residuals.dim() == 0:
            return None
        c = self.criteria
        met = torch.zeros_like(residuals, dtype=torch.bool)
        if c.tol:
            met |= self.problem.losses().to(residuals.device) <= c.tol
        if c.residual_tol:
            met |= residuals <= c.residual_tol
        if status is Status.RTOL:
            met |= True
        return met

    # -- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "evaluations": self.evaluations, "best_loss": self.best_loss,
                "min_loss": self._min_loss,
                "best": [t.clone() for t in self.best], "history": self.history, "criteria": asdict(self.criteria)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.evaluations = state["evaluations"]
        self.best_loss = state["best_loss"]
        self._min_loss = state.get("min_loss", self.best_loss)
        if self.deferred:
            self._best_t.fill_(self.best_loss)
            self._min_t.fill_(self._min_loss)
        for saved, t in zip(self.best, state["best"]):
            saved.copy_(t)
        history = state["history"]
        self._history = torch.empty(max(1024, 2 * len(history)), dtype=torch.float64)
        self._history[: len(history)] = history
        self._history_view = self._history.numpy()
        self._best_history = self._history_view.copy()
        self._best_history[: len(history)] = torch.cummin(history, 0).values.numpy()
