"""A panel's y axis drawn as one artist: its tick marks, tick labels and label.

matplotlib gives every tick an object of five artists (two marks, a grid line, two
labels), makes them when the axis is first measured and updates each of them at every
measurement and draw: in a figure of 72 small panels, 740 ticks took about a quarter of
the figure's time. :class:`LeftTicks` draws what those ticks drew — marks where the
axis' locators put them, labels its formatter writes, the axis label left of the labels
— from the same locators and formatter, with one reusable text and one line of markers
per kind of mark. The axis itself is left with no ticks, a hidden label that keeps its
text (``get_ylabel``) and properties, and its offset text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import matplotlib as mpl
import numpy as np
from matplotlib.artist import Artist, allow_rasterization
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.lines import Line2D
from matplotlib.markers import TICKLEFT
from matplotlib.text import Text
from matplotlib.ticker import (
    FixedLocator,
    Formatter,
    Locator,
    LogLocator,
    NullFormatter,
    NullLocator,
)
from matplotlib.transforms import Bbox

__all__ = ["LeftTicks", "draw_left_ticks"]


def draw_left_ticks(ax: Axes) -> LeftTicks | None:
    """Let a :class:`LeftTicks` draw the y axis of ``ax``; return it.

    Call it last, under the rcParams the figure is drawn with, once the axis has its
    scale, locators, formatter, label and tick settings: later changes to those, per-tick
    label properties and ``Figure.align_ylabels`` are not drawn. Returns None, leaving
    matplotlib's ticks, where the axis asks for what it does not draw: ticks on the right
    or pointing in, grid lines, labelled minor ticks, minor ticks placed from the major
    ones (``AutoMinorLocator``), an axis drawn above its spine, or a y axis shared with
    other panels (they share the locator and formatter this replaces).
    """
    axis = ax.yaxis
    # The axis' own tick settings (tick_params) beyond where ticks and labels go are not
    # drawn here: an axis with any is left to matplotlib.
    plain = {"left": True, "right": False, "labelleft": True, "labelright": False, "gridOn": False}
    if (
        mpl.rcParams["ytick.direction"] != "out"
        or len(ax.get_shared_y_axes().get_siblings(ax)) > 1
        or any(axis.get_tick_params(which=which) != plain for which in ("major", "minor"))
        or not isinstance(axis.get_minor_formatter(), NullFormatter)
        or type(axis.get_minor_locator()) not in (NullLocator, LogLocator, FixedLocator)
        or axis.get_label_position() != "left"
        # Drawn before the spine, which matplotlib draws first where both have its zorder.
        or axis.get_zorder() >= ax.spines["left"].get_zorder()
    ):
        return None
    artist = LeftTicks(ax)
    ax.add_artist(artist)
    return artist


class LeftTicks(Artist):
    """The left y axis of ``ax``: tick marks, tick labels and label.

    Ticks are located, filtered to the view and labelled as matplotlib's axis does it
    (minor ticks where a major one is left out; all major ticks formatted together, so
    that a formatter sees the same values), every time the panel is measured or drawn.
    The axis label is the axis' own, drawn here where matplotlib would place it. The
    offset text stays the axis' own: its formatter gives no labels but the offset of the
    formatter it replaced (:class:`_OffsetOnly`), so matplotlib places, draws and
    measures it, and lifts a title above it, as with its own ticks.
    """

    def __init__(self, ax: Axes) -> None:
        super().__init__()
        rc = mpl.rcParams
        axis = ax.yaxis
        self._ax = ax
        self._major = axis.get_major_locator()
        self._minor = axis.get_minor_locator()
        self._formatter = axis.get_major_formatter()
        self._sizes = (rc["ytick.major.size"], rc["ytick.minor.size"])
        # Labels sit the tick's length and pad left of the axis, as matplotlib's do; a
        # minor tick's empty label is a point there too, which the axis label clears.
        pad = rc["ytick.major.pad"] + rc["ytick.major.size"]
        tick = ax.get_yaxis_transform(which="tick1")
        text_transform, va, ha = ax.get_yaxis_text1_transform(pad)
        self._minor_anchor = ax.get_yaxis_text1_transform(
            rc["ytick.minor.pad"] + rc["ytick.minor.size"]
        )[0]
        color = rc["ytick.color"]
        label_color = rc["ytick.labelcolor"]
        self._marks = [
            Line2D(
                [],
                [],
                linestyle="none",
                marker=TICKLEFT,
                markersize=size,
                markeredgewidth=rc[f"ytick.{kind}.width"],
                color=color,
                transform=tick,
                clip_on=False,
            )
            for kind, size in zip(("major", "minor"), self._sizes, strict=True)
        ]
        self._text = Text(
            0.0,
            0.0,
            fontsize=rc["ytick.labelsize"],
            color=color if label_color == "inherit" else label_color,
            verticalalignment=va,
            horizontalalignment=ha,
            transform=text_transform,
            clip_on=False,
        )
        for part in (*self._marks, self._text):
            part.set_figure(ax.get_figure(root=False))
        self.set_zorder(axis.get_zorder())
        self.set_clip_on(False)
        axis.set_major_locator(NullLocator())
        axis.set_minor_locator(NullLocator())
        axis.set_major_formatter(_OffsetOnly(self._formatter, self._major))
        # Kept in the axis (get_ylabel, its properties), drawn here left of these labels.
        axis.label.set_visible(False)

    def _ticks(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Major ticks in view and their labels, minor ticks in view."""
        axis = self._ax.yaxis
        low, high = axis.get_view_interval()
        transform = axis.get_transform()
        major = np.asarray(self._major(), dtype=float)
        labels = self._formatter.format_ticks(major)
        minor = np.asarray(self._minor(), dtype=float)
        ends = np.sort(transform.transform(np.array([low, high], dtype=float)))
        if len(minor) and len(major) and axis.remove_overlapping_locs:
            # matplotlib leaves out the minor ticks where a major tick is.
            tol = (ends[1] - ends[0]) * 1e-5
            near = np.isclose(
                transform.transform(minor)[:, None],
                transform.transform(major)[None, :],
                atol=tol,
                rtol=0,
            ).any(axis=1)
            minor = minor[~near]
        shown = _in_view(transform, major, ends)
        return (
            major[shown],
            [label for label, keep in zip(labels, shown, strict=True) if keep],
            minor[_in_view(transform, minor, ends)],
        )

    def _place(self, renderer: RendererBase) -> _Placed:
        """Place every part for the panel as it now is: the tick marks, and the axis
        label (where matplotlib places it itself, unless it has fixed coordinates)."""
        major, labels, minor = self._ticks()
        dpi = self._ax.get_figure(root=True).dpi
        for marks, locs in zip(self._marks, (major, minor), strict=True):
            marks.set_data(np.zeros(len(locs)), locs)
        # Every label's box, an empty one's as the point it is at: matplotlib places the
        # axis label left of them all; the extents leave the empty ones out.
        anchors = []
        for loc, label in zip(major, labels, strict=True):
            self._text.set_text(label)
            self._text.set_y(loc)
            anchors.append(self._text.get_window_extent(renderer))
        points = list(anchors)
        if len(minor):
            x, y = self._minor_anchor.transform((0.0, minor[0]))
            points.append(Bbox.from_bounds(x, y, 0.0, 0.0))
        # The spine and the ticks beyond it, as matplotlib's left spine measures itself.
        spine = self._ax.spines["left"].get_window_extent(renderer).frozen()
        reach = [size for size, locs in zip(self._sizes, (major, minor), strict=True) if len(locs)]
        if reach:
            spine.x0 -= max(reach) * dpi / 72.0
        axis = self._ax.yaxis
        # set_label_coords fixes the label's place, and matplotlib leaves it alone: the
        # one private attribute read here (the label-coordinates picture test fails if
        # a matplotlib release renames it).
        if getattr(axis, "_autolabelpos", True):
            axis.label.set_x(Bbox.union([*points, spine]).x0 - axis.labelpad * dpi / 72.0)
        shown = [(loc, label) for loc, label in zip(major, labels, strict=True) if label]
        boxes = [box for box, label in zip(anchors, labels, strict=True) if label]
        return _Placed(shown, boxes, spine)

    def _showing(self) -> bool:
        return self.get_visible() and self._ax.axison and self._ax.yaxis.get_visible()

    @allow_rasterization
    def draw(self, renderer: RendererBase) -> None:
        if not self._showing():
            return
        placed = self._place(renderer)
        for marks in self._marks:
            if len(marks.get_ydata()):
                marks.draw(renderer)
        for loc, label in placed.labels:
            self._text.set_text(label)
            self._text.set_y(loc)
            self._text.draw(renderer)
        with _shown(self._ax.yaxis.label) as label:
            label.draw(renderer)
        self.stale = False

    def get_window_extent(self, renderer: RendererBase | None = None) -> Bbox:
        return self._extent(renderer, for_layout=False)

    def get_tightbbox(self, renderer: RendererBase | None = None) -> Bbox:
        """The extent a layout engine makes room for: the axis label's height counts as
        1 pixel at its middle, as in matplotlib's ``Axis.get_tightbbox`` for layouts (a
        label taller than its panel does not push the rows apart).

        An artist is not told whether a layout or ``savefig(bbox_inches="tight")`` asks:
        the latter, too, sees the label 1 pixel tall, which trims it only where it
        reaches beyond everything else of the figure, above or below.
        """
        return self._extent(renderer, for_layout=True)

    def _extent(self, renderer: RendererBase | None, *, for_layout: bool) -> Bbox:
        axis, spine = self._ax.yaxis, self._ax.spines["left"]
        if not self._showing():
            return Bbox.null()
        if renderer is None:
            renderer = self._ax.get_figure(root=True)._get_renderer()
        placed = self._place(renderer)
        extents = []
        # The spine with the tick marks beyond it, as matplotlib's spine measures itself
        # with the axis' ticks; the labels as the axis measures them.
        if spine.get_visible() and (spine.get_in_layout() or not for_layout):
            extents.append(placed.spine)
        if axis.get_in_layout() or not for_layout:
            extents.extend(placed.boxes)
            if axis.label.get_text():
                with _shown(axis.label) as label:
                    box = label.get_window_extent(renderer).frozen()
                if for_layout and box.height > 0:
                    box.y0 = (box.y0 + box.y1) / 2.0 - 0.5
                    box.y1 = box.y0 + 1.0
                extents.append(box)
        return Bbox.union(extents) if extents else Bbox.null()

    def get_children(self) -> list[Any]:
        return [*self._marks, self._text]


class _OffsetOnly(Formatter):
    """The axis' formatter under :class:`LeftTicks`: no labels, and the offset text of
    ``formatter`` for the ticks ``locator`` puts (e.g. ``1e6`` above the axis)."""

    def __init__(self, formatter: Formatter, locator: Locator) -> None:
        self._formatter = formatter
        self._locator = locator

    def __call__(self, x: float, pos: int | None = None) -> str:
        return ""

    def format_ticks(self, values: Any) -> list[str]:
        return [""] * len(values)

    def get_offset(self) -> str:
        self._formatter.format_ticks(np.asarray(self._locator(), dtype=float))
        return self._formatter.get_offset()


@contextmanager
def _shown(text: Text) -> Iterator[Text]:
    """``text`` visible for the block: the axis label, hidden from the axis, which would
    draw and measure it where its tick labels are not."""
    text.set_visible(True)
    try:
        yield text
    finally:
        text.set_visible(False)


class _Placed(NamedTuple):
    """Where :meth:`LeftTicks._place` put the parts of a y axis."""

    labels: list[tuple[float, str]]  # (tick, label) of each label drawn
    boxes: list[Bbox]  # their extents
    spine: Bbox  # the left spine's, with the tick marks beyond it


def _in_view(transform: Any, locs: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which of ``locs`` lie in the view ``ends`` (transformed), as matplotlib decides it."""
    if not len(locs):
        return np.zeros(0, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        at = transform.transform(locs)
    # matplotlib's _interval_contains_close: within the interval to 1e-10 of its width.
    tol = (ends[1] - ends[0]) * 1e-10
    return (at >= ends[0] - tol) & (at <= ends[1] + tol)
