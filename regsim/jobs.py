"""The bodies of the workflow's heavy jobs, each taking its spec (:mod:`regsim.specs`).

* :func:`run_simulate`: draw the job's units (ranges of cells'
  replicates) batch by batch, fit every method and prior as the batches come, and write
  the fits to the job's chunk (``regsim.parquet.ChunkWriter``) and, if asked, the datasets
  (``regsim.simulate.DatasetFile``).
* :func:`run_collect`: every cell's two tables from the chunks
  (``regsim.cells.write_cells``, in forked workers), then ``metrics.csv``, then the
  failure rules side by side (``regsim.sensitivity.sensitivity_table``) and the
  comparison with exact theory (``regsim.exact.write_theory``), both from the cells with
  a failure summarized again under each rule (:func:`write_rule_tables`, which
  ``regsim verify`` calls too).

A script rebuilds the spec (the simulate and collect jobs' from the study's
configuration, checked against the digest in the rule's ``params``:
``regsim.workflow.simulate_job``, ``collect_job``) and calls the body with its outputs by
name. Nothing here reads the config or imports Snakemake.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from regsim.atomic import replacing
from regsim.fits import failed_fits, fit_batches, log_failures
from regsim.parquet import ChunkWriter
from regsim.simulate import DatasetFile, batch_replicates, draw_batches
from regsim.specs import CollectJob, SimulateJob

# The collect job's modules (pandas, the measures, the tables) are imported by
# run_collect itself: a simulate job then imports none of them (regsim.parquet).

logger = logging.getLogger("regsim.jobs")

#: The log line of a unit's drawing and fitting (cell, first and last replicate, seconds).
UNIT_TIME = "%s: replicates %d-%d drawn and fitted in %.3f s"

#: The log line of the collect job's cells' tables (cells, CPU seconds of its processes).
CELLS_TIME = "%d cells' tables written in %.3f CPU-seconds"


def run_simulate(
    job: SimulateJob,
    fits: str | os.PathLike[str],
    datasets: str | os.PathLike[str] | None = None,
    quantiles: Sequence[str | float] = (),
) -> None:
    """Rule ``simulate``: draw and fit the job's units; write its chunk of fits.

    Each unit's replicates are drawn a batch at a time (``regsim.simulate.draw_batches``),
    written to the dataset file as they pass when one is asked for, reduced to sufficient
    statistics while in cache and fitted (``regsim.fits.fit_batches``); memory does not
    grow with the replicates. Failed replicate fits are logged per unit.

    Parameters
    ----------
    job : SimulateJob
        What to draw and fit.
    fits : path-like
        The job's chunk of fits (parquet), written atomically.
    datasets : path-like, optional
        The job's dataset file (``.npz``); none is written without it.
    quantiles : sequence, optional
        The job's :meth:`~regsim.specs.SimulateJob.ols_quantiles`, computed elsewhere:
        taken where this environment's scipy is the one that computed them
        (:meth:`~regsim.specs.SimulateJob.take_quantiles`); the fits otherwise compute
        their own.
    """
    job.take_quantiles(quantiles)
    with ExitStack() as stack:
        chunk = stack.enter_context(
            ChunkWriter(
                stack.enter_context(replacing(fits)),
                job.name,
                fingerprint=lambda unit: job.fingerprint(unit.cell),
            )
        )
        data = None if datasets is None else stack.enter_context(DatasetFile(datasets, job.seed))
        for unit in job.units:
            cell = unit.cell
            logger.info(
                "%s (key %s), replicates %d-%d", cell.label, cell.key, unit.start, unit.stop - 1
            )
            batches = draw_batches(cell, job.seed, unit.start, unit.stop, batch_replicates(cell.n))
            if data is not None:
                batches = data.record(unit, batches)
            failed: dict[tuple[str, str], list[int]] = {}
            started = time.perf_counter()
            for table in fit_batches(batches, job.fit):
                chunk.write(unit, table)
                for fit, replicates in failed_fits(table).items():
                    failed.setdefault(fit, []).extend(replicates)
            # The work that grows with the replicates, apart from the job's start-up: what
            # regsim plan scales a pilot's time by (regsim.planning.pilot_times).
            logger.info(
                UNIT_TIME,
                cell.label,
                unit.start,
                unit.stop - 1,
                time.perf_counter() - started,
            )
            log_failures(cell.label, failed, unit.replicates)


def run_collect(
    job: CollectJob,
    *,
    chunks: Sequence[str | os.PathLike[str]],
    fits: Sequence[str | os.PathLike[str]],
    metrics: Sequence[str | os.PathLike[str]],
    table: str | os.PathLike[str],
    sensitivity: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    workers: int = 1,
    theory: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
) -> None:
    """Rule ``collect``: every cell's table of fits and metrics, then ``metrics.csv``, then
    the failure rules side by side and the comparison with exact theory.

    Parameters
    ----------
    job : CollectJob
        The cells and their replicate count.
    chunks : sequence of path-like
        Every simulate job's chunk of fits.
    fits, metrics : sequence of path-like
        Each cell's two tables, in the order of ``job.cells``.
    table : path-like
        ``metrics.csv``.
    sensitivity : (path-like, path-like), optional
        ``failures_sensitivity.csv`` and ``.md``
        (:func:`regsim.sensitivity.sensitivity_table`); not written without them.
    workers : int
        Cells written at once, each group in a process forked from this one.
    theory : (path-like, path-like), optional
        ``theory.csv`` and ``.md`` (:func:`regsim.exact.write_theory`), OLS and MLE over
        their own replicates whatever the failure rule (a cell with a failure is
        summarized again from its fits under ``common``); not written without them.

    Raises
    ------
    DataFileError
        If a chunk is damaged, or the chunks do not hold every replicate of every cell
        exactly once (a chunk of another study, or one missing).
    """
    from regsim.cells import (
        SUMMARY_BATCH_ROWS,
        CellFiles,
        cell_sources,
        collect_metrics,
        write_cells,
    )
    from regsim.errors import DataFileError
    from regsim.parallel import run_tasks
    from regsim.tableio import REGENERATE, write_metrics_csv

    sources = cell_sources(chunks)
    expected = dict(zip(job.cells, job.fingerprints, strict=True)) if job.fingerprints else {}
    # Every cell is checked before one is refused, so that one message names every chunk
    # to delete: after an interrupted run (on a cluster, a job can end after Snakemake has
    # stopped, unrecorded) and a change of the config, there can be several.
    foreign: dict[str, str] = {}  # chunk -> the first cell it holds of another study
    uneven: dict[str, tuple[list[str], list[tuple[int, int]]]] = {}  # cell -> chunks, ranges
    for label in job.cells:
        found = sources.get(label, [])
        # A chunk of an older version carries no fingerprint: only its ranges are checked.
        for s in found:
            if expected and s.fingerprint not in (None, expected.get(label)):
                foreign.setdefault(str(s.path), label)
        ranges = [(s.start, s.stop) for s in found]
        edges = [0, *(b for _, b in ranges)]
        if not ranges or [a for a, _ in ranges] != edges[:-1] or edges[-1] != job.replications:
            uneven[label] = (sorted({str(s.path) for s in found}), ranges)
    if foreign:
        first, label = next(iter(foreign.items()))
        fix = REGENERATE if len(foreign) == 1 else "delete them and rerun the workflow"
        raise DataFileError(
            f"{first}: its fits of cell {label} are not this study's (another seed, truth, "
            f"design or fit settings made them){_others(list(foreign)[1:])}; {fix}"
        )
    if uneven:
        label, (files, ranges) = next(iter(uneven.items()))
        involved = sorted({path for paths, _ in uneven.values() for path in paths})
        raise DataFileError(
            f"the chunks of fits ({', '.join(files) or 'no chunk'}) hold replicates "
            f"{ranges or 'none'} of cell {label}, not 0-{job.replications - 1} once each"
            f"{_others([p for p in involved if p not in files], len(uneven) - 1)}; delete "
            "them and rerun the workflow to regenerate them"
        )
    outputs = list(zip(job.cells, fits, metrics, strict=True))
    # About a dozen tasks per worker, so that the workers end close together (with four,
    # one could run a whole task alone at the end), and at least one summary call's worth
    # of cells per task (write_cells summarizes small cells together).
    rows = max((sum(source.rows for source in sources[label]) for label in job.cells), default=1)
    per_call = max(1, SUMMARY_BATCH_ROWS // max(rows, 1))
    per_task = max(per_call, len(outputs) // (12 * max(workers, 1)))
    groups = [outputs[i : i + per_task] for i in range(0, len(outputs), per_task)]

    started = _cpu_seconds()

    def write(group: list[tuple[str, Any, Any]]) -> None:
        rows = write_cells(
            [
                CellFiles(sources[label], fits_path, metrics_path)
                for label, fits_path, metrics_path in group
            ],
            job.alpha,
            reference=job.reference,
            failures=job.failures,
        )
        for (label, _, _), count in zip(group, rows, strict=True):
            logger.info("%s: %d fit rows", label, count)

    run_tasks([functools.partial(write, group) for group in groups], workers)
    logger.info(CELLS_TIME, len(outputs), _cpu_seconds() - started)
    combined = collect_metrics(metrics)
    logger.info("%d metrics rows from %d cells", len(combined), len(metrics))
    write_metrics_csv(combined, table)
    written = write_rule_tables(
        job,
        combined,
        {Path(path).stem: path for path in fits},
        sensitivity=sensitivity,
        theory=theory,
    )
    if "sensitivity" in written:
        logger.info("%d rows under both failure rules", len(written["sensitivity"]))
    if "theory" in written:
        logger.info("%d rows compared with exact theory", len(written["theory"]))


def _others(paths: Sequence[str], cells: int = 0) -> str:
    """``" (so are N other chunk(s): a, b, …)"``, naming up to five, or ``""`` for none;
    with ``cells``, of so many other cells too."""
    if not paths and not cells:
        return ""
    shown = ", ".join(paths[:5]) + (", …" if len(paths) > 5 else "")
    of = f" of {cells} other cell(s)" if cells else ""
    if not paths:
        return f" (and {cells} other cell(s), in the same chunks)"
    return f" (so are {len(paths)} other chunk(s){of}: {shown})"


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the forked workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def write_rule_tables(
    job: CollectJob,
    metrics: Any,
    fits: Mapping[str, str | os.PathLike[str]] | None,
    *,
    sensitivity: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
    theory: tuple[str | os.PathLike[str], str | os.PathLike[str]] | None = None,
) -> dict[str, Any]:
    """The collect job's last step: the failure rules side by side and the comparison
    with exact theory, from ``metrics.csv`` and the cells' tables of fits.

    The cells with a failed replicate are summarized again under each rule from their
    fits, each read once (``regsim.sensitivity.summaries_by_rule``): side by side for
    the sensitivity table, and each method over its own replicates for the comparison
    with exact theory (``regsim.sensitivity.own_rule_metrics``). ``regsim verify``
    rebuilds both the same way.

    Parameters
    ----------
    job : CollectJob
        The level, reference method, failure rule, coefficients and designs.
    metrics : pandas.DataFrame
        The metrics table of every cell (``metrics.csv``).
    fits : mapping or None
        Cell label -> its table of fits. None: not at hand; then the failure rules are
        not written, and the theory only under the own rule, which needs no fits.
    sensitivity, theory : (path-like, path-like), optional
        The CSV and Markdown files of each; not written without them.

    Returns
    -------
    dict
        The tables written, by name (``"sensitivity"``, ``"theory"``).
    """
    from regsim.exact import THEORY_METHODS, write_theory
    from regsim.sensitivity import (
        fits_reader,
        own_rule_metrics,
        sensitivity_table,
        summaries_by_rule,
        write_sensitivity,
    )

    needed = sensitivity is not None or (theory is not None and job.failures != "own")
    by_rule = None
    if fits is not None and needed:
        by_rule = summaries_by_rule(metrics, fits_reader(fits), job.alpha, job.reference)
    written: dict[str, Any] = {}
    if sensitivity is not None and by_rule is not None:
        written["sensitivity"] = sensitivity_table(by_rule)
        write_sensitivity(written["sensitivity"], *sensitivity)
    if theory is not None and (by_rule is not None or job.failures == "own"):
        own = metrics.iloc[:0] if by_rule is None else by_rule["own"]
        csv, markdown = theory
        written["theory"] = write_theory(
            own_rule_metrics(metrics, own, job.failures, THEORY_METHODS),
            alpha=job.alpha,
            p=job.p,
            csv=csv,
            markdown=markdown,
            designs=job.designs,
            seed=job.seed,
        )
    return written
