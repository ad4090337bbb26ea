"""Everything drawn from the metrics table, written by one job: figures, tables, theory.

The figures, the paper tables with the failure report, and the comparison with exact
theory all read ``results/tables/metrics.csv`` and nothing else. One job writes them all:
it imports matplotlib and pandas and reads the table once, then runs each piece as a
task of :func:`regsim.parallel.run_tasks`, in forked processes, as many at once as the
job has threads. Each piece alone would pay about a second of imports for a second or
less of work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from regsim.exact import write_theory
from regsim.figures import figure_tasks
from regsim.parallel import run_tasks
from regsim.tables import write_failure_report, write_paper_tables

__all__ = ["write_paper"]

logger = logging.getLogger("regsim.paper")

#: Figure families with many panels, drawn first: run the longest tasks first and the
#: workers finish close together (tables, theory and the small figures fill in last).
_LARGE_FIGURES = ("efficiency", "bias", "coverage", "modelse")


def write_paper(
    metrics: pd.DataFrame,
    *,
    figures: Mapping[str | os.PathLike[str], tuple[str, str]],
    figure_options: Mapping[str, Mapping[str, Any]],
    expected: Mapping[str, Sequence[Any]],
    alpha: float,
    p: int,
    tables: str | os.PathLike[str],
    measures: Sequence[str],
    parameters: Sequence[str],
    errors: Sequence[str],
    failures: str | os.PathLike[str],
    theory_csv: str | os.PathLike[str],
    theory_md: str | os.PathLike[str],
    workers: int = 1,
) -> None:
    """Write every output drawn from the metrics table, up to ``workers`` pieces at once.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table, every error model (``regsim.stages.read_metrics``).
    figures : mapping
        Output path -> (figure family, error model), as for
        :func:`regsim.figures.figure_tasks`.
    figure_options : mapping
        Family -> keyword arguments of that family's function (the ``figures`` config).
    expected : mapping
        The study design (``n``, ``sigma``, ``methods``, ``priors``), so that figures and
        tables mark a cell the table lacks.
    alpha : float
        Nominal level of the intervals.
    p : int
        Number of coefficients (for the exact-theory curves and comparison).
    tables : path-like
        Folder of the paper tables (``regsim.tables.write_paper_tables``).
    measures, parameters, errors : sequence of str
        The tables' measures, parameters and error models.
    failures : path-like
        The failure report (``regsim.tables.write_failure_report``).
    theory_csv, theory_md : path-like
        The comparison with exact theory (``regsim.exact.write_theory``).
    workers : int, default 1
        Pieces run at once, each in a process forked from this one.
    """
    drawings = figure_tasks(
        metrics, figures, expected=expected, options=figure_options, p=p, alpha=alpha
    )
    large: list[Callable[[], None]] = []
    small: list[Callable[[], None]] = []
    for task, (family, _) in zip(drawings, figures.values(), strict=True):
        (large if family in _LARGE_FIGURES else small).append(task)

    def write_tables() -> None:
        written = write_paper_tables(metrics, tables, measures, parameters, expected, errors=errors)
        logger.info("%d table files in %s", len(written), Path(tables))
        write_failure_report(metrics, failures)

    def compare_with_theory() -> None:
        table = write_theory(metrics, alpha, p, theory_csv, theory_md)
        logger.info("%d rows compared with exact theory", len(table))

    tasks: list[Callable[[], None]] = [*large, write_tables, *small, compare_with_theory]
    run_tasks(tasks, workers)
