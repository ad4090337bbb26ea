"""The nested-loop plot (Rücker & Schwarzer 2014): one measure over the whole grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from regsim.errors import InputDataError
from regsim.schema import OPTIONAL_FACTORS, SCALE_MEASURES, ZERO_TARGET_MEASURES, short_number
from regsim.styles import series_styles
from regsim.tableio import check_metrics, select_levels

from .collector import gc_paused
from .data import (
    Expected,
    Grid,
    OnMissing,
    cell_values,
    check_measure,
    check_on_missing,
    check_ylim,
    grid_levels,
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
)

#: Line widths (no markers here): OLS widest and MLE next, drawn first, so that series
#: that coincide with them (MLE and weak-prior MAP of the coefficients equal OLS) leave a
#: visible edge of the wider line.
_STEP_WIDTHS: dict[str, float] = {"ols": 2.2, "mle": 1.4}

#: Symbols of the loop factors in the staircase panel (others by their column name).
_LOOP_NAMES: dict[str, str] = {"sigma": r"$\sigma$", "n": r"$n$"}


@gc_paused
def nested_loop_figure(
    metrics: pd.DataFrame,
    measure: str = "rmse",
    parameter: str = "beta1",
    *,
    loops: Sequence[str] | None = None,
    log_y: bool | None = None,
    ylim: tuple[float, float] | None = None,
    expected: Expected | None = None,
    on_missing: OnMissing = "annotate",
    width: float = FIGURE_WIDTH,
    height: float = 3.8,
) -> Figure:
    """Nested-loop plot (Rücker & Schwarzer 2014) of one measure over the whole grid.

    The scenarios (every combination of the grid's factors: the optional factors the table
    varies, such as the error model, truth or design, then ``sigma`` and ``n``) are laid
    along the x axis in nested-loop order, the first factor of ``loops`` outermost; each
    series is a step line over them. A lower panel draws one staircase per factor, its
    steps at the factor's levels (labelled), so each scenario's settings can be read off
    below it. Dotted vertical lines separate the blocks of the outermost factor. No MC
    error bars are drawn (see the other figures). OLS is drawn widest and MLE next,
    underneath the others, so that where estimators coincide (MLE and weak-prior MAP of
    the coefficients equal OLS) every line stays visible.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table, every slice (unlike the other figures, it may hold several
        levels of the optional factors: they are loops of the plot).
    measure : str, default "rmse"
        The measure to show.
    parameter : str, default "beta1"
        The parameter to show.
    loops : sequence of str, optional
        The factors, outermost first: a permutation of ``n``, ``sigma`` and each optional
        factor with several levels in the table. Default: those optional factors (in
        column order), then ``sigma``, then ``n``.
    log_y : bool, optional
        Log y axis; default on for positive measures (RMSE, MSE, SEs, width) when every
        value is positive.
    ylim : (float, float), optional
        Range of the y axis; default fitted to the data. Estimates beyond it are drawn as
        triangles at the edge.
    expected : mapping, optional
        The study design, ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``
        and, for the optional factors, ``{"errors": [...], "truth": [...], ...}`` (each key
        optional): its cells are expected even if absent from the whole table, and the
        optional factors' levels are looped over in its order.
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
        If a column, the measure or the parameter is missing, ``loops`` is not a
        permutation of the grid's factors, or ``on_missing="raise"`` and a cell has no
        estimate.
    """
    what = "nested-loop figure"
    check_on_missing(on_missing)
    table = check_metrics(metrics)
    check_measure(table, measure)
    select_parameters(table, [parameter])
    expected = dict(expected or {})
    factor_levels = _optional_levels(table, expected)
    grid_expected = {k: v for k, v in expected.items() if k not in factor_levels}
    grid = grid_levels(table, grid_expected)
    varied = [name for name, found in factor_levels.items() if len(found) > 1]
    default_loops = [*varied, "sigma", "n"]
    loops = default_loops if loops is None else list(loops)
    if sorted(loops) != sorted(default_loops):
        raise InputDataError(
            f"loops must be a permutation of {tuple(default_loops)} (the factors the table "
            f"varies), got {loops}"
        )
    series = grid.series
    levels: dict[str, Sequence[Any]] = {"sigma": grid.sigmas, "n": grid.ns}
    levels |= {name: factor_levels[name] for name in varied}
    constant = {name: found[0] for name, found in factor_levels.items() if len(found) == 1}
    values = _loop_values(table, measure, parameter, grid, factor_levels)
    missing = values.loc[values["reason"] != ""]
    missing = missing.assign(row=missing["parameter"])
    refuse_missing(missing, on_missing, what)
    scenarios = [dict(zip(loops, combo, strict=True)) for combo in _product(loops, levels)]
    x = np.arange(len(scenarios), dtype=float)
    finite = values.loc[values["reason"] == "", "estimate"]
    if log_y is None:
        log_y = measure in SCALE_MEASURES and bool((finite > 0).all()) and len(finite) > 0
    ylim = check_ylim(ylim, bool(log_y))
    off_scale = False
    styles = series_styles(series)
    keys = [*varied, "sigma", "n", "method", "prior"]
    with mpl.rc_context(RC):
        figure = new_figure(width, height)
        ax, loop_ax = figure.subplots(
            2, 1, sharex=True, height_ratios=[3.0, 0.45 * len(loops) + 0.1]
        )
        keyed = values.set_index(keys)
        for method, prior in series:
            y = np.full(len(scenarios), np.nan)
            gaps = []
            for i, scenario in enumerate(scenarios):
                row = keyed.loc[(*(scenario[k] for k in keys[:-2]), method, prior)]
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
        elif measure in ZERO_TARGET_MEASURES:
            ax.axhline(0.0, color=REFERENCE_COLOUR, linewidth=0.7, zorder=0)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_ylabel(f"{MEASURE_LABELS.get(measure, measure)} of {parameter_symbol(parameter)}")
        ax.tick_params(axis="x", bottom=False, labelbottom=False)
        _draw_loops(loop_ax, scenarios, loops, levels)
        block = len(scenarios) // len(levels[loops[0]])
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
            **legend_title(constant),
        )
        report_missing(figure, missing, what, parameter_symbol)
    return figure


def _optional_levels(table: pd.DataFrame, expected: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each optional factor's levels: those of ``expected`` in its order, then any others
    of the table in the factor's order."""
    out = {}
    for item in OPTIONAL_FACTORS:
        listed = [str(v) for v in expected.get(item.name, [])]
        column = table[item.name] if item.name in table.columns else [item.default]
        found = sorted({str(v) for v in column}, key=item.rank)
        out[item.name] = [*listed, *(v for v in found if v not in listed)]
    return out


def _product(loops: Sequence[str], levels: Mapping[str, Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Every combination of the loops' levels, the first loop outermost."""
    combos: list[tuple[Any, ...]] = [()]
    for name in loops:
        combos = [(*combo, level) for combo in combos for level in levels[name]]
    return combos


def _loop_values(
    table: pd.DataFrame,
    measure: str,
    parameter: str,
    grid: Grid,
    factor_levels: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    """The plotted values of every slice, with the optional factors' columns."""
    parts = []
    for combo in _product(list(factor_levels), factor_levels):
        levels = dict(zip(factor_levels, combo, strict=True))
        part = cell_values(select_levels(table, levels), measure, [parameter], grid)
        parts.append(part.assign(**levels))
    return pd.concat(parts, ignore_index=True)


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
    scenarios: Sequence[dict[str, Any]],
    loops: Sequence[str],
    levels: Mapping[str, Sequence[Any]],
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
        ax.text(-0.8, base + 0.27, _LOOP_NAMES.get(factor, factor), ha="right", va="center")
        for i in range(len(scenarios)):
            if i == 0 or index[i] != index[i - 1] or depth == len(loops) - 1:
                if depth == len(loops) - 1 and i >= len(values):
                    continue
                level = scenarios[i][factor]
                if isinstance(level, str):  # a name runs right from its step's start
                    ax.text(x[i] - 0.4, y[i] + 0.08, level, ha="left", va="bottom")
                else:
                    ax.text(x[i], y[i] + 0.08, short_number(level), ha="center", va="bottom")
    ax.set_ylim(-0.15, len(loops) - 0.05)
    ax.set_yticks([])
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
