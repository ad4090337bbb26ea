"""The long table of fits: every method and prior on batches of replicate datasets.

A table of fits has one row per replicate, method (with its prior) and parameter, with the
cell's factor columns first and then :data:`regsim.schema.FIT_FIELDS`: ``prior`` (empty for
methods without one), ``method``, ``parameter`` (``beta0`` … ``sigma``), ``replicate``,
``estimate``, ``se``, ``lower``, ``upper``, ``true`` (the data-generating value),
``converged`` and ``multimodal``.

A replicate's fit by one method and prior *fails* when the estimator says it did not
converge, or when any of its parameters' estimate, SE or interval bound is not finite:
then ``converged`` is False on every parameter row of that fit
(:func:`mark_failures`), so the replicate is left out of every measure of that method and
prior alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from regsim.design import Cell
from regsim.estimators import SufficientStats, concat_stats, fit_methods, sufficient_stats
from regsim.schema import FIT_FIELDS, REPLICATE_FIELDS, fit_columns, parameter_names
from regsim.simulate import Datasets
from regsim.specs import FitSpec

logger = logging.getLogger("regsim.fits")

#: Replicates whose statistics are fitted at once: each fit call has a fixed cost (a few
#: tenths of a millisecond for MAP), spread over this many replicates; a replicate's fit
#: does not depend on the replicates fitted with it.
FIT_BATCH_REPLICATES = 2_000


def stats_table(
    cell: Cell, replicates: np.ndarray, stats: SufficientStats, spec: FitSpec
) -> pd.DataFrame:
    """The table of fits of replicates ``replicates`` of ``cell`` from their statistics.

    Parameters
    ----------
    cell : Cell
        The data cell (its true values fill ``true``).
    replicates : ndarray of int
        The replicate indices, in the order of the statistics.
    stats : SufficientStats
        Their statistics, perhaps from several batches of datasets (``concat_stats``).
    spec : FitSpec
        What to fit.

    Returns
    -------
    pandas.DataFrame
        :func:`~regsim.schema.fit_columns`: the cell's level of every factor, then
        :data:`~regsim.schema.FIT_FIELDS`; failures not yet marked (:func:`mark_failures`).
    """
    factors = cell.levels
    names = parameter_names(cell.p)
    truth = np.array(cell.true_values())
    count = len(replicates)
    parts = []
    for prior_name, fit in fit_methods(
        stats, list(spec.priors), spec.methods, spec.alpha, spec.options
    ):
        size = fit.estimate.size
        columns: dict[str, Any] = {}
        for name, value in factors.items():
            if name == "n":
                columns[name] = np.full(size, int(value), dtype=np.int64)
            elif name == "sigma":
                columns[name] = np.full(size, float(value))
            else:
                columns[name] = value
        columns |= {
            "prior": prior_name,
            "method": fit.method,
            "parameter": np.tile(names, count),
            "replicate": np.repeat(replicates, len(names)),
            "estimate": fit.estimate.ravel(),
            "se": fit.se.ravel(),
            "lower": fit.lower.ravel(),
            "upper": fit.upper.ravel(),
            "true": np.tile(truth, count),
            "converged": np.repeat(fit.converged, len(names)),
            "multimodal": np.repeat(fit.multimodal, len(names)),
        }
        parts.append(pd.DataFrame(columns))
    return pd.concat(parts, ignore_index=True)[list(fit_columns())]


def fit_table(datasets: Datasets, spec: FitSpec) -> pd.DataFrame:
    """The table of fits of a batch of datasets of one cell, failures marked.

    Parameters
    ----------
    datasets : Datasets
        Replicate datasets of one cell.
    spec : FitSpec
        What to fit.
    """
    stats = sufficient_stats(datasets.x, datasets.y, sandwich=spec.sandwich)
    table = stats_table(datasets.cell, datasets.replicates, stats, spec)
    return mark_failures(table)


def fit_batches(batches: Iterable[Datasets], spec: FitSpec) -> Iterator[pd.DataFrame]:
    """Fit batches of one cell's datasets as they come; yield tables of fits.

    Each batch is reduced to its sufficient statistics as it arrives, while its data are
    still in cache; the statistics of up to :data:`FIT_BATCH_REPLICATES` replicates are
    fitted at once. Yields each table with failures marked (:func:`mark_failures`).

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
) -> pd.DataFrame:
    assert cell is not None
    table = stats_table(cell, np.concatenate(replicates), concat_stats(stats), spec)
    return mark_failures(table)


def mark_failures(fits: pd.DataFrame) -> pd.DataFrame:
    """Flag a whole replicate fit as failed if any of its parameters is not usable.

    Parameters
    ----------
    fits : pandas.DataFrame
        A table of fits.

    Returns
    -------
    pandas.DataFrame
        ``fits`` with ``converged`` updated (a new table; row order kept).
    """
    values = fits[["estimate", "se", "lower", "upper"]].to_numpy(dtype=float)
    failed = ~(fits["converged"].to_numpy(dtype=bool) & np.isfinite(values).all(axis=1))
    if failed.any():
        replicate_fit = _row_labels(fits, _replicate_columns(fits))
        failed = np.isin(replicate_fit, replicate_fit[failed])
    out = fits.copy()
    out["converged"] = ~failed
    return out


def _replicate_columns(fits: pd.DataFrame) -> list[str]:
    """Columns identifying one fit of one replicate: the factor columns, then the fit's."""
    fields = set(FIT_FIELDS)
    return [c for c in fits.columns if c not in fields] + list(REPLICATE_FIELDS)


def _row_labels(table: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """An integer per row, equal for rows with equal ``columns`` (missing equals missing)."""
    labels = np.zeros(len(table), dtype=np.int64)
    for column in columns:
        codes, distinct = pd.factorize(table[column], use_na_sentinel=False)
        # Renumbered after each column, so labels stay below the row count (no overflow).
        labels = pd.factorize(labels * len(distinct) + codes)[0]
    return labels


def failed_fits(fits: pd.DataFrame) -> pd.DataFrame:
    """One row per failed replicate fit: ``prior, method, replicate``."""
    failed = fits.loc[~fits["converged"].to_numpy(dtype=bool), list(REPLICATE_FIELDS)]
    return failed.drop_duplicates().reset_index(drop=True)


def log_failures(label: str, failed: pd.DataFrame, replicates: int) -> None:
    """Log a warning per method and prior with failed replicates (and which ones).

    Parameters
    ----------
    label : str
        The cell's label, naming it in the message.
    failed : pandas.DataFrame
        Rows of :func:`failed_fits`.
    replicates : int
        Replicates the failures are out of.
    """
    if failed.empty:
        return
    for (prior, method), rows in failed.groupby(["prior", "method"], sort=True, dropna=False):
        ids = sorted(int(r) for r in rows["replicate"])
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
