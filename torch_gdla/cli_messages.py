"""The one-line messages of ``torch-gdla fit`` on stderr, prefixed with the command's name."""
from __future__ import annotations

import sys
from typing import NoReturn

PROG = "torch-gdla fit"


def usage_error(message: str) -> NoReturn:
    """One line on stderr and exit status 2: a mistake in the command line or the config."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    raise SystemExit(2)


def note(message: str) -> None:
    """One line on stderr that the run goes on after (a warning, a failed checkpoint write)."""
    sys.stderr.write(f"{PROG}: {message}\n")
