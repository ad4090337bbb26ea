"""Drawing helpers shared by the figures: the log ``n`` axis, error bars, marks and notes.

* Series are drawn slightly apart along the log ``n`` axis (0.016 decades between
  neighbours) so that error bars do not hide each other; ticks mark the true sample sizes.
* A cell without an estimate is a gap in its line, marked by a cross in the series colour
  at the foot of the panel and listed in a note under the figure (:func:`report_missing`).
* An estimate beyond a fixed y range is a triangle at the panel's edge
  (:func:`mark_off_scale`), never hidden.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import XAxis
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.markers import TICKDOWN, TICKUP, MarkerStyle
from matplotlib.path import Path
from matplotlib.ticker import (
    FixedLocator,
    Formatter,
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)
from matplotlib.transforms import IdentityTransform, blended_transform_factory

from regsim.errors import InputDataError
from regsim.schema import short_number

from .data import OnMissing
from .style import series_label

logger = logging.getLogger("regsim.figures")

_DODGE_DECADES = 0.016

#: An error bar's cap: the path of the ``"_"`` marker, a horizontal line one unit wide.
_CAP_PATH = MarkerStyle("_").get_path().transformed(MarkerStyle("_").get_transform())
_MAX_NOTE_LINES = 6
_MAX_NOTE_CELLS = 4


def hide_spare_panels(axes: np.ndarray, count: int) -> None:
    """Hide the panels of a grid (``axes``, rows × columns, x shared) after the first
    ``count``, and give the panel above each hidden one its x tick labels: the grid
    labels only its bottom row, so a column whose last panel is higher up had none."""
    for index in range(count, axes.size):
        axes.flat[index].set_visible(False)
        row, column = divmod(index, axes.shape[1])
        if row > 0 and (row - 1) * axes.shape[1] + column < count:
            axes[row - 1, column].xaxis.set_tick_params(which="both", labelbottom=True)


def new_figure(width: float, height: float) -> Figure:
    """A figure laid out by the constrained layout engine, with tight paddings."""
    figure = Figure(figsize=(width, height), layout="constrained")
    figure.get_layout_engine().set(w_pad=0.03, h_pad=0.03, wspace=0.04, hspace=0.04)
    return figure


# --------------------------------------------------------------------------------------
# The n axis
# --------------------------------------------------------------------------------------


def _n_limits(ns: Sequence[int], series: int = 1) -> tuple[float, float]:
    """Limits of the log ``n`` axis: the grid plus a margin, beyond the outermost of
    ``series`` dodged series (:func:`dodge`; ten series had their outer markers cut in
    half at the panel's edge)."""
    lo, hi = min(ns), max(ns)
    pad = 10 ** (0.045 * max(math.log10(hi / lo), 1.0)) if hi > lo else 1.5
    pad *= dodge(series - 1, series)
    return lo / pad, hi * pad


def format_n_axis(ax: Axes, ns: Sequence[int], labels: bool = True, series: int = 1) -> None:
    """Log-scaled ``n`` axis with a tick at each sample size of the grid, wide enough for
    ``series`` dodged series.

    Axes sharing ``x`` share the scale, locators, formatters and limits, so one call
    formats the whole group. Without ``labels`` the tick marks alone are drawn, as one
    line of markers that look like matplotlib's ticks: a panel of a large grid then has
    one artist where its ticks had five each.
    """
    ax.set_xscale("log")
    if labels:
        ax.xaxis.set_major_locator(FixedLocator([float(n) for n in ns]))
        ax.xaxis.set_major_formatter(SampleSizeFormatter())
    else:
        ax.xaxis.set_major_locator(NullLocator())
        ax.xaxis.set_major_formatter(NullFormatter())
        _tick_marks(ax, ns)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(*_n_limits(ns, series))


def _tick_marks(ax: Axes, ns: Sequence[int]) -> None:
    """Unlabelled major tick marks at ``ns`` below the x axis, as the rcParams draw them.

    Added as an artist, not a plotted line, so that they leave the data limits alone.
    """
    rc = mpl.rcParams
    marks = Line2D(
        [float(n) for n in ns],
        np.zeros(len(ns)),
        linestyle="none",
        marker=TICKDOWN if rc["xtick.direction"] == "out" else TICKUP,
        markersize=rc["xtick.major.size"],
        markeredgewidth=rc["xtick.major.width"],
        color=rc["xtick.color"],
        transform=blended_transform_factory(ax.transData, ax.transAxes),
        clip_on=False,
        zorder=2.5,
        gid="regsim-n-ticks",
    )
    ax.add_artist(marks)


class SampleSizeFormatter(Formatter):
    """Sample-size tick labels, blanking those that would overlap their neighbours.

    Labels are kept from the left while each clears the previous kept one by at least
    2 pt; the largest ``n`` is always labelled (a kept label too close to it is blanked
    instead). Every tick mark stays. The decision is remade at each draw from the axis'
    current width and the font metrics of the label, because the panel width is known
    only once the layout has run: deciding it from a separate draw would lay the figure
    out once more. Axes sharing ``x`` share the formatter, and the width of the axis it
    was set on; the panels of a grid are equally wide.
    """

    _GAP_INCHES = 2.0 / 72.0

    def __init__(self) -> None:
        self._widths: dict[tuple[str, Any], float] = {}

    def __call__(self, x: float, pos: int | None = None) -> str:
        return short_number(x)

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        """The labels of ticks at ``values``, left to right, each blank where it would
        come within a gap of the last label kept; the rightmost is always kept (labels
        before it give way). Only for three or more ticks on an axis of a figure."""
        labels = [self(v) for v in values]
        axis = self.axis
        if axis is None or len(labels) < 3 or axis.axes.get_figure(root=True) is None:
            return labels
        at = _tick_inches(axis, values)
        font = axis.majorTicks[0].label1.get_fontproperties()
        half = [self._width(label, font) / 2.0 for label in labels]
        order = np.argsort(at, kind="stable")
        edges = [(at[i] - half[i], at[i] + half[i]) for i in order]
        keep = [0]
        for i in range(1, len(edges)):
            if edges[i][0] - edges[keep[-1]][1] >= self._GAP_INCHES:
                keep.append(i)
        last = len(edges) - 1
        if keep[-1] != last:
            while len(keep) > 1 and edges[last][0] - edges[keep[-1]][1] < self._GAP_INCHES:
                keep.pop()
            keep.append(last)
        shown = {int(order[i]) for i in keep}
        return [label if i in shown else "" for i, label in enumerate(labels)]

    def _width(self, label: str, font: FontProperties) -> float:
        """Width of ``label`` in inches as Agg draws it at 100 dpi.

        Agg's extents are those of the drawn glyphs, the boxes a reader sees clear each
        other or not; the outline advance widths are wider by a digit's side bearing and
        would blank labels that visibly fit.
        """
        key = (label, hash(font))
        if key not in self._widths:
            renderer = _measuring_renderer()
            width, _, _ = renderer.get_text_width_height_descent(label, font, ismath=False)
            self._widths[key] = width / renderer.dpi
        return self._widths[key]


@functools.cache
def _measuring_renderer() -> RendererAgg:
    """A one-pixel Agg renderer at 100 dpi, for measuring text without drawing a figure."""
    return RendererAgg(1, 1, 100.0)


def _tick_inches(axis: XAxis, values: Sequence[float]) -> np.ndarray:
    """Distance in inches of each of ``values`` from the left edge of the axes."""
    transform = axis.get_transform()
    ends = transform.transform(np.asarray(axis.get_view_interval(), dtype=float))
    at = transform.transform(np.asarray(values, dtype=float))
    width = axis.axes.get_position().width * axis.axes.get_figure(root=True).get_figwidth()
    return (at - ends[0]) / (ends[1] - ends[0]) * width


def dodge(index: int, count: int) -> float:
    """Multiplicative offset on the log ``n`` axis of series ``index`` of ``count``."""
    return 10 ** (_DODGE_DECADES * (index - (count - 1) / 2))


# --------------------------------------------------------------------------------------
# Series and marks
# --------------------------------------------------------------------------------------


def errorbar(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    err: np.ndarray,
    style: dict[str, Any],
    label: str,
    *,
    bounds: tuple[float, float] | None = None,
) -> ErrorbarContainer:
    """Draw what ``ax.errorbar(x, y, yerr=err, elinewidth=0.7, **style)`` draws; with
    ``bounds``, the bars stop at the range the measure takes (a proportion's 0 and 1).

    The same line, bars and caps in the same drawing order (bars and caps at z-order 2,
    the line at 2.1 above them), but as three artists instead of four and without
    ``errorbar``'s general argument handling, which took a large share of a figure's
    build time. The caps (markers ``2 × errorbar.capsize`` points wide) reach the ends of
    the bars, so they alone set the data limits.
    """
    colour = style["color"]
    low, high = _bar_ends(y, err, bounds)
    line = Line2D(x, y, zorder=2.1, label="_nolegend_", **style)
    bars = LineCollection(
        np.stack([np.column_stack([x, low]), np.column_stack([x, high])], axis=1),
        colors=colour,
        linewidths=0.7,
        zorder=2,
        label="_nolegend_",
    )
    caps = Line2D(
        np.concatenate([x, x]),
        np.concatenate([low, high]),
        linestyle="none",
        marker="_",
        markersize=2.0 * mpl.rcParams["errorbar.capsize"],
        markeredgewidth=style["markeredgewidth"],
        color=colour,
        markeredgecolor=colour,
        zorder=2,
        label="_nolegend_",
    )
    ax.add_line(line)
    ax.add_collection(bars, autolim=False)
    ax.add_line(caps)
    container = ErrorbarContainer((line, (caps,), (bars,)), has_yerr=True, label=label)
    ax.add_container(container)
    return container


def _bar_ends(
    y: np.ndarray, err: np.ndarray, bounds: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """y ∓ err, within ``bounds`` if given (a coverage of 0.99 ± 0.02 is not 1.01)."""
    low, high = y - err, y + err
    if bounds is not None:
        low, high = np.clip(low, *bounds), np.clip(high, *bounds)
    return low, high


def _strokes(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> Path:
    """One path of separate vertical strokes, from (x_i, low_i) to (x_i, high_i)."""
    vertices = np.empty((2 * len(x), 2))
    vertices[0::2, 0] = vertices[1::2, 0] = x
    vertices[0::2, 1], vertices[1::2, 1] = low, high
    codes = np.tile(np.array([Path.MOVETO, Path.LINETO], dtype=Path.code_type), len(x))
    return Path(vertices, codes)


def series_errorbars(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    err: np.ndarray,
    styles: Sequence[dict[str, Any]],
    *,
    bounds: tuple[float, float] | None = None,
) -> None:
    """Draw what :func:`errorbar` draws for every series of a panel, in fewer artists.

    ``x``, ``y`` and ``err`` have a row per series. Each series' line is its own artist,
    but the bars of all series are one collection and their caps another: a panel of a
    large grid has two artists for its error bars where it had two per series. As with
    :func:`errorbar`, bars and caps lie under every line and the caps set the data limits.
    """
    for k, style in enumerate(styles):
        ax.add_line(Line2D(x[k], y[k], zorder=2.1, label="_nolegend_", **style))
    low, high = _bar_ends(y, err, bounds)
    usable = np.isfinite(low) & np.isfinite(high)
    # A series' bars are one path of separate strokes: a PDF draws a path per series
    # rather than one, with its own colour, per bar.
    strokes = [
        _strokes(x[k][keep], low[k][keep], high[k][keep])
        for k, keep in enumerate(usable)
        if keep.any()
    ]
    bars = PathCollection(
        strokes,
        facecolors="none",
        edgecolors=[
            style["color"] for style, keep in zip(styles, usable, strict=True) if keep.any()
        ],
        linewidths=0.7,
        zorder=2,
        label="_nolegend_",
    )
    colours = np.repeat([style["color"] for style in styles], x.shape[1])[usable.ravel()]
    x, low, high = x[usable], low[usable], high[usable]
    caps = PathCollection(
        (_CAP_PATH,),
        sizes=[(2.0 * mpl.rcParams["errorbar.capsize"]) ** 2],
        offsets=np.concatenate([np.column_stack([x, low]), np.column_stack([x, high])]),
        offset_transform=ax.transData,
        facecolors="none",
        edgecolors=list(np.concatenate([colours, colours])),
        linewidths=styles[0]["markeredgewidth"] if styles else 0.8,
        zorder=2,
        label="_nolegend_",
    )
    caps.set_transform(IdentityTransform())
    ax.add_collection(bars, autolim=False)
    ax.add_collection(caps)


def mark_missing(ax: Axes, x: Sequence[float], colour: str) -> None:
    """Crosses at the foot of a panel where a series has no estimate."""
    if len(x) == 0:
        return
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    ax.plot(
        x,
        np.full(len(x), 0.04),
        linestyle="none",
        marker="x",
        markersize=5,
        markeredgewidth=1.2,
        color=colour,
        transform=transform,
        clip_on=False,
        zorder=5,
        gid="regsim-missing",
    )


def mark_off_scale(
    ax: Axes, x: np.ndarray, y: np.ndarray, ylim: tuple[float, float], style: dict[str, Any]
) -> bool:
    """Triangles at the panel edge for estimates beyond ``ylim``; whether there were any."""
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    found = False
    for mask, edge, marker in ((y < ylim[0], 0.0, "v"), (y > ylim[1], 1.0, "^")):
        if mask.any():
            found = True
            ax.plot(
                x[mask],
                np.full(int(mask.sum()), edge),
                linestyle="none",
                marker=marker,
                markersize=5,
                color=style["color"],
                transform=transform,
                clip_on=False,
                zorder=6,
                gid="regsim-off-scale",
            )
    return found


class _DenseWhenNarrowLocator(LogLocator):
    """Ticks at 1, 2 and 5 times powers of ten; where fewer than two of those fall in
    view, at every integer multiple; where still fewer, at linear steps (a panel spanning
    0.8 to 1.6 had one label, 1)."""

    def __init__(self) -> None:
        super().__init__(base=10.0, subs=(1.0, 2.0, 5.0))

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        low, high = min(vmin, vmax), max(vmin, vmax)

        def enough(ticks: np.ndarray) -> bool:
            return np.count_nonzero((ticks >= low) & (ticks <= high)) >= 2

        ticks = super().tick_values(vmin, vmax)
        if enough(ticks) or not (low > 0 and np.isfinite(high)):
            return ticks
        every = LogLocator(base=10.0, subs=tuple(range(1, 10))).tick_values(vmin, vmax)
        if enough(every):
            return every
        return MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)


def log_axis(ax: Axes, minor: bool = True) -> None:
    """Log y axis with plain-number labels at 1, 2 and 5 times powers of ten (at every
    integer multiple where the view holds fewer than two of those).

    With ``minor``, unlabelled minor ticks mark every integer multiple in between.
    """
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(_DenseWhenNarrowLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    if minor:
        ax.yaxis.set_minor_locator(LogLocator(base=10.0, subs=tuple(range(1, 10))))
    else:
        ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_formatter(NullFormatter())


# --------------------------------------------------------------------------------------
# Missing cells
# --------------------------------------------------------------------------------------


def _describe_missing(
    missing: pd.DataFrame, row_label: Callable[[str], str] | None, max_cells: int | None = None
) -> list[str]:
    """Text lines listing the missing cells: one per series, reason and set of cells.

    Rows (parameters or measures) missing the same cells share a line; with ``max_cells``
    a line lists at most that many cells and counts the rest.
    """
    keys = ["method", "prior", "row", "reason"]
    merged: dict[tuple[str, str, str, str], list[str]] = {}
    for (method, prior, row, reason), group in missing.groupby(keys, sort=False):
        cells = [
            f"σ = {short_number(s)}, n = {int(n)}"
            for s, n in zip(group["sigma"], group["n"], strict=True)
        ]
        if max_cells is not None and len(cells) > max_cells:
            rest = len(cells) - (max_cells - 1)
            cells = [*cells[: max_cells - 1], f"{rest} more"]
        merged.setdefault((method, prior, reason, "; ".join(cells)), []).append(row)
    lines = []
    for (method, prior, reason, cells), rows in merged.items():
        where = f", {', '.join(row_label(r) for r in rows)}" if row_label else ""
        lines.append(f"{series_label(method, prior)}{where}: {reason} ({cells})")
    return lines


def refuse_missing(missing: pd.DataFrame, on_missing: OnMissing, what: str) -> None:
    """With ``on_missing="raise"``, raise for cells without an estimate, before drawing.

    ``missing`` holds the cells without a usable estimate (columns ``method``, ``prior``,
    ``row``, ``sigma``, ``n``, ``reason``).
    """
    if on_missing == "raise" and not missing.empty:
        plain = _describe_missing(missing, str)
        raise InputDataError(
            f"{what}: {len(missing)} expected cell(s) have no estimate, e.g. {plain[0]}"
        )


def report_missing(
    figure: Figure,
    missing: pd.DataFrame,
    what: str,
    row_label: Callable[[str], str] | None = None,
) -> None:
    """Log the cells without an estimate and list them in a note under the figure."""
    if missing.empty:
        return
    for line in _describe_missing(missing, str):
        logger.warning("%s: gap in figure: %s", what, line)
    lines = _describe_missing(missing, row_label, _MAX_NOTE_CELLS)
    if len(lines) > _MAX_NOTE_LINES:
        extra = len(lines) - (_MAX_NOTE_LINES - 1)
        lines = [*lines[: _MAX_NOTE_LINES - 1], f"… and {extra} more (see the log)"]
    handle = Line2D([], [], linestyle="none", marker="x", color="0.2", markeredgewidth=1.2)
    note = figure.legend(
        [handle],
        ["\n".join(lines)],
        loc="outside lower left",
        title="Gaps (no estimate):",
        title_fontsize=8,
        alignment="left",
        handlelength=1.0,
    )
    note.set_gid("regsim-missing-note")
