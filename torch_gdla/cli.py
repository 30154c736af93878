"""The ``torch-gdla`` command: LightningCLI over ``SolverModule``.

    torch-gdla fit --config configs/inverse_random.yaml
    torch-gdla fit --config configs/inverse_random.yaml --print_config

The problem, its matrices and the optimizer are chosen in YAML by ``class_path``/``init_args``;
the CLI never names a specific operation.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import torch
from pytorch_lightning.cli import LightningCLI

from .lightning import SolverModule
from .solve import quiet_lightning


def _interactive() -> bool:
    return sys.stdout.isatty() and not os.environ.get("CI")


class GdlaCLI(LightningCLI):
    """LightningCLI with solver defaults and an end-of-run summary."""

    def __init__(self, args: Optional[list[str]] = None, **kwargs: Any) -> None:
        trainer_defaults = {
            "max_steps": 10_000,
            "log_every_n_steps": 1,
            "enable_model_summary": False,
            "enable_progress_bar": _interactive(),
            "logger": {"class_path": "pytorch_lightning.loggers.CSVLogger", "init_args": {"save_dir": "runs", "name": "torch_gdla"}},
        }
        trainer_defaults.update(kwargs.pop("trainer_defaults", {}))
        super().__init__(
            SolverModule,
            trainer_defaults=trainer_defaults,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=False,  # problems seed their own starts
            auto_configure_optimizers=False,
            args=args,
            **kwargs,
        )

    def after_fit(self) -> None:
        result = self.model.result
        if result is None:
            return
        print("\n" + result.summary())
        with torch.no_grad():
            print("solution:")
            print(_format_solution(result.solution))


def _format_solution(solution: Any) -> str:
    if isinstance(solution, torch.Tensor):
        return str(solution)
    if isinstance(solution, tuple) and hasattr(solution, "_fields"):  # named tuples (SVD)
        return "\n".join(f"{name}:\n{value}" for name, value in zip(solution._fields, solution))
    return repr(solution)


def main(args: Optional[list[str]] = None) -> None:
    torch.set_printoptions(sci_mode=False)
    with quiet_lightning():  # progress bar and summary, without Lightning's banners and tips
        GdlaCLI(args=args)


if __name__ == "__main__":  # pragma: no cover
    main()
