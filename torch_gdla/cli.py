"""The ``torch-gdla`` command: dispatches to its three commands.

    torch-gdla fit --config configs/inverse_random.yaml        (torch_gdla.fit_cli)
    torch-gdla plot runs/inverse_random runs/inverse_diagonal  (torch_gdla.plot)
    torch-gdla compare --config configs/compare_inverse.yaml   (torch_gdla.compare)

Each command's module is imported only when it runs: the top-level help, and plot, never
import Lightning (importing it takes seconds).
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Optional, Sequence

__all__ = ["main", "COMMANDS"]

# name -> (module, one-line description)
COMMANDS = {
    "fit": ("torch_gdla.fit_cli", "solve the problem of a config with Lightning (resumable, logged)"),
    "plot": ("torch_gdla.plot", "plot the loss (and residual) curves of logged runs"),
    "compare": ("torch_gdla.compare", "run the comparisons of a comparison file and plot each"),
}

HELP = """usage: torch-gdla [-h] {fit,plot,compare} ...

Linear algebra solved by gradient descent: run a problem from a YAML config, plot runs,
compare runs.

commands:
%s

Run 'torch-gdla COMMAND --help' for the options of a command, e.g.
  torch-gdla fit --config configs/inverse_random.yaml
""" % "\n".join(f"  {name:<9} {description}" for name, (_, description) in COMMANDS.items())


def main(args: Optional[Sequence[str]] = None) -> None:
    argv = sys.argv[1:] if args is None else list(args)
    if not argv or argv[0] in ("-h", "--help"):
        stream = sys.stdout if argv else sys.stderr
        stream.write(HELP)
        if not argv:  # a command is required
            stream.write("torch-gdla: error: give a command: fit, plot or compare\n")
            raise SystemExit(2)
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.stderr.write(f"usage: torch-gdla [-h] {{fit,plot,compare}} ...\n"
                         f"torch-gdla: error: unknown command {command!r}; choose fit, plot or compare "
                         "(torch-gdla --help describes them)\n")
        raise SystemExit(2)
    if command != "plot":
        import torch

        torch.set_printoptions(sci_mode=False)
    importlib.import_module(COMMANDS[command][0]).main(rest)


def __getattr__(name: str) -> Any:
    # `from torch_gdla.cli import GdlaCLI` (its home before torch_gdla.fit_cli) keeps working,
    # without this module importing Lightning for the commands that do not need it.
    if name == "GdlaCLI":
        from .fit_cli import GdlaCLI

        return GdlaCLI
    raise AttributeError(f"module 'torch_gdla.cli' has no attribute {name!r}")


if __name__ == "__main__":  # pragma: no cover
    main()
