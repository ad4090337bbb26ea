"""Figures of the simulation study, each a pure function from a table to a matplotlib figure.

Every ``*_figure`` function takes the long metrics table (the columns of
``results/tables/metrics.csv``: ``n, sigma, prior, method, parameter, measure, estimate,
mcse``) and returns a :class:`matplotlib.figure.Figure`; :func:`zip_plot` takes the long
table of one cell's replicate fits instead. Nothing is read or written except by
:func:`save_figure`, which writes a PDF and a 300 dpi PNG.

Conventions shared by all figures
---------------------------------
* Figures are built with the object-oriented API (``matplotlib.figure.Figure``), never with
  ``pyplot``: no global figure registry, no GUI backend and no ``matplotlib.use`` call, so
  importing this module does not change a user's interactive session. PNG files are
  rendered by Agg and PDF files by matplotlib's PDF backend, both without a display.
* One colour per method, the same in every figure, from the colour-blind-safe Okabe–Ito
  palette (:data:`METHOD_COLOURS`). The MAP fits under different priors share the MAP
  colour and differ in line style and marker (:data:`PRIOR_STYLES`); OLS and MLE also differ
  in marker, so that where their estimates coincide (the coefficients) both stay visible.
* Series are drawn slightly apart along the log ``n`` axis (0.016 decades between
  neighbours, ±0.04 decades for six series) so that error bars do not hide each other;
  ticks mark the true sample sizes.
* Error bars are ±1.96 Monte Carlo standard errors (MCSE).
* A table of one non-normal error model (its ``errors`` column, e.g. ``t3``) is named in
  the title of the figure's legend (:data:`ERROR_TITLES`); normal errors get no title.
  Given the number of coefficients ``p``, the coverage and σ figures of normal errors
  draw the exact finite-sample values of :mod:`regsim.theory` as thin dashed curves.
* Fonts are at least 8 pt at the printed size (figures are 7 in wide, a two-column spread;
  each panel is about as wide as a third of that).

Missing cells
-------------
A figure never drops a cell silently. The expected cells of a figure are all combinations
of the sample sizes ``n``, error SDs ``sigma`` and (method, prior) series present anywhere in
the table or in the study design passed as ``expected`` (e.g. from the configuration, so
that a level absent from the whole table is caught too). A cell whose row is missing, or
whose estimate is NaN (e.g. all replicates of the cell failed, so ``n_reps`` is 0), is
drawn as a gap in its line, marked by a cross in the series colour at the foot of the
panel, listed in a note under the figure (with the reason: "not in the table", "all
replicates failed", "no estimate") and logged as a warning on the ``regsim.figures``
logger. With ``on_missing="raise"`` an
:class:`~regsim.errors.InputDataError` is raised instead. :func:`missing_cells` lists them.
"""

from __future__ import annotations

import functools
import gc
import inspect
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.axis import XAxis
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import LineCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import (
    FixedLocator,
    Formatter,
    FuncFormatter,
    LogLocator,
    NullFormatter,
    NullLocator,
)
from matplotlib.transforms import blended_transform_factory

from regsim.atomic import write_atomic
from regsim.config import PRIOR_METHODS
from regsim.design import DEFAULT_ERRORS, FIT_COLUMNS
from regsim.errors import InputDataError
from regsim.pipeline import METRICS_COLUMNS
from regsim.tables import select_errors
from regsim.theory import expected_s, expected_sigma_mle, mle_wald_coverage

__all__ = [
    "ERROR_TITLES",
    "EXACT_GID",
    "FIGURES",
    "FIGURE_WIDTH",
    "MEASURE_LABELS",
    "METHOD_COLOURS",
    "METRICS_COLUMNS",
    "OKABE_ITO",
    "PRIOR_STYLES",
    "REPLICATE_COLUMNS",
    "bias_figure",
    "coverage_figure",
    "efficiency_figure",
    "figure_tasks",
    "missing_cells",
    "modelse_figure",
    "nested_loop_figure",
    "parameter_symbol",
    "save_figure",
    "series_label",
    "sigma_figure",
    "study_keywords",
    "zip_plot",
]

logger = logging.getLogger("regsim.figures")

OnMissing = Literal["annotate", "raise"]


#: Columns the per-replicate table of :func:`zip_plot` must have.
REPLICATE_COLUMNS: tuple[str, ...] = tuple(c for c in FIT_COLUMNS if c != "multimodal")

#: The Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008).
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}

#: Colour of each method, the same in every figure.
METHOD_COLOURS: dict[str, str] = {
    "ols": OKABE_ITO["blue"],
    "ols_hc3": OKABE_ITO["reddish_purple"],
    "mle": OKABE_ITO["vermillion"],
    "map": OKABE_ITO["bluish_green"],
}

#: Marker and whether it is filled, per method without a prior.
METHOD_MARKERS: dict[str, tuple[str, bool]] = {
    "ols": ("o", True),
    "ols_hc3": ("d", False),
    "mle": ("s", False),
}

#: Line style and marker of the MAP series under each of the study's priors. Priors not
#: listed get the styles of :data:`_EXTRA_PRIOR_STYLES` in alphabetical order of their names.
PRIOR_STYLES: dict[str, tuple[Any, str]] = {
    "weak": ((0, (3, 1.5)), "^"),
    "informative": ((0, (1, 1.2)), "v"),
    "shifted": ((0, (5, 1.5, 1.2, 1.5)), "D"),
    "skeptical": ((0, (10, 3)), "P"),
}
_EXTRA_PRIOR_STYLES: tuple[tuple[Any, str], ...] = (
    ((0, (5, 1.5, 1.2, 1.5, 1.2, 1.5)), "X"),
    ((0, (1, 3)), "<"),
    ((0, (6, 1.5, 6, 4)), ">"),
    ((0, (2, 3)), "h"),
)
_EXTRA_COLOURS: tuple[str, ...] = (
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["black"],
)
_METHOD_ORDER: tuple[str, ...] = ("ols", "ols_hc3", "mle", "map")
_METHOD_NAMES: dict[str, str] = {"ols": "OLS", "ols_hc3": "OLS (HC3)", "mle": "MLE", "map": "MAP"}
#: Line widths in :func:`nested_loop_figure` (no markers there): OLS widest and MLE next,
#: drawn first, so that series that coincide with them (MLE and weak-prior MAP of the
#: coefficients equal OLS) leave a visible edge of the wider line.
_STEP_WIDTHS: dict[str, float] = {"ols": 2.2, "mle": 1.4}
_COVER_COLOUR = OKABE_ITO["sky_blue"]
_NONCOVER_COLOUR = OKABE_ITO["orange"]
_REFERENCE_COLOUR = "0.35"

#: Readable names of the measures, for axis labels.
MEASURE_LABELS: dict[str, str] = {
    "bias": "Bias",
    "relbias": "Relative bias",
    "empse": "Empirical SE",
    "modelse": "Model SE",
    "relerror": "Rel. error of model SE (%)",
    "mse": "MSE",
    "rmse": "RMSE",
    "coverage": "Coverage",
    "becoverage": "Bias-elim. coverage",
    "width": "Interval width",
    "power": "Power",
    "relprec": "Rel. precision (%)",
}

#: Name of each non-normal error model (see :mod:`regsim.simulate`) in its figures' legends.
ERROR_TITLES: dict[str, str] = {
    "t3": r"Errors: Student $t_3$ scaled to sd $\sigma$",
    "hetero": "Errors: heteroskedastic (sd grows with the first covariate)",
}

#: Measures that are positive, so a log scale is the default in :func:`nested_loop_figure`.
_POSITIVE_MEASURES = frozenset({"empse", "modelse", "mse", "rmse", "width"})

#: ``gid`` of the exact finite-sample curves drawn by :func:`coverage_figure` and
#: :func:`sigma_figure` (normal errors).
EXACT_GID = "regsim-exact"

FIGURE_WIDTH = 7.0
"""Width of every figure in inches (a two-column spread; a panel is about 2.2 in)."""

_PANEL_HEIGHT = 1.55
_HEADER_HEIGHT = 0.9
_DODGE_DECADES = 0.016
_MAX_NOTE_LINES = 6
_MAX_NOTE_CELLS = 4

_RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 8.0,
    "axes.titlesize": 8.0,
    "axes.labelsize": 8.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "figure.titlesize": 9.0,
    "figure.labelsize": 8.0,
    "mathtext.fontset": "dejavusans",
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlepad": 3.0,
    "axes.labelpad": 2.0,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.major.pad": 2.0,
    "ytick.major.pad": 2.0,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.5,
    "errorbar.capsize": 1.5,
    "legend.frameon": False,
    "legend.handlelength": 3.2,
    "legend.columnspacing": 1.4,
    "legend.borderaxespad": 0.2,
    "pdf.fonttype": 42,
    # The PDF backend splits each font into subsets of the size ps.fonttype allows; with
    # Type 3's 256 glyphs the Greek letters, the hat and the minus sign start a second
    # subset of their font, and every subset is a separate (slow) font-subsetting pass.
    "ps.fonttype": 42,
    "savefig.dpi": 300,
}

#: Without these, ``Figure.set_layout_engine(None)`` would pick an engine from the user's
#: rcParams instead of switching layout off.
_NO_DEFAULT_LAYOUT: dict[str, Any] = {
    "figure.autolayout": False,
    "figure.constrained_layout.use": False,
}


def _gc_paused(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``function`` with the objects that exist before it hidden from the collector.

    Drawing a figure allocates tens of thousands of objects, which set off collections of
    the older generations; each would rescan every object of the process (pandas,
    matplotlib, the tables), which took a sixth of the time of a figure. Frozen
    (``gc.freeze``), those are skipped, while the cycles the drawing itself leaves are
    still collected: pausing the collector outright let a zip plot of 10 000 replicates
    grow by some 90 MB.
    """

    @functools.wraps(function)
    def paused(*args: Any, **kwargs: Any) -> Any:
        gc.freeze()
        try:
            return function(*args, **kwargs)
        finally:
            gc.unfreeze()

    return paused


# --------------------------------------------------------------------------------------
# Labels and styles
# --------------------------------------------------------------------------------------


def series_label(method: str, prior: str = "") -> str:
    """Legend label of a (method, prior) series, e.g. ``"OLS"`` or ``"MAP (weak)"``."""
    name = _METHOD_NAMES.get(method, method.upper())
    return f"{name} ({prior})" if prior else name


def parameter_symbol(parameter: str, hat: bool = True) -> str:
    """Mathtext symbol of a parameter, e.g. ``beta1`` -> ``$\\hat\\beta_{1}$``.

    Parameters
    ----------
    parameter : str
        ``beta0`` ... ``betak`` or ``sigma``; anything else is returned unchanged.
    hat : bool, default True
        Whether to put a hat on the symbol (an estimator rather than the parameter).
    """
    accent = r"\hat" if hat else ""
    if parameter.startswith("beta") and parameter[4:].isdigit():
        return rf"${accent}\beta_{{{int(parameter[4:])}}}$"
    if parameter == "sigma":
        return rf"${accent}\sigma$"
    return parameter


def _number(value: float) -> str:
    """Short text of a grid value: ``5`` for 5.0, ``0.5`` for 0.5."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def _parameter_key(parameter: str) -> tuple[int, int, str]:
    if parameter.startswith("beta") and parameter[4:].isdigit():
        return (0, int(parameter[4:]), parameter)
    return (1 if parameter == "sigma" else 2, 0, parameter)


def _prior_key(prior: str) -> tuple[int, str]:
    known = list(PRIOR_STYLES)
    return (known.index(prior), prior) if prior in known else (len(known), prior)


def _method_key(method: str) -> tuple[int, str]:
    order = list(_METHOD_ORDER)
    return (order.index(method), method) if method in order else (len(order), method)


Series = tuple[str, str]
"""A (method, prior) pair; the prior is ``""`` for methods without one."""


def _ordered_series(pairs: Sequence[Series]) -> list[Series]:
    """Series in the study's order: OLS, MLE, MAP by prior (weak to skeptical, then A-Z)."""
    unique = sorted(set(pairs), key=lambda s: (_method_key(s[0]), _prior_key(s[1])))
    return list(unique)


def _styles(series: Sequence[Series]) -> dict[Series, dict[str, Any]]:
    """Plot keyword arguments (colour, line style, marker) of each series.

    Known methods and priors have fixed styles; unknown ones take the spare styles in
    alphabetical order, so one table always gives the same styles.
    """
    unknown_methods = sorted({m for m, _ in series if m not in METHOD_COLOURS})
    unknown_priors = sorted({p for _, p in series if p and p not in PRIOR_STYLES})
    styles: dict[Series, dict[str, Any]] = {}
    for method, prior in series:
        if method in METHOD_COLOURS:
            colour = METHOD_COLOURS[method]
        else:
            colour = _EXTRA_COLOURS[unknown_methods.index(method) % len(_EXTRA_COLOURS)]
        if prior:
            if prior in PRIOR_STYLES:
                linestyle, marker = PRIOR_STYLES[prior]
            else:
                index = unknown_priors.index(prior) % len(_EXTRA_PRIOR_STYLES)
                linestyle, marker = _EXTRA_PRIOR_STYLES[index]
            filled = False
        else:
            marker, filled = METHOD_MARKERS.get(method, ("o", False))
            linestyle = "-"
        styles[(method, prior)] = {
            "color": colour,
            "linestyle": linestyle,
            "marker": marker,
            "markerfacecolor": colour if filled else "white",
            "markeredgecolor": colour,
            "markeredgewidth": 0.8,
        }
    return styles


def _handle(style: dict[str, Any], label: str) -> Line2D:
    """A legend proxy for a series."""
    return Line2D([], [], label=label, **style)


# --------------------------------------------------------------------------------------
# Reading the metrics table
# --------------------------------------------------------------------------------------


def _check_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise InputDataError(f"{what}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputDataError(f"{what}: missing column(s) {', '.join(missing)}")
    if len(table) == 0:
        raise InputDataError(f"{what}: the table has no rows")


def _normalise(table: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
    """A copy with ``prior`` as text ("" for none), ``n`` as int and ``sigma`` as float."""
    _check_columns(table, columns, what)
    out = table.loc[:, list(columns)].copy()
    out["prior"] = out["prior"].astype(object).where(out["prior"].notna(), "").astype(str)
    out["method"] = out["method"].astype(str)
    out["parameter"] = out["parameter"].astype(str)
    try:
        out["n"] = pd.to_numeric(out["n"], errors="raise").astype("int64")
        out["sigma"] = pd.to_numeric(out["sigma"], errors="raise").astype(float)
    except (TypeError, ValueError):
        raise InputDataError(f"{what}: columns n and sigma must be numeric and complete") from None
    for column in ("estimate", "mcse", "se", "lower", "upper", "true"):
        if column in out.columns:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out


def _error_model(table: pd.DataFrame, what: str) -> str:
    """The error model of a table: its one ``errors`` value, or normal without the column.

    A figure shows one error model: a table mixing several is refused (never one dropped).
    """
    if not isinstance(table, pd.DataFrame) or "errors" not in table.columns:
        return DEFAULT_ERRORS
    models = sorted({str(e) for e in table["errors"].dropna().unique()})
    if len(models) > 1:
        raise InputDataError(
            f"{what}: rows of several error models ({', '.join(models)}); draw one "
            "figure per error model (regsim.tables.select_errors)"
        )
    return models[0] if models else DEFAULT_ERRORS


def _error_title(errors: str) -> str | None:
    """The legend title naming a non-normal error model; None for normal errors."""
    if errors == DEFAULT_ERRORS:
        return None
    return ERROR_TITLES.get(errors, f"Errors: {errors}")


def _prepare_metrics(metrics: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The normalised metrics table and its error model."""
    errors = _error_model(metrics, "metrics table")
    table = _normalise(metrics, METRICS_COLUMNS, "metrics table")
    table["measure"] = table["measure"].astype(str)
    return table, errors


Expected = Mapping[str, Sequence[Any]]
"""The study design a figure must cover: keys ``n``, ``sigma``, ``methods``, ``priors``."""


def _grid_levels(
    table: pd.DataFrame, expected: Expected | None = None
) -> tuple[list[int], list[float], list[Series]]:
    """Sample sizes, error SDs and series to show, in study order.

    Those present anywhere in the table, plus those of ``expected`` (the design, e.g. from
    the configuration: ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``,
    any key optional), so that a level missing from the whole table is reported too.
    """
    expected = expected or {}
    unknown = sorted(set(expected) - {"n", "sigma", "methods", "priors"})
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
    return ns, sigmas, _ordered_series(pairs)


def _values(
    table: pd.DataFrame,
    measure: str,
    parameters: Sequence[str],
    ns: Sequence[int],
    sigmas: Sequence[float],
    series: Sequence[Series],
) -> pd.DataFrame:
    """Every expected cell of ``measure`` with its estimate, MCSE and, if missing, why.

    Returns one row per parameter × sigma × n × series (columns ``parameter, sigma, n,
    method, prior, estimate, mcse, reason``); ``reason`` is ``""`` for a usable estimate.
    """
    keys = ["parameter", "sigma", "n", "method", "prior"]
    grid = pd.MultiIndex.from_tuples(
        [(p, s, n, m, q) for p in parameters for s in sigmas for n in ns for m, q in series],
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
    out = grid.merge(rows, on=keys, how="left", indicator=True)
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
        The long metrics table.
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
    """
    table, _ = _prepare_metrics(metrics)
    parameters = [parameter] if isinstance(parameter, str) else list(parameter)
    ns, sigmas, series = _grid_levels(table, expected)
    values = _values(table, measure, parameters, ns, sigmas, series)
    missing = values.loc[values["reason"] != "", ["parameter", "sigma", "n", "method", "prior"]]
    return missing.assign(reason=values.loc[missing.index, "reason"]).reset_index(drop=True)


def _parameters(table: pd.DataFrame, parameters: Sequence[str] | None) -> list[str]:
    present = sorted(table["parameter"].unique(), key=_parameter_key)
    if parameters is None:
        return present
    parameters = [parameters] if isinstance(parameters, str) else list(parameters)
    unknown = [p for p in parameters if p not in present]
    if unknown:
        raise InputDataError(
            f"metrics table: no parameter {unknown[0]!r}; parameters: {', '.join(present)}"
        )
    return parameters


def _check_measure(table: pd.DataFrame, measure: str) -> None:
    if not (table["measure"] == measure).any():
        present = ", ".join(sorted(table["measure"].unique()))
        raise InputDataError(f"metrics table: no measure {measure!r}; measures: {present}")


# --------------------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    figure.get_layout_engine().set(w_pad=0.03, h_pad=0.03, wspace=0.04, hspace=0.04)
    return figure


def _n_limits(ns: Sequence[int]) -> tuple[float, float]:
    """Limits of the log ``n`` axis: the grid plus a margin."""
    lo, hi = min(ns), max(ns)
    pad = 10 ** (0.045 * max(math.log10(hi / lo), 1.0)) if hi > lo else 1.5
    return lo / pad, hi * pad


def _format_n_axis(ax: Axes, ns: Sequence[int]) -> None:
    """Log-scaled ``n`` axis with a tick at each sample size of the grid.

    Axes sharing ``x`` share the scale, locators, formatters and limits, so one call
    formats the whole group.
    """
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator([float(n) for n in ns]))
    ax.xaxis.set_major_formatter(_SampleSizeFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(*_n_limits(ns))


class _SampleSizeFormatter(Formatter):
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
        return _number(x)

    def format_ticks(self, values: Sequence[float]) -> list[str]:
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


def _dodge(index: int, count: int) -> float:
    """Multiplicative offset on the log ``n`` axis of series ``index`` of ``count``."""
    return 10 ** (_DODGE_DECADES * (index - (count - 1) / 2))


def _mark_missing(ax: Axes, x: Sequence[float], colour: str) -> None:
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
            f"σ = {_number(s)}, n = {int(n)}"
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


def _report_missing(
    figure: Figure,
    missing: pd.DataFrame,
    on_missing: OnMissing,
    what: str,
    row_label: Callable[[str], str] | None = None,
) -> None:
    """Raise, or log and add a note under the figure, for cells without an estimate."""
    if missing.empty:
        return
    plain = _describe_missing(missing, str)
    if on_missing == "raise":
        raise InputDataError(
            f"{what}: {len(missing)} expected cell(s) have no estimate, e.g. {plain[0]}"
        )
    for line in plain:
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


def _check_on_missing(on_missing: str) -> None:
    if on_missing not in ("annotate", "raise"):
        raise ValueError(f"on_missing must be 'annotate' or 'raise', got {on_missing!r}")


Decorate = Callable[[Axes, str, float], None]


def _grid_figure(
    values: pd.DataFrame,
    *,
    rows: Sequence[str],
    row_column: str,
    ns: Sequence[int],
    sigmas: Sequence[float],
    series: Sequence[Series],
    ylabel: Callable[[str], str],
    labels: Callable[[str, str], str] = series_label,
    decorate: Decorate | None = None,
    extra_handles: Sequence[Any] = (),
    on_missing: OnMissing = "annotate",
    what: str,
    width: float = FIGURE_WIDTH,
    panel_height: float = _PANEL_HEIGHT,
    row_label: Callable[[str], str] | None = None,
    ylim: tuple[float, float] | None = None,
    log_y: bool = False,
    errors: str = DEFAULT_ERRORS,
) -> Figure:
    """Panels of rows (parameters or measures) × columns (sigma), one line per series.

    ``values`` has one row per expected cell, with the columns ``row_column``, ``sigma``,
    ``n``, ``method``, ``prior``, ``estimate``, ``mcse`` and ``reason`` (``""`` when usable).
    A non-normal error model ``errors`` is named in the title of the legend.
    """
    ylim = _check_ylim(ylim, log_y)
    off_scale = False
    _check_on_missing(on_missing)
    missing = values.loc[values["reason"] != ""]
    missing = missing.assign(row=missing[row_column])
    if on_missing == "raise":
        _report_missing(Figure(), missing, on_missing, what, row_label)
    styles = _styles(series)
    keys = [row_column, "sigma", "method", "prior", "n"]
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
    with mpl.rc_context(_RC):
        figure = _new_figure(width, _HEADER_HEIGHT + panel_height * len(rows))
        axes = figure.subplots(len(rows), len(sigmas), sharex=True, squeeze=False)
        for i, row in enumerate(rows):
            for j, sigma in enumerate(sigmas):
                ax = axes[i, j]
                if decorate is not None:
                    decorate(ax, row, sigma)
                for k, (method, prior) in enumerate(series):
                    x = np.asarray(ns, dtype=float) * _dodge(k, len(series))
                    y, ok = y_all[i, j, k], ok_all[i, j, k]
                    style = styles[(method, prior)]
                    _errorbar(ax, x, y, err_all[i, j, k], style, labels(method, prior))
                    _mark_missing(ax, x[~ok], style["color"])
                    if ylim is not None:
                        off_scale |= _mark_off_scale(ax, x, y, ylim, style)
                # Adding artists directly does not ask for the view limits to be refitted,
                # and a decoration may already have fitted them to itself.
                ax.autoscale(axis="y")
                if log_y:
                    _log_axis(ax)
                if ylim is not None:
                    ax.set_ylim(*ylim)
                if i == 0:
                    ax.set_title(rf"$\sigma$ = {_number(sigma)}")
                if j == 0:
                    ax.set_ylabel(ylabel(row))
        for ax in axes[-1]:
            ax.set_xlabel(r"$n$ (log scale)")
        handles = [_handle(styles[s], labels(*s)) for s in series] + list(extra_handles)
        if off_scale:
            handles.append(_off_scale_handle())
        figure.legend(
            handles=handles,
            loc="outside upper center",
            ncols=_legend_columns(handles),
            **_error_model_title(errors),
        )
        _report_missing(figure, missing, on_missing, what, row_label)
        _format_n_axis(axes[0, 0], ns)
    return figure


def _errorbar(
    ax: Axes, x: np.ndarray, y: np.ndarray, err: np.ndarray, style: dict[str, Any], label: str
) -> ErrorbarContainer:
    """Draw what ``ax.errorbar(x, y, yerr=err, elinewidth=0.7, **style)`` draws.

    The same line, bars and caps in the same drawing order (bars and caps at z-order 2,
    the line at 2.1 above them), but as three artists instead of four and without
    ``errorbar``'s general argument handling, which took a large share of a figure's
    build time. The caps (markers ``2 × errorbar.capsize`` points wide) reach the ends of
    the bars, so they alone set the data limits.
    """
    colour = style["color"]
    low, high = y - err, y + err
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


def _error_model_title(errors: str) -> dict[str, Any]:
    """Keywords of ``Figure.legend`` naming a non-normal error model (none for normal).

    The name is the title of the legend at the top of the figure: a separate figure title
    there would overlap the legend, since the layout does not stack the two.
    """
    title = _error_title(errors)
    if title is None:
        return {}
    return {"title": title, "title_fontsize": mpl.rcParams["figure.titlesize"]}


def _off_scale_handle() -> Line2D:
    """Legend entry explaining the edge triangles of :func:`_mark_off_scale`."""
    return Line2D(
        [], [], linestyle="none", marker="v", color="0.2", label="beyond the y range (at edge)"
    )


def _check_ylim(ylim: tuple[float, float] | None, log_y: bool) -> tuple[float, float] | None:
    if ylim is None:
        return None
    try:
        lo, hi = (float(v) for v in ylim)
    except (TypeError, ValueError):
        raise InputDataError(f"ylim must be two numbers (low, high), got {ylim!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi) or (log_y and lo <= 0):
        raise InputDataError(f"ylim must be finite with low < high (> 0 on a log axis): {ylim!r}")
    return lo, hi


def _mark_off_scale(
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


def _log_axis(ax: Axes) -> None:
    """Log y axis with plain-number labels at 1, 2 and 5 times powers of ten."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.yaxis.set_minor_locator(LogLocator(base=10.0, subs=tuple(range(1, 10))))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _legend_columns(handles: Sequence[Any]) -> int:
    """Columns of a figure legend: two rows when they fit in four columns."""
    return max(1, min(4, math.ceil(len(handles) / 2)))


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


def _is_coefficient(parameter: str) -> bool:
    return parameter.startswith("beta") and parameter[4:].isdigit()


def _exact_curve(ax: Axes, n: np.ndarray, y: np.ndarray, colour: str) -> None:
    """An exact finite-sample curve (normal errors) over ``n``, under the estimates."""
    ax.plot(n, y, color=colour, zorder=1.8, gid=EXACT_GID, **_EXACT_STYLE)


def _exact_handle(colour: str, label: str) -> Line2D:
    return Line2D([], [], color=colour, label=label, **_EXACT_STYLE)


def _zero_line(ax: Axes, _row: str, _sigma: float) -> None:
    ax.axhline(0.0, color=_REFERENCE_COLOUR, linewidth=0.7, zorder=0)


def _measure_ylabel(measure: str) -> Callable[[str], str]:
    name = MEASURE_LABELS.get(measure, measure)
    separator = "\n" if len(name) > 12 else " "

    def ylabel(parameter: str) -> str:
        return f"{name}{separator}of {parameter_symbol(parameter)}"

    return ylabel


# --------------------------------------------------------------------------------------
# Figures from the metrics table
# --------------------------------------------------------------------------------------


@_gc_paused
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
        The long metrics table.
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
        What to do about expected cells without an estimate (see the module docstring).
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
        If a column, the measure or a parameter is missing, or ``on_missing="raise"`` and a
        cell has no estimate.
    """
    table, errors = _prepare_metrics(metrics)
    _check_measure(table, measure)
    rows = _parameters(table, parameters)
    ns, sigmas, series = _grid_levels(table, expected)
    values = _values(table, measure, rows, ns, sigmas, series)
    return _grid_figure(
        values,
        rows=rows,
        row_column="parameter",
        ns=ns,
        sigmas=sigmas,
        series=series,
        ylabel=_measure_ylabel(measure),
        decorate=_zero_line,
        on_missing=on_missing,
        what=f"{measure} figure",
        width=width,
        row_label=parameter_symbol,
        ylim=ylim,
        errors=errors,
    )


@_gc_paused
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
        The long metrics table.
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
        without it, or when the table is for another error model than normal (its
        ``errors`` column), no curve is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Rows are parameters, columns ``sigma``; ±1.96 MCSE error bars.

    Raises
    ------
    regsim.errors.InputDataError
        If a column, the measure or a parameter is missing, ``R`` cannot be found, or
        ``on_missing="raise"`` and a cell has no estimate.
    """
    if not 0.0 < float(alpha) < 1.0:
        raise InputDataError(f"alpha must be in (0, 1), got {alpha!r}")
    p = _check_p(p)
    table, errors = _prepare_metrics(metrics)
    _check_measure(table, "coverage")
    rows = _parameters(table, parameters)
    ns, sigmas, series = _grid_levels(table, expected)
    if replications is None:
        reps = table.loc[table["measure"] == "n_reps", "estimate"]
        if not np.isfinite(reps).any() or reps.max() <= 0:
            raise InputDataError("metrics table: no n_reps rows to size the Monte Carlo band")
        replications = int(reps.max())
    nominal = 1.0 - float(alpha)
    half = 1.96 * math.sqrt(alpha * (1.0 - alpha) / replications)
    exact_n = _exact_grid(ns, p) if errors == DEFAULT_ERRORS and ("mle", "") in series else None
    exact = None
    if exact_n is not None and len(exact_n) and any(_is_coefficient(r) for r in rows):
        exact = np.array([mle_wald_coverage(int(n), int(p), float(alpha)) for n in exact_n])

    def decorate(ax: Axes, row: str, _sigma: float) -> None:
        ax.axhspan(nominal - half, nominal + half, color="0.85", linewidth=0, zorder=0)
        ax.axhline(nominal, color=_REFERENCE_COLOUR, linewidth=0.8, zorder=0.5)
        if exact is not None and _is_coefficient(row):
            _exact_curve(ax, exact_n, exact, METHOD_COLOURS["mle"])

    extra = [
        Line2D([], [], color=_REFERENCE_COLOUR, linewidth=0.8, label=f"nominal {nominal:g}"),
        Patch(color="0.85", label=f"MC band (R = {replications})"),
    ]
    if exact is not None:
        extra.append(_exact_handle(METHOD_COLOURS["mle"], "MLE exact (normal errors)"))
    values = _values(table, "coverage", rows, ns, sigmas, series)
    return _grid_figure(
        values,
        rows=rows,
        row_column="parameter",
        ns=ns,
        sigmas=sigmas,
        series=series,
        ylabel=_measure_ylabel("coverage"),
        decorate=decorate,
        extra_handles=extra,
        on_missing=on_missing,
        what="coverage figure",
        width=width,
        row_label=parameter_symbol,
        ylim=ylim,
        errors=errors,
    )


@_gc_paused
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
    ``r √((MCSE_m / RMSE_m)² + (MCSE_ref / RMSE_ref)²)``, which ignores the correlation
    between the two RMSEs: they are computed from the same replicates and positively
    correlated, so the error bars are conservative (too wide). For the MLE of the
    coefficients, which equals OLS, the ratio is exactly 1 whatever its error bar shows.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The long metrics table.
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
        If a column, the RMSE rows, the reference method or a parameter is missing, or
        ``on_missing="raise"`` and a cell has no estimate.
    """
    table, errors = _prepare_metrics(metrics)
    _check_measure(table, "rmse")
    rows = _parameters(table, parameters)
    ns, sigmas, series = _grid_levels(table, expected)
    if (reference, "") not in series:
        raise InputDataError(f"metrics table: no rows for the reference method {reference!r}")
    values = _values(table, "rmse", rows, ns, sigmas, series)
    keys = ["parameter", "sigma", "n"]
    is_ref = (values["method"] == reference) & (values["prior"] == "")
    ref = values.loc[is_ref, [*keys, "estimate", "mcse", "reason"]]
    ref = ref.rename(columns={"estimate": "ref", "mcse": "ref_mcse", "reason": "ref_reason"})
    ratio = values.loc[~is_ref].merge(ref, on=keys, how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ratio["estimate"] / ratio["ref"]
        rel = np.sqrt(
            (ratio["mcse"] / ratio["estimate"]) ** 2 + (ratio["ref_mcse"] / ratio["ref"]) ** 2
        )
    ratio["mcse"] = r * rel
    ratio["estimate"] = r
    bad_ref = (ratio["reason"] == "") & (ratio["ref_reason"] != "")
    ratio.loc[bad_ref, "reason"] = f"{reference.upper()} reference: " + ratio.loc[
        bad_ref, "ref_reason"
    ].astype(str)
    zero_ref = (ratio["reason"] == "") & ~np.isfinite(ratio["estimate"])
    ratio.loc[zero_ref, "reason"] = "ratio undefined"
    shown = [s for s in series if s != (reference, "")]
    ref_label = f"{series_label(reference)} (= 1)"

    def decorate(ax: Axes, _row: str, _sigma: float) -> None:
        ax.axhline(1.0, color=METHOD_COLOURS.get(reference, "0.3"), linewidth=0.9, zorder=0.5)

    extra = [Line2D([], [], color=METHOD_COLOURS.get(reference, "0.3"), label=ref_label)]
    return _grid_figure(
        ratio.drop(columns=["ref", "ref_mcse", "ref_reason"]),
        rows=rows,
        row_column="parameter",
        ns=ns,
        sigmas=sigmas,
        series=shown,
        ylabel=lambda p: f"RMSE / RMSE$_{{\\rm {reference.upper()}}}$\nof {parameter_symbol(p)}",
        decorate=decorate,
        extra_handles=extra,
        on_missing=on_missing,
        what="efficiency figure",
        width=width,
        row_label=parameter_symbol,
        ylim=ylim,
        log_y=log_y,
        errors=errors,
    )


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
        The long metrics table.
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


@_gc_paused
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
        The long metrics table; its ``sigma`` parameter rows are used.
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
        or when the table is for another error model than normal (its ``errors`` column),
        no curve is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Rows are measures, columns ``sigma``; ±1.96 MCSE error bars and a zero line for
        bias-type measures.

    Raises
    ------
    regsim.errors.InputDataError
        If a column, a measure or the ``sigma`` parameter is missing, or
        ``on_missing="raise"`` and a cell has no estimate.
    """
    p = _check_p(p)
    table, errors = _prepare_metrics(metrics)
    _parameters(table, ["sigma"])
    measures = [measures] if isinstance(measures, str) else list(measures)
    for measure in measures:
        _check_measure(table, measure)
    ns, sigmas, series = _grid_levels(table, expected)
    parts = [_values(table, m, ["sigma"], ns, sigmas, series).assign(measure=m) for m in measures]
    values = pd.concat(parts, ignore_index=True)

    def label(method: str, prior: str) -> str:
        symbol = "$s$" if method in ("ols", "ols_hc3") else r"$\hat\sigma$"
        return f"{series_label(method, prior)}, {symbol}"

    exact_n = _exact_grid(ns, p) if errors == DEFAULT_ERRORS else None
    exact = {}
    if exact_n is not None and len(exact_n) and any(m in _EXACT_SIGMA_MEASURES for m in measures):
        exact = {m: f for m, f in _EXACT_SIGMA.items() if (m, "") in series}

    def decorate(ax: Axes, measure: str, sigma: float) -> None:
        if measure in ("bias", "relbias", "relerror"):
            _zero_line(ax, measure, sigma)
        if measure in _EXACT_SIGMA_MEASURES:
            for method, expectation in exact.items():
                mean = np.array([expectation(int(n), int(p), sigma) for n in exact_n])
                bias = mean - sigma if measure == "bias" else (mean - sigma) / sigma
                _exact_curve(ax, exact_n, bias, METHOD_COLOURS[method])

    def ylabel(measure: str) -> str:
        return f"{MEASURE_LABELS.get(measure, measure)} of the\nestimate of $\\sigma$"

    return _grid_figure(
        values,
        rows=measures,
        row_column="measure",
        ns=ns,
        sigmas=sigmas,
        series=series,
        ylabel=ylabel,
        labels=label,
        decorate=decorate,
        extra_handles=[
            _exact_handle(METHOD_COLOURS[m], f"{label(m, '')}: exact (normal errors)")
            for m in exact
        ],
        on_missing=on_missing,
        what="sigma figure",
        width=width,
        row_label=lambda m: MEASURE_LABELS.get(m, m).lower(),
        ylim=ylim,
        errors=errors,
    )


@_gc_paused
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
        The long metrics table.
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
        If a column, the measure or the parameter is missing, ``loops`` is not a
        permutation of the grid factors, or ``on_missing="raise"`` and a cell has no
        estimate.
    """
    _check_on_missing(on_missing)
    loops = list(loops)
    if sorted(loops) != ["n", "sigma"]:
        raise InputDataError(f"loops must be a permutation of ('sigma', 'n'), got {loops}")
    table, errors = _prepare_metrics(metrics)
    _check_measure(table, measure)
    _parameters(table, [parameter])
    ns, sigmas, series = _grid_levels(table, expected)
    values = _values(table, measure, [parameter], ns, sigmas, series)
    missing = values.loc[values["reason"] != ""]
    missing = missing.assign(row=missing["parameter"])
    if on_missing == "raise":
        _report_missing(Figure(), missing, on_missing, "nested-loop figure", parameter_symbol)
    levels = {"sigma": sigmas, "n": ns}
    outer, inner = loops
    scenarios = [{outer: a, inner: b} for a in levels[outer] for b in levels[inner]]
    x = np.arange(len(scenarios), dtype=float)
    finite = values.loc[values["reason"] == "", "estimate"]
    if log_y is None:
        log_y = measure in _POSITIVE_MEASURES and bool((finite > 0).all()) and len(finite) > 0
    ylim = _check_ylim(ylim, bool(log_y))
    off_scale = False
    styles = _styles(series)
    with mpl.rc_context(_RC):
        figure = _new_figure(width, height)
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
            _mark_missing(ax, gaps, style["color"])
            if ylim is not None:
                off_scale |= _mark_off_scale(ax, x, y, ylim, style)
        if log_y:
            _log_axis(ax)
        elif measure in ("bias", "relbias", "relerror"):
            ax.axhline(0.0, color=_REFERENCE_COLOUR, linewidth=0.7, zorder=0)
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
        handles = [_handle(_step_style(styles[s], *s), series_label(*s)) for s in series]
        if off_scale:
            handles.append(_off_scale_handle())
        figure.legend(
            handles=handles,
            loc="outside upper center",
            ncols=_legend_columns(handles),
            **_error_model_title(errors),
        )
        _report_missing(figure, missing, on_missing, "nested-loop figure", parameter_symbol)
    return figure


def _stairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges and values for a ``where="post"`` step plot giving scenario ``i`` the width
    ``[x_i - 1/2, x_i + 1/2]`` (the last value is repeated to close the last step)."""
    return np.append(x - 0.5, x[-1] + 0.5), np.append(y, y[-1])


def _step_style(style: dict[str, Any], method: str, prior: str) -> dict[str, Any]:
    """A series style without markers, OLS and MLE wider and underneath (nested loops)."""
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
    names = {"sigma": r"$\sigma$", "n": r"$n$"}
    x = np.arange(len(scenarios), dtype=float)
    for depth, factor in enumerate(loops):
        base = len(loops) - 1 - depth
        values = list(levels[factor])
        steps = max(len(values) - 1, 1)
        index = np.array([values.index(s[factor]) for s in scenarios], dtype=float)
        y = base + 0.55 * index / steps
        ax.step(*_stairs(x, y), where="post", color="0.25", linewidth=0.9)
        ax.text(-0.8, base + 0.27, names[factor], ha="right", va="center")
        for i in range(len(scenarios)):
            if i == 0 or index[i] != index[i - 1] or depth == len(loops) - 1:
                if depth == len(loops) - 1 and i >= len(values):
                    continue
                ax.text(x[i], y[i] + 0.08, _number(scenarios[i][factor]), ha="center", va="bottom")
    ax.set_ylim(-0.15, len(loops) - 0.05)
    ax.set_yticks([])
    ax.tick_params(axis="x", bottom=False, labelbottom=False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)


# --------------------------------------------------------------------------------------
# Zip plot from one cell's replicates
# --------------------------------------------------------------------------------------


def _flags(column: pd.Series) -> np.ndarray:
    """A convergence column as booleans; missing or unrecognised values are False."""
    if column.dtype == bool:
        return column.to_numpy(bool)
    text = column.astype(str).str.strip().str.lower()
    return text.isin(["true", "t", "yes", "1", "1.0"]).to_numpy()


def _single(table: pd.DataFrame, column: str, value: float | None, what: str) -> float:
    present = sorted(table[column].unique())
    if value is None:
        if len(present) != 1:
            shown = ", ".join(_number(v) for v in present)
            raise InputDataError(f"{what}: several values of {column} ({shown}); choose one")
        return float(present[0])
    if not np.isclose(present, float(value)).any():
        shown = ", ".join(_number(v) for v in present)
        raise InputDataError(f"{what}: no rows with {column} = {value}; values: {shown}")
    return float(value)


@_gc_paused
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
    extreme intervals may run off the panel.

    Parameters
    ----------
    replicates : pandas.DataFrame
        Long table of replicate fits with the columns of :data:`REPLICATE_COLUMNS`.
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
        If a column is missing, the cell or parameter is not in the table, the true value
        varies within the selection, or the table has no rows.
    """
    what = "zip plot"
    if not 0.0 < float(alpha) < 1.0:
        raise InputDataError(f"alpha must be in (0, 1), got {alpha!r}")
    errors = _error_model(replicates, "replicate table")
    table = _normalise(replicates, REPLICATE_COLUMNS, "replicate table")
    n_value = _single(table, "n", n, what)
    sigma_value = _single(table, "sigma", sigma, what)
    table = table.loc[(table["n"] == n_value) & np.isclose(table["sigma"], sigma_value)]
    table = table.loc[table["parameter"] == parameter]
    if table.empty:
        raise InputDataError(f"{what}: no rows for parameter {parameter!r}")
    truths = table["true"].unique()
    if len(truths) != 1 or not np.isfinite(truths[0]):
        raise InputDataError(f"{what}: the true value of {parameter} is not one finite number")
    truth = float(truths[0])
    pairs = [(str(m), str(p)) for m, p in table[["method", "prior"]].drop_duplicates().to_numpy()]
    series = _ordered_series(pairs)
    ok_all = (
        _flags(table["converged"])
        & np.isfinite(table[["estimate", "se", "lower", "upper"]]).all(axis=1).to_numpy()
        & (table["se"] > 0).to_numpy()
    )
    table = table.assign(ok=ok_all)
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
    with mpl.rc_context(_RC):
        figure = _new_figure(width, 0.9 + 2.1 * nrows)
        axes = figure.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
        for index, (method, prior) in enumerate(series):
            ax = axes.flat[index]
            rows = table.loc[(table["method"] == method) & (table["prior"] == prior)]
            _zip_panel(ax, rows, truth, nominal, method, prior)
        for ax in axes.flat[len(series) :]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel(r"Centile of $|z|$")
        ax0 = axes[0, 0]
        ax0.set_xlim(lo, hi)
        ax0.set_ylim(0, 100)
        ax0.set_yticks([0, 25, 50, 75, 100])
        level = f"{nominal:g}%"
        figure.supxlabel(
            f"{level} intervals for {parameter_symbol(parameter, hat=False)} "
            rf"(cell $n$ = {int(n_value)}, $\sigma$ = {_number(sigma_value)})"
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
            **_error_model_title(errors),
        )
    return figure


#: Resolution of the zip plot's rasterized intervals in its PDF: sharp at print size, and
#: a third of the memory of 300 dpi for a plot of 10 000 replicates.
ZIP_PDF_RASTER_DPI = 150


def _zip_panel(
    ax: Axes, rows: pd.DataFrame, truth: float, nominal: float, method: str, prior: str
) -> None:
    """One zip plot panel."""
    valid = rows.loc[rows["ok"]]
    failed = len(rows) - len(valid)
    title = series_label(method, prior)
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
    ax.axhline(100.0 * p, color="black", linewidth=1.0, zorder=4)
    for edge in (p - half, p + half):
        ax.axhline(100.0 * edge, color="black", linewidth=0.8, linestyle="--", zorder=4)
    note = f", {failed} failed" if failed else ""
    ax.set_title(
        f"{title}\ncoverage {100 * p:.1f}% ({100 * (p - half):.1f}–{100 * (p + half):.1f}){note}"
    )


# --------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------

FIGURES: dict[str, Callable[..., Figure]] = {
    "bias": bias_figure,
    "coverage": coverage_figure,
    "efficiency": efficiency_figure,
    "modelse": modelse_figure,
    "nested_loop": nested_loop_figure,
    "sigma": sigma_figure,
}
"""The figures drawn from the metrics table, by name (:func:`zip_plot` is separate)."""


def study_keywords(name: str, **values: Any) -> dict[str, Any]:
    """The study settings that figure ``name`` takes, of those in ``values``.

    Lets a caller offer every figure the same settings (e.g. ``p`` and ``alpha``) while
    each family gets only the keywords its function has.

    Parameters
    ----------
    name : str
        A key of :data:`FIGURES`.
    **values
        Candidate keyword arguments.

    Returns
    -------
    dict
        The items of ``values`` whose key is a parameter of ``FIGURES[name]``.
    """
    accepted = inspect.signature(FIGURES[name]).parameters
    return {key: value for key, value in values.items() if key in accepted}


def figure_tasks(
    metrics: pd.DataFrame,
    figures: Mapping[str | os.PathLike[str], tuple[str, str]],
    *,
    expected: Mapping[str, Sequence[Any]] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    p: int | None = None,
    alpha: float | None = None,
) -> list[Callable[[], None]]:
    """One task per figure of one metrics table, each drawing and saving its figure.

    Each figure is :data:`FIGURES` ``[family]`` of the rows of one error model, saved by
    :func:`save_figure`. The tasks are independent: run them in any order, or each in a
    process of its own (:func:`regsim.parallel.run_tasks`); the files are the same bytes.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table (``results/tables/metrics.csv``), every error model.
    figures : mapping
        Output path (either file of a figure, e.g. ``results/figures/bias.pdf``, or its
        stem) -> (family, error model), e.g. ``("bias", "normal")``.
    expected : mapping, optional
        The study design (``n``, ``sigma``, ``methods``, ``priors``), to mark the cells a
        figure lacks.
    options : mapping, optional
        Family -> keyword arguments of that family's function (the ``figures`` config).
    p, alpha : optional
        The number of coefficients and the nominal level, given to the families that
        take them (:func:`study_keywords`).

    Returns
    -------
    list of callables
        In the order of ``figures``.

    Raises
    ------
    KeyError
        If a family is not in :data:`FIGURES`.
    """
    unknown = sorted({family for family, _ in figures.values()} - set(FIGURES))
    if unknown:
        raise KeyError(f"unknown figure famil{'y' if len(unknown) == 1 else 'ies'}: {unknown}")
    options = options or {}

    def draw(path: str | os.PathLike[str], family: str, errors: str) -> None:
        # select_errors drops the errors column; the figure needs it to name a non-normal
        # model and to leave out the exact curves, which hold for normal errors only.
        table = select_errors(metrics, errors).assign(errors=errors)
        study = study_keywords(family, p=p, alpha=alpha)
        extra = dict(options.get(family, {}))
        figure = FIGURES[family](table, expected=expected, **{**study, **extra})
        save_figure(figure, path)

    return [
        functools.partial(draw, path, family, errors) for path, (family, errors) in figures.items()
    ]


@_gc_paused
def save_figure(
    figure: Figure,
    path: str | os.PathLike[str],
    formats: Sequence[str] = ("pdf", "png"),
    dpi: int = 300,
    vector_raster_dpi: int | None = None,
) -> list[Path]:
    """Write a figure as PDF and PNG (300 dpi), each atomically; return the paths.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure to save.
    path : path-like
        The file stem, e.g. ``results/figures/bias``; a suffix naming one of ``formats``
        (``bias.pdf``) is dropped, so either output path of a rule can be passed.
    formats : sequence of str, default ("pdf", "png")
        File formats, one file each.
    dpi : int, default 300
        Resolution of raster formats.
    vector_raster_dpi : int, optional
        Resolution of the rasterized artists of vector formats (the zip plot's thousands
        of intervals); default ``dpi``. Lower saves memory: the PDF backend draws each
        rasterized artist on a canvas the size of the whole figure.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.

    Notes
    -----
    The PDF carries no creation date, so the same figure gives the same bytes on every
    run. Each file is written to a temporary file beside it and renamed, so a reader never
    sees a partial file. The figure's layout engine runs once, measuring text at ``dpi``,
    and every format is drawn with that layout; the engine is put back afterwards.
    """
    path = Path(path)
    if path.suffix.lstrip(".").lower() in formats:
        path = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    # The PDF backend subsets fonts with fontTools, which logs every step at INFO level.
    font_logger = logging.getLogger("fontTools")
    level = font_logger.level
    font_logger.setLevel(max(level, logging.WARNING))
    try:
        _save_all(figure, path, formats, dpi, written, vector_raster_dpi or dpi)
    finally:
        font_logger.setLevel(level)
    return written


#: Formats whose ``dpi`` only sets the resolution of rasterized artists.
_VECTOR_FORMATS = frozenset({"pdf", "svg", "eps", "ps"})


def _save_all(
    figure: Figure,
    path: Path,
    formats: Sequence[str],
    dpi: int,
    written: list[Path],
    vector_raster_dpi: int,
) -> None:
    """Write each format of :func:`save_figure`, appending each path when written.

    A layout engine lays the figure out twice in every ``savefig`` (a trial draw, then the
    draw that writes), so it is run once here and switched off while the files are
    written, then put back: every format gets the same layout at a third of the cost.
    """
    with mpl.rc_context({**_RC, **_NO_DEFAULT_LAYOUT}):
        engine = figure.get_layout_engine()
        if engine is not None:
            # Text is measured at the raster resolution, as savefig would have done.
            screen_dpi = figure.dpi
            figure.dpi = dpi
            try:
                engine.execute(figure)
            finally:
                figure.dpi = screen_dpi
            figure.set_layout_engine(None)
        try:
            for fmt in formats:
                target = path.with_name(f"{path.name}.{fmt}")
                metadata = {"CreationDate": None} if fmt == "pdf" else None
                resolution = vector_raster_dpi if fmt in _VECTOR_FORMATS else dpi
                write_atomic(
                    target,
                    lambda tmp, fmt=fmt, metadata=metadata, resolution=resolution: figure.savefig(
                        tmp, format=fmt, dpi=resolution, metadata=metadata
                    ),
                )
                written.append(target)
        finally:
            if engine is not None:
                figure.set_layout_engine(engine)
