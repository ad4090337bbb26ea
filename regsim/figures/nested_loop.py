"""The nested-loop plot (Rücker & Schwarzer 2014): one measure over the whole grid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from regsim.errors import InputDataError
from regsim.schema import short_number

from .collector import gc_paused
from .data import (
    Expected,
    OnMissing,
    cell_values,
    check_measure,
    check_on_missing,
    check_ylim,
    grid_levels,
    prepare_metrics,
    select_parameters,
)
from .panels import (
    log_axis,
    mark_missing,
    mark_off_scale,
    new_figure,
    refuse_missing,
    report_missing,
)
from .style import (
    FIGURE_WIDTH,
    MEASURE_LABELS,
    RC,
    REFERENCE_COLOUR,
    handle,
    legend_columns,
    legend_title,
    off_scale_handle,
    parameter_symbol,
    series_label,
    series_styles,
)

#: Measures that are positive, so a log scale is the default.
_POSITIVE_MEASURES = frozenset({"empse", "modelse", "mse", "rmse", "width"})

#: Line widths (no markers here): OLS widest and MLE next, drawn first, so that series
#: that coincide with them (MLE and weak-prior MAP of the coefficients equal OLS) leave a
#: visible edge of the wider line.
_STEP_WIDTHS: dict[str, float] = {"ols": 2.2, "mle": 1.4}

#: Symbols of the loop factors in the staircase panel.
_LOOP_NAMES: dict[str, str] = {"sigma": r"$\sigma$", "n": r"$n$"}


@gc_paused
def nested_loop_figure(
    metrics: pd.DataFrame,
    measure: str = "rmse",
    parameter: str = "beta1",
    *,
    loops: Sequence[str] = ("sigma", "n"),
    log_y: bool | None = None,
    ylim: tuple[float, float] | None = None,
    expected: Expected | None = None,
    on_missing: OnMissing = "annotate",
    width: float = FIGURE_WIDTH,
    height: float = 3.8,
) -> Figure:
    """Nested-loop plot (Rücker & Schwarzer 2014) of one measure over the whole grid.

    The scenarios (``sigma`` × ``n`` cells) are laid along the x axis in nested-loop order,
    the first factor of ``loops`` outermost; each series is a step line over them. A lower
    panel draws one staircase per factor, its steps at the factor's levels (labelled), so
    each scenario's settings can be read off below it. Dotted vertical lines separate the
    blocks of the outer factor. No MC error bars are drawn (see the other figures). OLS is
    drawn widest and MLE next, underneath the others, so that where estimators coincide
    (MLE and weak-prior MAP of the coefficients equal OLS) every line stays visible.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table of one slice (one level of each optional factor).
    measure : str, default "rmse"
        The measure to show.
    parameter : str, default "beta1"
        The parameter to show.
    loops : sequence of str, default ("sigma", "n")
        The grid factors, outermost first; a permutation of ``("sigma", "n")``.
    log_y : bool, optional
        Log y axis; default on for positive measures (RMSE, MSE, SEs, width) when every
        value is positive.
    ylim : (float, float), optional
        Range of the y axis; default fitted to the data. Estimates beyond it are drawn as
        triangles at the edge.
    expected : mapping, optional
        The study design, ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``
        (each key optional): its cells are expected even if absent from the whole table.
    on_missing : {"annotate", "raise"}, default "annotate"
        What to do about expected cells without an estimate.
    width, height : float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the measure (top) and the loop staircases (bottom).

    Raises
    ------
    regsim.errors.InputDataError
        If a column, the measure or the parameter is missing, the table mixes levels of an
        optional factor, ``loops`` is not a permutation of the grid factors, or
        ``on_missing="raise"`` and a cell has no estimate.
    """
    what = "nested-loop figure"
    check_on_missing(on_missing)
    loops = list(loops)
    if sorted(loops) != ["n", "sigma"]:
        raise InputDataError(f"loops must be a permutation of ('sigma', 'n'), got {loops}")
    table, slice_levels = prepare_metrics(metrics)
    check_measure(table, measure)
    select_parameters(table, [parameter])
    grid = grid_levels(table, expected)
    series = grid.series
    values = cell_values(table, measure, [parameter], grid)
    missing = values.loc[values["reason"] != ""]
    missing = missing.assign(row=missing["parameter"])
    refuse_missing(missing, on_missing, what)
    levels = {"sigma": grid.sigmas, "n": grid.ns}
    outer, inner = loops
    scenarios = [{outer: a, inner: b} for a in levels[outer] for b in levels[inner]]
    x = np.arange(len(scenarios), dtype=float)
    finite = values.loc[values["reason"] == "", "estimate"]
    if log_y is None:
        log_y = measure in _POSITIVE_MEASURES and bool((finite > 0).all()) and len(finite) > 0
    ylim = check_ylim(ylim, bool(log_y))
    off_scale = False
    styles = series_styles(series)
    with mpl.rc_context(RC):
        figure = new_figure(width, height)
        ax, loop_ax = figure.subplots(
            2, 1, sharex=True, height_ratios=[3.0, 0.45 * len(loops) + 0.1]
        )
        keyed = values.set_index(["sigma", "n", "method", "prior"])
        for method, prior in series:
            y = np.full(len(scenarios), np.nan)
            gaps = []
            for i, scenario in enumerate(scenarios):
                row = keyed.loc[(scenario["sigma"], scenario["n"], method, prior)]
                if row["reason"] == "":
                    y[i] = row["estimate"]
                else:
                    gaps.append(x[i])
            style = _step_style(styles[(method, prior)], method, prior)
            ax.step(*_stairs(x, y), where="post", label=series_label(method, prior), **style)
            mark_missing(ax, gaps, style["color"])
            if ylim is not None:
                off_scale |= mark_off_scale(ax, x, y, ylim, style)
        if log_y:
            log_axis(ax)
        elif measure in ("bias", "relbias", "relerror"):
            ax.axhline(0.0, color=REFERENCE_COLOUR, linewidth=0.7, zorder=0)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_ylabel(f"{MEASURE_LABELS.get(measure, measure)} of {parameter_symbol(parameter)}")
        ax.tick_params(axis="x", bottom=False, labelbottom=False)
        _draw_loops(loop_ax, scenarios, loops, levels)
        block = len(levels[inner])
        for edge in range(block, len(scenarios), block):
            for axis in (ax, loop_ax):
                axis.axvline(edge - 0.5, color="0.7", linewidth=0.6, linestyle=":", zorder=0)
        ax.set_xlim(-0.7, len(scenarios) - 0.3)
        handles = [handle(_step_style(styles[s], *s), series_label(*s)) for s in series]
        if off_scale:
            handles.append(off_scale_handle())
        figure.legend(
            handles=handles,
            loc="outside upper center",
            ncols=legend_columns(handles),
            **legend_title(slice_levels),
        )
        report_missing(figure, missing, what, parameter_symbol)
    return figure


def _stairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges and values for a ``where="post"`` step plot giving scenario ``i`` the width
    ``[x_i - 1/2, x_i + 1/2]`` (the last value is repeated to close the last step)."""
    return np.append(x - 0.5, x[-1] + 0.5), np.append(y, y[-1])


def _step_style(style: dict[str, Any], method: str, prior: str) -> dict[str, Any]:
    """A series style without markers, OLS and MLE wider and underneath."""
    out = {k: v for k, v in style.items() if not k.startswith("marker")}
    if not prior and method in _STEP_WIDTHS:
        out["linewidth"] = _STEP_WIDTHS[method]
        out["zorder"] = 1.5 if method == "ols" else 1.8
    else:
        out["zorder"] = 2.0
    return out


def _draw_loops(
    ax: Axes,
    scenarios: Sequence[dict[str, float]],
    loops: Sequence[str],
    levels: dict[str, Sequence[float]],
) -> None:
    """Staircases of the factor levels under a nested-loop plot."""
    x = np.arange(len(scenarios), dtype=float)
    for depth, factor in enumerate(loops):
        base = len(loops) - 1 - depth
        values = list(levels[factor])
        steps = max(len(values) - 1, 1)
        index = np.array([values.index(s[factor]) for s in scenarios], dtype=float)
        y = base + 0.55 * index / steps
        ax.step(*_stairs(x, y), where="post", color="0.25", linewidth=0.9)
        ax.text(-0.8, base + 0.27, _LOOP_NAMES[factor], ha="right", va="center")
        for i in range(len(scenarios)):
            if i == 0 or index[i] != index[i - 1] or depth == len(loops) - 1:
                if depth == len(loops) - 1 and i >= len(values):
                    continue
                label = short_number(scenarios[i][factor])
                ax.text(x[i], y[i] + 0.08, label, ha="center", va="bottom")
    ax.set_ylim(-0.15, len(loops) - 0.05)
    ax.set_yticks([])
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
