"""``python -m regsim summarize``: performance measures with Monte Carlo standard errors.

Reads a long table of replicate results (CSV, or Parquet when the name ends in ``.parquet``
or ``.pq``), computes :func:`regsim.metrics.summarize` and writes the long table of measures
(the ``--by`` columns, then ``measure, estimate, mcse``) as CSV with full float precision.
The output is written atomically (a temporary file in the same directory, then renamed) and
is never the input file.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from regsim.atomic import output_file, require_folder
from regsim.cli.csvfile import read_csv_table
from regsim.errors import InputDataError, OutputError
from regsim.metrics import MEASURES, summarize
from regsim.schema import FAILURE_RULES
from regsim.tableio import write_csv_atomic

_PARQUET_SUFFIXES = (".parquet", ".pq")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``summarize`` command to the dispatcher's subparsers.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by :meth:`argparse.ArgumentParser.add_subparsers`.

    Returns
    -------
    argparse.ArgumentParser
        The ``summarize`` parser, whose ``func`` default is :func:`run`.
    """
    parser = subparsers.add_parser(
        "summarize",
        help="performance measures (bias, coverage, ...) with Monte Carlo standard errors",
        description=(
            "Summarize a long table of replicate estimates into performance measures with "
            f"Monte Carlo standard errors. Measures: {', '.join(MEASURES)}."
        ),
    )
    parser.add_argument("input", metavar="IN", type=Path, help="replicate results (CSV or Parquet)")
    parser.add_argument(
        "output", metavar="OUT", type=output_file, help="measures table to write (CSV)"
    )
    parser.add_argument(
        "--estimate", default="estimate", metavar="COL", help="point estimate column"
    )
    parser.add_argument("--se", default="se", metavar="COL", help="standard error column")
    truth = parser.add_mutually_exclusive_group(required=True)
    truth.add_argument("--true", type=float, metavar="VALUE", help="the true value, every row")
    truth.add_argument("--true-col", metavar="COL", help="column holding each row's true value")
    parser.add_argument(
        "--by",
        nargs="+",
        action="extend",
        default=[],
        metavar="COL",
        help="columns defining the groups summarized separately",
    )
    parser.add_argument("--lower", metavar="COL", help="lower confidence limit column")
    parser.add_argument("--upper", metavar="COL", help="upper confidence limit column")
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="level of the Wald intervals and test when no limits are given (default 0.05)",
    )
    parser.add_argument(
        "--ref",
        metavar="METHOD",
        help="reference method of the paired measures (relprec, bias_diff, mse_diff, "
        "coverage_diff); needs --method-col",
    )
    parser.add_argument("--method-col", metavar="COL", help="method column (one of --by)")
    parser.add_argument(
        "--replicate-col",
        metavar="COL",
        help="replicate id column, to pair methods (needed with --ref and --failures common)",
    )
    parser.add_argument(
        "--converged-col", metavar="COL", help="convergence flag column; false rows are failed"
    )
    parser.add_argument(
        "--multimodal-col", metavar="COL", help="multimodality flag column, counted per group"
    )
    parser.add_argument(
        "--failures",
        choices=FAILURE_RULES,
        default="own",
        help="a failed replicate leaves its own method's measures (own, the default) or "
        "every method's of its group (common; needs --method-col)",
    )
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``summarize`` on parsed arguments.

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
    regsim.errors.InputDataError
        If the input cannot be read or used, or the output path is the input path.
    regsim.errors.OutputError
        If the output exists and ``--force`` is not given.
    regsim.errors.RegsimError
        If the output cannot be written.
    """
    _check_options(args)
    input_path, output_path = Path(args.input), Path(args.output)
    if _same_file(input_path, output_path):
        raise InputDataError(f"output {output_path} is the input file; refusing to overwrite it")
    if output_path.exists() and not args.force and not output_path.is_dir():
        raise OutputError(f"{output_path}: exists; give --force to replace it")
    require_folder(output_path)
    table = read_table(input_path, labels=[*args.by, *filter(None, [args.replicate_col])])
    result = summarize(
        table,
        estimate=args.estimate,
        se=args.se,
        true=args.true,
        true_col=args.true_col,
        by=args.by,
        lower=args.lower,
        upper=args.upper,
        alpha=args.alpha,
        ref=args.ref,
        method_col=args.method_col,
        replicate_col=args.replicate_col,
        converged_col=args.converged_col,
        multimodal_col=args.multimodal_col,
        failures=args.failures,
    )
    write_csv_atomic(result, output_path)
    return 0


def _check_options(args: argparse.Namespace) -> None:
    """The options that only work together, named as the command line names them (the
    library would name its parameters)."""
    if args.failures == "common" and args.method_col is None:
        raise InputDataError("--failures common needs --method-col (the column naming the method)")
    if args.method_col is not None and args.method_col not in args.by:
        raise InputDataError(
            f"--method-col {args.method_col!r} must also be one of the --by columns"
        )
    if args.ref is not None and args.method_col is None:
        raise InputDataError("--ref needs --method-col (the column naming the method)")
    # The library pairs by row order without it (as rsimsum does); a file's rows are rarely
    # known to be in the same replicate order for every method, and a shuffled file would
    # give wrong paired numbers with no error.
    for option, needed in (
        ("--ref", args.ref is not None),
        ("--failures common", args.failures == "common"),
    ):
        if needed and args.replicate_col is None:
            raise InputDataError(
                f"{option} needs --replicate-col (the column naming the replicate, "
                "to pair each method's fits of the same dataset)"
            )


def read_table(path: Path, labels: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV or Parquet table of replicate results.

    Parameters
    ----------
    path : pathlib.Path
        A ``.parquet`` / ``.pq`` file is read as Parquet, anything else as CSV.
    labels : sequence of str
        CSV columns that label groups (``--by``, ``--replicate-col``). Each is read as
        text, and turned into numbers only when that keeps every distinct label apart:
        ``1`` and ``1.0`` are two groups, never merged into one silently.

    Returns
    -------
    pandas.DataFrame
        The table as read.

    Raises
    ------
    regsim.errors.InputDataError
        If the file is missing, empty or cannot be parsed; the message is one line.
    """
    if not path.exists():
        raise InputDataError(f"input file {path} not found")
    try:
        if path.suffix.lower() in _PARQUET_SUFFIXES:
            import pyarrow
            import pyarrow.parquet as pq

            try:
                # Page checksums verified, as the workflow reads its own files: a damaged
                # file is refused, not read as other numbers.
                return pq.read_table(path, page_checksum_verification=True).to_pandas()
            except pyarrow.ArrowException as error:
                raise InputDataError(f"cannot read input file {path}: {_one_line(error)}") from None
        table = read_csv_table(path, text_columns=labels)
        for column in dict.fromkeys(labels):
            if column in table.columns:
                table[column] = _labels(table[column])
        return table
    except pd.errors.EmptyDataError:
        raise InputDataError(f"input file {path} is empty") from None
    except (OSError, ValueError) as error:
        raise InputDataError(f"cannot read input file {path}: {_one_line(error)}") from None


def _labels(column: pd.Series) -> pd.Series:
    """A label column read as text, as numbers if every label is one and none merge."""
    numbers = pd.to_numeric(column, errors="coerce")
    if (numbers.isna() & column.notna()).any() or numbers.nunique() != column.nunique():
        return column
    return numbers


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (following symlinks)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _one_line(error: BaseException) -> str:
    """An exception's message collapsed onto one line."""
    return " ".join(str(error).split()) or type(error).__name__
