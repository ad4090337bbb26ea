"""``python -m regsim verify``: does a results folder hold what its study computes?

Reads ``<results>/provenance.json`` (written by the workflow) and prints one line per file
it lists: ``ok``, ``MISMATCH`` (the file changed) or ``missing``; then a line for every table
that disagrees with what it is computed from (``DISAGREES``: recomputed from its inputs, up
the chain from the jobs' chunks of fits), and every file under the folder that is not part
of the study (``STALE``). See :mod:`regsim.verify`. ``--quick`` checks the hashes and stale
files only. The exit status is 1 if any line is not ``ok``, 0 otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from regsim.provenance import PROVENANCE_NAME
from regsim.verify import verify_all

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
            f"Recompute the SHA-256 of every file listed in RESULTS/{PROVENANCE_NAME} (ok, "
            "MISMATCH or missing), recompute each table from the files it is made from "
            "(DISAGREES), and list files that are not part of the study (STALE). Exit status "
            "1 if any line is not ok."
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
    parser.add_argument(
        "--quick",
        action="store_true",
        help="check hashes and stale files only, without recomputing the tables",
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
        1 if any file is changed, missing, inconsistent or stale, else 0.

    Raises
    ------
    regsim.errors.DataFileError
        If ``provenance.json`` is missing or malformed.
    """
    checks, findings = verify_all(args.results, recompute=not args.quick)
    width = max(len(label) for label in (*_LABELS.values(), "DISAGREES"))
    for check in checks:
        print(f"{_LABELS[check.status]:<{width}}  {check.path}")
    for finding in findings:
        print(f"{finding.status:<{width}}  {finding.path}: {finding.detail}")
    return 1 if findings or any(check.status != "ok" for check in checks) else 0
