"""How every figure looks: sizes, labels, legend titles and rcParams.

The colour, line style and marker of each series come from :mod:`regsim.styles` (shared
with the results explorer); method order and printed names from :mod:`regsim.schema`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
from matplotlib.lines import Line2D

from regsim.schema import (
    OPTIONAL_FACTORS,
    beta_index,
    method_label,
    series_rank,
)
from regsim.styles import Series

#: Width of every figure in inches (a two-column spread; a panel is about 2.2 in).
FIGURE_WIDTH = 7.0

#: Colour of reference lines (zero, nominal level).
REFERENCE_COLOUR = "0.35"

#: Readable names of the measures, for axis labels (shorter than the table titles).
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
    "rejection": "Rejection rate",
    "relprec": "Rel. precision (%)",
}

#: Name of each non-normal error model (see :mod:`regsim.simulate`) in its figures' legends.
ERROR_TITLES: dict[str, str] = {
    "t3": r"Errors: Student $t_3$ scaled to sd $\sigma$",
    "hetero": "Errors: heteroskedastic (sd grows with the first covariate)",
}

#: Printed name of an optional factor in a legend title (``"<name>: <level>"``); a factor
#: not listed is named by its column.
FACTOR_LABELS: dict[str, str] = {"errors": "Errors", "truth": "Truth", "design": "Design"}

#: Legend titles of particular levels, by factor; other levels get ``"<name>: <level>"``.
LEVEL_TITLES: dict[str, Mapping[str, str]] = {"errors": ERROR_TITLES}

RC: dict[str, Any] = {
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
"""rcParams every figure is drawn and saved under (fonts of at least 8 pt at print size)."""


# --------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------


def series_label(method: str, prior: str = "") -> str:
    """Legend label of a (method, prior) series (:func:`regsim.schema.method_label`)."""
    return method_label(method, prior)


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
    j = beta_index(parameter)
    if j is not None:
        return rf"${accent}\beta_{{{j}}}$"
    if parameter == "sigma":
        return rf"${accent}\sigma$"
    return parameter


def slice_title(levels: Mapping[str, str]) -> str | None:
    """The legend title naming a slice's non-default levels; None when all are defaults.

    A level with a title of its own (:data:`LEVEL_TITLES`, e.g. t₃ errors) is named by
    it, any other as ``"<factor>: <level>"``; several are joined with ``"; "`` in factor
    order.
    """
    parts = []
    for item in OPTIONAL_FACTORS:
        level = str(levels.get(item.name, item.default))
        if level == item.default:
            continue
        own = LEVEL_TITLES.get(item.name, {})
        parts.append(own.get(level, f"{FACTOR_LABELS.get(item.name, item.name)}: {level}"))
    return "; ".join(parts) or None


def legend_title(levels: Mapping[str, str]) -> dict[str, Any]:
    """Keywords of ``Figure.legend`` naming a slice's non-default levels (none at defaults).

    The name is the title of the legend at the top of the figure: a separate figure title
    there would overlap the legend, since the layout does not stack the two.
    """
    title = slice_title(levels)
    if title is None:
        return {}
    return {"title": title, "title_fontsize": mpl.rcParams["figure.titlesize"]}


def legend_columns(handles: Sequence[Any]) -> int:
    """Columns of a figure legend: two rows when they fit in four columns."""
    return max(1, min(4, math.ceil(len(handles) / 2)))


# --------------------------------------------------------------------------------------
# Series
# --------------------------------------------------------------------------------------


def ordered_series(pairs: Sequence[Series]) -> list[Series]:
    """Distinct series in the study's order: by method, then prior (:func:`series_rank`)."""
    return sorted(set(pairs), key=series_rank)


def handle(style: dict[str, Any], label: str) -> Line2D:
    """A legend proxy for a series (its line style as :func:`handle_linestyle` gives)."""
    if "linestyle" in style:
        style = {**style, "linestyle": handle_linestyle(style["linestyle"])}
    return Line2D([], [], label=label, **style)


def handle_linestyle(linestyle: Any) -> Any:
    """A series' line style as its legend handle draws it.

    A dash pattern starts half its first dash in, so that a gap never sits under the
    marker in the middle of the handle: the long dashes of (10, 3) had put their only gap
    there, and the handle looked like a solid line. Other styles are returned as given.
    """
    if isinstance(linestyle, tuple) and len(linestyle) == 2 and linestyle[1]:
        offset, dashes = linestyle
        return (offset + dashes[0] / 2, dashes)
    return linestyle


def off_scale_handle() -> Line2D:
    """Legend entry explaining the edge triangles of values beyond the y range."""
    return Line2D(
        [], [], linestyle="none", marker="v", color="0.2", label="beyond the y range (at edge)"
    )
