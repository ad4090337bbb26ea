"""``python -m regsim export``: every replicate fit of a study for R and Stata.

Writes the tables of fits of a results folder as one long table (CSV, Parquet or Stata
``.dta``) in the layout rsimsum's ``simsum()`` and Stata's ``simsum``/``siman`` read; see
:mod:`regsim.export` and docs/outputs.md ("Export for R and Stata"). Prints one line
saying what was written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from regsim.atomic import output_file
from regsim.export import COLUMNS, FORMATS, export_fits


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``export`` command to the dispatcher's subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by :meth:`argparse.ArgumentParser.add_subparsers`.

    Returns
    -------
    argparse.ArgumentParser
        The ``export`` parser, whose ``func`` default is :func:`run`.
    """
    parser = subparsers.add_parser(
        "export",
        help="every replicate fit as one long table for rsimsum or Stata's simsum/siman",
        description=(
            "Write every replicate fit of a study (the tables of fits of RESULTS, as listed "
            "in its provenance.json) as one long table with the columns "
            f"{', '.join(COLUMNS)}: CSV, Parquet or Stata .dta."
        ),
    )
    parser.add_argument(
        "results", metavar="RESULTS", type=Path, help="results folder written by the workflow"
    )
    parser.add_argument("output", metavar="OUT", type=output_file, help="file to write")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="output format, for an OUT without one of the suffixes .csv, .parquet, .dta "
        "(default: from the suffix; one it contradicts is refused)",
    )
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``export`` on parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        Arguments parsed by the parser built in :func:`register`.

    Returns
    -------
    int
        The exit status, 0 on success.

    Raises
    ------
    regsim.errors.RegsimError
        If the results cannot be read or the file cannot be written (see
        :func:`regsim.export.export_fits`); nothing is written then.
    """
    done = export_fits(args.results, args.output, args.format, force=args.force)
    print(
        f"wrote {done.path}: {done.rows} fit rows of {done.cells} cells ({done.format}; cells "
        f"listed by {done.source})"
    )
    return 0
