"""The rules' work: each ``run_*`` function is one rule's whole job.

Called from the thin ``scripts/*.py``; nothing here reads the config or imports Snakemake.
Outputs are deterministic: per-cell tables are sorted by fixed keys and the metrics CSV
writes floats with ``%.17g``, so the files are byte-identical whatever the number of
cores, the chunking of replicates into jobs, or the order jobs ran in.

Reliability: every output is written to a temporary file beside it, flushed to disk and
renamed over the final name, so an interrupted job never leaves a partial output; parquet
files carry page checksums that are verified on reading, so a corrupted table is an error
naming the file (:class:`~regsim.errors.DataFileError`), never a silently different
number. A replicate whose fit failed (not converged, or any non-finite estimate, SE or
interval bound) is flagged ``converged`` False for all parameters of that method and
prior, left out of every measure, counted in ``n_failed`` and logged as a warning.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regsim.atomic import write_atomic
from regsim.design import DEFAULT_ERRORS, PRIOR_METHODS, Cell
from regsim.errors import DataFileError
from regsim.estimators import (
    FIT_COLUMNS,
    SufficientStats,
    concat_stats,
    stats_table,
    sufficient_stats,
)
from regsim.metrics import summarize
from regsim.pipeline import (
    ERRORS_COLUMN,
    GROUP_COLUMNS,
    METRICS_COLUMNS,
    MULTIMODAL_METHODS,
    cell_from_params,
    cell_label,
    format_number,
    priors_from_params,
    with_errors,
)
from regsim.simulate import Datasets, draw_to_file, load_datasets
from regsim.tableio import (  # noqa: F401 - re-exported while callers move
    REGENERATE,
    ParquetParts,
    _pyarrow,
    _reading,
    read_metrics,
    read_parquet,
    sort_table,
    write_metrics_csv,
    write_parquet,
)

logger = logging.getLogger("regsim.pipeline")

#: A job draws (or reads) and reduces to sufficient statistics at most this many
#: observations (n × replicates) at once, about 1 MB of data at k = 2, which stays in a
#: core's cache between the draw and the statistics; and fits the statistics of at most
#: :data:`FIT_BATCH_REPLICATES` replicates at once (:class:`_BatchFitter`). So its memory
#: stays bounded whatever ``replications_per_job`` is; results do not depend on either.
FIT_BATCH_OBSERVATIONS = 50_000
FIT_BATCH_REPLICATES = 2_000

#: Columns that identify one fit (a method, with its prior) within a cell. Fit tables are
#: written with a row group per fit, so one fit can be read without the others.
FIT_KEY: tuple[str, ...] = ("prior", "method")

#: Fit rows summarized in one call when combining a cell (bounded memory; the measures
#: are the same for any value).
SUMMARIZE_ROWS = 50_000

#: Fit rows (replicates × fits × parameters) of a whole cell that a simulate job keeps
#: in memory and summarizes in one call (:func:`write_cell_tables`), as many as a
#: summarize call takes. A cell with more goes through a scratch file read back a fit at
#: a time (:func:`write_cell`), so memory stays bounded whatever the replicate count; the
#: outputs are the same either way.
WHOLE_CELL_ROWS = SUMMARIZE_ROWS

#: Columns that identify one fit of one replicate (all its parameters).
REPLICATE_COLUMNS: tuple[str, ...] = ("n", "sigma", "prior", "method", "replicate")


# --------------------------------------------------------------------------------------
# Rule steps
# --------------------------------------------------------------------------------------


def run_generate(
    cell: Mapping[str, Any], seed: int, start: int, stop: int, output: str | os.PathLike[str]
) -> None:
    """Draw replicates ``start .. stop-1`` of one cell and save them (no fitting).

    The workflow draws and fits in one job (:func:`run_simulate`); this writes the same
    dataset file on its own, for :func:`run_fit` or a user's own analysis.

    Parameters
    ----------
    cell : mapping
        The cell as given by :func:`cell_params`.
    seed : int
        The study's base seed.
    start, stop : int
        Replicate range.
    output : path-like
        The ``.npz`` file to write.
    """
    data_cell = cell_from_params(cell)
    logger.info(
        "cell %s (key %s), replicates %d-%d", cell_label(data_cell), data_cell.key, start, stop - 1
    )
    draw_to_file(output, data_cell, int(seed), int(start), int(stop), batch_replicates(data_cell.n))


def run_fit(
    datasets: str | os.PathLike[str],
    priors: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    alpha: float,
    output: str | os.PathLike[str],
    map_max_iter: int | None = None,
) -> None:
    """Fit every method and prior on a saved chunk of datasets.

    The chunk table written is the one :func:`run_simulate` writes for the same replicates.

    Parameters
    ----------
    datasets : path-like
        An ``.npz`` file written by :func:`run_generate`.
    priors : sequence of mapping
        As given by :func:`prior_params` (used by the MAP fits).
    methods : sequence of str
        Estimators to run.
    alpha : float
        Intervals have coverage ``1 - alpha``.
    output : path-like
        The parquet file to write: the long table of ``regsim.estimators.fit_table``.
    map_max_iter : int, optional
        Newton iteration cap of the MAP fits (the diagnostic setting ``map_max_iter``);
        default the estimator's own.

    Notes
    -----
    The chunk is fitted in batches of replicates (see :data:`FIT_BATCH_OBSERVATIONS`)
    written as consecutive row groups, so memory does not grow with the chunk. Failed
    replicates are logged as a warning per method and prior.
    """
    data = load_datasets(datasets)
    logger.info(
        "%s: %d replicates, methods %s, priors %s",
        datasets,
        len(data),
        ", ".join(methods),
        ", ".join(p["name"] for p in priors) or "-",
    )

    def feed(visit: Callable[[Datasets], None]) -> None:
        for batch in fit_batches(data):
            visit(batch)

    fitter = _BatchFitter(priors, methods, alpha, map_max_iter)
    log_failures(_write_fit_chunk(output, fitter, feed), len(data))


def _write_fit_chunk(
    output: str | os.PathLike[str],
    fitter: _BatchFitter,
    feed: Callable[[Callable[[Datasets], None]], None],
) -> pd.DataFrame:
    """Write a fit chunk atomically; return its failed replicates (:func:`_failed_replicates`).

    ``feed(visit)`` calls ``visit`` on each batch of datasets; the fits are appended as
    they come (:class:`_BatchFitter`), a row group per fit, so memory stays bounded.
    """
    failed: list[pd.DataFrame] = []

    def write(tmp: Path) -> None:
        with ParquetParts(tmp) as writer:

            def emit(table: pd.DataFrame) -> None:
                failed.append(_failed_replicates(table))
                writer.write(table, FIT_KEY)

            fitter.fit(feed, emit)

    write_atomic(output, write)
    return pd.concat(failed, ignore_index=True)


class _BatchFitter:
    """Fits batches of datasets, a few thousand replicates at a time.

    Each batch's sufficient statistics are computed as it arrives, while its data are
    still in cache; the fits run on the statistics of up to :data:`FIT_BATCH_REPLICATES`
    replicates at once, which spreads the fixed cost of each fit call over many
    replicates. A replicate's fit does not depend on the replicates fitted with it.
    """

    def __init__(
        self,
        priors: Sequence[Mapping[str, Any]],
        methods: Sequence[str],
        alpha: float,
        map_max_iter: int | None,
    ) -> None:
        self.options = {"map": {"max_iter": int(map_max_iter)}} if map_max_iter is not None else {}
        self.priors = priors_from_params(priors)
        self.methods = list(methods)
        self.alpha = float(alpha)
        self.sandwich = "ols_hc3" in self.methods

    def rows(self, cell: Cell, replicates: int) -> int:
        """Rows of the fit tables of ``replicates`` replicates of ``cell``."""
        fits = sum(len(self.priors) if m in PRIOR_METHODS else 1 for m in self.methods)
        return replicates * fits * (cell.p + 1)

    def fit(
        self,
        feed: Callable[[Callable[[Datasets], None]], None],
        emit: Callable[[pd.DataFrame], None],
    ) -> None:
        """Fit every batch ``feed(visit)`` passes to ``visit``; ``emit`` each long table."""
        # Per batch not yet fitted: its cell, replicate indices and statistics.
        pending: list[tuple[Cell, np.ndarray, SufficientStats]] = []

        def flush() -> None:
            if pending:
                cells, replicates, stats = zip(*pending, strict=True)
                emit(self._table(cells[0], np.concatenate(replicates), concat_stats(stats)))
                pending.clear()

        def visit(batch: Datasets) -> None:
            buffered = sum(len(replicates) for _, replicates, _ in pending)
            if buffered + len(batch) > FIT_BATCH_REPLICATES:
                flush()
            stats = sufficient_stats(batch.x, batch.y, sandwich=self.sandwich)
            pending.append((batch.cell, batch.replicates, stats))

        feed(visit)
        flush()

    def _table(
        self, cell: Cell, replicate_indices: np.ndarray, stats: SufficientStats
    ) -> pd.DataFrame:
        table = stats_table(
            cell, replicate_indices, stats, self.priors, self.methods, self.alpha, self.options
        )
        table = mark_failures(table)
        if cell.errors != DEFAULT_ERRORS:  # normal cells' tables stay as they were
            table.insert(list(table.columns).index("sigma") + 1, ERRORS_COLUMN, cell.errors)
        return table


def batch_replicates(n: int) -> int:
    """Replicates drawn (or read) and reduced to statistics at once, at ``n`` observations.

    At most :data:`FIT_BATCH_REPLICATES` replicates and :data:`FIT_BATCH_OBSERVATIONS`
    observations (at least one replicate), so a job's memory does not grow with the
    replicates it handles.
    """
    return max(1, min(FIT_BATCH_REPLICATES, FIT_BATCH_OBSERVATIONS // max(int(n), 1)))


def run_simulate(
    cell: Mapping[str, Any],
    seed: int,
    start: int,
    stop: int,
    priors: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    alpha: float,
    datasets_output: str | os.PathLike[str],
    fits_output: str | os.PathLike[str],
    metrics_output: str | os.PathLike[str] | None = None,
    map_max_iter: int | None = None,
) -> None:
    """Rule ``simulate``: draw replicates ``start .. stop-1`` of one cell, save and fit them.

    The datasets are drawn, written and fitted in batches (:func:`batch_replicates`), so
    memory does not grow with the replicates a job handles; the dataset file is written
    as it is fitted, never read back.

    Parameters
    ----------
    cell : mapping
        The cell as given by :func:`cell_params`.
    seed : int
        The study's base seed.
    start, stop : int
        Replicate range.
    priors : sequence of mapping
        As given by :func:`prior_params` (used by the MAP fits).
    methods : sequence of str
        Estimators to run.
    alpha : float
        Intervals have coverage ``1 - alpha``.
    datasets_output : path-like
        The ``.npz`` dataset file (see ``regsim.simulate.save_datasets``).
    fits_output : path-like
        The parquet long table of the fits.
    metrics_output : path-like, optional
        Given when the job covers all the cell's replicates: then ``fits_output`` is the
        cell's whole table, exactly as :func:`run_summarize` would write it from chunks,
        and the cell's metrics are written here too. Without it ``fits_output`` is a chunk
        for :func:`run_summarize` (a row group per batch and fit).
    map_max_iter : int, optional
        Newton iteration cap of the MAP fits (the diagnostic setting ``map_max_iter``).
    """
    data_cell = cell_from_params(cell)
    logger.info(
        "cell %s (key %s), replicates %d-%d, methods %s, priors %s",
        cell_label(data_cell),
        data_cell.key,
        start,
        stop - 1,
        ", ".join(methods),
        ", ".join(p["name"] for p in priors) or "-",
    )
    fitter = _BatchFitter(priors, methods, alpha, map_max_iter)
    draw_args = (data_cell, int(seed), int(start), int(stop), batch_replicates(data_cell.n))

    def feed(visit: Callable[[Datasets], None]) -> None:
        draw_to_file(datasets_output, *draw_args, visit=visit)

    if metrics_output is None:  # a chunk: the fits go straight to the file
        log_failures(_write_fit_chunk(fits_output, fitter, feed), stop - start)
        return
    if fitter.rows(data_cell, stop - start) <= WHOLE_CELL_ROWS:
        # Few enough rows to keep: combined in memory, sparing the scratch file's write
        # and reads; the outputs are those of the chunked route all the same.
        tables: list[pd.DataFrame] = []
        fitter.fit(feed, tables.append)
        write_cell_tables(tables, alpha, fits_output, metrics_output)
        return
    # The whole cell: its fits go to a scratch chunk, combined like a summarize job's chunks,
    # so memory stays bounded and the outputs are those of the chunked route.
    with tempfile.TemporaryDirectory(prefix="regsim-") as scratch:
        chunk = Path(scratch) / "fits.parquet"
        with ParquetParts(chunk) as writer:
            fitter.fit(feed, lambda table: writer.write(table, FIT_KEY))
        write_cell([chunk], alpha, fits_output, metrics_output)


def run_simulate_cells(
    cells: Sequence[Mapping[str, Any]],
    seed: int,
    start: int,
    stop: int,
    priors: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    alpha: float,
    datasets_outputs: Sequence[str | os.PathLike[str]],
    fits_outputs: Sequence[str | os.PathLike[str]],
    metrics_outputs: Sequence[str | os.PathLike[str]] | None = None,
    map_max_iter: int | None = None,
) -> None:
    """Rule ``simulate``: :func:`run_simulate` for each of ``cells`` in turn.

    One job may hold several whole cells (those of one sample size, when their replicates
    fit in one job), so the start-up of the job is paid once for all of them. Each cell
    is drawn, fitted and summarized alone: memory is that of one cell, and every output
    is exactly what a job of that cell alone would write.

    Parameters
    ----------
    cells : sequence of mapping
        The cells, as given by :func:`cell_params`.
    datasets_outputs, fits_outputs, metrics_outputs : sequence of path-like
        One path per cell, in the order of ``cells`` (``metrics_outputs`` only when every
        cell is whole, as for :func:`run_simulate`).
    seed, start, stop, priors, methods, alpha, map_max_iter
        As for :func:`run_simulate`.
    """
    metrics = [None] * len(cells) if metrics_outputs is None else list(metrics_outputs)
    for cell, datasets, fits, cell_metrics in zip(
        cells, datasets_outputs, fits_outputs, metrics, strict=True
    ):
        run_simulate(
            cell,
            seed,
            start,
            stop,
            priors,
            methods,
            alpha,
            datasets,
            fits,
            cell_metrics,
            map_max_iter,
        )


def fit_batches(data: Datasets) -> Iterator[Datasets]:
    """Split a chunk into consecutive batches of replicates for fitting.

    Each batch holds at most :data:`FIT_BATCH_REPLICATES` replicates and
    :data:`FIT_BATCH_OBSERVATIONS` observations (at least one replicate).
    """
    size = batch_replicates(data.cell.n)
    for start in range(0, max(len(data), 1), size):
        stop = min(start + size, len(data))
        yield Datasets(
            cell=data.cell,
            base_seed=data.base_seed,
            replicates=data.replicates[start:stop],
            x=data.x[start:stop],
            y=data.y[start:stop],
        )


def mark_failures(fits: pd.DataFrame) -> pd.DataFrame:
    """Flag a whole replicate fit as failed if any of its parameters is not usable.

    A fit of one replicate by one method and prior fails when the estimator says it did
    not converge, or when any parameter's estimate, SE or interval bound is not finite;
    then ``converged`` is False on every parameter row of that fit, so the replicate is
    left out of every measure of that method and prior alike.

    Parameters
    ----------
    fits : pandas.DataFrame
        Long table with the columns of ``regsim.estimators.FIT_COLUMNS``.

    Returns
    -------
    pandas.DataFrame
        ``fits`` with ``converged`` updated (a new table; row order kept).
    """
    values = fits[["estimate", "se", "lower", "upper"]].to_numpy(dtype=float)
    failed = ~(fits["converged"].to_numpy(dtype=bool) & np.isfinite(values).all(axis=1))
    if failed.any():
        replicate_fit = _row_labels(fits, REPLICATE_COLUMNS)
        failed = np.isin(replicate_fit, replicate_fit[failed])
    out = fits.copy()
    out["converged"] = ~failed
    return out


def _row_labels(table: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """An integer per row, equal for rows with equal ``columns`` (missing equals missing)."""
    labels = np.zeros(len(table), dtype=np.int64)
    for column in columns:
        codes, distinct = pd.factorize(table[column], use_na_sentinel=False)
        # Renumbered after each column, so labels stay below the row count (no overflow).
        labels = pd.factorize(labels * len(distinct) + codes)[0]
    return labels


def _failed_replicates(fits: pd.DataFrame) -> pd.DataFrame:
    """One row per failed replicate fit: the columns of :data:`REPLICATE_COLUMNS`."""
    failed = fits.loc[~fits["converged"].to_numpy(dtype=bool), list(REPLICATE_COLUMNS)]
    return failed.drop_duplicates().reset_index(drop=True)


def log_failures(failed: pd.DataFrame, replicates: int) -> None:
    """Log a warning per method and prior with failed replicates (and which ones)."""
    if failed.empty:
        return
    for (n, sigma, prior, method), rows in failed.groupby(
        ["n", "sigma", "prior", "method"], sort=True, dropna=False
    ):
        ids = sorted(int(r) for r in rows["replicate"])
        shown = ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")
        name = f"{method} ({prior})" if prior else str(method)
        logger.warning(
            "n=%s sigma=%s %s: %d of %d replicates failed (not converged or not finite; "
            "left out of the measures): replicate %s",
            n,
            format_number(sigma),
            name,
            len(ids),
            replicates,
            shown,
        )


def combine_fits(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """One cell's fits (chunks concatenated) sorted by group, then replicate, failures marked.

    ``source`` names the data in an error message.
    """
    if ERRORS_COLUMN in table.columns and table[ERRORS_COLUMN].isna().any():
        raise DataFileError(f"{source}: fit chunks of one cell disagree on the error model")
    table = sort_table(table, [*with_errors(GROUP_COLUMNS, table.columns), "replicate"])
    return mark_failures(table)


def summarize_cell(fits: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Performance measures of one cell's fits, one row per group and measure.

    Parameters
    ----------
    fits : pandas.DataFrame
        Long table of replicate fits (columns of ``regsim.estimators.FIT_COLUMNS``).
    alpha : float
        Nominal level; the intervals themselves come from the ``lower``/``upper`` columns.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`METRICS_COLUMNS` (with ``errors`` if ``fits`` has it), sorted;
        ``n_multimodal`` only for MAP.
    """
    groups = with_errors(GROUP_COLUMNS, fits.columns)
    metrics = summarize(
        fits,
        estimate="estimate",
        se="se",
        true_col="true",
        by=list(groups),
        lower="lower",
        upper="upper",
        alpha=float(alpha),
        converged_col="converged",
        multimodal_col="multimodal",
    )
    keep = (metrics["measure"] != "n_multimodal") | metrics["method"].isin(MULTIMODAL_METHODS)
    columns = with_errors(METRICS_COLUMNS, fits.columns)
    return sort_table(metrics.loc[keep, list(columns)], (*groups, "measure"))


def run_summarize(
    fits: Sequence[str | os.PathLike[str]],
    alpha: float,
    fits_output: str | os.PathLike[str],
    metrics_output: str | os.PathLike[str],
) -> None:
    """Rule ``summarize``: combine one cell's fit chunks and compute its metrics.

    Parameters
    ----------
    fits : sequence of path-like
        The cell's fit chunks.
    alpha : float
        Nominal level.
    fits_output : path-like
        Parquet file for the cell's whole long table (every replicate).
    metrics_output : path-like
        Parquet file for the cell's metrics rows.
    """
    write_cell(fits, alpha, fits_output, metrics_output)


def fit_groups(chunks: Sequence[str | os.PathLike[str]]) -> list[tuple[str, str]]:
    """The (prior, method) pairs in a cell's fit chunks, in the tables' sort order.

    Read a record batch at a time, so memory does not grow with the replicates.
    """
    pa = _pyarrow()
    import pyarrow.parquet as pq

    found: set[tuple[str, str]] = set()
    for path in chunks:
        with _reading(path):
            for batch in pq.ParquetFile(path).iter_batches(columns=["prior", "method"]):
                distinct = pa.Table.from_batches([batch]).group_by(["prior", "method"])
                found.update((r["prior"], r["method"]) for r in distinct.aggregate([]).to_pylist())
    pairs = pd.DataFrame(sorted(found), columns=["prior", "method"])
    ordered = sort_table(pairs, ["prior", "method"])
    return list(zip(ordered["prior"], ordered["method"], strict=True))


def write_cell(
    chunks: Sequence[str | os.PathLike[str]],
    alpha: float,
    fits_output: str | os.PathLike[str],
    metrics_output: str | os.PathLike[str],
) -> None:
    """Combine a cell's fit chunks into its long table and metrics; log its failed fits.

    One fit (a method with a prior) at a time: its rows of every chunk are read, sorted
    by parameter and replicate, checked for failures (:func:`mark_failures`), written as
    one row group of ``fits_output`` and summarized, so memory holds one fit's rows, not
    the cell's. Both files are the same whatever the chunking.

    Parameters
    ----------
    chunks : sequence of path-like
        The cell's fit chunks (parquet).
    alpha : float
        Nominal level.
    fits_output : path-like
        Parquet file for the cell's whole long table, sorted by group then replicate.
    metrics_output : path-like
        Parquet file for the cell's metrics rows.
    """
    if not chunks:
        raise ValueError("no fit tables to combine")
    metrics: list[pd.DataFrame] = []
    failed: list[pd.DataFrame] = []
    pending: list[pd.DataFrame] = []  # fits not yet summarized
    rows, replicates = 0, 0

    def summarize_pending() -> None:
        # Several fits per call (each call has a fixed cost); a group's measures do not
        # depend on the other groups in the call.
        if pending:
            metrics.append(summarize_cell(pd.concat(pending, ignore_index=True), alpha))
            pending.clear()

    def write(tmp: Path) -> None:
        nonlocal rows, replicates
        with ParquetParts(tmp) as writer:
            for prior, method in fit_groups(chunks):
                where = {"prior": prior, "method": method}
                parts = [read_parquet(path, FIT_COLUMNS, where=where) for path in chunks]
                part = combine_fits(pd.concat(parts, ignore_index=True), str(chunks[0]))
                del parts
                writer.write(part)
                failed.append(_failed_replicates(part))
                rows += len(part)
                replicates = max(replicates, int(part["replicate"].nunique()))
                if sum(map(len, pending)) + len(part) > SUMMARIZE_ROWS:
                    summarize_pending()
                pending.append(part)
            summarize_pending()

    write_atomic(fits_output, write)
    logger.info("%d fit rows from %d chunks", rows, len(chunks))
    log_failures(pd.concat(failed, ignore_index=True), replicates)
    table = pd.concat(metrics, ignore_index=True)
    groups = with_errors(GROUP_COLUMNS, table.columns)
    write_parquet(sort_table(table, (*groups, "measure")), metrics_output)


def write_cell_tables(
    tables: Sequence[pd.DataFrame],
    alpha: float,
    fits_output: str | os.PathLike[str],
    metrics_output: str | os.PathLike[str],
) -> None:
    """:func:`write_cell` for a cell's fits held in memory: the same files, faster.

    The whole cell is sorted, written and summarized at once, so it is meant for cells
    of at most :data:`WHOLE_CELL_ROWS` rows; :func:`write_cell` reads a fit at a time.

    Parameters
    ----------
    tables : sequence of pandas.DataFrame
        All of one cell's fits, failures marked (:func:`mark_failures`) and the rows of
        each replicate's fit in one table, as ``_BatchFitter`` emits them.
    alpha, fits_output, metrics_output
        As for :func:`write_cell`.
    """
    if not tables:
        raise ValueError("no fit tables to combine")
    fits = pd.concat(tables, ignore_index=True)
    # n, sigma and errors are the cell's, so this orders fits by (prior, method) as
    # fit_groups does: a run of rows per fit, each written as a row group like write_cell's.
    fits = sort_table(fits, [*with_errors(GROUP_COLUMNS, fits.columns), "replicate"])

    def write(tmp: Path) -> None:
        with ParquetParts(tmp) as writer:
            writer.write(fits, FIT_KEY)

    write_atomic(fits_output, write)
    logger.info("%d fit rows from memory", len(fits))
    # Each fit has all the cell's replicates: write_cell's count, its largest per fit.
    log_failures(_failed_replicates(fits), int(fits["replicate"].nunique()))
    # summarize_cell sorts, as write_cell's last sort_table does.
    write_parquet(summarize_cell(fits, alpha), metrics_output)


def collect_metrics(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Concatenate per-cell metrics tables into one sorted table.

    Normal-error cells' tables have no ``errors`` column; if any cell has one (a
    non-normal error model), those cells get ``errors`` = ``normal`` in the result.
    """
    if not paths:
        raise ValueError("no metrics tables to combine")
    table = pd.concat([read_parquet(p, METRICS_COLUMNS) for p in paths], ignore_index=True)
    if ERRORS_COLUMN in table.columns:
        table[ERRORS_COLUMN] = table[ERRORS_COLUMN].fillna(DEFAULT_ERRORS)
    columns = with_errors(METRICS_COLUMNS, table.columns)
    groups = with_errors(GROUP_COLUMNS, table.columns)
    return sort_table(table.loc[:, list(columns)], (*groups, "measure"))


def run_collect(metrics: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str]) -> None:
    """Rule ``collect``: write ``metrics.csv`` from every cell's metrics table."""
    table = collect_metrics(metrics)
    logger.info("%d metrics rows from %d cells", len(table), len(metrics))
    write_metrics_csv(table, output)
