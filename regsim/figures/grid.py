"""The grid figure: a panel per row (parameter or measure) and σ, one line per series.

:func:`grid_figure` draws the panels of every family of :mod:`regsim.figures.families`
from the table of plotted values (:func:`regsim.figures.data.cell_values`). What the
panels show is a :class:`GridContent`, how they look a :class:`GridLook`. Beyond four σ
the panels of a row are wrapped onto several lines (:mod:`regsim.figures.layout`) and
drawn with fewer artists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from regsim.schema import short_number
from regsim.styles import series_styles

from .data import Grid, OnMissing, check_on_missing, check_ylim
from .layout import PanelWrap, WrappedLayout, panel_axes
from .panels import (
    dodge,
    errorbar,
    format_n_axis,
    log_axis,
    mark_missing,
    mark_off_scale,
    new_figure,
    refuse_missing,
    report_missing,
    series_errorbars,
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
from .yticks import draw_left_ticks

#: Height of a row of panels, and of the legend and axis labels around them, in inches.
PANEL_HEIGHT = 1.55
HEADER_HEIGHT = 0.9

Decorate = Callable[[Axes, str, float], None]
"""Draws what a panel shows besides the series (reference lines, bands, exact curves),
given the axes, the panel's row and its σ."""


@dataclass(frozen=True)
class GridContent:
    """What the panels of a grid figure show.

    Attributes
    ----------
    rows : tuple of str
        The panel rows: values of ``row_column`` (parameters or measures).
    row_column : str
        The column of the plotted values that tells the rows apart.
    grid : Grid
        Sample sizes (x axis), σ (panel columns) and series (lines), in order.
    levels : mapping
        The slice's optional-factor levels, named in the legend title unless defaults.
    """

    rows: tuple[str, ...]
    row_column: str
    grid: Grid
    levels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GridLook:
    """How the panels of a grid figure look.

    Attributes
    ----------
    ylabel : callable
        Row -> y-axis label of the row's first panel.
    labels : callable
        (method, prior) -> legend label of a series.
    row_label : callable, optional
        Row -> its name in the note listing missing cells.
    decorate : callable, optional
        Draws a panel's reference lines (:data:`Decorate`), before the series.
    extra_handles : tuple
        Legend entries after the series (reference lines, bands, exact curves).
    ylim : (float, float), optional
        Range of every y axis; estimates beyond it are triangles at the edge.
    bounds : (float, float), optional
        The range the measure takes (a proportion's 0 and 1): error bars stop there.
    log_y : bool
        Log y axes.
    width, panel_height : float
        Figure width and the height of a line of panels, in inches.
    """

    ylabel: Callable[[str], str]
    labels: Callable[[str, str], str] = series_label
    row_label: Callable[[str], str] | None = None
    decorate: Decorate | None = None
    extra_handles: tuple[Any, ...] = ()
    ylim: tuple[float, float] | None = None
    bounds: tuple[float, float] | None = None
    log_y: bool = False
    width: float = FIGURE_WIDTH
    panel_height: float = PANEL_HEIGHT


def grid_figure(
    values: pd.DataFrame,
    content: GridContent,
    look: GridLook,
    *,
    what: str,
    on_missing: OnMissing = "annotate",
) -> Figure:
    """Panels of rows (parameters or measures) × columns (σ), one line per series.

    Parameters
    ----------
    values : pandas.DataFrame
        One row per expected cell, with the columns ``content.row_column``, ``sigma``,
        ``n``, ``method``, ``prior``, ``estimate``, ``mcse`` and ``reason`` (``""`` when
        usable).
    content : GridContent
        What the panels show.
    look : GridLook
        How they look.
    what : str
        The figure's name in messages about missing cells.
    on_missing : {"annotate", "raise"}, default "annotate"
        What to do about expected cells without an estimate.

    Returns
    -------
    matplotlib.figure.Figure
        One line per series with ±1.96 MCSE error bars, the ``n`` axis on a log scale.
    """
    ylim = check_ylim(look.ylim, look.log_y)
    check_on_missing(on_missing)
    rows, grid = content.rows, content.grid
    ns, sigmas, series = grid.ns, grid.sigmas, grid.series
    missing = values.loc[values["reason"] != ""]
    missing = missing.assign(row=missing[content.row_column])
    refuse_missing(missing, on_missing, what)
    styles = series_styles(series)
    keys = [content.row_column, "sigma", "method", "prior", "n"]
    cells = values.set_index(keys).reindex(
        pd.MultiIndex.from_tuples(
            [(r, s, m, q, n) for r in rows for s in sigmas for m, q in series for n in ns],
            names=keys,
        )
    )
    shape = (len(rows), len(sigmas), len(series), len(ns))
    ok_all = (cells["reason"] == "").to_numpy().reshape(shape)
    y_all = np.where(ok_all, cells["estimate"].to_numpy(float).reshape(shape), np.nan)
    err_all = 1.96 * cells["mcse"].to_numpy(float).reshape(shape)
    err_all = np.where(ok_all & np.isfinite(err_all), err_all, 0.0)
    xs = np.array([np.asarray(ns, dtype=float) * dodge(k, len(series)) for k in range(len(series))])
    panel_styles = [styles[s] for s in series]
    off_scale = False
    wrap = PanelWrap.of(len(sigmas))
    with mpl.rc_context(RC):
        figure, axes = _new_grid(look, len(rows), len(sigmas), wrap)
        for i, row in enumerate(rows):
            for j, sigma in enumerate(sigmas):
                ax = axes[i, j]
                if look.decorate is not None:
                    look.decorate(ax, row, sigma)
                for k, (method, prior) in enumerate(series):
                    x = xs[k]
                    y, ok = y_all[i, j, k], ok_all[i, j, k]
                    style = styles[(method, prior)]
                    if not wrap.wrapped:
                        errorbar(
                            ax,
                            x,
                            y,
                            err_all[i, j, k],
                            style,
                            look.labels(method, prior),
                            bounds=look.bounds,
                        )
                    mark_missing(ax, x[~ok], style["color"])
                    if ylim is not None:
                        off_scale |= mark_off_scale(ax, x, y, ylim, style)
                if wrap.wrapped:
                    series_errorbars(
                        ax, xs, y_all[i, j], err_all[i, j], panel_styles, bounds=look.bounds
                    )
                # Adding artists directly does not ask for the view limits to be refitted,
                # and a decoration may already have fitted them to itself.
                ax.autoscale(axis="y")
                if look.log_y:
                    # Many small panels: the 1-2-5 labels alone, without the minor ticks.
                    log_axis(ax, minor=not wrap.wrapped)
                if ylim is not None:
                    ax.set_ylim(*ylim)
                title = rf"$\sigma$ = {short_number(sigma)}"
                if wrap.wrapped:
                    # Placed where the automatic position would be, without its search
                    # for overlaps, which measures every panel's axes again at each draw.
                    ax.set_title(title, y=1.0)
                elif i == 0:
                    ax.set_title(title)
                if wrap.cell(i, j)[1] == 0:
                    ax.set_ylabel(look.ylabel(row))
                draw_left_ticks(ax)
        for i, j in wrap.bottom(len(rows), len(sigmas)):
            axes[i, j].set_xlabel(r"$n$ (log scale)")
        handles = [handle(styles[s], look.labels(*s)) for s in series]
        handles += list(look.extra_handles)
        if off_scale:
            handles.append(off_scale_handle())
        figure.legend(
            handles=handles,
            loc="outside upper center",
            ncols=legend_columns(handles),
            **legend_title(content.levels),
        )
        report_missing(figure, missing, what, look.row_label)
        if wrap.wrapped:
            bottom = set(wrap.bottom(len(rows), len(sigmas)))
            for (i, j), ax in np.ndenumerate(axes):
                format_n_axis(ax, ns, labels=(i, j) in bottom, series=len(series))
        else:
            format_n_axis(axes[0, 0], ns, series=len(series))
    return figure


def _new_grid(look: GridLook, rows: int, sigmas: int, wrap: PanelWrap) -> tuple[Figure, np.ndarray]:
    """The figure and its panels' axes, indexed [row, σ]."""
    height = HEADER_HEIGHT + look.panel_height * rows * wrap.lines
    if wrap.wrapped:
        figure = Figure(figsize=(look.width, height), layout=WrappedLayout())
    else:
        figure = new_figure(look.width, height)
    return figure, panel_axes(figure, rows, sigmas, wrap)


def zero_line(ax: Axes, _row: str, _sigma: float) -> None:
    """A horizontal reference line at 0 (a :data:`Decorate`)."""
    ax.axhline(0.0, color=REFERENCE_COLOUR, linewidth=0.7, zorder=0)


def measure_ylabel(measure: str) -> Callable[[str], str]:
    """Parameter -> y label ``"<measure> of <symbol>"`` (on two lines if long)."""
    name = MEASURE_LABELS.get(measure, measure)
    separator = "\n" if len(name) > 12 else " "

    def ylabel(parameter: str) -> str:
        return f"{name}{separator}of {parameter_symbol(parameter)}"

    return ylabel
