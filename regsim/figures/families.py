"""The grid figure families: bias, coverage, rejection, efficiency, model SE and σ.

Each takes the metrics table of one slice (one level of each optional factor) and returns
a :class:`matplotlib.figure.Figure` of :func:`regsim.figures.grid.grid_figure` panels:
rows are parameters (or, for σ, measures), columns are σ, one line per series.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from regsim.errors import InputDataError
from regsim.schema import (
    DEFAULT_ERRORS,
    OPTIONAL_FACTORS,
    ZERO_TARGET_MEASURES,
    beta_index,
    method_name,
    prior_rank,
)
from regsim.styles import METHOD_COLOURS
from regsim.theory import expected_s, expected_sigma_mle, mle_wald_coverage

from .collector import gc_paused
from .data import (
    Expected,
    OnMissing,
    cell_values,
    check_measure,
    grid_levels,
    prepare_metrics,
    select_parameters,
)
from .grid import GridContent, GridLook, grid_figure, measure_ylabel, zero_line
from .style import FIGURE_WIDTH, MEASURE_LABELS, REFERENCE_COLOUR, parameter_symbol, series_label

# --------------------------------------------------------------------------------------
# Exact finite-sample curves
# --------------------------------------------------------------------------------------

#: ``gid`` of the exact finite-sample curves drawn by :func:`coverage_figure` and
#: :func:`sigma_figure` (normal errors).
EXACT_GID = "regsim-exact"

#: The levels the exact finite-sample theory (:mod:`regsim.theory`) assumes: normal
#: errors. A slice at another level of one of these factors gets no exact curve.
EXACT_LEVELS: dict[str, str] = {"errors": DEFAULT_ERRORS}

#: The range of a proportion (coverage, rejection): their Monte Carlo bars stop there.
PROPORTION = (0.0, 1.0)

#: Measures of the σ figure with an exact curve under normal errors.
_EXACT_SIGMA_MEASURES = frozenset({"bias", "relbias"})

#: E[estimate of σ] under normal errors, by method: ``f(n, p, sigma)``.
_EXACT_SIGMA: dict[str, Callable[[int, int, float], float]] = {
    "ols": expected_s,
    "mle": expected_sigma_mle,
}

#: Points of the log-spaced n grid of the exact curves (before rounding to integers).
_EXACT_POINTS = 150

#: Style of the exact curves: thin and dashed, under the estimates.
_EXACT_STYLE: dict[str, Any] = {"linestyle": (0, (4, 2)), "linewidth": 0.8}


def exact_theory_holds(levels: Mapping[str, str]) -> bool:
    """Whether a slice's levels are those the exact theory assumes (:data:`EXACT_LEVELS`)."""
    defaults = {item.name: item.default for item in OPTIONAL_FACTORS}
    return all(
        levels.get(name, defaults.get(name)) == level for name, level in EXACT_LEVELS.items()
    )


def _check_p(p: int | None) -> int | None:
    if p is None:
        return None
    if isinstance(p, bool) or not isinstance(p, int | np.integer) or p < 1:
        raise InputDataError(f"p (number of coefficients) must be a positive integer, got {p!r}")
    return int(p)


def _exact_grid(ns: Sequence[int], p: int | None) -> np.ndarray | None:
    """Integer ``n`` (> ``p``) log-spaced over the sample sizes shown; None without ``p``."""
    if p is None:
        return None
    low, high = max(min(ns), p + 1), max(ns)
    if high < low:
        return np.empty(0, dtype=int)
    return np.unique(np.rint(np.geomspace(low, high, _EXACT_POINTS)).astype(int))


def _replications(table: pd.DataFrame, replications: int | None) -> int:
    """``R`` of a Monte Carlo band: as given, or the largest ``n_reps`` in the table."""
    if replications is not None:
        return replications
    reps = table.loc[table["measure"] == "n_reps", "estimate"]
    if not np.isfinite(reps).any() or reps.max() <= 0:
        raise InputDataError("metrics table: no n_reps rows to size the Monte Carlo band")
    return int(reps.max())


@dataclass(frozen=True)
class _Band:
    """The Monte Carlo band of a proportion whose nominal value is α (or 1 − α):
    ``centre`` ± 1.96 √(α(1 − α)/R), shaded behind a panel's estimates."""

    centre: float
    half: float
    replications: int

    @classmethod
    def of(
        cls, table: pd.DataFrame, alpha: float, replications: int | None, centre: float
    ) -> _Band:
        """The band about ``centre``, R as given or from the table (:func:`_replications`)."""
        count = _replications(table, replications)
        return cls(centre, 1.96 * math.sqrt(alpha * (1.0 - alpha) / count), count)

    def draw(self, ax: Axes) -> None:
        ax.axhspan(
            self.centre - self.half, self.centre + self.half, color="0.85", linewidth=0, zorder=0
        )

    def handle(self) -> Patch:
        return Patch(color="0.85", label=f"MC band (R = {self.replications})")


def _is_coefficient(parameter: str) -> bool:
    return beta_index(parameter) is not None


def _exact_curve(ax: Axes, n: np.ndarray, y: np.ndarray, colour: str) -> None:
    """An exact finite-sample curve (normal errors) over ``n``, under the estimates.

    With one sample size the curve is one point, which a dashed line does not show: its
    value is drawn as a dashed level across the estimates' place instead.
    """
    if len(n) == 1:
        n = np.array([n[0] / _SINGLE_N_REACH, n[0] * _SINGLE_N_REACH])
        y = np.repeat(y, 2)
    ax.plot(n, y, color=colour, zorder=1.8, gid=EXACT_GID, **_EXACT_STYLE)


#: With one sample size, the exact value spans n / this to n × this (the axis spans 1.5).
_SINGLE_N_REACH = 1.3


def _exact_handle(colour: str, label: str) -> Line2D:
    return Line2D([], [], color=colour, label=label, **_EXACT_STYLE)


# --------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------


@gc_paused
def bias_figure(
    metrics: pd.DataFrame,
    parameters: Sequence[str] | None = None,
    *,
    measure: str = "bias",
    ylim: tuple[float, float] | None = None,
    expected: Expected | None = None,
    on_missing: OnMissing = "annotate",
    width: float = FIGURE_WIDTH,
) -> Figure:
    """Bias of each estimator against ``n``: rows are parameters, columns are ``sigma``.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table of one slice (one level of each optional factor).
    parameters : sequence of str, optional
        Parameters to show, one row each; default every parameter in the table
        (``beta0`` ... ``betak``, ``sigma``).
    measure : str, default "bias"
        ``"bias"``, or e.g. ``"relbias"`` for the relative bias.
    ylim : (float, float), optional
        Range of every panel's y axis; default fitted to the data. Estimates beyond it are
        drawn as triangles at the panel's edge (the line runs off the panel), never hidden.
    expected : mapping, optional
        The study design, ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``
        (each key optional): its cells are expected even if absent from the whole table.
    on_missing : {"annotate", "raise"}, default "annotate"
        What to do about expected cells without an estimate (see :mod:`regsim.figures`).
    width : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        One line per series (method × prior) with ±1.96 MCSE error bars, a zero line, the
        ``n`` axis on a log scale.

    Raises
    ------
    regsim.errors.InputDataError
        If a column, the measure or a parameter is missing, the table mixes levels of an
        optional factor, or ``on_missing="raise"`` and a cell has no estimate.
    """
    table, levels = prepare_metrics(metrics)
    check_measure(table, measure)
    rows = select_parameters(table, parameters)
    grid = grid_levels(table, expected)
    return grid_figure(
        cell_values(table, measure, rows, grid),
        GridContent(tuple(rows), "parameter", grid, levels),
        GridLook(
            ylabel=measure_ylabel(measure),
            row_label=parameter_symbol,
            decorate=zero_line,
            ylim=ylim,
            width=width,
        ),
        what=f"{measure} figure",
        on_missing=on_missing,
    )


@gc_paused
def coverage_figure(
    metrics: pd.DataFrame,
    parameters: Sequence[str] | None = None,
    *,
    alpha: float = 0.05,
    replications: int | None = None,
    ylim: tuple[float, float] | None = None,
    expected: Expected | None = None,
    on_missing: OnMissing = "annotate",
    width: float = FIGURE_WIDTH,
    p: int | None = None,
) -> Figure:
    """Coverage of the 1 − α intervals against ``n``, with the nominal level and MC band.

    The grey band is ``1 − α ± 1.96 √(α (1 − α) / R)``: where the coverage of an exact
    interval estimated from ``R`` replicates falls 95% of the time.

    With ``p`` and a table of normal errors, a thin dashed curve in the MLE colour in
    every coefficient panel (not in the σ panels, whose interval is another) is the exact
    coverage of the MLE Wald interval, ``2 F_t(z √((n − p)/n); n − p) − 1``
    (:func:`regsim.theory.mle_wald_coverage`), at every integer ``n`` of a log-spaced grid
    from the smallest ``n`` shown (at least ``p + 1``) to the largest; it does not depend
    on σ. It is what the MLE's coverage estimates should scatter around. The exact
    coverage of the OLS t interval is the nominal line.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table of one slice (one level of each optional factor).
    parameters : sequence of str, optional
        Parameters to show, one row each; default all.
    alpha : float, default 0.05
        Nominal level: the intervals are 1 − α intervals.
    replications : int, optional
        ``R`` for the band; default the largest ``n_reps`` in the table (the planned
        number of replicates unless every cell lost some).
    ylim : (float, float), optional
        Range of every panel's y axis; default fitted to the data. Estimates beyond it are
        drawn as triangles at the panel's edge (the line runs off the panel), never hidden.
        A range such as ``(0.8, 1.0)`` shows the methods near the nominal level when a
        badly misspecified prior has near-zero coverage.
    expected : mapping, optional
        The study design, ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``
        (each key optional): its cells are expected even if absent from the whole table.
    on_missing : {"annotate", "raise"}, default "annotate"
        What to do about expected cells without an estimate.
    width : float, default 7.0
        Figure width in inches.
    p : int, optional
        Number of regression coefficients of the study, for the exact MLE coverage curve;
        without it, or when the slice is not one the exact theory holds for
        (:data:`EXACT_LEVELS`: normal errors), no curve is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Rows are parameters, columns ``sigma``; ±1.96 MCSE error bars.

    Raises
    ------
    regsim.errors.InputDataError
        If a column, the measure or a parameter is missing, the table mixes levels of an
        optional factor, ``R`` cannot be found, or ``on_missing="raise"`` and a cell has no
        estimate.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise InputDataError(f"alpha must be in (0, 1), got {alpha!r}")
    p = _check_p(p)
    table, levels = prepare_metrics(metrics)
    check_measure(table, "coverage")
    rows = select_parameters(table, parameters)
    grid = grid_levels(table, expected)
    nominal = 1.0 - float(alpha)
    band = _Band.of(table, alpha, replications, nominal)
    exact_n = None
    if exact_theory_holds(levels) and ("mle", "") in grid.series:
        exact_n = _exact_grid(grid.ns, p)
    exact = None
    if exact_n is not None and len(exact_n) and any(_is_coefficient(r) for r in rows):
        exact = np.array([mle_wald_coverage(int(n), int(p), float(alpha)) for n in exact_n])

    def decorate(ax: Axes, row: str, _sigma: float) -> None:
        band.draw(ax)
        ax.axhline(nominal, color=REFERENCE_COLOUR, linewidth=0.8, zorder=0.5)
        if exact is not None and _is_coefficient(row):
            _exact_curve(ax, exact_n, exact, METHOD_COLOURS["mle"])

    extra = [
        Line2D([], [], color=REFERENCE_COLOUR, linewidth=0.8, label=f"nominal {nominal:g}"),
        band.handle(),
    ]
    if exact is not None:
        extra.append(_exact_handle(METHOD_COLOURS["mle"], "MLE exact (normal errors)"))
    return grid_figure(
        cell_values(table, "coverage", rows, grid),
        GridContent(tuple(rows), "parameter", grid, levels),
        GridLook(
            ylabel=measure_ylabel("coverage"),
            row_label=parameter_symbol,
            decorate=decorate,
            extra_handles=tuple(extra),
            ylim=ylim,
            bounds=PROPORTION,
            width=width,
        ),
        what="coverage figure",
        on_missing=on_missing,
    )


def _true_values(table: pd.DataFrame, rows: Sequence[str]) -> dict[str, float]:
    """Each parameter's true value in a slice (NaN when the table does not say, or when
    it holds several)."""
    out = {}
    for row in rows:
        values = table.loc[table["parameter"] == row, "true"].dropna().unique()
        out[row] = float(values[0]) if len(values) == 1 else math.nan
    return out


@gc_paused
def rejection_figure(
    metrics: pd.DataFrame,
    parameters: Sequence[str] | None = None,
    *,
    alpha: float = 0.05,
    replications: int | None = None,
    ylim: tuple[float, float] | None = None,
    expected: Expected | None = None,
    on_missing: OnMissing = "annotate",
    width: float = FIGURE_WIDTH,
    p: int | None = None,
) -> Figure:
    """Rejection rate of the level-α test of β_j = 0 against ``n``: type I error or power.

    A replicate rejects when its 1 − α interval excludes 0 (the ``rejection`` measure).
    In a row whose parameter is truly 0 in this slice the rate is the test's type I error:
    the panel shows the nominal α and the grey band ``α ± 1.96 √(α (1 − α) / R)``, where
    the estimate of an exact test's size from ``R`` replicates falls 95% of the time, and
    (with ``p``, under normal errors) the exact size of the MLE Wald test,
    ``1 − mle_wald_coverage(n, p, α)``, as a dashed curve in the MLE colour; the OLS t
    test's exact size is α itself. In any other row the rate is the power, against the
    nominal α as a line. Each row's label says which, with the true value.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table of one slice (one level of each optional factor), with its
        ``true`` column.
    parameters : sequence of str, optional
        Parameters to show, one row each; default every coefficient (``beta0`` …): the
        interval of σ never holds 0.
    alpha : float, default 0.05
        Nominal level of the tests (1 − α intervals).
    replications : int, optional
        ``R`` for the band; default the largest ``n_reps`` in the table.
    ylim : (float, float), optional
        Range of every panel's y axis; default fitted to the data.
    expected : mapping, optional
        The study design (keys ``n``, ``sigma``, ``methods``, ``priors``).
    on_missing : {"annotate", "raise"}, default "annotate"
        What to do about expected cells without an estimate.
    width : float, default 7.0
        Figure width in inches.
    p : int, optional
        Number of coefficients, for the exact MLE size curve (normal errors only).

    Returns
    -------
    matplotlib.figure.Figure
        Rows are parameters, columns ``sigma``; ±1.96 MCSE error bars.

    Raises
    ------
    regsim.errors.InputDataError
        If a column, the measure or a parameter is missing, the table mixes levels of an
        optional factor, ``R`` cannot be found, or ``on_missing="raise"`` and a cell has no
        estimate.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise InputDataError(f"alpha must be in (0, 1), got {alpha!r}")
    p = _check_p(p)
    table, levels = prepare_metrics(metrics)
    check_measure(table, "rejection")
    if parameters is None:
        parameters = [r for r in select_parameters(table, None) if _is_coefficient(r)]
        if not parameters:
            raise InputDataError("metrics table: no coefficient to test")
    rows = select_parameters(table, parameters)
    grid = grid_levels(table, expected)
    alpha = float(alpha)
    band = _Band.of(table, alpha, replications, alpha)
    truth = _true_values(table, rows)
    null = {row for row in rows if truth[row] == 0.0}
    exact_n = None
    if exact_theory_holds(levels) and ("mle", "") in grid.series and null:
        exact_n = _exact_grid(grid.ns, p)
    exact = None
    if exact_n is not None and len(exact_n):
        exact = np.array([1.0 - mle_wald_coverage(int(n), int(p), alpha) for n in exact_n])

    def decorate(ax: Axes, row: str, _sigma: float) -> None:
        if row in null:
            band.draw(ax)
            if exact is not None and _is_coefficient(row):
                _exact_curve(ax, exact_n, exact, METHOD_COLOURS["mle"])
        ax.axhline(alpha, color=REFERENCE_COLOUR, linewidth=0.8, zorder=0.5)

    def ylabel(row: str) -> str:
        symbol = parameter_symbol(row, hat=False)
        value = truth[row]
        if math.isnan(value):
            return f"Rejection rate\nfor {symbol}"
        if row in null:
            return f"Type I error\n({symbol} = 0)"
        return f"Power\n({symbol} = {value:.4g})"

    extra = [Line2D([], [], color=REFERENCE_COLOUR, linewidth=0.8, label=f"nominal α = {alpha:g}")]
    if null:
        extra.append(band.handle())
    if exact is not None:
        extra.append(_exact_handle(METHOD_COLOURS["mle"], "MLE exact size (normal errors)"))
    return grid_figure(
        cell_values(table, "rejection", rows, grid),
        GridContent(tuple(rows), "parameter", grid, levels),
        GridLook(
            ylabel=ylabel,
            row_label=parameter_symbol,
            decorate=decorate,
            extra_handles=tuple(extra),
            ylim=ylim,
            bounds=PROPORTION,
            width=width,
        ),
        what="rejection figure",
        on_missing=on_missing,
    )


@gc_paused
def efficiency_figure(
    metrics: pd.DataFrame,
    parameters: Sequence[str] | None = None,
    *,
    reference: str = "ols",
    log_y: bool = True,
    ylim: tuple[float, float] | None = None,
    expected: Expected | None = None,
    on_missing: OnMissing = "annotate",
    width: float = FIGURE_WIDTH,
) -> Figure:
    """RMSE of each estimator relative to the reference (OLS) against ``n``.

    The ratio is ``r = RMSE_m / RMSE_ref`` of the same parameter and cell (1 = as good as
    OLS, below 1 = better). Its MCSE is the delta-method
    ``(r / 2) √(v_m + v_ref − 2 c)`` with ``v = (MCSE(MSE) / MSE)²`` the relative variance
    of each MSE and ``c = Cov(MSE_m, MSE_ref) / (MSE_m MSE_ref)`` their relative
    covariance: the two are computed on the same datasets, and the paired ``mse_diff`` rows
    give it, ``Cov = (MCSE_m² + MCSE_ref² − MCSE(mse_diff)²) / 2`` (paired on the
    replicates both fitted, so an approximation where some failed). Without ``mse_diff``
    rows ``c = 0``: conservative (too wide) bars. For the MLE of the coefficients, which
    equals OLS, the ratio is exactly 1 and the paired bar 0.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table of one slice (one level of each optional factor).
    parameters : sequence of str, optional
        Parameters to show, one row each; default all.
    reference : str, default "ols"
        The method in the denominator; drawn as the horizontal line at 1.
    log_y : bool, default True
        Log y axis, on which a ratio r and its reciprocal 1/r are equally far from 1.
    ylim : (float, float), optional
        Range of every panel's y axis; default fitted to the data. Estimates beyond it are
        drawn as triangles at the panel's edge (the line runs off the panel), never hidden.
    expected : mapping, optional
        The study design, ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``
        (each key optional): its cells are expected even if absent from the whole table.
    on_missing : {"annotate", "raise"}, default "annotate"
        What to do about expected cells without an estimate (a missing reference makes
        every ratio of its cell missing).
    width : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Rows are parameters, columns ``sigma``; one line per non-reference series.

    Raises
    ------
    regsim.errors.InputDataError
        If a column, the RMSE rows, the reference method or a parameter is missing, the
        table mixes levels of an optional factor, or ``on_missing="raise"`` and a cell has
        no estimate.
    """
    table, levels = prepare_metrics(metrics)
    check_measure(table, "rmse")
    rows = select_parameters(table, parameters)
    grid = grid_levels(table, expected)
    if (reference, "") not in grid.series:
        raise InputDataError(f"metrics table: no rows for the reference method {reference!r}")
    values = cell_values(table, "rmse", rows, grid)
    keys = ["parameter", "sigma", "n"]
    is_ref = (values["method"] == reference) & (values["prior"] == "")
    ref = values.loc[is_ref, [*keys, "estimate", "mcse", "reason"]]
    ref = ref.rename(columns={"estimate": "ref", "mcse": "ref_mcse", "reason": "ref_reason"})
    ratio = values.loc[~is_ref].merge(ref, on=keys, how="left")
    ratio = ratio.merge(
        _paired_mse_covariance(table, reference), on=[*keys, "method", "prior"], how="left"
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ratio["estimate"] / ratio["ref"]
        # relative variances of MSE_m and MSE_ref (twice those of the RMSEs), less twice
        # their relative covariance when the paired mse_diff gives it
        rel_m = 2.0 * ratio["mcse"] / ratio["estimate"]
        rel_ref = 2.0 * ratio["ref_mcse"] / ratio["ref"]
        product = ratio["estimate"] * ratio["ref"]
        covariance = (ratio["covariance"].astype(float) / product**2).fillna(0.0)
        rel2 = np.clip(rel_m**2 + rel_ref**2 - 2.0 * covariance, 0.0, None)
    ratio["mcse"] = r * np.sqrt(rel2) / 2.0
    ratio["estimate"] = r
    ratio = ratio.drop(columns="covariance")
    bad_ref = (ratio["reason"] == "") & (ratio["ref_reason"] != "")
    ratio.loc[bad_ref, "reason"] = f"{method_name(reference)} reference: " + ratio.loc[
        bad_ref, "ref_reason"
    ].astype(str)
    zero_ref = (ratio["reason"] == "") & ~np.isfinite(ratio["estimate"])
    ratio.loc[zero_ref, "reason"] = "ratio undefined"
    shown = tuple(s for s in grid.series if s != (reference, ""))
    colour = METHOD_COLOURS.get(reference, "0.3")

    def decorate(ax: Axes, _row: str, _sigma: float) -> None:
        ax.axhline(1.0, color=colour, linewidth=0.9, zorder=0.5)

    # A plain name as a subscript; one with spaces or brackets ("OLS (HC3)") spelled out.
    name = method_name(reference)
    ref_text = f"RMSE$_{{\\rm {name}}}$" if name.isalpha() else f"RMSE of {series_label(reference)}"

    def ylabel(parameter: str) -> str:
        return f"RMSE / {ref_text}\nof {parameter_symbol(parameter)}"

    return grid_figure(
        ratio.drop(columns=["ref", "ref_mcse", "ref_reason"]),
        GridContent(tuple(rows), "parameter", replace(grid, series=shown), levels),
        GridLook(
            ylabel=ylabel,
            row_label=parameter_symbol,
            decorate=decorate,
            extra_handles=(Line2D([], [], color=colour, label=f"{series_label(reference)} (= 1)"),),
            ylim=ylim,
            log_y=log_y,
            width=width,
        ),
        what="efficiency figure",
        on_missing=on_missing,
    )


#: Series of the Laplace figure: MAP's Laplace interval and the exact credible interval.
_LAPLACE_SERIES: tuple[tuple[str, str], ...] = (("map", ""), ("bayes", ""))
_LAPLACE_LABELS: dict[str, str] = {"map": "MAP (Laplace)", "bayes": "Bayes (exact)"}
_BIMODAL_COLOUR = "0.45"
#: The share of bimodal posteriors: a dotted line with small marks at each n.
_BIMODAL_STYLE: dict[str, Any] = {
    "color": _BIMODAL_COLOUR,
    "linestyle": ":",
    "marker": "o",
    "markersize": 2.5,
}


@gc_paused
def laplace_figure(
    metrics: pd.DataFrame,
    parameter: str = "beta1",
    *,
    alpha: float = 0.05,
    replications: int | None = None,
    ylim: tuple[float, float] | None = None,
    expected: Expected | None = None,
    on_missing: OnMissing = "annotate",
    width: float = FIGURE_WIDTH,
) -> Figure:
    """Coverage of MAP's Laplace interval and of the exact credible interval, per prior.

    Rows are the priors, columns σ; in each panel the coverage of MAP's interval (the mode
    ± z × the Laplace SE, built on one mode's curvature) and of Bayes's equal-tailed
    credible interval (the exact posterior's quantiles) of ``parameter`` against ``n``,
    ±1.96 MCSE, with the nominal 1 − α and its Monte Carlo band
    ``1 − α ± 1.96 √(α (1 − α) / R)``. The grey dotted line, marked at each n (right
    axis, 0 to 1), is the share of datasets whose posterior density of log σ has two or
    more local modes, however little mass the second holds (Bayes's ``n_multimodal``
    over its replicates): prior–data conflict, where a single mode's curvature can
    mislead; it is drawn only in the panels where some dataset's had (a right axis of
    zeros beside every panel would crowd the coverage axes), and named in the legend only
    if some panel has it.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table of one slice, with ``map`` and ``bayes`` rows.
    parameter : str, default "beta1"
        The parameter whose intervals are compared.
    alpha : float, default 0.05
        Nominal level.
    replications : int, optional
        ``R`` for the band; default the largest ``n_reps`` in the table.
    ylim : (float, float), optional
        Range of the coverage axes.
    expected : mapping, optional
        The study design (keys ``n``, ``sigma``, ``methods``, ``priors``).
    on_missing : {"annotate", "raise"}, default "annotate"
        What to do about expected cells without an estimate.
    width : float, default 7.0
        Figure width in inches.

    Raises
    ------
    regsim.errors.InputDataError
        If the table lacks MAP or Bayes rows, the coverage measure or the parameter.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise InputDataError(f"alpha must be in (0, 1), got {alpha!r}")
    table, levels = prepare_metrics(metrics)
    check_measure(table, "coverage")
    select_parameters(table, [parameter])
    for method in ("map", "bayes"):
        if not (table["method"] == method).any():
            raise InputDataError(f"metrics table: no {method} rows to compare")
    grid = grid_levels(table, expected)
    priors = sorted({p for m, p in grid.series if m in ("map", "bayes") and p}, key=prior_rank)
    if not priors:
        raise InputDataError("metrics table: no prior of map and bayes")
    nominal = 1.0 - float(alpha)
    band = _Band.of(table, alpha, replications, nominal)
    # one grid row per prior, its MAP and Bayes series as the two lines of the row
    values = cell_values(table, "coverage", [parameter], grid)
    values = values.loc[values["method"].isin(["map", "bayes"]) & values["prior"].isin(priors)]
    values = values.assign(row=values["prior"], prior="")
    bayes = table.loc[(table["method"] == "bayes") & (table["parameter"] == parameter)]
    counts = bayes.pivot_table(
        index=["prior", "sigma", "n"], columns="measure", values="estimate", aggfunc="first"
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        drawn = counts.get("n_reps", np.nan) + counts.get("n_failed", 0.0)
        bimodal = (counts.get("n_multimodal", np.nan) / drawn).rename("share")

    def decorate(ax: Axes, row: str, sigma: float) -> None:
        band.draw(ax)
        ax.axhline(nominal, color=REFERENCE_COLOUR, linewidth=0.8, zorder=0.5)
        share = bimodal.xs((row, sigma), level=("prior", "sigma"), drop_level=True)
        if (share > 0).any():
            right = ax.twinx()
            # Marked, so that a grid of one n (a line through one point draws nothing)
            # still shows its share.
            right.plot(share.index, share.to_numpy(), **_BIMODAL_STYLE)
            right.set_ylim(0.0, 1.0)
            right.tick_params(axis="y", labelsize=7, colors=_BIMODAL_COLOUR)
            right.spines["right"].set_visible(True)
            right.set_xscale("log")

    extra: tuple[Any, ...] = (
        Line2D([], [], color=REFERENCE_COLOUR, linewidth=0.8, label=f"nominal {nominal:g}"),
        band.handle(),
    )
    if (bimodal > 0).any():
        extra += (
            Line2D([], [], **_BIMODAL_STYLE, label="log σ's posterior with 2+ modes (right axis)"),
        )

    def ylabel(prior: str) -> str:
        return f"Coverage of {parameter_symbol(parameter, hat=False)}\nprior {prior}"

    return grid_figure(
        values,
        GridContent(tuple(priors), "row", replace(grid, series=_LAPLACE_SERIES), levels),
        GridLook(
            ylabel=ylabel,
            labels=lambda method, _prior: _LAPLACE_LABELS[method],
            row_label=lambda prior: f"prior {prior}",
            decorate=decorate,
            extra_handles=extra,
            ylim=ylim,
            width=width,
        ),
        what="Laplace figure",
        on_missing=on_missing,
    )


def _paired_mse_covariance(table: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Cov(MSE_m, MSE_ref) of each cell's series, from the paired ``mse_diff`` rows.

    Var(D) = Var(A) + Var(B) − 2 Cov(A, B) for D = A − B, so the MCSEs of the two MSEs and
    of their paired difference give Cov = (MCSE_A² + MCSE_B² − MCSE_D²) / 2. Columns
    ``parameter, sigma, n, method, prior, covariance``; empty without ``mse_diff`` rows.
    """
    keys = ["parameter", "sigma", "n", "method", "prior"]
    mse = table.loc[table["measure"] == "mse", [*keys, "mcse"]]
    diff = table.loc[table["measure"] == "mse_diff", [*keys, "mcse"]]
    if diff.empty:
        return pd.DataFrame(columns=[*keys, "covariance"])
    ref = mse.loc[(mse["method"] == reference) & (mse["prior"] == "")]
    ref = ref[["parameter", "sigma", "n", "mcse"]].rename(columns={"mcse": "ref_mcse"})
    both = mse.merge(diff, on=keys, suffixes=("", "_diff")).merge(
        ref, on=["parameter", "sigma", "n"]
    )
    both["covariance"] = (both["mcse"] ** 2 + both["ref_mcse"] ** 2 - both["mcse_diff"] ** 2) / 2.0
    return both[[*keys, "covariance"]]


def modelse_figure(
    metrics: pd.DataFrame,
    parameters: Sequence[str] | None = None,
    *,
    ylim: tuple[float, float] | None = None,
    expected: Expected | None = None,
    on_missing: OnMissing = "annotate",
    width: float = FIGURE_WIDTH,
) -> Figure:
    """Relative error (%) of the model-based SE against the empirical SE, against ``n``.

    Shows the measure ``relerror``, ``100 (ModSE / EmpSE − 1)``: 0 means the standard
    errors are right on average, negative that they are too small.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table of one slice (one level of each optional factor).
    parameters : sequence of str, optional
        Parameters to show, one row each; default all.
    ylim : (float, float), optional
        Range of every panel's y axis; default fitted to the data. Estimates beyond it are
        drawn as triangles at the panel's edge (the line runs off the panel), never hidden.
    expected : mapping, optional
        The study design, ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``
        (each key optional): its cells are expected even if absent from the whole table.
    on_missing : {"annotate", "raise"}, default "annotate"
        What to do about expected cells without an estimate.
    width : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Rows are parameters, columns ``sigma``; ±1.96 MCSE error bars and a zero line.

    Raises
    ------
    regsim.errors.InputDataError
        As :func:`bias_figure`.
    """
    return bias_figure(
        metrics,
        parameters,
        measure="relerror",
        ylim=ylim,
        expected=expected,
        on_missing=on_missing,
        width=width,
    )


@gc_paused
def sigma_figure(
    metrics: pd.DataFrame,
    measures: Sequence[str] = ("bias",),
    *,
    ylim: tuple[float, float] | None = None,
    expected: Expected | None = None,
    on_missing: OnMissing = "annotate",
    width: float = FIGURE_WIDTH,
    p: int | None = None,
) -> Figure:
    """The estimators of σ: ``s`` (OLS), ``σ̂`` (MLE) and the MAP ``σ̂``, against ``n``.

    With ``p`` and a table of normal errors, the bias and relative-bias panels carry the
    exact values as thin dashed curves in the OLS and MLE colours: ``E[s] − σ`` with
    ``E[s] = σ √(2/(n − p)) Γ((n − p + 1)/2) / Γ((n − p)/2)`` and ``E[σ̂] − σ`` with
    ``E[σ̂] = E[s] √((n − p)/n)`` (:func:`regsim.theory.expected_s`,
    :func:`regsim.theory.expected_sigma_mle`), divided by σ for the relative bias, at the
    panel's σ and every integer ``n`` of a log-spaced grid from the smallest ``n`` shown
    (at least ``p + 1``) to the largest. Panels of other measures have no curve.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table of one slice (one level of each optional factor); its ``sigma``
        parameter rows are used.
    measures : sequence of str, default ("bias",)
        Measures to show, one row each (e.g. ``("bias", "relbias", "rmse")``).
    ylim : (float, float), optional
        Range of every panel's y axis; default fitted to the data. Estimates beyond it are
        drawn as triangles at the panel's edge (the line runs off the panel), never hidden.
    expected : mapping, optional
        The study design, ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``
        (each key optional): its cells are expected even if absent from the whole table.
    on_missing : {"annotate", "raise"}, default "annotate"
        What to do about expected cells without an estimate.
    width : float, default 7.0
        Figure width in inches.
    p : int, optional
        Number of regression coefficients of the study, for the exact curves; without it,
        or when the slice is not one the exact theory holds for (:data:`EXACT_LEVELS`:
        normal errors), no curve is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Rows are measures, columns ``sigma``; ±1.96 MCSE error bars and a zero line for
        bias-type measures.

    Raises
    ------
    regsim.errors.InputDataError
        If a column, a measure or the ``sigma`` parameter is missing, the table mixes
        levels of an optional factor, or ``on_missing="raise"`` and a cell has no estimate.
    """
    p = _check_p(p)
    table, levels = prepare_metrics(metrics)
    select_parameters(table, ["sigma"])
    measures = [measures] if isinstance(measures, str) else list(measures)
    for measure in measures:
        check_measure(table, measure)
    grid = grid_levels(table, expected)
    parts = [cell_values(table, m, ["sigma"], grid).assign(measure=m) for m in measures]
    values = pd.concat(parts, ignore_index=True)

    def label(method: str, prior: str) -> str:
        symbol = "$s$" if method in ("ols", "ols_hc3") else r"$\hat\sigma$"
        return f"{series_label(method, prior)}, {symbol}"

    exact_n = _exact_grid(grid.ns, p) if exact_theory_holds(levels) else None
    exact = {}
    if exact_n is not None and len(exact_n) and any(m in _EXACT_SIGMA_MEASURES for m in measures):
        exact = {m: f for m, f in _EXACT_SIGMA.items() if (m, "") in grid.series}

    def decorate(ax: Axes, measure: str, sigma: float) -> None:
        if measure in ZERO_TARGET_MEASURES:
            zero_line(ax, measure, sigma)
        if measure in _EXACT_SIGMA_MEASURES:
            for method, expectation in exact.items():
                mean = np.array([expectation(int(n), int(p), sigma) for n in exact_n])
                bias = mean - sigma if measure == "bias" else (mean - sigma) / sigma
                _exact_curve(ax, exact_n, bias, METHOD_COLOURS[method])

    def ylabel(measure: str) -> str:
        return f"{MEASURE_LABELS.get(measure, measure)} of the\nestimate of $\\sigma$"

    return grid_figure(
        values,
        GridContent(tuple(measures), "measure", grid, levels),
        GridLook(
            ylabel=ylabel,
            labels=label,
            row_label=lambda m: MEASURE_LABELS.get(m, m).lower(),
            decorate=decorate,
            extra_handles=tuple(
                _exact_handle(METHOD_COLOURS[m], f"{label(m, '')}: exact (normal errors)")
                for m in exact
            ),
            ylim=ylim,
            width=width,
        ),
        what="sigma figure",
        on_missing=on_missing,
    )
