"""The long table of fits: every method and prior on batches of replicate datasets.

A table of fits has one row per replicate, method (with its prior) and parameter, with the
cell's factor columns first and then :data:`regsim.schema.FIT_FIELDS`: ``prior`` (empty for
methods without one), ``method``, ``parameter`` (``beta0`` … ``sigma``), ``replicate``,
``estimate``, ``se``, ``lower``, ``upper``, ``true`` (the data-generating value),
``converged`` and ``multimodal``.

A replicate's fit by one method and prior *fails* when the estimator says it did not
converge, or when any of its parameters' estimate, SE or interval bound is not finite:
then ``converged`` is False on every parameter row of that fit
(:func:`fits_table`), so the replicate is left out of every measure of that method and
prior alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regsim.design import Cell
from regsim.estimators import SufficientStats, concat_stats, fit_methods, sufficient_stats
from regsim.estimators.base import finite_rows
from regsim.parquet import arrow
from regsim.schema import REPLICATE_FIELDS, fit_columns, parameter_names
from regsim.simulate import Datasets
from regsim.specs import FitSpec

if TYPE_CHECKING:  # a simulate job imports no pandas (regsim.parquet)
    import pandas as pd

logger = logging.getLogger("regsim.fits")

#: Replicates whose statistics are fitted at once: each fit call has a fixed cost (a few
#: tenths of a millisecond for MAP), spread over this many replicates; a replicate's fit
#: does not depend on the replicates fitted with it.
FIT_BATCH_REPLICATES = 2_000


def fits_table(
    cell: Cell, replicates: np.ndarray, stats: SufficientStats, spec: FitSpec
) -> pa.Table:
    """The table of fits of replicates ``replicates`` of ``cell`` from their statistics.

    Built column by column from the fits' arrays: one block of rows per fit (method and
    prior, in the order of ``regsim.estimators.fit_methods``), replicate by replicate,
    parameter by parameter within a replicate. A replicate's fit that failed is marked on
    every one of its parameter rows (``converged`` False; see the module's notes).

    Parameters
    ----------
    cell : Cell
        The data cell (its levels fill the factor columns, its true values ``true``).
    replicates : ndarray of int
        The replicate indices, in the order of the statistics.
    stats : SufficientStats
        Their statistics, perhaps from several batches of datasets (``concat_stats``).
    spec : FitSpec
        What to fit.

    Returns
    -------
    pyarrow.Table
        :func:`~regsim.schema.fit_columns`: the cell's level of every factor, then
        :data:`~regsim.schema.FIT_FIELDS`; ``to_pandas()`` gives the DataFrame every
        reader of a table of fits gets.
    """
    arrow()  # its memory from the C library's heap, as every table of the workflow
    fits = fit_methods(stats, list(spec.priors), spec.methods, spec.alpha, spec.options)
    names = parameter_names(cell.p)
    per_fit = len(replicates) * len(names)
    rows = per_fit * len(fits)
    columns: dict[str, Any] = {}
    for name, value in cell.levels.items():
        if name == "n":
            columns[name] = np.full(rows, int(value), dtype=np.int64)
        elif name == "sigma":
            columns[name] = np.full(rows, float(value))
        else:
            columns[name] = _repeated([str(value)], np.zeros(rows, dtype=np.int32))
    fit_index = np.repeat(np.arange(len(fits), dtype=np.int32), per_fit)
    columns["prior"] = _repeated([prior for prior, _ in fits], fit_index)
    columns["method"] = _repeated([fit.method for _, fit in fits], fit_index)
    parameter_index = np.arange(len(names), dtype=np.int32)
    columns["parameter"] = _repeated(names, np.tile(parameter_index, rows // len(names)))
    columns["replicate"] = np.tile(
        np.repeat(np.asarray(replicates, np.int64), len(names)), len(fits)
    )
    for field in ("estimate", "se", "lower", "upper"):
        columns[field] = _stacked([getattr(fit, field).ravel() for _, fit in fits], float)
    columns["true"] = np.tile(np.asarray(cell.true_values(), dtype=float), rows // len(names))
    usable = [
        fit.converged & finite_rows(fit.estimate, fit.se, fit.lower, fit.upper) for _, fit in fits
    ]
    columns["converged"] = _stacked([np.repeat(u, len(names)) for u in usable], bool)
    columns["multimodal"] = _stacked(
        [np.repeat(fit.multimodal, len(names)) for _, fit in fits], bool
    )
    order = fit_columns()
    return pa.Table.from_arrays([_arrow(columns[c]) for c in order], names=list(order))


def _repeated(values: Sequence[str], codes: np.ndarray) -> Any:
    """A large-string column: ``values[codes[i]]`` in row ``i``."""
    encoded = [value.encode("utf-8") for value in values]
    offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int64)
    labels = pa.Array.from_buffers(
        pa.large_string(),
        len(encoded),
        [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))],
    )
    return labels.take(_arrow(np.ascontiguousarray(codes)))


def _stacked(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False)


def _arrow(column: Any) -> Any:
    """A pyarrow array of a one-dimensional numpy array of numbers or booleans (no nulls).

    Built on the array's own memory rather than by ``pa.array``, which asks whether its
    argument is a pandas object and so imports pandas, a fifth of a simulate job's
    start-up (``regsim.parquet``).
    """
    if not isinstance(column, np.ndarray):
        return column
    if column.ndim != 1 or column.dtype.kind not in "biuf" or not column.dtype.isnative:
        raise ValueError(f"not a column of numbers or booleans: {column.dtype}, {column.shape}")
    if column.dtype == bool:
        bits = np.packbits(column, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(column), [None, pa.py_buffer(bits)])
    column = np.ascontiguousarray(column)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(column.dtype), len(column), [None, pa.py_buffer(column)]
    )


def fit_table(datasets: Datasets, spec: FitSpec) -> pd.DataFrame:
    """The table of fits of a batch of datasets of one cell, failures marked.

    Parameters
    ----------
    datasets : Datasets
        Replicate datasets of one cell.
    spec : FitSpec
        What to fit.

    Returns
    -------
    pandas.DataFrame
        :func:`fits_table` of the datasets' statistics.
    """
    stats = sufficient_stats(datasets.x, datasets.y, sandwich=spec.sandwich)
    return fits_table(datasets.cell, datasets.replicates, stats, spec).to_pandas()


def fit_batches(batches: Iterable[Datasets], spec: FitSpec) -> Iterator[pa.Table]:
    """Fit batches of one cell's datasets as they come; yield tables of fits.

    Each batch is reduced to its sufficient statistics as it arrives, while its data are
    still in cache; the statistics of up to :data:`FIT_BATCH_REPLICATES` replicates are
    fitted at once. Yields each :func:`fits_table`, failures marked.

    Parameters
    ----------
    batches : iterable of Datasets
        Consecutive batches of one cell (``regsim.simulate.draw_batches``).
    spec : FitSpec
        What to fit.
    """
    cell: Cell | None = None
    replicates: list[np.ndarray] = []
    stats: list[SufficientStats] = []
    for batch in batches:
        if replicates and sum(map(len, replicates)) + len(batch) > FIT_BATCH_REPLICATES:
            yield _fitted(cell, replicates, stats, spec)
            replicates, stats = [], []
        cell = batch.cell
        replicates.append(batch.replicates)
        stats.append(sufficient_stats(batch.x, batch.y, sandwich=spec.sandwich))
    if replicates:
        yield _fitted(cell, replicates, stats, spec)


def _fitted(
    cell: Cell | None,
    replicates: list[np.ndarray],
    stats: list[SufficientStats],
    spec: FitSpec,
) -> pa.Table:
    assert cell is not None
    return fits_table(cell, np.concatenate(replicates), concat_stats(stats), spec)


def failed_fits(fits: pa.Table) -> dict[tuple[str, str], list[int]]:
    """The replicates of each failed fit of a :func:`fits_table`, by (prior, method)."""
    converged = fits.column("converged")
    if pc.all(converged).as_py() is not False:
        return {}
    failed = fits.filter(pc.invert(converged))
    found: dict[tuple[str, str], set[int]] = {}
    rows = zip(*(failed.column(name).to_pylist() for name in REPLICATE_FIELDS), strict=True)
    for prior, method, replicate in rows:
        found.setdefault((prior, method), set()).add(int(replicate))
    return {fit: sorted(replicates) for fit, replicates in found.items()}


def log_failures(
    label: str, failed: Mapping[tuple[str, str], Iterable[int]], replicates: int
) -> None:
    """Log a warning per method and prior with failed replicates (and which ones).

    Parameters
    ----------
    label : str
        The cell's label, naming it in the message.
    failed : mapping
        (prior, method) -> its failed replicates (:func:`failed_fits`, merged over
        batches).
    replicates : int
        Replicates the failures are out of.
    """
    for prior, method in sorted(failed):
        ids = sorted(set(failed[prior, method]))
        if not ids:
            continue
        shown = ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")
        name = f"{method} ({prior})" if prior else str(method)
        logger.warning(
            "%s %s: %d of %d replicates failed (not converged, not finite, or data too "
            "collinear; left out of the measures): replicate %s",
            label,
            name,
            len(ids),
            replicates,
            shown,
        )
