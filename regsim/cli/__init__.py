"""Command line: ``python -m regsim <command>``.

Each command lives in its own module exposing ``register(subparsers)``, which adds a
subparser whose ``func`` default takes the parsed arguments and returns an exit code.
A :class:`regsim.errors.RegsimError` becomes one line on stderr and exit status 1; a
usage error (an unknown option, a bad choice) one line and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from regsim.errors import RegsimError

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
        description="Simulation study of OLS, MLE and MAP linear regression.",
    )
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )
    for name in COMMANDS:
        importlib.import_module(f"regsim.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RegsimError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
