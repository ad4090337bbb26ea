"""From fits to a cell's tables, whatever route they came by: the one writer.

A simulate job writes its fits to one *chunk* file (``regsim.parquet.ChunkWriter``): every
unit of the job (a range of one cell's replicates), a row group per run of one fit, the units and
their row groups recorded in the file's metadata. A cell's replicates may lie in one job
or be spread over several. :func:`write_cell` reads a cell's rows from its chunks, however
many, and writes the cell's two tables:

* ``fits/<cell>.parquet``: the long table of fits (``regsim.fits``), every factor column
  then :data:`regsim.schema.FIT_FIELDS`, sorted by group (prior, method, parameter) then
  replicate, a row group per fit;
* ``metrics/<cell>.parquet``: its performance measures (:func:`summarize_cell`).

A cell of at most :data:`WHOLE_CELL_ROWS` rows is combined in memory; a larger one a fit
(method and prior) at a time, so memory stays bounded whatever the replicate count. Both
give the same bytes, and neither depends on how the replicates were packed into jobs.
:func:`write_cells` writes many cells and summarizes the small ones together, up to
:data:`SUMMARY_BATCH_ROWS` rows a call: each call has a fixed cost of tens of
milliseconds, as much as a small cell's own work, and a cell's measures depend on its own
rows alone, so the bytes are those of one cell at a time.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regsim.atomic import write_atomic
from regsim.errors import DataFileError, InputDataError
from regsim.metrics import FAILURE_RULES, summarize
from regsim.parallel import give_back_memory
from regsim.parquet import CHUNK_FORMAT, CHUNK_METADATA, ParquetParts, arrow
from regsim.schema import (
    FACTOR_NAMES,
    FIT_KEY,
    GROUP_FIELDS,
    METRIC_FIELDS,
    MULTIMODAL_METHODS,
    factor_columns,
    metrics_columns,
    with_factors,
)
from regsim.tableio import (
    REGENERATE,
    _reading,
    read_parquet,
    sort_table,
    write_parquet,
)

logger = logging.getLogger("regsim.cells")

#: Fit rows (replicates × fits × parameters) of a cell combined and summarized in memory,
#: in one call; a cell with more is combined a fit at a time. Same outputs either way.
WHOLE_CELL_ROWS = 50_000

#: Fit rows of several small cells summarized in one call by :func:`write_cells`: as
#: fast per cell as twice or four times as many (measured on a 378-cell grid), with the
#: memory of one whole cell.
SUMMARY_BATCH_ROWS = WHOLE_CELL_ROWS


# --------------------------------------------------------------------------------------
# Chunks: the fits of one simulate job (written by regsim.parquet.ChunkWriter)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where some of a cell's fits are: row groups of one chunk file."""

    path: str
    row_groups: tuple[int, ...]
    rows: int
    start: int
    stop: int
    #: What the fits are a function of (``regsim.specs.fits_fingerprint``); None in a
    #: chunk of an older version.
    fingerprint: str | None = None


def chunk_units(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a chunk file: its job and units (label, cell, range, row groups).

    Raises
    ------
    DataFileError
        If the file is missing, damaged or not a chunk of this workflow.
    """
    import pyarrow.parquet as pq

    arrow()
    with _reading(path):
        metadata = pq.ParquetFile(path).metadata.metadata or {}
    try:
        meta = json.loads(metadata[CHUNK_METADATA])
        if meta["format"] != CHUNK_FORMAT:
            raise ValueError(f"format {meta['format']}")
        return meta
    except (KeyError, ValueError, TypeError) as error:
        raise DataFileError(
            f"{path}: not a chunk of fits of this workflow ({error}); {REGENERATE}"
        ) from error


def cell_sources(chunks: Sequence[str | os.PathLike[str]]) -> dict[str, list[Source]]:
    """Cell label -> where its fits are in ``chunks``, in replicate order."""
    found: dict[str, list[Source]] = {}
    for path in chunks:
        for unit in chunk_units(path)["units"]:
            first, last = unit["row_groups"]
            source = Source(
                str(path),
                tuple(range(first, last)),
                unit["rows"],
                unit["start"],
                unit["stop"],
                unit.get("fingerprint"),
            )
            found.setdefault(unit["label"], []).append(source)
    return {label: sorted(sources, key=lambda s: s.start) for label, sources in found.items()}


def read_source(
    source: Source,
    *,
    columns: Sequence[str] | None = None,
    where: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The rows of ``source`` (of one fit with ``where``), only ``columns`` if given."""
    return read_parquet(source.path, only=columns, where=where, row_groups=source.row_groups)


# --------------------------------------------------------------------------------------
# The cell's tables
# --------------------------------------------------------------------------------------


def summarize_cell(
    fits: pd.DataFrame,
    alpha: float,
    *,
    reference: str | None = None,
    failures: str = "own",
    failed: np.ndarray | None = None,
) -> pd.DataFrame:
    """Performance measures of one cell's fits, one row per group and measure.

    Parameters
    ----------
    fits : pandas.DataFrame
        A table of fits (``regsim.fits``) of one cell or several (told apart by their
        factor columns), with the reference method's fits when ``reference`` is given.
    alpha : float
        Nominal level; the intervals themselves come from the ``lower``/``upper`` columns.
    reference : str, optional
        The method (without a prior) every other fit is paired with, replicate by
        replicate, for the paired measures (``relprec``, ``bias_diff``, ``mse_diff``,
        ``coverage_diff``; ``regsim.metrics``); none without it.
    failures : {"own", "common"}
        The failure rule: a replicate whose fit failed leaves that fit's measures only, or
        every fit's (every method and prior of the cell).
    failed : ndarray of int, optional
        Under ``common``, the replicates on which any fit of the cell failed, when
        ``fits`` holds only some of one cell's fits; default: found in ``fits``, cell by
        cell.

    Returns
    -------
    pandas.DataFrame
        The table's factor columns then :data:`~regsim.schema.METRIC_FIELDS`, sorted;
        ``n_multimodal`` only for the methods that report it.
    """
    if failures not in FAILURE_RULES:
        raise InputDataError(
            f"failures must be one of {', '.join(FAILURE_RULES)}, got {failures!r}"
        )
    groups = with_factors(GROUP_FIELDS, fits.columns)
    table = fits
    if failures == "common":
        if failed is None:
            left_out = _failed_in_cell(fits)
        else:
            left_out = np.isin(fits["replicate"].to_numpy(), failed)
        if left_out.any():
            table = fits.assign(converged=fits["converged"].to_numpy(bool) & ~left_out)
    options: dict[str, Any] = {}
    by = [*groups, "true"]  # the true value is one per group: carried beside its measures
    if reference is not None:
        # a fit is a (method, prior) series; each is paired with the reference's
        series = _series(table)
        table = table.assign(series=series)
        by = [c for c in by if c not in FIT_KEY]
        by.insert(len(by) - 2, "series")
        options = {"ref": reference, "method_col": "series", "replicate_col": "replicate"}
    metrics = summarize(
        table,
        estimate="estimate",
        se="se",
        true_col="true",
        by=by,
        lower="lower",
        upper="upper",
        alpha=float(alpha),
        converged_col="converged",
        multimodal_col="multimodal",
        **options,
    )
    if reference is not None:
        pairs = table[["series", *FIT_KEY]].drop_duplicates("series").set_index("series")
        metrics = metrics.join(pairs, on="series").drop(columns="series")
    keep = (metrics["measure"] != "n_multimodal") | metrics["method"].isin(MULTIMODAL_METHODS)
    columns = with_factors(METRIC_FIELDS, fits.columns)
    return sort_table(metrics.loc[keep, list(columns)], (*groups, "measure"))


def _series(fits: pd.DataFrame) -> np.ndarray:
    """Each row's fit as one label: its method, and ``method:prior`` for a prior's fit
    (a prior's name never holds a colon)."""
    # A label per (method, prior) pair, taken for every row: a cell's rows hold a few
    # pairs, and joining strings row by row took a tenth of its summary.
    method, methods = pd.factorize(fits["method"], use_na_sentinel=False)
    prior, priors = pd.factorize(fits["prior"], use_na_sentinel=False)
    labels = np.array(
        [m if p == "" else f"{m}:{p}" for m in map(str, methods) for p in map(str, priors)],
        dtype=object,
    )
    return labels[method * len(priors) + prior]


def _failed_in_cell(fits: pd.DataFrame) -> np.ndarray:
    """Per row: whether any fit of its cell failed on its replicate (the common rule)."""
    key = [*factor_columns(fits.columns), "replicate"]
    converged = pd.Series(fits["converged"].to_numpy(bool), index=fits.index)
    return ~converged.groupby([fits[name] for name in key], sort=False).transform("all").to_numpy(
        bool
    )


def failed_replicate_ids(fits: pd.DataFrame) -> np.ndarray:
    """The replicates on which any fit (any method and prior) failed."""
    converged = fits["converged"].to_numpy(bool)
    return np.unique(fits["replicate"].to_numpy()[~converged])


def under_common_rule(fits: pd.DataFrame) -> pd.DataFrame:
    """One cell's fits with every fit of a replicate any fit failed on marked as failed
    (``converged`` false): the ``common`` failure rule, which leaves such a replicate out
    of every method's measures, for the views of the fits themselves (the zip plot and
    the estimate-level figures, the results explorer's zip plot)."""
    left_out = fits["replicate"].isin(failed_replicate_ids(fits)).to_numpy()
    return fits.assign(converged=fits["converged"].to_numpy(bool) & ~left_out)


def _combined(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One cell's rows from several parts, sorted by group then replicate.

    Failures were marked when the rows were fitted (``regsim.fits.fit_batches``): a
    replicate's rows are fitted together, so marking is never split across parts.
    """
    table = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    parts.clear()
    return sort_table(table, [*with_factors(GROUP_FIELDS, table.columns), "replicate"])


@dataclass(frozen=True)
class CellFiles:
    """One cell's fits (:func:`cell_sources`) and the two tables written from them."""

    sources: Sequence[Source]
    fits: str | os.PathLike[str]
    metrics: str | os.PathLike[str]


def write_cell(
    sources: Sequence[Source],
    alpha: float,
    fits_output: str | os.PathLike[str],
    metrics_output: str | os.PathLike[str],
    *,
    reference: str | None = None,
    failures: str = "own",
) -> int:
    """Write one cell's table of fits and its metrics from wherever its fits are.

    Parameters
    ----------
    sources : sequence of Source
        The cell's fits (:func:`cell_sources`), every replicate exactly once.
    alpha : float
        Nominal level.
    fits_output, metrics_output : path-like
        The cell's two parquet files, each written atomically.
    reference, failures
        The reference method of the paired measures and the failure rule
        (:func:`summarize_cell`).

    Returns
    -------
    int
        Rows of the table of fits.
    """
    (rows,) = write_cells(
        [CellFiles(sources, fits_output, metrics_output)],
        alpha,
        reference=reference,
        failures=failures,
    )
    return rows


def write_cells(
    cells: Sequence[CellFiles],
    alpha: float,
    *,
    reference: str | None = None,
    failures: str = "own",
    batch_rows: int = SUMMARY_BATCH_ROWS,
) -> list[int]:
    """Write each cell's table of fits and its metrics, the same bytes as :func:`write_cell`.

    Cells of at most :data:`WHOLE_CELL_ROWS` rows are summarized together, in calls of up
    to ``batch_rows`` rows; larger ones one at a time, a fit at a time.

    Parameters
    ----------
    cells : sequence of CellFiles
        Each cell's fits, every replicate exactly once, and its two output files.
    alpha : float
        Nominal level.
    reference, failures
        The reference method of the paired measures and the failure rule
        (:func:`summarize_cell`).
    batch_rows : int
        Most fit rows summarized in one call.

    Returns
    -------
    list of int
        Rows of each cell's table of fits, in the order of ``cells``.
    """
    rows: list[int] = []
    pending: list[tuple[pd.DataFrame, str | os.PathLike[str]]] = []  # fits not yet summarized

    def summarize_pending() -> None:
        if not pending:
            return
        tables = [fits for fits, _ in pending]
        table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
        summary = summarize_cell(table, alpha, reference=reference, failures=failures)
        for part, (_, path) in zip(_by_cell(summary, tables), pending, strict=True):
            write_parquet(part, path)
        pending.clear()

    for cell in cells:
        if not cell.sources:
            raise ValueError("no fits to combine")
        if sum(source.rows for source in cell.sources) > WHOLE_CELL_ROWS:
            summarize_pending()
            rows.append(_write_large_cell(cell, alpha, reference=reference, failures=failures))
            continue
        fits = _combined([read_source(source) for source in cell.sources])

        def write(tmp: Path, fits: pd.DataFrame = fits) -> None:
            with ParquetParts(tmp) as writer:
                writer.write(fits, FIT_KEY)

        write_atomic(cell.fits, write)
        batched = sum(len(table) for table, _ in pending)
        if pending and (
            batched + len(fits) > batch_rows or list(fits.columns) != list(pending[0][0].columns)
        ):
            summarize_pending()
        pending.append((fits, cell.metrics))
        rows.append(len(fits))
    summarize_pending()
    return rows


def _by_cell(summary: pd.DataFrame, tables: Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    """The rows of ``summary`` of each table's cell (its factor levels), in table order."""
    if len(tables) == 1:
        return [summary]
    factors = list(factor_columns(summary.columns))
    positions = summary.groupby(factors, sort=False).indices
    return [
        summary.iloc[positions[tuple(table[name].iat[0] for name in factors)]] for table in tables
    ]


def _write_large_cell(
    cell: CellFiles,
    alpha: float,
    *,
    reference: str | None,
    failures: str,
) -> int:
    """:func:`write_cell` for a cell of more than :data:`WHOLE_CELL_ROWS` rows, a fit at a
    time; returns the rows of its table of fits."""
    sources = cell.sources
    # A fit at a time. What a fit's measures need from the others is kept aside: the
    # reference's rows (one fit's) to pair with, and under the common rule the replicates
    # any fit failed on (two columns of the cell).
    failed = None
    if failures == "common":
        flags = [read_source(source, columns=["replicate", "converged"]) for source in sources]
        failed = failed_replicate_ids(pd.concat(flags, ignore_index=True))
    reference_rows = None
    if reference is not None:
        where = {"prior": "", "method": reference}
        reference_rows = _combined([read_source(source, where=where) for source in sources])
    metrics: list[pd.DataFrame] = []
    pending: list[pd.DataFrame] = []  # fits not yet summarized
    rows = 0

    def summarize_some(parts: list[pd.DataFrame]) -> None:
        # Several fits per call (each call has a fixed cost); a group's measures do not
        # depend on the other groups in the call.
        table = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        added = (
            reference_rows is not None
            and not ((table["method"] == reference) & (table["prior"] == "")).any()
        )
        if added:
            wanted = reference_rows["parameter"].isin(pd.unique(table["parameter"]))
            table = pd.concat([table, reference_rows.loc[wanted]], ignore_index=True)
        summary = summarize_cell(
            table, alpha, reference=reference, failures=failures, failed=failed
        )
        if added:
            summary = summary.loc[(summary["method"] != reference) | (summary["prior"] != "")]
        metrics.append(summary)

    def summarize_pending() -> None:
        if pending:
            summarize_some(pending)
            pending.clear()

    def write_by_fit(tmp: Path) -> None:
        nonlocal rows
        with ParquetParts(tmp) as writer:
            for prior, method in _fits_of(sources):
                where = {"prior": prior, "method": method}
                part = _combined([read_source(source, where=where) for source in sources])
                writer.write(part)
                rows += len(part)
                if len(part) > WHOLE_CELL_ROWS:
                    # A large fit a parameter at a time: a group's measures do not depend
                    # on the other groups summarized with it, and memory holds one.
                    summarize_pending()
                    for _, group in part.groupby("parameter", sort=False):
                        summarize_some([group])
                else:
                    if sum(map(len, pending)) + len(part) > WHOLE_CELL_ROWS:
                        summarize_pending()
                    pending.append(part)
                del part  # before the next fit is read: one fit's rows in memory at a time
                give_back_memory()
            summarize_pending()

    write_atomic(cell.fits, write_by_fit)
    table = pd.concat(metrics, ignore_index=True)
    groups = with_factors(GROUP_FIELDS, table.columns)
    write_parquet(sort_table(table, (*groups, "measure")), cell.metrics)
    return rows


def _fits_of(sources: Sequence[Source]) -> list[tuple[str, str]]:
    """The (prior, method) pairs in a cell's fits, in the tables' order.

    Read from the row groups' statistics (a chunk has a row group per fit), not the rows.
    """
    import pyarrow.parquet as pq

    found: set[tuple[str, str]] = set()
    for source in sources:
        with _reading(source.path):
            metadata = pq.ParquetFile(source.path).metadata
            names = metadata.schema.to_arrow_schema().names
            columns = [names.index(key) for key in FIT_KEY]
            for index in source.row_groups:
                group = metadata.row_group(index)
                stats = [group.column(column).statistics for column in columns]
                if not all(s is not None and s.has_min_max and s.min == s.max for s in stats):
                    raise DataFileError(
                        f"{source.path}: row group {index} holds several fits; {REGENERATE}"
                    )
                found.add((stats[0].min, stats[1].min))
    pairs = sort_table(pd.DataFrame(sorted(found), columns=list(FIT_KEY)), list(FIT_KEY))
    return list(zip(pairs["prior"], pairs["method"], strict=True))


def collect_metrics(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Concatenate per-cell metrics tables into one sorted table."""
    if not paths:
        raise ValueError("no metrics tables to combine")
    table = pd.concat([read_parquet(p, metrics_columns()) for p in paths], ignore_index=True)
    return sort_table(table, (*FACTOR_NAMES, *GROUP_FIELDS, "measure"))
