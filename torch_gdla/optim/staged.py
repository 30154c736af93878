"""Several optimizers over the same parameters, switched by the relative loss change (the
minimisation tutorial's staged Adam)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence, Union, cast

import torch
from torch import Tensor
from torch.optim import Optimizer

from ..errors import ArgumentError, ArgumentTypeError
from ..validation import check_positive_int

OptimizerFactory = Callable[[Iterable], Optimizer]


@dataclass
class Stage:
    """One stage: ``optimizer`` (a callable params -> Optimizer, e.g. ``functools.partial(
    torch.optim.Adam, lr=0.04)``) runs while the measured relative loss change exceeds ``until``;
    the last stage has ``until=None`` and runs from then on."""

    optimizer: OptimizerFactory
    until: Optional[float] = None


StageSpec = Union[Stage, tuple, OptimizerFactory]


class Staged(Optimizer):
    """A ``torch.optim.Optimizer`` that runs one of several optimizers on the same parameters.

    Every ``every`` steps the loss of that step is compared with the one measured ``every``
    steps before: ``change = |l₁ − l₂| / max(|l₁|, |l₂|)``.  Each step is taken by the first
    stage whose ``until`` is below the latest change (before any measurement: the first stage),
    else by the last stage — the tutorial's ``if change > .1: opt1 elif change > .01: opt2 else opt3``.
    Each stage keeps its own state (Adam's moments) across switches, as the tutorial's three
    optimizers do.

    Args:
        params: parameters or parameter groups, as for any optimizer; every stage gets the same
            groups (the same tensors, and any per-group options you set).
        stages: ``Stage`` objects, ``(factory, until)`` pairs, or a bare factory for the last
            stage; ``until`` must decrease from stage to stage.  In YAML: a list of
            ``{optimizer: {class_path: torch.optim.Adam, init_args: {...}}, until: 0.1}``.
        every: steps between loss measurements (the tutorial: 10).

    ``step(closure)`` calls the closure exactly once when the active stage is a first-order
    optimizer (SGD, Adam, ...); a training loop without a closure passes ``step(loss=loss)``
    after ``loss.backward()``.  ``state_dict()`` holds the stage, the measurements and every
    stage's own state, so a run resumes exactly.
    """

    def __init__(self, params: Iterable[Any], stages: Sequence[StageSpec], every: int = 10) -> None:
        check_positive_int(every, "every", meaning="steps between loss measurements")
        specs = [_as_stage(spec, i) for i, spec in enumerate(stages)] if isinstance(stages, (list, tuple)) else None
        if not specs:
            raise ArgumentError("stages must be a non-empty list of Stage(optimizer, until) or (optimizer, until) pairs, "
                             "e.g. [(partial(torch.optim.Adam, lr=0.04), 0.1), partial(torch.optim.Adam, lr=0.04)]")
        _check_thresholds(specs)
        super().__init__(params, defaults={})
        self.every = every
        self.thresholds = [spec.until for spec in specs]
        ours = {id(p) for group in self.param_groups for p in group["params"]}
        self.optimizers: list[Optimizer] = []
        for i, spec in enumerate(specs):
            inner = spec.optimizer([dict(group) for group in self.param_groups])
            if not isinstance(inner, Optimizer):
                raise ArgumentTypeError(f"stages[{i}].optimizer must return a torch.optim.Optimizer when called with the "
                                f"parameters; got {type(inner).__name__}. Pass the class or a functools.partial of it")
            if {id(p) for group in inner.param_groups for p in group["params"]} != ours:
                raise ArgumentError(f"stages[{i}].optimizer must optimise the parameters it is given, not its own")
            self.optimizers.append(inner)
        self.stage = 0
        self.steps = 0
        self.last_loss: Optional[float] = None
        self.change = math.inf

    def _choose(self) -> int:
        for i, threshold in enumerate(self.thresholds):
            if threshold is not None and self.change > threshold:  # the last stage has none
                return i
        return len(self.optimizers) - 1

    def step(self, closure: Optional[Callable[[], Tensor]] = None, loss: Optional[Union[Tensor, float]] = None) -> Any:  # type: ignore[override]
        """One step of the active stage; measures the loss every ``every`` steps and may switch."""
        if closure is None and loss is None:
            raise RuntimeError("Staged needs each step's loss to decide when to switch: call step(closure) "
                               "or, after loss.backward(), step(loss=loss)")
        self.stage = self._choose()
        active = self.optimizers[self.stage]
        first: list[float] = []
        if closure is not None:
            def recording() -> Tensor:
                value = closure()
                if not first:
                    first.append(float(value.detach()) if isinstance(value, Tensor) else float(value))
                return value

            # torch types a closure as returning a float; every optimizer takes the loss tensor
            result: Any = active.step(cast(Callable[[], float], recording))
        else:
            result = active.step()
        if first:
            value = first[0]
        elif loss is not None:
            value = float(loss.detach() if isinstance(loss, Tensor) else loss)
        else:
            raise RuntimeError(f"{type(active).__name__}.step() did not call the closure; Staged needs each step's "
                               "loss to decide when to switch")
        if self.steps % self.every == 0:
            if self.last_loss is not None:
                scale = max(abs(self.last_loss), abs(value))
                self.change = abs(self.last_loss - value) / scale if scale > 0 else 0.0
            self.last_loss = value
        self.steps += 1
        return result

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["staged"] = {"stage": self.stage, "steps": self.steps, "last_loss": self.last_loss,
                           "change": self.change, "every": self.every,
                           "optimizers": [inner.state_dict() for inner in self.optimizers]}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        staged = state_dict.pop("staged", None)
        if staged is None or len(staged["optimizers"]) != len(self.optimizers):
            raise ArgumentError("this state_dict was not saved by a Staged optimizer with the same number of stages")
        super().load_state_dict(state_dict)
        for inner, inner_state in zip(self.optimizers, staged["optimizers"]):
            inner.load_state_dict(inner_state)
        self.stage, self.steps, self.every = staged["stage"], staged["steps"], staged["every"]
        self.last_loss, self.change = staged["last_loss"], staged["change"]

    def __repr__(self) -> str:
        lines = [f"Staged(every={self.every}"]
        for i, (inner, threshold) in enumerate(zip(self.optimizers, self.thresholds)):
            until = f"until change <= {threshold:g}" if threshold is not None else "last stage"
            lines.append(f"  stage {i} ({until}): {type(inner).__name__}({_options(inner)})")
        return "\n".join(lines) + "\n)"


def annealed_adam_stages(lr: float = 0.04) -> list[Stage]:
    """Adam whose momentum grows as the loss settles (the minimisation tutorial's scheme): betas
    (.5, .9) until the relative change is ≤ .1, (.9, .95) until ≤ .01, then (.9, .999); all with
    learning rate ``lr``."""
    adam = functools.partial(functools.partial, torch.optim.Adam, lr=lr)
    return [Stage(adam(betas=(0.5, 0.9)), 0.1), Stage(adam(betas=(0.9, 0.95)), 0.01), Stage(adam(betas=(0.9, 0.999)))]


def _as_stage(spec: Any, index: int) -> Stage:
    if isinstance(spec, Stage):
        stage = spec
    elif isinstance(spec, (tuple, list)) and len(spec) == 2:
        stage = Stage(spec[0], spec[1])
    elif isinstance(spec, dict) and "optimizer" in spec:
        stage = Stage(spec["optimizer"], spec.get("until"))
    elif callable(spec):
        stage = Stage(spec)
    else:
        raise ArgumentTypeError(f"stages[{index}] must be a Stage(optimizer, until), an (optimizer, until) pair or an "
                        f"optimizer factory; got {type(spec).__name__}")
    if not callable(stage.optimizer):
        raise ArgumentTypeError(f"stages[{index}].optimizer must be a callable params -> Optimizer, e.g. "
                        f"functools.partial(torch.optim.Adam, lr=0.04); got {type(stage.optimizer).__name__}")
    return stage


def _check_thresholds(stages: list[Stage]) -> None:
    *switching, last = stages
    if last.until is not None:
        raise ArgumentError(f"the last stage runs until the end of the run; remove its until={last.until!r}")
    previous = math.inf
    for i, stage in enumerate(switching):
        until = stage.until
        if until is None or isinstance(until, bool) or not isinstance(until, (int, float)) or not 0 < until < previous:
            raise ArgumentError(f"stages[{i}].until must be a number > 0 and below the previous stage's; got {until!r} "
                             "(stages run from the largest relative change to the smallest)")
        previous = until


def _options(optimizer: Optimizer) -> str:
    group = optimizer.param_groups[0]
    return ", ".join(f"{k}={group[k]}" for k in ("lr", "betas", "momentum") if k in group)
