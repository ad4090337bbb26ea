"""Command line: ``python -m regsim <command>``.

Each command lives in its own module exposing ``register(subparsers)``, which adds a
subparser whose ``func`` default takes the parsed arguments and returns an exit code.
A :class:`regsim.errors.RegsimError` becomes one line on stderr and exit status 1; a
usage error (an unknown option, a bad choice) one line and exit status 2; output that
cannot be written (a full disk) one line and status 1, and a closed pipe (``| head``)
status 1 alone.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from regsim.errors import ConfigError, RegsimError

#: Errors of a write that found no room (the only kind a command's output meets).
_WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

COMMANDS = ("fit", "summarize", "verify", "plan", "export", "protocol", "replicate")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message> (see --help)`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every command registered."""
    parser = OneLineParser(
        prog="python -m regsim",
        description="Simulation study of OLS, MLE, MAP and exact Bayes linear regression.",
    )
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    for name in COMMANDS:
        importlib.import_module(f"regsim.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status.

    Output that cannot be written (a full disk, a closed pipe) ends the command with
    status 1: one line on stderr, none for a reader that stopped reading (``| head``),
    as for any Unix tool; a traceback neither way.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args) or 0)
        # Now rather than at exit, where a failed write is only "Exception ignored".
        sys.stdout.flush()
        return status
    except ConfigError as error:
        # As the workflow says it (regsim.workflow), not "error: config error: ...".
        print(f"config error: {error}", file=sys.stderr)
        return 1
    except RegsimError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        _release_stdout()
        if isinstance(error, BrokenPipeError):
            return 1
        if error.filename:
            where = f"{error.filename}: "
        else:
            where = "cannot write: " if error.errno in _WRITE_ERRORS else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 1


def _release_stdout() -> None:
    """Flush standard output; where that fails, point it at the null device, so that
    nothing fails again when Python flushes it at exit."""
    try:
        sys.stdout.flush()
        return
    except OSError:
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (e.g. captured in a test)
        pass
