"""Everything drawn from the metrics table, written by one job: figures and tables.

The figures and the paper tables with the failure report all read
``results/tables/metrics.csv`` and nothing else. One job writes them all:
it imports matplotlib and pandas and reads the table once, then runs each piece as a
task of :func:`regsim.parallel.run_tasks`, in forked processes, as many at once as the
job has threads. Each piece alone would pay about a second of imports for a second or
less of work. A figure is two tasks: its PDF, drawn by matplotlib, and then its PNG,
rastered from the PDF by PDFium in a worker that does not hold the figure.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from regsim.figures import figure_tasks, png_from_pdf
from regsim.figures.save import warm_up
from regsim.parallel import CAN_FORK, run_tasks
from regsim.specs import PaperJob
from regsim.tables import write_failure_report, write_paper_tables

__all__ = ["write_paper"]

logger = logging.getLogger("regsim.paper")

#: Figure families with many panels, drawn first: run the longest tasks first and the
#: workers finish close together (the tables and the small figures fill in last).
_LARGE_FIGURES = ("efficiency", "bias", "coverage", "rejection", "laplace", "modelse")


def write_paper(
    metrics: pd.DataFrame,
    job: PaperJob,
    *,
    figures: Sequence[str | os.PathLike[str]],
    tables: str | os.PathLike[str],
    failures: str | os.PathLike[str],
    workers: int = 1,
) -> None:
    """Write every output drawn from the metrics table, up to ``workers`` pieces at once.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table, every slice (``regsim.tableio.read_metrics``).
    job : PaperJob
        What to draw and tabulate.
    figures : sequence of path-like
        One file per figure of ``job.figures`` (either file of it, e.g. ``bias.pdf``).
    tables : path-like
        Folder of the paper tables (``regsim.tables.write_paper_tables``).
    failures : path-like
        The failure report (``regsim.tables.write_failure_report``).
    workers : int, default 1
        Pieces run at once, each in a process forked from this one.
    """
    pdfs = [_pdf_of(path) for path in figures]
    planned = dict(zip(pdfs, job.figures, strict=True))
    # Each figure's PDF, then its PNG rastered from it in another worker, which does not
    # hold the figure (regsim.figures.png_from_pdf).
    drawings = figure_tasks(
        metrics,
        planned,
        expected=job.expected,
        options=job.figure_options,
        p=job.p,
        alpha=job.alpha,
        formats=("pdf",),
    )
    large: list[tuple[Callable[[], None], Callable[[], None]]] = []
    small: list[tuple[Callable[[], None], Callable[[], None]]] = []
    for task, pdf, (family, _) in zip(drawings, pdfs, job.figures, strict=True):
        png = functools.partial(png_from_pdf, pdf)
        (large if family in _LARGE_FIGURES else small).append((task, png))

    def write_tables() -> None:
        written = write_paper_tables(
            metrics,
            tables,
            job.measures,
            job.parameters,
            job.expected,
            levels=list(job.slices),
            reference=job.reference,
            failures=job.failures,
        )
        logger.info("%d table files in %s", len(written), Path(tables))
        write_failure_report(metrics, failures, job.failures)

    pairs = [*large, (write_tables, None), *small]
    if workers > 1 and CAN_FORK and drawings:
        warm_up()  # once here rather than in every worker (regsim.figures.save.warm_up)
    run_tasks([task for task, _ in pairs], workers, then=[after for _, after in pairs])


def _pdf_of(figure: str | os.PathLike[str]) -> Path:
    """The PDF of a figure given by either of its files or its stem."""
    path = Path(figure)
    stem = path.with_suffix("") if path.suffix.lower() in (".pdf", ".png") else path
    return stem.with_name(f"{stem.name}.pdf")
