"""Every figure and paper table of the study, written by one job.

The figures of the metrics table and the paper tables with the failure report read
``results/tables/metrics.csv``; the zip plot and the estimate-level figures read their
cell's table of fits (``results/fits/<cell>.parquet``), one parameter's rows. One job
writes them all: it imports matplotlib and pandas and reads the metrics once, then runs
each piece as a task of :func:`regsim.parallel.run_tasks`, in forked processes, as many
at once as the job has threads. Each piece alone would pay about a second of imports and
matplotlib's warm-up for a second or less of work. A figure of the metrics table is two
tasks: its PDF, drawn by matplotlib, and then its PNG, rastered from the PDF by PDFium in
a worker that does not hold the figure. The figures of cells' fits are one task, which
draws them in turn and writes both files of each with matplotlib (their PDFs hold their
thousands of intervals or points as an image, which PDFium would only raster again).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from regsim.figures import (
    ESTIMATE_PDF_RASTER_DPI,
    REPLICATE_COLUMNS,
    ZIP_PDF_RASTER_DPI,
    bland_altman_figure,
    estimate_se_figure,
    figure_tasks,
    png_from_pdf,
    save_figure,
    zip_plot,
)
from regsim.figures.replicates import add_note, common_replicates
from regsim.figures.save import warm_up
from regsim.parallel import CAN_FORK, give_back_memory, run_tasks
from regsim.schema import OPTIONAL_FACTORS
from regsim.specs import PaperJob
from regsim.tableio import check_metrics, read_parquet
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
    cell_figures: Sequence[str | os.PathLike[str]] = (),
    cell_fits: Mapping[str, str | os.PathLike[str]] | None = None,
    workers: int = 1,
) -> None:
    """Write every figure and paper table, up to ``workers`` pieces at once.

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
    cell_figures : sequence of path-like
        One file per figure of ``job.cell_figures`` (either file of it, e.g. ``zip.pdf``).
    cell_fits : mapping, optional
        Cell label -> its table of fits (``results/fits/<cell>.parquet``), for every cell
        of ``job.cell_figures``.
    workers : int, default 1
        Pieces run at once, each in a process forked from this one.
    """
    # Checked once here: each figure's and table's function takes it as it is
    # (regsim.tableio.check_metrics).
    metrics = check_metrics(metrics)
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
        written = write_paper_tables(metrics, tables, **job.table_options())
        logger.info("%d table files in %s", len(written), Path(tables))
        write_failure_report(metrics, failures, job.failures)

    of_cells = _cell_figures_task(
        dict(zip(cell_figures, job.cell_figures, strict=True)),
        cell_fits or {},
        alpha=job.alpha,
        reference=job.reference,
        failures=job.failures,
    )
    # The figures of cells' fits first, one task for all: its worker holds one cell's
    # replicates (10^5 of them at 10^4 replications) at a time, beside at most one
    # figure of the metrics, and it is the longest task of a small study.
    pairs = [*((task, None) for task in of_cells), *large, (write_tables, None), *small]
    if workers > 1 and CAN_FORK and (drawings or of_cells):
        warm_up()  # once here rather than in every worker (regsim.figures.save.warm_up)
    run_tasks([task for task, _ in pairs], workers, then=[after for _, after in pairs])


def _cell_figures_task(
    figures: Mapping[str | os.PathLike[str], tuple[str, str, str]],
    fits: Mapping[str, str | os.PathLike[str]],
    *,
    alpha: float,
    reference: str | None,
    failures: str = "own",
) -> list[Callable[[], None]]:
    """One task (none without figures) that draws each figure of a cell's replicate fits
    in turn: reads the rows of its cell and parameter, draws, saves its PDF and PNG.

    ``figures`` maps an output path to (family, cell label, parameter); ``fits`` a cell
    label to its table of fits. The rows are read in the task (a cell can hold 10^5
    replicates), so that the job's parent does not hold them. Under the ``common``
    failure rule a figure shows the replicates every fit converged on, those its cell's
    measures are computed from, and says so in its legend's title
    (:func:`regsim.figures.replicates.common_replicates`).
    """
    missing = sorted({cell for _, cell, _ in figures.values()} - set(fits))
    if missing:
        raise ValueError(f"no table of fits given for cell(s) {', '.join(missing)}")
    if not figures:
        return []
    columns = [*REPLICATE_COLUMNS, *(factor.name for factor in OPTIONAL_FACTORS)]

    def draw(path: str | os.PathLike[str], family: str, cell: str, parameter: str) -> None:
        rows = read_parquet(fits[cell], only=columns, where={"parameter": parameter})
        note = None
        if failures == "common":
            rows, note = common_replicates(rows)
        if family == "zip":
            figure = zip_plot(rows, parameter=parameter, alpha=alpha)
            dpi = ZIP_PDF_RASTER_DPI
        elif family == "estimates":
            figure = estimate_se_figure(rows, parameter=parameter)
            dpi = ESTIMATE_PDF_RASTER_DPI
        elif family == "bland_altman":
            if reference is None:
                raise ValueError(f"{path}: a Bland-Altman figure needs a reference method")
            figure = bland_altman_figure(rows, reference=reference, parameter=parameter)
            dpi = ESTIMATE_PDF_RASTER_DPI
        else:
            raise KeyError(f"{path}: unknown figure family of one cell's fits: {family!r}")
        if note is not None:
            add_note(figure, note)
        save_figure(figure, path, vector_raster_dpi=dpi)

    def draw_all() -> None:
        for path, (family, cell, parameter) in figures.items():
            draw(path, family, cell, parameter)
            # A figure's artists form reference cycles: collected and given back here,
            # the worker holds one figure at a time (at 10^4 replications, 120 MB)
            # rather than all of them.
            gc.collect()
            give_back_memory()

    return [draw_all]


def _pdf_of(figure: str | os.PathLike[str]) -> Path:
    """The PDF of a figure given by either of its files or its stem."""
    path = Path(figure)
    stem = path.with_suffix("") if path.suffix.lower() in (".pdf", ".png") else path
    return stem.with_name(f"{stem.name}.pdf")
