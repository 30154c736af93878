"""The ``torch-gdla`` command: LightningCLI over ``SolverModule``.

    torch-gdla fit --config configs/inverse_random.yaml
    torch-gdla fit --config configs/inverse_random.yaml --print_config
    torch-gdla fit --config configs/inverse_random.yaml --output solution.pt
    torch-gdla plot runs/inverse_random runs/inverse_diagonal -o loss.png
    torch-gdla compare --config configs/compare_inverse.yaml

The problem, its matrices and the optimizer are chosen in YAML by ``class_path``/``init_args``;
the CLI never names a specific operation.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningCLI

from .lightning import SolverModule
from .lightning.support import interrupt_as_request, quiet_lightning
from .matrices import check_writable, save_solution
from .result import Status


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

    def add_arguments_to_parser(self, parser: Any) -> None:
        # Periodic checkpoints with a last.ckpt, so `--ckpt_path last` resumes a stopped run
        # (configurable as `checkpoint:` in a config, or --checkpoint.every_n_train_steps).
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 1000})
        # Checked while parsing, so a bad extension is a usage error before the run, not after it.
        parser.add_argument("--output", type=_solution_path, default=None,
                            help="after fit, write the solution to this file: .pt, .npy, .csv or .mtx")

    def _output(self) -> Optional[str]:
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        return config.get("output") if config is not None else None

    def instantiate_classes(self) -> None:
        # A problem that cannot be built from the config (missing or wrong-shaped matrix file,
        # non-square matrix, ...) is a usage error: one clear line and exit 2, no traceback.
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, FileNotFoundError) as error:
            self.parser.error(f"the config could not be instantiated: {error}")

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        # `enable_checkpointing: false` in a config means no checkpoints: drop the forced one
        # rather than let Lightning refuse the combination.
        if config.get("enable_checkpointing") is False:
            callbacks = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)]
        return super()._instantiate_trainer(config, callbacks)

    def before_fit(self) -> None:
        # Checkpoints go to <save_dir>/<name>/checkpoints, shared by every version of the
        # experiment, so `--ckpt_path last` finds the previous run's last.ckpt.
        logger = self.trainer.logger
        for callback in self.trainer.checkpoint_callbacks:
            if getattr(callback, "dirpath", "") is None and logger is not None and logger.save_dir is not None:
                callback.dirpath = os.path.join(logger.save_dir, str(logger.name or ""), "checkpoints")
        self._interrupt = interrupt_as_request(self.model)
        self._interrupt.__enter__()

    def after_fit(self) -> None:
        self._interrupt.__exit__(None, None, None)
        result = self.model.result
        if result is None:
            return
        if result.status is Status.INTERRUPTED:
            for callback in self.trainer.checkpoint_callbacks:
                if getattr(callback, "save_last", False) and callback.dirpath:
                    path = os.path.join(callback.dirpath, "last.ckpt")
                    self.trainer.save_checkpoint(path)
                    print(f"interrupted: state saved to {path}; resume with --ckpt_path last")
        print("\n" + result.summary())
        with torch.no_grad():
            print("solution:")
            print(_format_solution(result.solution))
        output = self._output()
        if output is not None:
            written = save_solution(result.solution, output)
            print("solution written to " + ", ".join(str(p) for p in written))


def _solution_path(value: str) -> str:
    import argparse

    try:
        return str(check_writable(value, "--output"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None  # argparse shows this message


def _format_solution(solution: Any) -> str:
    if isinstance(solution, torch.Tensor):
        return str(solution)
    if isinstance(solution, tuple) and hasattr(solution, "_fields"):  # named tuples (SVD)
        return "\n".join(f"{name}:\n{value}" for name, value in zip(solution._fields, solution))
    return repr(solution)


def main(args: Optional[list[str]] = None) -> None:
    argv = sys.argv[1:] if args is None else list(args)
    # plot and compare are plain argparse commands, dispatched before LightningCLI sees the line.
    if argv and argv[0] == "plot":
        from .plot import main as plot_main

        plot_main(argv[1:])
        return
    if argv and argv[0] == "compare":
        from .compare import main as compare_main

        torch.set_printoptions(sci_mode=False)
        compare_main(argv[1:])
        return
    torch.set_printoptions(sci_mode=False)
    with quiet_lightning():  # progress bar and summary, without Lightning's banners and tips
        GdlaCLI(args=args)


if __name__ == "__main__":  # pragma: no cover
    main()
