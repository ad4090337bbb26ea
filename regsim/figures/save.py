"""Writing a figure: PDF and 300 dpi PNG, each atomically, the same bytes on every run.

:func:`save_figure` draws each format with matplotlib (the PNG with Agg);
:func:`png_from_pdf` rasters a figure's PDF to its PNG with PDFium, which the paper job
does in a process of its own once the PDF is written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FixedFormatter,
    FixedLocator,
    Formatter,
    Locator,
    ScalarFormatter,
)

from regsim.atomic import write_atomic

from .collector import gc_paused
from .style import RC

#: Without these, ``Figure.set_layout_engine(None)`` would pick an engine from the user's
#: rcParams instead of switching layout off.
_NO_DEFAULT_LAYOUT: dict[str, Any] = {
    "figure.autolayout": False,
    "figure.constrained_layout.use": False,
}

#: Formats whose ``dpi`` only sets the resolution of rasterized artists.
_VECTOR_FORMATS = frozenset({"pdf", "svg", "eps", "ps"})

#: Most pixels of a raster file: an A4 or US-letter page at 300 dpi fits (8.7 and 8.4
#: million). A taller figure (a grid of many σ panels) is rastered at a lower dpi, so
#: that its PNG has at most this many pixels; its PDF keeps every detail. At 300 dpi a
#: 378-cell grid's figures were 2100 × 9570 pixels, 80 MB of canvas and as much again
#: for the PNG encoder in each process drawing one, and the slowest part of the figure
#: and of its report page.
MAX_RASTER_PIXELS = 9_000_000

#: zlib level of the PNGs. Pillow's default (6) spends a third of a figure's PNG time
#: compressing harder for files 7-15 % smaller: a 9-megapixel figure of a 378-cell grid
#: encodes in 0.18 s instead of 0.27 s, at 1.7 MB instead of 1.6.
PNG_COMPRESS_LEVEL = 1


def raster_dpi(figure: Figure, dpi: int, max_pixels: int = MAX_RASTER_PIXELS) -> int:
    """``dpi``, or the lower whole dpi at which the figure has at most ``max_pixels``."""
    width, height = figure.get_size_inches()
    return _raster_dpi((width, height), dpi, max_pixels)


def _raster_dpi(inches: tuple[float, float], dpi: int, max_pixels: int) -> int:
    width, height = inches
    if width * height * dpi * dpi <= max_pixels:
        return dpi
    return max(1, math.floor(math.sqrt(max_pixels / (width * height))))


def warm_up() -> None:
    """Draw a small figure of the house style to PNG and PDF in memory, and forget it.

    Matplotlib loads fonts, builds its mathtext parser and fills its caches on a process's
    first drawing, and PDFium (:func:`png_from_pdf`) takes a moment to load. Done once in
    a job that then forks a worker per figure (:func:`regsim.parallel.run_tasks`), that
    memory is the parent's and shared by every worker, instead of built again in each.
    """
    with mpl.rc_context({**RC, **_NO_DEFAULT_LAYOUT}):
        figure = Figure(figsize=(2.0, 1.5))
        ax = figure.add_subplot()
        ax.plot([10.0, 100.0], [0.0, 1.0], marker="o", label="a")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator([10.0, 100.0]))
        ax.set_title(r"$\sigma$ = 1")
        ax.set_ylabel(r"Bias of $\hat\beta_1$")
        figure.legend()
        with _font_subsetting():
            for fmt in ("png", "pdf"):
                figure.savefig(io.BytesIO(), format=fmt, dpi=72, metadata=None)
    import pypdfium2  # noqa: F401 - loaded here, shared by the workers of png_from_pdf


@gc_paused
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
        Resolution of raster formats, lowered for a figure that would have more than
        :data:`MAX_RASTER_PIXELS` pixels (:func:`raster_dpi`).
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
    The layout is in inches, so a figure rastered at a lower dpi is the same figure,
    with fewer pixels.
    """
    path = Path(path)
    if path.suffix.lstrip(".").lower() in formats:
        path = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with _font_subsetting(bool(_VECTOR_FORMATS & {fmt.lower() for fmt in formats})):
        _save_all(figure, path, formats, dpi, written, vector_raster_dpi or dpi)
    return written


#: OpenType's layout tables (glyph substitution and positioning, and their definitions):
#: a PDF viewer does not read them, since a PDF places every glyph itself, and decoding
#: them was two thirds of the time fontTools took to subset DejaVu Sans for a PDF (about
#: 50 against 15 ms a font, two or three fonts a figure). The fonts embedded without them
#: draw the same pixels (tests/unit/test_figures.py).
LAYOUT_TABLES = ("GSUB", "GPOS", "GDEF")


#: Held while fontTools' defaults are changed (:func:`_font_subsetting`): a figure saved
#: in another thread meanwhile would otherwise put back the wrong list.
_SUBSETTING = threading.Lock()


@contextlib.contextmanager
def _font_subsetting(vector: bool = True) -> Iterator[None]:
    """For the duration: fontTools, which logs every step of a font's subsetting at INFO
    level (a hundred lines a PDF in a job's log), only its warnings; and where a vector
    format is written (``vector``), the fonts' subsets leave out :data:`LAYOUT_TABLES`.

    matplotlib builds its own ``fontTools.subset.Options``, whose tables to drop start
    from the class's ``_drop_tables_default``: the list is extended here and put back
    after. Were that attribute gone (a fontTools upgrade), fonts would be subset as
    matplotlib does by default, and a test says so.
    """
    font_logger = logging.getLogger("fontTools")
    level = font_logger.level
    font_logger.setLevel(max(level, logging.WARNING))
    options: Any = None
    dropped = None
    with _SUBSETTING if vector else contextlib.nullcontext():
        if vector:
            from fontTools import subset

            options = subset.Options
            dropped = getattr(options, "_drop_tables_default", None)
        if isinstance(dropped, list):
            options._drop_tables_default = [
                *dropped,
                *(tag for tag in LAYOUT_TABLES if tag not in dropped),
            ]
        try:
            yield
        finally:
            if isinstance(dropped, list):
                options._drop_tables_default = dropped
            font_logger.setLevel(level)


def png_from_pdf(
    pdf: str | os.PathLike[str], dpi: int = 300, max_pixels: int = MAX_RASTER_PIXELS
) -> Path:
    """Write the PNG of a figure's PDF (first page), rastered by PDFium; return its path.

    The PNG is written beside the PDF (``bias.pdf`` -> ``bias.png``), atomically, at the
    resolution :func:`save_figure` gives a figure of the page's size (``dpi``, lowered to
    keep within ``max_pixels``), on white, as RGBA (opaque), recording its dpi. The two
    files are one picture. A figure of many panels is rastered in about a third of the
    time matplotlib's Agg renderer takes to draw it again artist by artist, and without
    the figure in memory: the paper job draws each figure's PDF in one process and its
    PNG in another (:func:`regsim.paper.write_paper`).

    Parameters
    ----------
    pdf : path-like
        The figure's PDF, e.g. written by :func:`save_figure`.
    dpi : int, default 300
        Resolution, lowered as by :func:`raster_dpi`.
    max_pixels : int, default MAX_RASTER_PIXELS
        Most pixels of the PNG.

    Returns
    -------
    pathlib.Path
        The PNG written.

    Raises
    ------
    ValueError
        If the PDF has more or fewer than one page (a figure is one page).
    """
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    pdf = Path(pdf)
    document = pypdfium2.PdfDocument(pdf.read_bytes())
    try:
        if len(document) != 1:
            raise ValueError(f"{pdf}: a figure's PDF has one page, this one {len(document)}")
        page = document[0]
        try:
            # PDFium gives the page size in single precision (176.4 pt as 176.39999389...):
            # rounded back to the points matplotlib wrote, a 2.45 in high figure is
            # 735 pixels high at 300 dpi, as Agg makes it.
            inches = tuple(round(side, 4) / 72.0 for side in (page.get_width(), page.get_height()))
            resolution = _raster_dpi(inches, dpi, max_pixels)
            width, height = (math.floor(side * resolution + 1e-6) for side in inches)
            # Four bytes a pixel, as Pillow keeps an image: it reads the bitmap in place
            # (three-byte pixels it would copy, 36 MB for a 9-megapixel figure).
            bitmap = pypdfium2.PdfBitmap.new_native(
                width, height, pdfium_c.FPDFBitmap_BGRA, rev_byteorder=True
            )
            bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
            flags = pdfium_c.FPDF_REVERSE_BYTE_ORDER
            pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, flags)
            png = pdf.with_suffix(".png")
            try:
                write_atomic(
                    png,
                    lambda tmp: bitmap.to_pil().save(
                        tmp,
                        format="PNG",
                        dpi=(resolution, resolution),
                        compress_level=PNG_COMPRESS_LEVEL,
                    ),
                )
            finally:
                bitmap.close()
        finally:
            page.close()
    finally:
        document.close()
    return png


def _save_all(
    figure: Figure,
    path: Path,
    formats: Sequence[str],
    dpi: int,
    written: list[Path],
    vector_raster_dpi: int,
) -> None:
    """Write each format of :func:`save_figure`; append the paths written to ``written``,
    in the order of ``formats``.

    A layout engine lays the figure out twice in every ``savefig`` (a trial draw, then the
    draw that writes), so it is run once here and switched off while the files are
    written, then put back: every format gets the same layout at a third of the cost.
    """
    raster = raster_dpi(figure, dpi)
    with mpl.rc_context({**RC, **_NO_DEFAULT_LAYOUT}):
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
        frozen = _freeze_y_ticks(figure)
        try:
            # Raster formats first: each text keeps the renderer it was last drawn with,
            # so a PNG drawn last would hold its canvas (36 MB for a 9-megapixel figure) on
            # top of the PDF renderer's memory, and one drawn first lets it go while the
            # PDF is drawn (a drawing process peaks about 5 MB lower; same bytes).
            by_format: dict[str, Path] = {}
            for fmt in sorted(formats, key=lambda name: name in _VECTOR_FORMATS):
                target = path.with_name(f"{path.name}.{fmt}")
                options: dict[str, Any] = {"metadata": None}
                if fmt == "pdf":
                    options["metadata"] = {"CreationDate": None}
                elif fmt == "png":
                    options["pil_kwargs"] = {"compress_level": PNG_COMPRESS_LEVEL}
                resolution = vector_raster_dpi if fmt in _VECTOR_FORMATS else raster
                write_atomic(
                    target,
                    lambda tmp, fmt=fmt, options=options, resolution=resolution: figure.savefig(
                        tmp, format=fmt, dpi=resolution, **options
                    ),
                )
                by_format[fmt] = target
        finally:
            written.extend(by_format[fmt] for fmt in formats if fmt in by_format)
            for axis, locator, formatter in reversed(frozen):  # shared axes share a ticker
                axis.set_major_locator(locator)
                axis.set_major_formatter(formatter)
            if engine is not None:
                figure.set_layout_engine(engine)


def _freeze_y_ticks(figure: Figure) -> list[tuple[Axis, Locator, Formatter]]:
    """Fix each panel's y ticks and their labels where they are; return what to put back.

    Every drawing of an axis locates its ticks and formats their labels again, once per
    format written: after the layout they no longer change, so each panel's plain numeric
    y axis (a :class:`~matplotlib.ticker.ScalarFormatter` without an offset) gets a
    :class:`~matplotlib.ticker.FixedLocator` and :class:`~matplotlib.ticker.FixedFormatter`
    of the same ticks and labels. The files are the same bytes, about 5 % sooner for a
    figure of many panels.
    """
    frozen = []
    for ax in figure.axes:
        axis = ax.yaxis
        formatter = axis.get_major_formatter()
        if type(formatter) is not ScalarFormatter:
            continue
        locator = axis.get_major_locator()
        ticks = axis.get_majorticklocs()
        labels = formatter.format_ticks(ticks)
        if formatter.get_offset():
            continue
        frozen.append((axis, locator, formatter))
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FixedFormatter(labels))
    return frozen
