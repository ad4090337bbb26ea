"""Figures of the simulation study, each a pure function from a table to a matplotlib figure.

Every ``*_figure`` function takes the metrics table of one slice of the study (the
columns of ``results/tables/metrics.csv``: the factor columns, then ``prior, method,
parameter, measure, estimate, mcse``; one level of each optional factor such as the error
model) and returns a :class:`matplotlib.figure.Figure`; :func:`zip_plot`,
:func:`estimate_se_figure` and :func:`bland_altman_figure` take the long table of one
cell's replicate fits instead. Nothing is read or written except by
:func:`save_figure`, which writes a PDF and a 300 dpi PNG, and :func:`png_from_pdf`, which
rasters a PDF to its PNG. :func:`figure_tasks` draws and saves several figures of a whole
metrics table, each of one slice.

Modules
-------
* :mod:`~regsim.figures.style`: sizes, labels, legend titles, rcParams (the series'
  colours, line styles and markers are :mod:`regsim.styles`').
* :mod:`~regsim.figures.data`: from a metrics table to the plotted values and gaps.
* :mod:`~regsim.figures.panels`: the log ``n`` axis, error bars, marks, notes of gaps.
* :mod:`~regsim.figures.grid`: the panels of rows × σ shared by the grid families.
* :mod:`~regsim.figures.layout`: where those panels go when σ has many levels.
* :mod:`~regsim.figures.yticks`: a panel's y axis drawn as one artist, the same picture.
* :mod:`~regsim.figures.families`: bias, coverage, efficiency, model SE, σ figures.
* :mod:`~regsim.figures.nested_loop`, :mod:`~regsim.figures.zip`: the other two plots.
* :mod:`~regsim.figures.estimates`: estimate against model SE, and Bland–Altman panels.
* :mod:`~regsim.figures.replicates`: one cell's replicate fits, checked and selected.
* :mod:`~regsim.figures.save`: writing PDF and PNG files.

Conventions shared by all figures
---------------------------------
* Figures are built with the object-oriented API (``matplotlib.figure.Figure``), never with
  ``pyplot``: no global figure registry, no GUI backend and no ``matplotlib.use`` call, so
  importing this package does not change a user's interactive session. PDF files are
  drawn by matplotlib's PDF backend; PNG files by Agg, or (the paper job's figures)
  rastered from the PDF by PDFium, the same picture in a third of the time. Neither needs
  a display.
* One colour per method, the same in every figure, from the colour-blind-safe Okabe–Ito
  palette (:data:`METHOD_COLOURS`). The MAP fits under different priors share the MAP
  colour and differ in line style and marker (:data:`PRIOR_STYLES`); OLS and MLE also differ
  in marker, so that where their estimates coincide (the coefficients) both stay visible.
* Series are drawn slightly apart along the log ``n`` axis (0.016 decades between
  neighbours, ±0.04 decades for six series) so that error bars do not hide each other;
  ticks mark the true sample sizes.
* The grid figures have a column of panels per σ, up to four; more σ are wrapped onto
  further lines of at most four panels, each titled with its σ, so that a panel keeps a
  readable width (:mod:`~regsim.figures.layout`). Such large grids are drawn with fewer
  artists (one for the error bars of all series, one for the ``n`` tick marks of a
  panel without tick labels, no minor ticks on a log axis) and laid out in one pass.
* Error bars are ±1.96 Monte Carlo standard errors (MCSE).
* A figure shows one slice: a table mixing levels of an optional factor is refused, never
  one level dropped (:func:`regsim.tableio.levels_of`). The slice's non-default levels are
  named in the title of the figure's legend (errors by :data:`ERROR_TITLES`, other
  factors as ``"<factor>: <level>"``); a slice at every default (normal errors) gets no
  title. Given the number of coefficients ``p``, the coverage and σ figures of normal
  errors draw the exact finite-sample values of :mod:`regsim.theory` as thin dashed
  curves.
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
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from regsim.errors import InputDataError
from regsim.schema import OPTIONAL_FACTORS, metrics_columns
from regsim.styles import METHOD_COLOURS, OKABE_ITO, PRIOR_STYLES
from regsim.tableio import select_levels

from .data import missing_cells
from .estimates import ESTIMATE_PDF_RASTER_DPI, bland_altman_figure, estimate_se_figure
from .families import (
    EXACT_GID,
    bias_figure,
    coverage_figure,
    efficiency_figure,
    laplace_figure,
    modelse_figure,
    rejection_figure,
    sigma_figure,
)
from .nested_loop import nested_loop_figure
from .replicates import REPLICATE_COLUMNS
from .save import png_from_pdf, save_figure
from .style import ERROR_TITLES, FIGURE_WIDTH, MEASURE_LABELS, parameter_symbol, series_label

# Importing the submodule binds the name ``zip`` in this namespace: the builtin is not
# used below.
from .zip import ZIP_PDF_RASTER_DPI, zip_plot

__all__ = [
    "ERROR_TITLES",
    "ESTIMATE_PDF_RASTER_DPI",
    "EXACT_GID",
    "FIGURES",
    "FIGURE_WIDTH",
    "MEASURE_LABELS",
    "METHOD_COLOURS",
    "METRICS_COLUMNS",
    "OKABE_ITO",
    "PRIOR_STYLES",
    "REPLICATE_COLUMNS",
    "ZIP_PDF_RASTER_DPI",
    "bias_figure",
    "bland_altman_figure",
    "coverage_figure",
    "rejection_figure",
    "laplace_figure",
    "efficiency_figure",
    "estimate_se_figure",
    "figure_tasks",
    "missing_cells",
    "modelse_figure",
    "nested_loop_figure",
    "parameter_symbol",
    "png_from_pdf",
    "save_figure",
    "series_label",
    "sigma_figure",
    "study_keywords",
    "zip_plot",
]

#: Columns of the metrics table of a study that varies no optional factor.
METRICS_COLUMNS: tuple[str, ...] = metrics_columns()

FIGURES: dict[str, Callable[..., Figure]] = {
    "bias": bias_figure,
    "coverage": coverage_figure,
    "efficiency": efficiency_figure,
    "laplace": laplace_figure,
    "modelse": modelse_figure,
    "nested_loop": nested_loop_figure,
    "rejection": rejection_figure,
    "sigma": sigma_figure,
}
"""The figures drawn from the metrics table, by name (those of one cell's replicate fits,
:func:`zip_plot`, :func:`estimate_se_figure` and :func:`bland_altman_figure`, are separate)."""


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


Levels = Mapping[str, str]
"""Levels of optional grid factors, e.g. ``{"errors": "t3"}``."""


def figure_tasks(
    metrics: pd.DataFrame,
    figures: Mapping[str | os.PathLike[str], tuple[str, Levels]],
    *,
    expected: Mapping[str, Sequence[Any]] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    p: int | None = None,
    alpha: float | None = None,
    formats: Sequence[str] = ("pdf", "png"),
) -> list[Callable[[], None]]:
    """One task per figure of one metrics table, each drawing and saving its figure.

    Each figure is :data:`FIGURES` ``[family]`` of the rows at its levels of the optional
    factors (:func:`regsim.tableio.select_levels`, factor columns kept), saved by
    :func:`save_figure`. The tasks are independent: run them in any order, or each in a
    process of its own (:func:`regsim.parallel.run_tasks`); the files are the same bytes.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table (``results/tables/metrics.csv``), every slice.
    figures : mapping
        Output path (either file of a figure, e.g. ``results/figures/bias.pdf``, or its
        stem) -> (family, levels), e.g. ``("bias", {"errors": "t3"})``. ``levels`` maps
        optional factors to the figure's level; a factor left out is not selected on, so
        a table with several of its levels is refused when the task runs.
    expected : mapping, optional
        The study design (``n``, ``sigma``, ``methods``, ``priors``), to mark the cells a
        figure lacks.
    options : mapping, optional
        Family -> keyword arguments of that family's function (the ``figures`` config).
    p, alpha : optional
        The number of coefficients and the nominal level, given to the families that
        take them (:func:`study_keywords`).
    formats : sequence of str, default ("pdf", "png")
        The files of each figure (:func:`save_figure`); the paper job asks for the PDF
        alone and rasters the PNG from it apart (:func:`png_from_pdf`).

    Returns
    -------
    list of callables
        In the order of ``figures``.

    Raises
    ------
    KeyError
        If a family is not in :data:`FIGURES`, or ``levels`` names a factor that is not an
        optional grid factor.
    TypeError
        If ``levels`` is not a mapping.
    """
    unknown = sorted({family for family, _ in figures.values()} - set(FIGURES))
    if unknown:
        raise KeyError(f"unknown figure famil{'y' if len(unknown) == 1 else 'ies'}: {unknown}")
    factors = {item.name for item in OPTIONAL_FACTORS}
    for path, (_, levels) in figures.items():
        if not isinstance(levels, Mapping):
            raise TypeError(
                f"{path}: levels must be a mapping of optional factors to levels, e.g. "
                f"{{'errors': 't3'}}, got {levels!r}"
            )
        strange = sorted(set(levels) - factors)
        if strange:
            raise KeyError(f"{path}: not an optional grid factor: {', '.join(strange)}")
    options = options or {}

    formats = tuple(formats)

    def draw(path: str | os.PathLike[str], family: str, levels: Levels) -> None:
        table = select_levels(metrics, levels)
        if len(table) == 0 and len(metrics) > 0:
            at = ", ".join(f"{name}={level}" for name, level in levels.items())
            raise InputDataError(f"metrics table: no rows at {at}")
        study = study_keywords(family, p=p, alpha=alpha)
        extra = dict(options.get(family, {}))
        figure = FIGURES[family](table, expected=expected, **{**study, **extra})
        save_figure(figure, path, formats)

    return [
        functools.partial(draw, path, family, dict(levels))
        for path, (family, levels) in figures.items()
    ]
