"""The zip plot (Morris, White & Crowther 2019) of one cell's confidence intervals."""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from regsim.errors import InputDataError
from regsim.schema import short_number
from regsim.styles import OKABE_ITO

from .collector import gc_paused
from .panels import hide_spare_panels, new_figure
from .replicates import cell_fits
from .style import FIGURE_WIDTH, RC, legend_title, parameter_symbol, series_label

#: Resolution of the zip plot's rasterized intervals in its PDF: sharp at print size, and
#: a third of the memory of 300 dpi for a plot of 10 000 replicates.
ZIP_PDF_RASTER_DPI = 150

_COVER_COLOUR = OKABE_ITO["sky_blue"]
_NONCOVER_COLOUR = OKABE_ITO["orange"]

_WHAT = "zip plot"


@gc_paused
def zip_plot(
    replicates: pd.DataFrame,
    *,
    n: int | None = None,
    sigma: float | None = None,
    parameter: str = "beta1",
    alpha: float = 0.05,
    ncols: int = 3,
    width: float = FIGURE_WIDTH,
) -> Figure:
    """Zip plot (Morris, White & Crowther 2019) of one cell's confidence intervals.

    One panel per series (method × prior). In a panel each replicate's interval is a
    horizontal line at the fractional centile of its ``|z| = |estimate − true| / se``
    (rank / R × 100, the smallest ``|z|`` at the bottom), sky blue if it covers the true
    value (``lower ≤ true ≤ upper``) and orange if not. The solid black line is the
    estimated coverage (in centile units), dashed lines its Monte Carlo 95% interval
    ``p ± 1.96 √(p (1 − p) / R)``, the dotted line the nominal ``1 − α``; the vertical line
    is the true value. Replicates that did not converge or lack an estimate, a positive SE
    or limits are left out and counted in the panel title. The x axis is shared; it spans
    the 0.5th percentile of the lower limits to the 99.5th of the upper limits, so a few
    extreme intervals may run off the panel. A cell at a non-default level of an optional
    factor (e.g. t₃ errors) is named in the legend title.

    Parameters
    ----------
    replicates : pandas.DataFrame
        Long table of replicate fits with the columns of :data:`REPLICATE_COLUMNS` (and
        the optional factor columns of its cell, if any).
    n, sigma : optional
        The cell to show; may be omitted when the table holds a single value.
    parameter : str, default "beta1"
        The parameter whose intervals are shown.
    alpha : float, default 0.05
        Nominal level of the intervals.
    ncols : int, default 3
        Panels per row.
    width : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per series; the intervals of a panel are one ``LineCollection``.

    Raises
    ------
    regsim.errors.InputDataError
        If a column is missing, the cell or parameter is not in the table, the rows are of
        several levels of an optional factor, the true value varies within the selection,
        or the table has no rows.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise InputDataError(f"alpha must be in (0, 1), got {alpha!r}")
    cell = cell_fits(replicates, n=n, sigma=sigma, parameter=parameter, what=_WHAT)
    table, levels, series, truth = cell.rows, cell.levels, cell.series, cell.truth
    n_value, sigma_value = cell.n, cell.sigma
    valid = table.loc[table["ok"]]
    if valid.empty:
        lo, hi = truth - 1.0, truth + 1.0
    else:
        lo = float(np.quantile(valid["lower"], 0.005))
        hi = float(np.quantile(valid["upper"], 0.995))
        lo, hi = min(lo, truth), max(hi, truth)
        pad = 0.04 * (hi - lo) if hi > lo else 1.0
        lo, hi = lo - pad, hi + pad
    ncols = max(1, min(ncols, len(series)))
    nrows = math.ceil(len(series) / ncols)
    nominal = 100.0 * (1.0 - alpha)
    with mpl.rc_context(RC):
        figure = new_figure(width, 0.9 + 2.1 * nrows)
        axes = figure.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
        for index, (method, prior) in enumerate(series):
            ax = axes.flat[index]
            rows = table.loc[(table["method"] == method) & (table["prior"] == prior)]
            _zip_panel(ax, rows, truth, nominal, series_label(method, prior))
        hide_spare_panels(axes, len(series))
        for ax in axes[:, 0]:
            ax.set_ylabel(r"Centile of $|z|$")
        ax0 = axes[0, 0]
        ax0.set_xlim(lo, hi)
        ax0.set_ylim(0, 100)
        ax0.set_yticks([0, 25, 50, 75, 100])
        level = f"{nominal:g}%"
        figure.supxlabel(
            f"{level} intervals for {parameter_symbol(parameter, hat=False)} "
            rf"(cell $n$ = {int(n_value)}, $\sigma$ = {short_number(sigma_value)})"
        )
        handles = [
            Line2D([], [], color=_COVER_COLOUR, linewidth=1.5, label="covers"),
            Line2D([], [], color=_NONCOVER_COLOUR, linewidth=1.5, label="does not cover"),
            Line2D([], [], color="black", linewidth=1.0, label="coverage"),
            Line2D([], [], color="black", linewidth=0.8, linestyle="--", label="MC 95% CI"),
            Line2D([], [], color="0.3", linewidth=0.8, linestyle=":", label=f"nominal {level}"),
        ]
        figure.legend(
            handles=handles,
            loc="outside upper center",
            ncols=len(handles),
            **legend_title(levels),
        )
    return figure


def _zip_panel(ax: Axes, rows: pd.DataFrame, truth: float, nominal: float, title: str) -> None:
    """One zip plot panel: the intervals of one series, titled with its coverage."""
    valid = rows.loc[rows["ok"]]
    failed = len(rows) - len(valid)
    ax.axvline(truth, color="black", linewidth=0.7, zorder=3)
    ax.axhline(nominal, color="0.3", linewidth=0.8, linestyle=":", zorder=3)
    if valid.empty:
        ax.set_title(f"{title}\nno usable replicates ({failed} failed)")
        ax.text(0.5, 0.5, "no usable replicates", transform=ax.transAxes, ha="center")
        return
    count = len(valid)
    z = np.abs(valid["estimate"].to_numpy() - truth) / valid["se"].to_numpy()
    order = np.argsort(z, kind="stable")
    centile = np.empty(count)
    centile[order] = 100.0 * np.arange(1, count + 1) / count
    lower, upper = valid["lower"].to_numpy(), valid["upper"].to_numpy()
    covers = (lower <= truth) & (truth <= upper)
    segments = np.stack([np.column_stack([lower, centile]), np.column_stack([upper, centile])], 1)
    colours = np.where(covers, _COVER_COLOUR, _NONCOVER_COLOUR)
    lines = LineCollection(
        segments, colors=list(colours), linewidths=0.6 if count <= 500 else 0.35, rasterized=True
    )
    ax.add_collection(lines)
    p = float(covers.mean())
    half = 1.96 * math.sqrt(p * (1.0 - p) / count)
    # A proportion's interval stops at 0 and 1 (with few replicates p ± half can pass them).
    low, high = max(p - half, 0.0), min(p + half, 1.0)
    ax.axhline(100.0 * p, color="black", linewidth=1.0, zorder=4)
    for edge in (low, high):
        ax.axhline(100.0 * edge, color="black", linewidth=0.8, linestyle="--", zorder=4)
    # On a line of its own: beside the coverage a long series name's title ran into the
    # next panel's.
    note = f"\n{failed} failed" if failed else ""
    ax.set_title(f"{title}\ncoverage {100 * p:.1f}% ({100 * low:.1f}–{100 * high:.1f}){note}")
