"""One cell's replicate fits, checked and selected, for the figures drawn from them.

The zip plot and the estimate-level figures take the long table of one cell's replicate
fits (:data:`REPLICATE_COLUMNS`, plus the optional factor columns of its cell) rather
than the metrics table. :func:`cell_fits` checks it, picks the cell and the parameter,
and marks the usable replicates; a table of several cells is refused in one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from regsim.errors import InputDataError
from regsim.schema import FIT_FIELDS, OPTIONAL_FACTORS, short_number
from regsim.styles import Series

from .style import ordered_series

#: Columns the per-replicate table of the zip plot and the estimate-level figures must
#: have (the other factors are optional: a missing one is at its default level).
REPLICATE_COLUMNS: tuple[str, ...] = ("n", "sigma", *(c for c in FIT_FIELDS if c != "multimodal"))


@dataclass(frozen=True)
class CellFits:
    """One parameter's replicate fits of one cell.

    Attributes
    ----------
    rows : pandas.DataFrame
        The rows of the cell and parameter (:data:`REPLICATE_COLUMNS` and the factor
        columns), with a boolean column ``ok``: the fit converged and its estimate, SE and
        limits are finite, the SE positive (:func:`usable`).
    levels : dict
        The cell's level of each optional factor.
    n : int
        The cell's sample size.
    sigma : float
        The cell's error SD.
    truth : float
        The parameter's true value in the cell.
    series : list of (method, prior)
        The series of the table, in the study's order.
    """

    rows: pd.DataFrame
    levels: dict[str, str]
    n: int
    sigma: float
    truth: float
    series: list[Series]

    def of(self, series: Series) -> pd.DataFrame:
        """The rows of one (method, prior) series."""
        method, prior = series
        rows = self.rows
        return rows.loc[(rows["method"] == method) & (rows["prior"] == prior)]


def cell_fits(
    replicates: pd.DataFrame,
    *,
    n: int | None,
    sigma: float | None,
    parameter: str,
    what: str,
) -> CellFits:
    """The fits of one cell and parameter, usable replicates marked.

    Parameters
    ----------
    replicates : pandas.DataFrame
        Long table of replicate fits (:data:`REPLICATE_COLUMNS`, optional factor columns).
    n, sigma : optional
        The cell; may be omitted when the table holds a single value.
    parameter : str
        The parameter whose fits are wanted.
    what : str
        The figure's name, which starts every error message.

    Raises
    ------
    regsim.errors.InputDataError
        If a column is missing, the table has no rows, the cell or parameter is not in the
        table, the rows are of several levels of an optional factor, or the true value is
        not one finite number.
    """
    table = check_replicates(replicates)
    levels = cell_levels(table, what)
    n_value = single(table, "n", n, what)
    sigma_value = single(table, "sigma", sigma, what)
    table = table.loc[(table["n"] == n_value) & np.isclose(table["sigma"], sigma_value)]
    table = table.loc[table["parameter"] == parameter]
    if table.empty:
        raise InputDataError(f"{what}: no rows for parameter {parameter!r}")
    truths = table["true"].unique()
    if len(truths) != 1 or not np.isfinite(truths[0]):
        raise InputDataError(f"{what}: the true value of {parameter} is not one finite number")
    pairs = [(str(m), str(p)) for m, p in table[["method", "prior"]].drop_duplicates().to_numpy()]
    return CellFits(
        rows=table.assign(ok=usable(table)),
        levels=levels,
        n=int(n_value),
        sigma=float(sigma_value),
        truth=float(truths[0]),
        series=ordered_series(pairs),
    )


def common_replicates(replicates: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One cell's fits under the measures' ``common`` failure rule, and a note saying so.

    A replicate any fit failed on is left out of every method's measures under that rule:
    here every fit of it is marked as not converged, so that a figure of the fits shows
    the replicates its cell's measures were computed from (and counts the others among
    those left out).

    Returns
    -------
    (pandas.DataFrame, str)
        The rows, and e.g. ``"failures: common: the 43 of 200 replicates every fit
        converged on; the others are left out"``.
    """
    from regsim.cells import under_common_rule

    rows = under_common_rule(replicates)
    kept = rows.loc[rows["converged"], "replicate"].nunique()
    note = (
        f"failures: common: the {kept} of {rows['replicate'].nunique()} replicates every "
        "fit converged on; the others are left out"
    )
    return rows, note


def add_note(figure: Figure, note: str) -> None:
    """Add a line to the title of the figure's top legend (its first), under any slice
    title: where the figures of one cell's fits name what they show."""
    legend = figure.legends[0]
    title = legend.get_title().get_text()
    legend.set_title(f"{title}\n{note}" if title else note)


def usable(table: pd.DataFrame) -> np.ndarray:
    """Which fits count: converged, estimate, SE and limits finite, SE positive."""
    numbers = table[["estimate", "se", "lower", "upper"]]
    return (
        flags(table["converged"])
        & np.isfinite(numbers).all(axis=1).to_numpy()
        & (table["se"] > 0).to_numpy()
    )


def check_replicates(replicates: pd.DataFrame) -> pd.DataFrame:
    """A copy of the replicate table's columns with text keys and float numbers.

    ``prior`` is ``""`` for methods without one, ``n`` int; an optional factor's missing
    value is its default level.
    """
    what = "replicate table"
    if not isinstance(replicates, pd.DataFrame):
        kind = type(replicates).__name__
        raise InputDataError(f"{what}: expected a pandas DataFrame, got {kind}")
    missing = [c for c in REPLICATE_COLUMNS if c not in replicates.columns]
    if missing:
        raise InputDataError(f"{what}: missing column(s) {', '.join(missing)}")
    if len(replicates) == 0:
        raise InputDataError(f"{what}: the table has no rows")
    factors = [item for item in OPTIONAL_FACTORS if item.name in replicates.columns]
    out = replicates.loc[:, [*REPLICATE_COLUMNS, *(item.name for item in factors)]].copy()
    for item in factors:
        column = out[item.name]
        out[item.name] = column.astype(object).where(column.notna(), item.default).astype(str)
    out["prior"] = out["prior"].astype(object).where(out["prior"].notna(), "").astype(str)
    out["method"] = out["method"].astype(str)
    out["parameter"] = out["parameter"].astype(str)
    try:
        out["n"] = pd.to_numeric(out["n"], errors="raise").astype("int64")
        out["sigma"] = pd.to_numeric(out["sigma"], errors="raise").astype(float)
    except (TypeError, ValueError):
        raise InputDataError(f"{what}: columns n and sigma must be numeric and complete") from None
    for column in ("estimate", "se", "lower", "upper", "true"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out


def cell_levels(table: pd.DataFrame, what: str) -> dict[str, str]:
    """The optional factors' levels of one cell's fits; a table of several is refused."""
    levels = {}
    for item in OPTIONAL_FACTORS:
        found: Sequence[str] = [str(item.default)]
        if item.name in table.columns:
            found = sorted(set(table[item.name]), key=item.rank) or found
        if len(found) > 1:
            raise InputDataError(
                f"{what}: fits of several {item.name} levels ({', '.join(found)}); "
                "pass one cell's fits"
            )
        levels[item.name] = found[0]
    return levels


def flags(column: pd.Series) -> np.ndarray:
    """A convergence column as booleans; missing or unrecognised values are False."""
    if column.dtype == bool:
        return column.to_numpy(bool)
    text = column.astype(str).str.strip().str.lower()
    return text.isin(["true", "t", "yes", "1", "1.0"]).to_numpy()


def single(table: pd.DataFrame, column: str, value: float | None, what: str) -> float:
    """The one value of ``column`` in the table, or ``value`` if the table has it."""
    present = sorted(table[column].unique())
    if value is None:
        if len(present) != 1:
            shown = ", ".join(short_number(v) for v in present)
            raise InputDataError(f"{what}: several values of {column} ({shown}); choose one")
        return float(present[0])
    if not np.isclose(present, float(value)).any():
        shown = ", ".join(short_number(v) for v in present)
        raise InputDataError(f"{what}: no rows with {column} = {value}; values: {shown}")
    return float(value)
