"""``solve()``: one call that trains a problem with Lightning and returns a ``Result``."""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from .engine import Criteria
from .problems.base import Problem
from .result import Result
from .validation import check_positive_int


def solve(
    problem: Problem,
    optimizer: Optional[Callable[..., Any]] = None,
    *,
    tol: Optional[float] = None,
    residual_tol: Optional[float] = None,
    rtol: Optional[float] = None,
    rtol_every: int = 10,
    residual_every: int = 10,
    stall_steps: int = 200,
    max_steps: Optional[int] = 10_000,
    steps_per_block: Optional[int] = None,
    reference_metrics: bool = False,
    accelerator: Optional[str] = None,
    devices: Any = None,
    precision: Any = None,
    logger: Any = False,
    callbacks: Optional[Sequence[Any]] = None,
    datamodule: Any = None,
    verbose: bool = False,
    **trainer_kwargs: Any,
) -> Result:
    """Minimise ``problem``'s loss with ``optimizer`` until a stopping rule holds.

    Args:
        problem: a torch_gdla problem; after the call its parameters hold ``result.solution``.
        optimizer: callable ``params -> torch.optim.Optimizer`` (e.g. ``functools.partial(
            torch.optim.SGD, lr=0.9, momentum=0.9)``); None picks the library default.
        tol: stop when the loss ≤ tol.  ``tol=0`` never stops on the loss.
        residual_tol: stop when ``problem.residual()`` ≤ residual_tol.
        rtol: stop when the relative loss change over ``rtol_every`` steps < rtol (the minimisation tutorial's rule).
            With none of tol/residual_tol/rtol, residual_tol defaults to 1e-4 (float32) / 1e-8 (float64).
        stall_steps: with a tolerance set, stop early (and say why: singular matrix, precision
            floor, stalled optimizer) when the best loss has not improved for this many steps.
        max_steps: optimizer steps at most (None with ``max_epochs=`` for a data-driven problem,
            or with ``max_time=``).  Ctrl-C stops after the current step and returns the
            best solution so far with reason "interrupted".
        steps_per_block: optimizer steps per Lightning training_step (and per logged row);
            None adapts it so a block takes ~0.1 s.
        reference_metrics: add metrics against the direct torch.linalg answer to ``result.metrics``.
        accelerator, devices, precision: as for ``pytorch_lightning.Trainer``; by default the
            problem's own device, one device, the problem's own dtype.
        logger: a Lightning logger (or True for the default); False logs nothing.
        datamodule: rows for a data-driven problem (``problem.uses_data``), instead of its own loader.
        verbose: show Lightning's progress bar and messages.
        **trainer_kwargs: passed to ``pytorch_lightning.Trainer``.
    """
    check_positive_int(max_steps, "max_steps", allow_none="max_epochs" in trainer_kwargs or "max_time" in trainer_kwargs)
    # Built (and checked) before Lightning is imported, so a bad setting fails in milliseconds.
    criteria = Criteria(tol=tol, residual_tol=residual_tol, rtol=rtol, rtol_every=rtol_every,
                        residual_every=residual_every, stall_steps=stall_steps)
    import pytorch_lightning as pl

    from .lightning import SolverModule
    from .lightning.support import interrupt_as_request, quiet_lightning

    # SolverModule checks the problem and the optimizer factory.
    module = SolverModule(problem, optimizer=optimizer, criteria=criteria, steps_per_block=steps_per_block,
                          reference_metrics=reference_metrics)
    device = problem.device
    if accelerator is None:
        accelerator = "cpu" if device.type == "cpu" else device.type
        if devices is None and device.type != "cpu":
            devices = [device.index or 0]
    settings = dict(
        max_steps=-1 if max_steps is None else max_steps, accelerator=accelerator, devices=devices if devices is not None else 1,
        logger=logger, callbacks=list(callbacks or []), enable_checkpointing=False,
        enable_progress_bar=verbose, enable_model_summary=False, log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    if precision is not None:
        settings["precision"] = precision
    settings.update(trainer_kwargs)
    with quiet_lightning(not verbose):
        trainer = pl.Trainer(**settings)
        with interrupt_as_request(module):
            trainer.fit(module, datamodule=datamodule)
    if module.result is None:  # pragma: no cover - fit ended before any step (e.g. max_time=0)
        raise RuntimeError("the run ended before any optimizer step was taken")
    return module.result
