"""The solver loop without Lightning: optimizer steps, stopping rules, the returned point.

An :class:`Iteration` is built once per run with everything it needs (problem, built
optimizer, criteria, max_steps); ``run(n)`` takes up to n optimizer steps and returns a Status
as soon as a rule fires; ``finish()`` returns the :class:`~torch_gdla.result.Result`.  Its
pieces each live in their own module: best-so-far tracking (:mod:`.best`), the loss history
(:mod:`.history`), the step loop (:mod:`.loop`), the stopping rules (:mod:`.rules`), the
diagnosis of a stall (:mod:`.diagnosis`) and the Result (:mod:`.outcome`).  ``SolverModule``
drives the same object in blocks of steps.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict
from typing import Any, Callable, Optional, Sequence, cast

import torch
from torch import Tensor

from ..errors import ArgumentError
from ..problems.base import Problem
from ..result import Result, Status
from ..validation import check_positive_int
from .best import BestSoFar, DeviceBest, HostBest, LastIterate
from .criteria import Criteria
from .diagnosis import optimizer_advice
from .history import LossHistory
from .loop import Step, StepLoop
from .outcome import build_result
from .rules import StoppingRules, as_estimator


def _gradient_into(params: Sequence[Tensor]) -> Callable[[Tensor], None]:
    """loss -> the gradient of loss with respect to ``params``, written into their ``.grad``
    (like ``loss.backward()``, but no other leaf of the graph is touched)."""

    def backward(loss: Tensor) -> None:
        for p, grad in zip(params, torch.autograd.grad(loss, params, allow_unused=True)):
            # contiguous, as backward() leaves it: optimizers (LBFGS) view .grad flat
            p.grad = torch.zeros_like(p) if grad is None else grad if grad.is_contiguous() else grad.contiguous()

    return backward


def _check_steps_the_problem(optimizer: torch.optim.Optimizer, problem: Problem) -> None:
    """Refuse an optimizer that steps tensors which are not the problem's parameters (built on
    another problem's, say): its steps would never move this problem's unknown, and a
    self-evaluating one would report the other problem's loss as this one's."""
    own = {id(p) for p in problem.parameters()}
    foreign = sum(id(p) not in own for group in optimizer.param_groups for p in group["params"])
    if foreign:
        raise ArgumentError(f"optimizer steps {foreign} tensor(s) that are not parameters of this problem "
                            f"({type(problem).__name__}); build it on this problem's parameters, e.g. "
                            "optimizer_class(problem.parameters()) or problem.default_optimizer()")


class Iteration:
    """Runs optimizer steps on ``problem`` and decides when to stop.

    Every loss evaluation goes through :meth:`closure`, which counts it and hands it to the
    best-so-far tracker; the run's solution is the kept point (the lowest loss seen, or the last
    iterate for stochastic/proximal problems), and every convergence test is made there, so
    ``converged`` never claims more than holds.

    Args:
        problem: the problem; its parameters are stepped in place.
        optimizer: a built ``torch.optim.Optimizer`` over the problem's parameters.
        criteria: the stopping rules (the default tolerance is filled in for the problem).
        max_steps: optimizer steps at most (None: no limit; the caller stops the run).
        backward: how a loss is differentiated; None (default): into the problem's own
            parameters only (``torch.autograd.grad``), so tensors of the caller's that a loss
            happens to use never receive a ``.grad``.  Lightning passes its ``manual_backward``.
        deferred: keep losses on the device and read them once per block (no host
            synchronisation per step); the step where ``tol`` is met or the loss turns
            non-finite is still found exactly, while the residual, rtol and stall rules are
            applied at block ends.  None: deferred off the CPU only.
    """

    def __init__(self, problem: Problem, optimizer: torch.optim.Optimizer, criteria: Optional[Criteria] = None, *,
                 max_steps: Optional[int] = None, backward: Optional[Callable[[Tensor], Any]] = None,
                 deferred: Optional[bool] = None) -> None:
        self.problem = problem
        self.optimizer = optimizer
        self.criteria = (criteria or Criteria()).for_problem(problem)
        self.max_steps = check_positive_int(max_steps, "max_steps", allow_none=True)
        params = [p for p in problem.parameters() if p.requires_grad]
        _check_steps_the_problem(optimizer, problem)
        # An optimizer that reports its own loss (Krylov recurrences) is confirmed against the
        # problem's own residual before any convergence is claimed; its iterates improve
        # monotonically, so the point returned is the last one.
        self.self_evaluating = bool(getattr(optimizer, "self_evaluating", False))
        keeps_point = not (problem.stochastic or problem.last_iterate or self.self_evaluating)
        self.deferred = keeps_point and (problem.device.type != "cpu" if deferred is None else deferred)
        self.best: BestSoFar = (DeviceBest(params, self.criteria.tol) if self.deferred
                                else HostBest(params) if keeps_point else LastIterate(params))
        self.history = LossHistory()
        self.rules = StoppingRules(problem, self.criteria, self.history, self.best, self.best_residual,
                                   every_step=not self.deferred,
                                   estimate=as_estimator(optimizer),
                                   advice=optimizer_advice(optimizer))
        # a backward that adds to .grad (Lightning's) needs zero_grad before each evaluation
        self.loop = StepLoop(problem, optimizer, self.best, self.history, self.rules,
                             backward or _gradient_into(params), accumulates=backward is not None,
                             self_evaluating=self.self_evaluating)
        self.closure = self.loop.closure  # evaluates the loss and its gradient (what optimizers call)
        self.status: Optional[Status] = None
        self.detail = ""
        self.iterate: Optional[list[Tensor]] = None  # the optimizer's point when finish() loaded the solution
        self._checked: Optional[tuple[int, Tensor]] = None  # (step, residuals) of the latest best_residual()

    @property
    def steps(self) -> int:
        """Optimizer steps taken."""
        return len(self.history)

    @property
    def remaining(self) -> Optional[int]:
        """Steps left before max_steps (None: unlimited; 0 also when resumed past it)."""
        return None if self.max_steps is None else max(0, self.max_steps - self.steps)

    @property
    def evaluations(self) -> int:
        """Loss evaluations made (a self-evaluating optimizer's reported losses count as one each)."""
        return self.loop.evaluations

    @property
    def interrupt_requested(self) -> bool:
        """Set by a signal handler: the run stops cleanly after the current step."""
        return self.loop.interrupt_requested

    @interrupt_requested.setter
    def interrupt_requested(self, value: bool) -> None:
        self.loop.interrupt_requested = value

    def run(self, n_steps: int, step: Optional[Step] = None, batch: Any = None) -> Optional[Status]:
        """Take up to ``n_steps`` optimizer steps (on ``batch`` for a data-driven problem, with
        ``step`` in place of ``optimizer.step``); return a Status as soon as a stopping rule fires."""
        if self.status is None:
            remaining = self.remaining
            n_steps = n_steps if remaining is None else min(n_steps, remaining)
            self.loop.batch = batch
            if step is None and self.self_evaluating and hasattr(self.optimizer, "iterate"):
                # A Krylov method's iteration, without torch.optim's per-step hooks (see iterate)
                iterate = self.optimizer.iterate
                step = lambda closure: iterate()  # noqa: E731
            try:
                with torch.no_grad() if self.self_evaluating else contextlib.nullcontext():
                    # torch types step's closure as returning a float; every optimizer takes the loss tensor
                    verdict = self.loop.run(n_steps, step or cast(Step, self.optimizer.step))
                if verdict is not None:
                    self.status, self.detail = verdict
            except KeyboardInterrupt:
                self.status = Status.INTERRUPTED
                self.detail = f"interrupted at step {self.steps}; the best solution so far is returned"
            if self.status is None and self.remaining == 0:
                self.status = Status.MAX_STEPS
        return self.status

    @torch.no_grad()
    def best_residual(self) -> float:
        """``problem.residual()`` at the kept point, without disturbing the optimizer's iterate
        (kept with the step count, so finish() does not compute it again at the same point)."""
        with self.best.loaded():
            residuals = self.problem.residuals()
        self._checked = (self.steps, residuals)
        return float(residuals.max())

    @property
    def last_loss(self) -> float:
        """The loss of the latest step (NaN before the first)."""
        return self.history.loss(self.steps - 1) if self.steps else float("nan")

    def finish(self, status: Optional[Status] = None) -> Result:
        """End the run: load the solution into the problem and describe the outcome."""
        status = status or self.status or Status.MAX_STEPS
        if status is Status.MAX_STEPS:
            status, self.detail = self.rules.at_max_steps(self.max_steps)
        self.status = status
        self.iterate = [p.detach().clone() for p in self.best.params]  # to resume exactly from here
        self.best.load()
        with torch.no_grad():
            # The loss at the returned point: the kept point's, or re-evaluated from the data
            # (a stochastic problem over all its data; recurrences may have drifted).
            loss = self.best.best_loss if self.best.keeps_point else float(self.problem.losses().sum())
            checked = self._checked
            residuals = checked[1] if checked and checked[0] == self.steps else self.problem.residuals().detach()
        return build_result(self.problem, self.optimizer, self.criteria, status, self.detail or status.value,
                            loss=loss, residuals=residuals, history=self.history.losses(), steps=self.steps,
                            evaluations=self.evaluations)

    # -- checkpointing ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        # A converged run stays finished when resumed; any other end (interrupt, max_steps, a
        # stall) is resumed from where it stopped.
        done = self.status if self.status is not None and self.status.converged else None
        return {"steps": self.steps, "evaluations": self.evaluations, **self.best.state_dict(),
                "history": self.history.losses(), "criteria": asdict(self.criteria),
                "status": done.value if done else None, "detail": self.detail if done else ""}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loop.evaluations = state["evaluations"]
        self.best.load_state_dict(state)
        self.history.load(state["history"])
        if state.get("status"):
            self.status, self.detail = Status(state["status"]), state["detail"]
