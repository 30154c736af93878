"""``torch-gdla fit``: LightningCLI over ``SolverModule``, run by its own fit command.

    torch-gdla fit --config configs/inverse_random.yaml
    torch-gdla fit --config configs/inverse_random.yaml --print_config
    torch-gdla fit --config configs/inverse_random.yaml --output solution.pt
    torch-gdla fit --config configs/inverse_random.yaml --ckpt_path last

The problem, its matrices and the optimizer are chosen in YAML by ``class_path``/``init_args``;
the CLI never names a specific operation.  ``LightningCLI(run=False)`` parses the config and
builds the model and the Trainer; :meth:`GdlaCLI.fit` runs the fit (so only ``fit`` exists:
a solver has nothing to validate, test or predict).
"""
from __future__ import annotations

import errno
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn, Optional

import torch
from jsonargparse import Namespace
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import (
    LightningArgumentParser,
    LightningCLI,
    SaveConfigCallback,
)
from pytorch_lightning.plugins import CheckpointIO

from .checkpoints import CheckpointError, CheckpointInfo, check_resume
from .cli_checks import check_fit_arguments, check_output
from .errors import ArgumentError
from .fingerprints import UnverifiedCheckpointWarning, fingerprint
from .lightning import SolverModule
from .lightning.support import AtomicCheckpointIO, interrupt_as_request, quiet_lightning
from .matrices import save_solution
from .result import Result, Status

__all__ = ["GdlaCLI", "main", "report", "usage_error"]

PROG = "torch-gdla fit"
USAGE = (f"{PROG} [-h] [-c CONFIG] [--print_config[=flags]] [--ckpt_path PATH] [--output FILE]\n"
         "                      [--trainer.* ...] [--model.* ...] [--checkpoint.* ...]")

DESCRIPTION = ("Solve the problem of a config by gradient descent, with Lightning: the summary and the solution are "
               "printed at the end, logs and checkpoints go under the logger's save_dir (resume with --ckpt_path last).")


def _interactive() -> bool:
    return sys.stdout.isatty() and not os.environ.get("CI")


def usage_error(message: str) -> NoReturn:
    """One line on stderr and exit status 2: a mistake in the command line or the config."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    raise SystemExit(2)


def _note(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


class _FitParser(LightningArgumentParser):
    def error(self, message: str, ex: Optional[Exception] = None) -> NoReturn:
        # A parser without subcommands names an unknown key by its group ("Group 'model' does
        # not accept option 'tolerance'"); name the whole key, as it is written in a config or
        # on the command line.
        message = re.sub(r"Group '([^']+)' does not accept option '([^']+)'",
                         r"the fit command does not accept option '\1.\2'", message)
        super().error(message, ex)


class _SaveConfig(SaveConfigCallback):
    """LightningCLI's config.yaml in the run's log directory, except that a run with nothing left
    to do writes none (it would leave a log version holding only config.yaml), and a failed
    write is one line, not the end of the run."""

    skip = False

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.skip:
            return
        try:
            super().setup(trainer, pl_module, stage)
        except OSError as error:
            _note(f"could not write {self.config_filename} in {trainer.log_dir}: {error.strerror or error}; "
                  "the run goes on without it")


class GdlaCLI(LightningCLI):
    """LightningCLI with solver defaults, checked arguments and an end-of-run summary.

    ``GdlaCLI(args=[...])`` parses the fit command line (a leading ``"fit"`` is accepted), builds
    the model and the Trainer, and, unless ``run=False``, runs :meth:`fit`.
    """

    def __init__(self, args: Any = None, run: bool = True, **kwargs: Any) -> None:
        args = sys.argv[1:] if args is None else args
        if isinstance(args, (list, tuple)) and args and args[0] == "fit":
            args = list(args[1:])
        trainer_defaults = {
            "max_steps": 10_000,
            "log_every_n_steps": 1,
            "enable_model_summary": False,
            "enable_progress_bar": _interactive(),
            "logger": {"class_path": "pytorch_lightning.loggers.CSVLogger",
                       "init_args": {"save_dir": "runs", "name": "torch_gdla"}},
        }
        trainer_defaults.update(kwargs.pop("trainer_defaults", {}))
        self._checkpoint_io = AtomicCheckpointIO(on_error=self._checkpoint_write_failed)
        self._write_failures: set[Path] = set()
        super().__init__(
            SolverModule,
            save_config_callback=_SaveConfig,
            save_config_kwargs={"overwrite": True},
            trainer_defaults=trainer_defaults,
            seed_everything_default=False,  # problems seed their own starts
            parser_kwargs={"prog": PROG, "usage": USAGE, "description": DESCRIPTION},
            parser_class=_FitParser,
            auto_configure_optimizers=False,
            args=args,
            run=False,
            **kwargs,
        )
        self.result: Optional[Result] = None
        if run:
            self.result = self.fit()

    # -- parsing and building ------------------------------------------------------------------
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Periodic checkpoints with a last.ckpt, so `--ckpt_path last` resumes a stopped run
        # (configurable as `checkpoint:` in a config, or --checkpoint.every_n_train_steps).  A
        # plain class group, not a forced callback: instantiate_trainer adds it unless
        # `trainer.enable_checkpointing: false`.
        parser.add_class_arguments(ModelCheckpoint, "checkpoint", fail_untyped=False, sub_configs=True)
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.every_n_train_steps": 1000})
        parser.add_argument("--ckpt_path", type=Optional[str], default=None,
                            help="resume from this checkpoint; 'last' = the newest last.ckpt of this run's logger")
        parser.add_argument("--output", type=Optional[str], default=None,
                            help="after fit, write the solution to this file: .pt, .npy, .csv or .mtx")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        # `args` is always the fit command's own argument list (sys.argv also holds "fit"), so
        # LightningCLI's warning about passing both does not apply.
        self.config = parser.parse_object(args) if isinstance(args, (dict, Namespace)) else parser.parse_args(args)

    def before_instantiate_classes(self) -> None:
        # Mistakes Lightning would report as tracebacks, or only after the run: one line first.
        try:
            check_fit_arguments(self.config)
            check_output(self.config.get("output"))
        except ArgumentError as error:
            usage_error(str(error))

    def instantiate_classes(self) -> None:
        # A problem that cannot be built from the config (missing or wrong-shaped matrix file,
        # non-square matrix, ...) or Trainer settings Lightning refuses are usage errors.
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, FileNotFoundError) as error:
            usage_error(f"the config could not be instantiated: {error}")
        except MisconfigurationException as error:
            usage_error(f"the trainer settings were refused: {error}")

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        trainer_config = self.config_init.get("trainer") or {}
        callbacks = _as_list(trainer_config.get("callbacks"))
        if trainer_config.get("enable_checkpointing") is not False:
            callbacks.append(self.config_init["checkpoint"])
        plugins = _as_list(trainer_config.get("plugins"))
        if not any(isinstance(plugin, CheckpointIO) for plugin in plugins):
            plugins.append(self._checkpoint_io)
        return super().instantiate_trainer(callbacks=callbacks, plugins=plugins, **kwargs)

    def after_instantiate_classes(self) -> None:
        # Checkpoints go to <save_dir>/<name>/checkpoints, shared by every version of the
        # experiment, so `--ckpt_path last` finds the previous run's last.ckpt.
        logger = self.trainer.logger
        for callback in self._model_checkpoints():
            if callback.dirpath is None and logger is not None and logger.save_dir is not None:
                callback.dirpath = os.path.join(logger.save_dir, str(logger.name or ""), "checkpoints")

    # -- running -------------------------------------------------------------------------------
    def _model_checkpoints(self) -> list[ModelCheckpoint]:
        return [cb for cb in self.trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]

    def _resume_point(self) -> Optional[CheckpointInfo]:
        ckpt_path = self.config.get("ckpt_path")
        if ckpt_path is None:
            return None
        directories = [Path(cb.dirpath) if cb.dirpath else Path(self.trainer.default_root_dir) / "checkpoints"
                       for cb in self._model_checkpoints()]
        try:
            info = check_resume(ckpt_path, directories, self.model.state_dict(), fingerprint(self.model.problem))
        except CheckpointError as error:
            usage_error(str(error))
        if info is not None and info.fingerprint is None:
            _note(f"warning: {info.path} carries no problem fingerprint (written by an older torch_gdla): resuming "
                  "without checking that it belongs to this config's problem")
        if info is None:
            where = ", ".join(str(d) for d in directories) or "this run (checkpointing is off)"
            print(f"--ckpt_path last: no checkpoint in {where} yet; starting from step 0")
        return info

    def _checkpoint_write_failed(self, path: Path, error: OSError) -> None:
        if path.parent not in self._write_failures:  # one line per directory, not one per save
            self._write_failures.add(path.parent)
            _note(f"could not write checkpoints in {path.parent}: {error.strerror or error}; the run goes on, "
                  "and the checkpoints already there are kept intact")

    def _nothing_to_log(self) -> None:
        # The fit will only restore the checkpoint: no log version for it (an empty version_N
        # would hide the real runs from `torch-gdla plot`).  `Trainer.loggers` is settable.
        trainer: Any = self.trainer
        trainer.loggers = []
        for callback in trainer.callbacks:
            if isinstance(callback, _SaveConfig):
                callback.skip = True

    def fit(self) -> Optional[Result]:
        """Run the fit (resuming from ``--ckpt_path``), print the summary and write ``--output``."""
        trainer, model = self.trainer, self.model
        info = self._resume_point()
        max_steps = trainer.max_steps
        finished = info is not None and max_steps is not None and 0 <= max_steps <= info.step
        if finished:
            self._nothing_to_log()
        with interrupt_as_request(model), warnings.catch_warnings():
            # An unchecked (pre-fingerprint) checkpoint was reported above, in one line.
            warnings.simplefilter("ignore", UnverifiedCheckpointWarning)
            try:
                trainer.fit(model, ckpt_path=None if info is None else str(info.path))
            except ArgumentError as error:  # a setting the module refuses (e.g. no max_steps)
                usage_error(str(error))
            except OSError as error:  # a log file on a full or read-only disk
                if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
                    raise
                where = error.filename or trainer.log_dir or "the logs"
                sys.stderr.write(f"{PROG}: error: the run stopped: could not write in {where}: {error.strerror}; "
                                 "free space or choose another --trainer.logger.init_args.save_dir\n")
                raise SystemExit(1) from None
        result: Optional[Result] = model.result
        if result is None:
            return None
        if finished and info is not None:
            print(f"already finished at step {info.step} (max_steps {max_steps}): nothing left to run; "
                  f"the checkpoint's result (raise --trainer.max_steps to go on):")
        if result.status is Status.INTERRUPTED:
            self._save_interrupted()
        report(result, self.config.get("output"), model.problem.check())
        return result

    def _save_interrupted(self) -> None:
        for callback in self._model_checkpoints():
            if callback.save_last and callback.dirpath:
                path = os.path.join(callback.dirpath, "last.ckpt")
                self.trainer.save_checkpoint(path)
                if not self._checkpoint_io.failed:
                    print(f"interrupted: state saved to {path}; resume with --ckpt_path last")


# A check product is printed for small problems only (a reader compares it entry by entry).
CHECK_ENTRIES = 100


def report(result: Result, output: Optional[str], check: Optional[tuple[str, torch.Tensor]] = None) -> None:
    """Print the summary and the solution, and write the solution to ``output`` (if given)."""
    print("\n" + result.summary())
    with torch.no_grad():
        print("solution:")
        print(_format_solution(result.solution))
        if check is not None and check[1].numel() <= CHECK_ENTRIES:
            print(f"check — {check[0]}:")
            print(check[1])
    if output is None:
        return
    try:
        written = save_solution(result.solution, output)
    except OSError as error:
        sys.stderr.write(f"{PROG}: error: could not write the solution to {output}: {error.strerror or error}\n")
        raise SystemExit(1) from None
    print("solution written to " + ", ".join(str(p) for p in written))


def _format_solution(solution: Any) -> str:
    if isinstance(solution, torch.Tensor):
        return str(solution)
    if isinstance(solution, tuple) and hasattr(solution, "_fields"):  # named tuples (SVD)
        return "\n".join(f"{name}:\n{value}" for name, value in zip(solution._fields, solution))
    return repr(solution)


def main(argv: Optional[list[str]] = None) -> None:
    """The fit command: ``argv`` are its arguments (after ``fit``)."""
    torch.set_printoptions(sci_mode=False)
    with quiet_lightning():  # progress bar and summary, without Lightning's banners and tips
        GdlaCLI(args=sys.argv[2:] if argv is None else list(argv))
