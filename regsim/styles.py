"""Colour, line style and marker of every series (a method, or MAP under a prior).

One colour per method from the colour-blind-safe Okabe–Ito palette; MAP fits under
different priors share the MAP colour and differ in line style and marker; OLS and MLE
also differ in marker, so that where their estimates coincide both stay visible. The
figures (:mod:`regsim.figures`) and the results explorer (:mod:`regsim.explorer`)
both take their styles from here. Plain data, in matplotlib's terms (colours as hex,
line styles as dash tuples, marker codes), without importing matplotlib: the explorer
does not pay its import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "METHOD_COLOURS",
    "METHOD_MARKERS",
    "OKABE_ITO",
    "PRIOR_STYLES",
    "Series",
    "series_styles",
]

#: A series of the figures: (method, prior), the prior ``""`` for a method without one.
Series = tuple[str, str]

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
    "bayes": OKABE_ITO["orange"],
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
    OKABE_ITO["sky_blue"],
    OKABE_ITO["black"],
    OKABE_ITO["yellow"],
)


def series_styles(series: Sequence[Series]) -> dict[Series, dict[str, Any]]:
    """Plot keyword arguments (colour, line style, marker) of each series.

    Known methods and priors have fixed styles; unknown ones take the spare styles in
    alphabetical order, so one table always gives the same styles.

    Parameters
    ----------
    series : sequence of (str, str)
        The (method, prior) pairs, the prior ``""`` for a method without one.

    Returns
    -------
    dict
        (method, prior) -> matplotlib keyword arguments: ``color``, ``linestyle``,
        ``marker``, ``markerfacecolor``, ``markeredgecolor``, ``markeredgewidth``.
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
