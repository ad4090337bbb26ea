"""Estimate-level plots of one cell: estimate against model SE, and Bland–Altman panels.

Both take the long table of one cell's replicate fits (:data:`REPLICATE_COLUMNS`), as the
zip plot does, and draw one point per replicate: each series' estimate against its model
SE (siman's ``scatter``, with the true value and the intervals' wedge added), and each
series against a reference method, replicate by replicate (Bland & Altman 1986; rsimsum's
``est_ba``). The points are rasterized, so that the PDF of a cell of 10 000 replicates
stays small; save it with ``vector_raster_dpi=ESTIMATE_PDF_RASTER_DPI``.

The axes span the central 99% of the points widened by a quarter of that width on each
side, or every point when that is narrower: heavy tails (t₃ errors) do not squash the bulk
into a corner, and the few points beyond are drawn as triangles at the panel's edge,
never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from regsim.errors import InputDataError
from regsim.schema import short_number
from regsim.styles import Series, series_styles

from .collector import gc_paused
from .panels import hide_spare_panels, new_figure
from .replicates import CellFits, cell_fits
from .style import FIGURE_WIDTH, RC, REFERENCE_COLOUR, legend_title, parameter_symbol, series_label

#: Resolution of the rasterized points in the PDF of these figures: sharp at print size.
ESTIMATE_PDF_RASTER_DPI = 150

#: The normal quantile of Bland–Altman's 95% limits of agreement.
AGREEMENT_Z = 1.96

#: Marker of a point beyond the axis range, by the edge it is drawn at.
_EDGE_MARKERS = {"below": "v", "above": "^", "left": "<", "right": ">"}

_SE_WHAT = "estimate-SE plot"
_BA_WHAT = "Bland–Altman plot"

Limits = tuple[float, float]


@gc_paused
def estimate_se_figure(
    replicates: pd.DataFrame,
    *,
    parameter: str = "beta1",
    n: int | None = None,
    sigma: float | None = None,
    ncols: int = 3,
    width: float = FIGURE_WIDTH,
) -> Figure:
    """The estimate of each replicate against its model SE, one panel per series.

    One panel per series (method × prior) of one cell: a point per replicate at
    ``(se, estimate)``; a solid black line at the true value θ; and two dashed lines, the
    wedge ``θ ± c·se``, where ``c = (upper − lower) / (2·se)`` is the multiplier of the
    series' own intervals (its median over the replicates: the t quantile on n − p
    degrees of freedom for OLS, the normal quantile for MLE and MAP). An interval
    ``estimate ± c·se`` covers θ exactly when ``|estimate − θ| ≤ c·se``, so the points
    outside the wedge are the replicates whose interval misses θ. The panel title gives
    ``c`` and the share of replicates whose interval misses θ, counted from the limits
    themselves (``lower > θ`` or ``upper < θ``; for intervals of another form, such as
    OLS's χ² interval for σ or Bayes' equal-tailed credible intervals, whose ``c`` is
    their median half-width in posterior sds, the wedge is only a guide). Where the model
    SE tracks the error, the estimates fan out as the SE grows and the share outside the
    wedge stays near α along it. Replicates that did not converge or lack a finite estimate, a
    positive SE or limits are left out and counted in the panel title. The axes are
    shared; points beyond their range are triangles at the edge. A cell at a non-default
    level of an optional factor (e.g. t₃ errors) is named in the legend title.

    Parameters
    ----------
    replicates : pandas.DataFrame
        Long table of replicate fits with the columns of :data:`REPLICATE_COLUMNS` (and
        the optional factor columns of its cell, if any).
    parameter : str, default "beta1"
        The parameter whose estimates are shown.
    n, sigma : optional
        The cell to show; may be omitted when the table holds a single value.
    ncols : int, default 3
        Panels per row.
    width : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per series; the points within the axis range are one rasterized
        ``PathCollection``, the first of the axes' collections.

    Raises
    ------
    regsim.errors.InputDataError
        If a column is missing, the table has no rows, the cell or parameter is not in the
        table, the rows are of several levels of an optional factor, or the true value is
        not one finite number.
    """
    cell = cell_fits(replicates, n=n, sigma=sigma, parameter=parameter, what=_SE_WHAT)
    valid = cell.rows.loc[cell.rows["ok"]]
    styles = series_styles(cell.series)
    xlim = _limits(valid["se"].to_numpy(), floor=0.0)
    ylim = _limits(valid["estimate"].to_numpy(), include=(cell.truth,))
    symbol = parameter_symbol(parameter)
    with mpl.rc_context(RC):
        figure, axes = _panels(len(cell.series), ncols, width, sharey=True)
        beyond = 0
        for ax, series in zip(axes.flat, cell.series, strict=False):
            rows = cell.of(series)
            beyond += _estimate_se_panel(ax, rows, cell.truth, xlim, ylim, styles[series])
        for ax in axes[:, 0]:
            ax.set_ylabel(f"Estimate {symbol}")
        axes[0, 0].set_xlim(*xlim)
        axes[0, 0].set_ylim(*ylim)
        figure.supxlabel(f"Model SE of {symbol} ({_cell_text(cell)})")
        wedge = "wedge θ ± c·SE"
        handles = [
            _point_handle(),
            Line2D([], [], color="black", linewidth=0.8, label="true value θ"),
            Line2D([], [], color=REFERENCE_COLOUR, linewidth=0.8, linestyle="--", label=wedge),
        ]
        _legend(figure, handles, cell, beyond)
    return figure


@gc_paused
def bland_altman_figure(
    replicates: pd.DataFrame,
    *,
    reference: str | tuple[str, str] = "ols",
    parameter: str = "beta1",
    n: int | None = None,
    sigma: float | None = None,
    sharey: bool = True,
    ncols: int = 3,
    width: float = FIGURE_WIDTH,
) -> Figure:
    """Bland–Altman panels of each series against a reference method, replicate by replicate.

    One panel per series (method × prior) of one cell other than the reference. The
    estimates of the series (``a``) and of the reference (``b``) are paired by replicate
    index; each pair is a point at ``x = (a + b) / 2``, ``y = a − b`` (the series minus
    the reference). Over the ``m`` pairs of a panel, the solid line is the mean difference
    ``d̄ = Σ (a − b) / m``, the dashed lines are the 95% limits of agreement (LoA)
    ``d̄ ± 1.96·s_d`` (Bland & Altman 1986), with ``s_d² = Σ (a − b − d̄)² / (m − 1)``
    (none for a single pair), and the dotted grey line is zero, no difference; the panel
    title gives ``d̄`` and the limits. A pair is used only when both fits are usable
    (converged, with a finite estimate, a positive SE and finite limits); the replicates
    of either series without such a pair are counted in the panel title. The x axis is
    shared, and so is the y axis unless ``sharey`` is false; points beyond their range
    are triangles at the edge. A cell at a non-default level of an optional factor is
    named in the legend title.

    Parameters
    ----------
    replicates : pandas.DataFrame
        Long table of replicate fits with the columns of :data:`REPLICATE_COLUMNS` (and
        the optional factor columns of its cell, if any).
    reference : str or (str, str), default "ols"
        The reference method, or a (method, prior) series, e.g. ``("map", "weak")``; a
        method fitted under several priors must be given with its prior.
    parameter : str, default "beta1"
        The parameter whose estimates are compared.
    n, sigma : optional
        The cell to show; may be omitted when the table holds a single value.
    sharey : bool, default True
        One difference axis for every panel, so that the methods' agreement with the
        reference compares at a glance; with False each panel has its own.
    ncols : int, default 3
        Panels per row.
    width : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per series other than the reference; the points within the axis range
        are one rasterized ``PathCollection``, the first of the axes' collections.

    Raises
    ------
    regsim.errors.InputDataError
        As :func:`estimate_se_figure`; and if the reference is not in the table (naming
        the methods that are), is a method of several priors given without one, is the
        only series, or a series has a replicate index twice.
    """
    cell = cell_fits(replicates, n=n, sigma=sigma, parameter=parameter, what=_BA_WHAT)
    base = _reference(cell.series, reference)
    others = [series for series in cell.series if series != base]
    if not others:
        raise InputDataError(f"{_BA_WHAT}: no method besides the reference {base[0]}")
    base_rows = _by_replicate(cell.of(base), base)
    pairs = {s: _pairs(_by_replicate(cell.of(s), s), base_rows) for s in others}
    used = {s: frame.loc[frame["paired"]] for s, frame in pairs.items()}
    agreement = {s: _agreement(frame["difference"].to_numpy()) for s, frame in used.items()}
    xlim = _limits(np.concatenate([frame["mean"].to_numpy() for frame in used.values()]))
    ylims = {
        s: _limits(used[s]["difference"].to_numpy(), include=(0.0, *agreement[s])) for s in others
    }
    if sharey:
        every = np.concatenate([frame["difference"].to_numpy() for frame in used.values()])
        lines = [value for values in agreement.values() for value in values]
        shared = _limits(every, include=(0.0, *lines))
        ylims = dict.fromkeys(others, shared)
    styles = series_styles(cell.series)
    symbol = parameter_symbol(parameter)
    with mpl.rc_context(RC):
        figure, axes = _panels(len(others), ncols, width, sharey=sharey)
        beyond = 0
        for ax, series in zip(axes.flat, others, strict=False):
            title = f"{series_label(*series)} − {series_label(*base)}"
            beyond += _bland_altman_panel(
                ax, pairs[series], agreement[series], xlim, ylims[series], styles[series], title
            )
            ax.set_ylim(*ylims[series])
        for ax in axes[:, 0]:
            ax.set_ylabel(f"Difference in {symbol}")
        axes[0, 0].set_xlim(*xlim)
        figure.supxlabel(f"Mean of the pair's {symbol} ({_cell_text(cell)})")
        handles = [
            _point_handle(),
            Line2D([], [], color="0.2", linewidth=1.0, label="mean difference"),
            Line2D(
                [],
                [],
                color="0.2",
                linewidth=0.8,
                linestyle="--",
                label="limits of agreement (LoA)",
            ),
            Line2D([], [], color=REFERENCE_COLOUR, linewidth=0.8, linestyle=":", label="zero"),
        ]
        _legend(figure, handles, cell, beyond)
    return figure


# --------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------


def _estimate_se_panel(
    ax: Axes,
    rows: pd.DataFrame,
    truth: float,
    xlim: Limits,
    ylim: Limits,
    style: dict[str, Any],
) -> int:
    """One series' estimates against their SEs, the true value and the wedge.

    Returns the number of points drawn at the edge.
    """
    title = series_label(str(rows["method"].iloc[0]), str(rows["prior"].iloc[0]))
    valid = rows.loc[rows["ok"]]
    failed = len(rows) - len(valid)
    ax.axhline(truth, color="black", linewidth=0.8, zorder=3)
    if valid.empty:
        _nothing(ax, title, f"no usable replicates ({failed} failed)")
        return 0
    se, estimate = valid["se"].to_numpy(), valid["estimate"].to_numpy()
    multiplier = float(np.median((valid["upper"] - valid["lower"]).to_numpy() / (2.0 * se)))
    edges = np.asarray(xlim)
    for sign in (-1.0, 1.0):
        wedge = Line2D(
            edges,
            truth + sign * multiplier * edges,
            color=REFERENCE_COLOUR,
            linewidth=0.8,
            linestyle="--",
            zorder=3,
            gid="regsim-wedge",
        )
        ax.add_line(wedge)
    beyond = _scatter(ax, se, estimate, style, xlim, ylim)
    misses = ((valid["lower"] > truth) | (valid["upper"] < truth)).to_numpy()
    lines = [title, f"c = {multiplier:.2f}: {100 * misses.mean():.1f}% miss θ"]
    if failed:
        lines.append(f"{failed} failed")
    ax.set_title("\n".join(lines))
    return beyond


def _bland_altman_panel(
    ax: Axes,
    pairs: pd.DataFrame,
    agreement: tuple[float, ...],
    xlim: Limits,
    ylim: Limits,
    style: dict[str, Any],
    title: str,
) -> int:
    """One series against the reference: the pairs, mean difference and limits.

    Returns the number of points drawn at the edge.
    """
    used = pairs.loc[pairs["paired"]]
    left_out = len(pairs) - len(used)
    note = f", {left_out} unpaired" if left_out else ""
    ax.axhline(0.0, color=REFERENCE_COLOUR, linewidth=0.8, linestyle=":", zorder=3)
    if used.empty:
        _nothing(ax, title, f"no pairs of usable fits ({left_out} unpaired)")
        return 0
    beyond = _scatter(ax, used["mean"].to_numpy(), used["difference"].to_numpy(), style, xlim, ylim)
    mean, *limits = agreement
    ax.axhline(mean, color=style["color"], linewidth=1.0, zorder=4, gid="regsim-mean")
    for edge in limits:
        ax.axhline(
            edge, color=style["color"], linewidth=0.8, linestyle="--", zorder=4, gid="regsim-loa"
        )
    lines = [title, f"mean {_number(mean)}{note}"]
    if limits:
        lines.append(f"LoA {_number(limits[0])} to {_number(limits[1])}")
    ax.set_title("\n".join(lines))
    return beyond


def _scatter(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    style: dict[str, Any],
    xlim: Limits,
    ylim: Limits,
) -> int:
    """One point per replicate in the series' colour and marker, smaller and fainter for many.

    The points within the limits are one collection, drawn first; those beyond are
    hollow triangles at the edge pointing out (beyond in y, else in x), one collection per
    edge, hollow so that they differ from the filled triangles of a series drawn with
    them; returns how many. Rasterized: in a PDF the points are one image, whatever their
    number.
    """
    count = len(x)
    if count <= 300:
        size, alpha = 9.0, 0.8
    elif count <= 3000:
        size, alpha = 4.0, 0.5
    else:
        size, alpha = 1.5, 0.3
    below, above = y < ylim[0], y > ylim[1]
    in_y = ~below & ~above
    edges = {
        "below": below,
        "above": above,
        "left": in_y & (x < xlim[0]),
        "right": in_y & (x > xlim[1]),
    }
    inside = in_y & (x >= xlim[0]) & (x <= xlim[1])
    ax.scatter(
        x[inside],
        y[inside],
        s=size,
        marker=style["marker"],
        alpha=alpha,
        zorder=2,
        color=style["color"],
        linewidths=0.0,
        rasterized=True,
    )
    for edge, mask in edges.items():
        if mask.any():
            ax.scatter(
                np.clip(x[mask], *xlim),
                np.clip(y[mask], *ylim),
                s=14.0,
                marker=_EDGE_MARKERS[edge],
                clip_on=False,
                zorder=5,
                gid="regsim-off-scale",
                facecolors="white",
                edgecolors=style["color"],
                linewidths=0.8,
                rasterized=True,
            )
    return int(count - inside.sum())


def _nothing(ax: Axes, title: str, why: str) -> None:
    """A panel without points, saying why."""
    ax.set_title(f"{title}\n{why}")
    ax.text(0.5, 0.5, why.split(" (")[0], transform=ax.transAxes, ha="center", va="center")


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def _reference(series: Sequence[Series], reference: str | tuple[str, str]) -> Series:
    """The reference series named by a method or a (method, prior) pair."""
    methods = ", ".join(dict.fromkeys(method for method, _ in series))
    if isinstance(reference, str):
        matches = [item for item in series if item[0] == reference]
        wanted = reference
    else:
        method, prior = reference
        matches = [item for item in series if item == (str(method), str(prior or ""))]
        wanted = series_label(str(method), str(prior or ""))
    if not matches:
        raise InputDataError(
            f"{_BA_WHAT}: reference {wanted} is not in the table; methods: {methods}"
        )
    if len(matches) > 1:
        priors = ", ".join(prior for _, prior in matches)
        raise InputDataError(
            f"{_BA_WHAT}: reference {wanted} has several priors ({priors}); "
            f"pass one, e.g. ({wanted!r}, {matches[0][1]!r})"
        )
    return matches[0]


def _by_replicate(rows: pd.DataFrame, series: Series) -> pd.DataFrame:
    """A series' estimate and usability indexed by replicate; a repeated index is refused."""
    repeated = rows["replicate"].duplicated()
    if repeated.any():
        first = rows.loc[repeated, "replicate"].iloc[0]
        raise InputDataError(
            f"{_BA_WHAT}: replicate {first} of {series_label(*series)} appears more than once"
        )
    return rows.set_index("replicate")[["estimate", "ok"]]


def _pairs(rows: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    """Every replicate of either series: the pair's mean and difference, and if both fit.

    Columns ``mean``, ``difference`` (series − reference) and ``paired`` (both usable),
    indexed by replicate in increasing order.
    """
    both = rows.add_suffix("_a").join(base.add_suffix("_b"), how="outer").sort_index()
    a, b = both["estimate_a"].to_numpy(), both["estimate_b"].to_numpy()
    paired = both["ok_a"].eq(True).to_numpy() & both["ok_b"].eq(True).to_numpy()
    return pd.DataFrame(
        {"mean": (a + b) / 2.0, "difference": a - b, "paired": paired}, index=both.index
    )


def _agreement(difference: np.ndarray) -> tuple[float, ...]:
    """Mean difference and the limits of agreement ``mean ± 1.96 sd`` (sd with m − 1).

    Only the mean for a single pair; nothing without pairs.
    """
    if len(difference) == 0:
        return ()
    mean = float(difference.mean())
    if len(difference) < 2:
        return (mean,)
    half = AGREEMENT_Z * float(difference.std(ddof=1))
    return mean, mean - half, mean + half


# --------------------------------------------------------------------------------------
# Layout and labels
# --------------------------------------------------------------------------------------


def _panels(count: int, ncols: int, width: float, sharey: bool) -> tuple[Figure, np.ndarray]:
    """A figure of ``count`` panels sharing x, ``ncols`` to a row, the rest hidden."""
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    figure = new_figure(width, 1.0 + 2.2 * nrows)
    axes = figure.subplots(nrows, ncols, sharex=True, sharey=sharey, squeeze=False)
    hide_spare_panels(axes, count)
    return figure, axes


def _limits(
    values: np.ndarray, floor: float | None = None, include: Sequence[float] = ()
) -> Limits:
    """Axis limits: the central 99% of the values widened by a quarter of its width each side.

    Never wider than every finite value plus a margin of 4% of their range: without long
    tails that is the whole range; with them (e.g. t₃ errors) the bulk stays readable and
    the few points beyond are drawn at the edge (:func:`_scatter`). The limits are then
    widened to show the values of ``include`` (reference lines), and the lower limit is
    raised to ``floor`` (0 for an SE) if below it.
    """
    values = values[np.isfinite(values)]
    marks = [float(v) for v in include if np.isfinite(v)]
    if len(values) == 0 and not marks:
        return (0.0 if floor is None else floor), 1.0
    if len(values):
        lo, hi = float(values.min()), float(values.max())
        core_lo, core_hi = (float(q) for q in np.quantile(values, [0.005, 0.995]))
        reach = 0.25 * (core_hi - core_lo)
        pad = 0.04 * (hi - lo)
        lo, hi = max(lo - pad, core_lo - reach), min(hi + pad, core_hi + reach)
    else:
        lo, hi = marks[0], marks[0]
    if marks:
        span = max(hi, *marks) - min(lo, *marks)
        lo, hi = min(lo, min(marks) - 0.04 * span), max(hi, max(marks) + 0.04 * span)
    if hi <= lo:
        half = max(abs(hi), 1.0) * 0.05
        lo, hi = lo - half, hi + half
    if floor is not None:
        lo = max(lo, floor)
    return lo, hi


def _cell_text(cell: CellFits) -> str:
    return rf"cell $n$ = {cell.n}, $\sigma$ = {short_number(cell.sigma)}"


def _number(value: float) -> str:
    """A mean or limit in a panel title: three significant figures, a true minus sign."""
    return f"{value:.3g}".replace("-", "−")


def _point_handle() -> Line2D:
    return Line2D(
        [], [], linestyle="none", marker="o", markersize=3.0, color="0.4", label="one replicate"
    )


def _legend(figure: Figure, handles: list[Line2D], cell: CellFits, beyond: int) -> None:
    """The figure's legend on top, titled with the cell's non-default levels."""
    if beyond:
        edge = Line2D(
            [],
            [],
            linestyle="none",
            marker="^",
            markerfacecolor="white",
            markeredgecolor="0.4",
            label="beyond the range",
        )
        handles = [*handles, edge]
    figure.legend(
        handles=handles,
        loc="outside upper center",
        ncols=len(handles),
        handlelength=2.4,
        **legend_title(cell.levels),
    )
