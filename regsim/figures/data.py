"""From a metrics table to the values a figure plots: expected cells, gaps and their reasons.

A figure shows one slice of the study (one level of each optional factor,
:func:`regsim.tableio.levels_of`). Its expected cells are all combinations of the sample
sizes, error SDs and (method, prior) series present anywhere in the table or in the study
design passed as ``expected``; a cell without a usable estimate keeps its place with the
reason it has none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from regsim.errors import InputDataError
from regsim.schema import EXPECTED_KEYS, PRIOR_METHODS, parameter_rank
from regsim.styles import Series
from regsim.tableio import check_metrics, levels_of

from .style import ordered_series

OnMissing = Literal["annotate", "raise"]

Expected = Mapping[str, Sequence[Any]]
"""The study design a figure must cover: keys ``n``, ``sigma``, ``methods``, ``priors``."""

#: Columns of a table of plotted values that identify a cell of a metrics row.
CELL_KEYS: tuple[str, ...] = ("parameter", "sigma", "n", "method", "prior")


@dataclass(frozen=True)
class Grid:
    """The levels a figure shows, in study order.

    Attributes
    ----------
    ns : tuple of int
        Sample sizes (the x axis).
    sigmas : tuple of float
        Error SDs (one panel column each).
    series : tuple of Series
        (method, prior) series (one line each).
    """

    ns: tuple[int, ...]
    sigmas: tuple[float, ...]
    series: tuple[Series, ...]


def prepare_metrics(metrics: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The checked metrics table of one slice and the slice's optional-factor levels.

    Raises
    ------
    regsim.errors.InputDataError
        If the table is not a metrics table (:func:`regsim.tableio.check_metrics`) or mixes
        levels of an optional factor (:func:`regsim.tableio.levels_of`).
    """
    table = check_metrics(metrics)
    return table, levels_of(table)


def grid_levels(table: pd.DataFrame, expected: Expected | None = None) -> Grid:
    """Sample sizes, error SDs and series to show, in study order.

    Those present anywhere in the table, plus those of ``expected`` (the design, e.g. from
    the configuration: ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``,
    any key optional), so that a level missing from the whole table is reported too. The
    optional factors' levels it may also list (``errors``, ``truth``, ``design``) are for
    the nested-loop plot, which loops over them.
    """
    expected = expected or {}
    unknown = sorted(set(expected) - EXPECTED_KEYS)
    if unknown:
        raise InputDataError(f"expected: unknown key(s) {', '.join(unknown)}")
    try:
        ns = sorted({int(v) for v in table["n"].unique()} | {int(v) for v in expected.get("n", [])})
        sigmas = sorted(
            {float(v) for v in table["sigma"].unique()}
            | {float(v) for v in expected.get("sigma", [])}
        )
    except (TypeError, ValueError):
        raise InputDataError("expected: n and sigma must be numbers") from None
    pairs = [(str(m), str(p)) for m, p in table[["method", "prior"]].drop_duplicates().to_numpy()]
    for method in expected.get("methods", []):
        if method in PRIOR_METHODS:
            pairs += [(str(method), str(prior)) for prior in expected.get("priors", [])]
        else:
            pairs.append((str(method), ""))
    return Grid(tuple(ns), tuple(sigmas), tuple(ordered_series(pairs)))


def cell_values(
    table: pd.DataFrame, measure: str, parameters: Sequence[str], grid: Grid
) -> pd.DataFrame:
    """Every expected cell of ``measure`` with its estimate, MCSE and, if missing, why.

    Returns one row per parameter × sigma × n × series (columns ``parameter, sigma, n,
    method, prior, estimate, mcse, reason``); ``reason`` is ``""`` for a usable estimate,
    else ``"not in the table"``, ``"all replicates failed"`` (NaN estimate and ``n_reps``
    0) or ``"no estimate"``.
    """
    keys = list(CELL_KEYS)
    frame = pd.MultiIndex.from_tuples(
        [
            (p, s, n, m, q)
            for p in parameters
            for s in grid.sigmas
            for n in grid.ns
            for m, q in grid.series
        ],
        names=keys,
    ).to_frame(index=False)
    rows = table.loc[
        (table["measure"] == measure) & table["parameter"].isin(parameters),
        [*keys, "estimate", "mcse"],
    ]
    duplicated = rows.duplicated(keys)
    if duplicated.any():
        first = rows.loc[duplicated, keys].iloc[0].to_dict()
        raise InputDataError(f"metrics table: duplicate rows for measure {measure!r} at {first}")
    out = frame.merge(rows, on=keys, how="left", indicator=True)
    reps = table.loc[table["measure"] == "n_reps", [*keys, "estimate"]].rename(
        columns={"estimate": "n_reps"}
    )
    out = out.merge(reps.drop_duplicates(keys), on=keys, how="left")
    absent = (out["_merge"] == "left_only").to_numpy()
    nan = ~np.isfinite(out["estimate"].to_numpy(float))
    failed = (out["n_reps"] == 0).to_numpy()
    reason = np.where(
        absent,
        "not in the table",
        np.where(nan & failed, "all replicates failed", np.where(nan, "no estimate", "")),
    )
    out["reason"] = reason
    return out.drop(columns=["_merge", "n_reps"])


def missing_cells(
    metrics: pd.DataFrame,
    measure: str,
    parameter: str | Sequence[str],
    expected: Expected | None = None,
) -> pd.DataFrame:
    """The expected cells a figure of ``measure`` would show as gaps.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table of one slice (one level of each optional factor).
    measure : str
        A value of the ``measure`` column, e.g. ``"bias"``.
    parameter : str or sequence of str
        Parameter(s), e.g. ``"beta1"``.
    expected : mapping, optional
        The study design (keys ``n``, ``sigma``, ``methods``, ``priors``, each optional),
        whose levels are expected in addition to those present in the table.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter, sigma, n, method, prior, reason``, one row per combination of
        ``n``, ``sigma`` and (method, prior) series (in the table or in ``expected``) that
        has no row for the measure, or a NaN estimate. ``reason`` is ``"not in the
        table"``, ``"all replicates failed"`` (NaN estimate and ``n_reps`` 0) or
        ``"no estimate"``.

    Raises
    ------
    regsim.errors.InputDataError
        If the table is not a metrics table of one slice, or ``expected`` has unknown keys.
    """
    table, _ = prepare_metrics(metrics)
    parameters = [parameter] if isinstance(parameter, str) else list(parameter)
    values = cell_values(table, measure, parameters, grid_levels(table, expected))
    missing = values.loc[values["reason"] != "", list(CELL_KEYS)]
    return missing.assign(reason=values.loc[missing.index, "reason"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Checks of a figure's arguments
# --------------------------------------------------------------------------------------


def select_parameters(table: pd.DataFrame, parameters: str | Sequence[str] | None) -> list[str]:
    """The parameters to show: those asked for, or every one of the table in order."""
    present = sorted(table["parameter"].unique(), key=parameter_rank)
    if parameters is None:
        return present
    parameters = [parameters] if isinstance(parameters, str) else list(parameters)
    unknown = [p for p in parameters if p not in present]
    if unknown:
        raise InputDataError(
            f"metrics table: no parameter {unknown[0]!r}; parameters: {', '.join(present)}"
        )
    return parameters


def check_measure(table: pd.DataFrame, measure: str) -> None:
    """Refuse a measure the table has no row of."""
    if not (table["measure"] == measure).any():
        present = ", ".join(sorted(table["measure"].unique()))
        raise InputDataError(f"metrics table: no measure {measure!r}; measures: {present}")


def check_on_missing(on_missing: str) -> None:
    """Refuse an ``on_missing`` other than ``"annotate"`` or ``"raise"``."""
    if on_missing not in ("annotate", "raise"):
        raise ValueError(f"on_missing must be 'annotate' or 'raise', got {on_missing!r}")


def check_ylim(ylim: tuple[float, float] | None, log_y: bool) -> tuple[float, float] | None:
    """``ylim`` as two floats, low < high (and > 0 on a log axis); None stays None."""
    if ylim is None:
        return None
    try:
        lo, hi = (float(v) for v in ylim)
    except (TypeError, ValueError):
        raise InputDataError(f"ylim must be two numbers (low, high), got {ylim!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi) or (log_y and lo <= 0):
        raise InputDataError(f"ylim must be finite with low < high (> 0 on a log axis): {ylim!r}")
    return lo, hi
