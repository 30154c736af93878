"""The step loop: optimizer steps, the evaluations they make, and the rules applied after each.

This is the hot path of every run, so it makes exactly the calls a step needs: the optimizer's
step (which calls :meth:`StepLoop.closure`), one entry in the history and one stopping-rule check.
:class:`~torch_gdla.engine.iteration.Iteration` owns the loop and everything around it (the step
budget, the status, the returned point, checkpoints).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from torch import Tensor

from .best import DeviceBest

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from ..problems.base import Problem
    from .best import BestSoFar
    from .diagnosis import Verdict
    from .history import LossHistory
    from .rules import StoppingRules

_NO_CLOSURE = ("the optimizer's step() did not call the closure; torch_gdla needs optimizers that evaluate the "
               "loss through step(closure)")

Step = Callable[[Callable[[], Tensor]], Any]


class StepLoop:
    """Takes optimizer steps on ``problem``; returns the stopping rules' verdict when one fires.

    Args:
        problem, optimizer: as for ``Iteration``.
        best, history, rules: the run's best-so-far tracker, loss history and stopping rules.
        backward: how a loss is differentiated into ``.grad``.
        accumulates: ``backward`` adds to ``.grad`` (``zero_grad`` is called before each evaluation).
        self_evaluating: the optimizer reports each step's loss itself (a Krylov method).

    With a :class:`~.best.DeviceBest` tracker the losses stay on the device and a block's are
    read at its end, at once (deferred); otherwise each is read and judged as its step ends.
    """

    def __init__(self, problem: Problem, optimizer: Optimizer, best: BestSoFar, history: LossHistory,
                 rules: StoppingRules, backward: Callable[[Tensor], Any], *, accumulates: bool,
                 self_evaluating: bool) -> None:
        self.problem, self.optimizer, self.best, self.history, self.rules = problem, optimizer, best, history, rules
        self.backward = backward
        self.accumulates = accumulates
        self.self_evaluating = self_evaluating
        self.evaluations = 0
        self.interrupt_requested = False  # set by a signal handler: stop cleanly after this step
        self.batch: Any = None  # the data a data-driven problem's loss is evaluated on
        self._step_value: Any = None

    def closure(self) -> Tensor:
        """Evaluate the loss and its gradient at the current parameters (what optimizers call)."""
        if self.accumulates:
            self.optimizer.zero_grad()
        loss = self.problem() if self.batch is None else self.problem(self.batch)
        self.backward(loss)
        self.evaluations += 1
        value = self.best.observe(loss)
        if self._step_value is None:  # a step's loss is that of its first evaluation
            self._step_value = value
        return loss

    def _step(self, step: Step) -> Any:
        self._step_value = None
        returned = step(self.closure)
        if self._step_value is None:
            if not (self.self_evaluating and isinstance(returned, (Tensor, float))):
                raise RuntimeError(_NO_CLOSURE)
            # A Krylov method's loss at its new iterate, from its recurrences (no forward pass;
            # counted as the step's evaluation of the loss).
            self.evaluations += 1
            self._step_value = self.best.observe_reported(returned)
        return self._step_value

    def run(self, n_steps: int, step: Step) -> Optional[Verdict]:
        """Take up to ``n_steps`` steps with ``step``; the verdict of the rule that stopped them, or None."""
        best = self.best
        if not isinstance(best, DeviceBest):
            for _ in range(n_steps):
                value = self._step(step)
                # the history's second column is the lowest loss so far: the kept point's loss, or
                # (no kept point) the lowest seen, whose progress the stall rules judge
                verdict = self._record(value, best.best_loss if best.keeps_point else best.min_loss, block_end=True)
                if verdict is not None:
                    return verdict
            return None
        if n_steps == 0:
            return None
        records = [best.end_step(self._step(step)) for _ in range(n_steps)]
        for j, (value, best_loss, nonfinite) in enumerate(best.read(records)):  # one synchronisation
            best.sync(best_loss, nonfinite)
            verdict = self._record(value, best_loss, block_end=j == n_steps - 1)
            if verdict is not None:
                return verdict
        return None

    def _record(self, value: float, best_loss: float, block_end: bool) -> Optional[Verdict]:
        """Write a finished step into the history and apply the stopping rules."""
        self.history.append(value, best_loss)
        return self.rules.check(value, block_end, self.interrupt_requested)
