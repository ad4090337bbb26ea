"""``python -m regsim verify``: check the result tables against their recorded hashes.

Reads ``<results>/provenance.json`` (written by the workflow), recomputes the SHA-256 of
every table it lists and prints one line per table: ``ok``, ``MISMATCH`` (the file changed)
or ``missing``, followed by the table's path relative to the results directory. The exit
status is 1 if any table is changed or missing, 0 otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from regsim.provenance import PROVENANCE_NAME, check_tables

_LABELS = {"ok": "ok", "mismatch": "MISMATCH", "missing": "missing"}


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``verify`` command to the dispatcher's subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by :meth:`argparse.ArgumentParser.add_subparsers`.

    Returns
    -------
    argparse.ArgumentParser
        The ``verify`` parser, whose ``func`` default is :func:`run`.
    """
    parser = subparsers.add_parser(
        "verify",
        help="check result tables against the hashes in provenance.json",
        description=(
            f"Recompute the SHA-256 of every table listed in RESULTS/{PROVENANCE_NAME} and "
            "print one line per table: ok, MISMATCH or missing. Exit status 1 if any table "
            "changed or is missing."
        ),
    )
    parser.add_argument(
        "results",
        nargs="?",
        default=Path("results"),
        type=Path,
        metavar="RESULTS",
        help="results directory holding provenance.json (default: results)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``verify`` on parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        Arguments parsed by the parser built in :func:`register`.

    Returns
    -------
    int
        1 if any table is changed or missing, else 0.

    Raises
    ------
    regsim.errors.DataFileError
        If ``provenance.json`` is missing or malformed.
    """
    checks = check_tables(args.results)
    width = max(len(label) for label in _LABELS.values())
    for check in checks:
        print(f"{_LABELS[check.status]:<{width}}  {check.path}")
    return 1 if any(check.status != "ok" for check in checks) else 0
