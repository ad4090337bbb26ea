"""A panel's y axis drawn as one artist: its tick marks, tick labels and label.

matplotlib gives every tick an object of five artists (two marks, a grid line, two
labels), makes them when the axis is first measured and updates each of them at every
measurement and draw: in a figure of 72 small panels, 740 ticks took about a quarter of
the figure's time. :class:`LeftTicks` draws what those ticks drew — marks where the
axis' locators put them, labels its formatter writes, the axis label left of the labels
— from the same locators and formatter, with one reusable text and one line of markers
per kind of mark. The axis itself is left with no ticks and an invisible label (whose
text ``get_ylabel`` still returns).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import matplotlib as mpl
import numpy as np
from matplotlib.artist import Artist, allow_rasterization
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.lines import Line2D
from matplotlib.markers import TICKLEFT
from matplotlib.text import Text
from matplotlib.ticker import NullFormatter, NullLocator
from matplotlib.transforms import Bbox, IdentityTransform, blended_transform_factory

__all__ = ["LeftTicks", "draw_left_ticks"]


def draw_left_ticks(ax: Axes) -> LeftTicks | None:
    """Let a :class:`LeftTicks` draw the y axis of ``ax``; return it.

    Call it once the axis has its scale, locators, formatter and label. Returns None,
    leaving matplotlib's ticks, where the rcParams or the axis ask for what it does not
    draw (ticks on the right, ticks pointing in, labelled minor ticks) and on a y axis
    shared with other panels.
    """
    rc = mpl.rcParams
    axis = ax.yaxis
    # The axis' own tick settings (tick_params) beyond where ticks and labels go are not
    # drawn here: an axis with any is left to matplotlib.
    plain = {"left": True, "right": False, "labelleft": True, "labelright": False, "gridOn": False}
    if (
        rc["ytick.direction"] != "out"
        # Shared y axes share one locator and formatter, which this replaces.
        or len(ax.get_shared_y_axes().get_siblings(ax)) > 1
        or any(axis.get_tick_params(which=which) != plain for which in ("major", "minor"))
        or not isinstance(axis.get_minor_formatter(), NullFormatter)
        or axis.get_label_position() != "left"
    ):
        return None
    artist = LeftTicks(ax)
    ax.add_artist(artist)
    return artist


class LeftTicks(Artist):
    """The left y axis of ``ax``: tick marks, tick labels, offset text and label.

    Ticks are located, filtered to the view and labelled as matplotlib's axis does it
    (minor ticks where a major one is left out; all major ticks formatted together, so
    that a formatter sees the same values), every time the panel is measured or drawn.
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
        # Labels sit the tick's length and pad left of the axis, as matplotlib's do.
        pad = rc["ytick.major.pad"] + rc["ytick.major.size"]
        tick = ax.get_yaxis_transform(which="tick1")
        text_transform, va, ha = ax.get_yaxis_text1_transform(pad)
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
        offset = axis.offsetText
        self._offset = Text(
            0.0,
            0.0,
            fontproperties=offset.get_fontproperties(),
            color=offset.get_color(),
            verticalalignment="baseline",
            horizontalalignment="left",
            transform=blended_transform_factory(ax.transAxes, IdentityTransform()),
            clip_on=False,
        )
        self._label = Text(
            0.0,
            0.5,
            verticalalignment="bottom",
            horizontalalignment="center",
            rotation="vertical",
            rotation_mode="anchor",
            transform=blended_transform_factory(IdentityTransform(), ax.transAxes),
            clip_on=False,
        )
        for part in (*self._marks, self._text, self._offset, self._label):
            part.set_figure(ax.get_figure(root=False))
        self.set_zorder(axis.get_zorder())
        self.set_clip_on(False)
        axis.set_major_locator(NullLocator())
        axis.set_minor_locator(NullLocator())
        axis.set_major_formatter(NullFormatter())
        # Kept in the axis (get_ylabel), drawn here, left of these labels.
        axis.label.set_visible(False)

    def _ticks(self) -> tuple[np.ndarray, list[str], np.ndarray, str]:
        """Major ticks in view and their labels, minor ticks in view, the offset text."""
        axis = self._ax.yaxis
        low, high = axis.get_view_interval()
        transform = axis.get_transform()
        major = np.asarray(self._major(), dtype=float)
        labels = self._formatter.format_ticks(major)
        offset = self._formatter.get_offset()
        minor = np.asarray(self._minor(), dtype=float)
        ends = np.sort(transform.transform(np.array([low, high], dtype=float)))
        if len(minor) and len(major):
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
            offset,
        )

    def _place(self, renderer: RendererBase) -> _Placed:
        """Place every part for the panel as it now is (the tick marks, the offset text,
        the axis label)."""
        major, labels, minor, offset = self._ticks()
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
        # The spine and the ticks beyond it, as matplotlib's left spine measures itself.
        spine = self._ax.spines["left"].get_window_extent(renderer).frozen()
        reach = [size for size, locs in zip(self._sizes, (major, minor), strict=True) if len(locs)]
        if reach:
            spine.x0 -= max(reach) * dpi / 72.0
        parts: list[Text] = []
        self._offset.set_text(offset)
        self._offset.set_y(self._ax.bbox.ymax + self._ax.yaxis.OFFSETTEXTPAD * dpi / 72.0)
        if offset:
            parts.append(self._offset)
        axis_label = self._ax.yaxis.label
        self._label.set_text(axis_label.get_text())
        self._label.set_fontproperties(axis_label.get_fontproperties())
        self._label.set_color(axis_label.get_color())
        self._label.set_x(Bbox.union([*anchors, spine]).x0 - self._ax.yaxis.labelpad * dpi / 72.0)
        if axis_label.get_text():
            parts.append(self._label)
        shown = [(loc, label) for loc, label in zip(major, labels, strict=True) if label]
        boxes = [box for box, label in zip(anchors, labels, strict=True) if label]
        return _Placed(shown, boxes, spine, parts)

    @allow_rasterization
    def draw(self, renderer: RendererBase) -> None:
        if not (self.get_visible() and self._ax.axison and self._ax.yaxis.get_visible()):
            return
        placed = self._place(renderer)
        for marks in self._marks:
            if len(marks.get_ydata()):
                marks.draw(renderer)
        for loc, label in placed.labels:
            self._text.set_text(label)
            self._text.set_y(loc)
            self._text.draw(renderer)
        for part in placed.parts:
            part.draw(renderer)
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
        if renderer is None:
            renderer = self._ax.get_figure(root=True)._get_renderer()
        placed = self._place(renderer)
        extents = [*placed.boxes, placed.spine]
        for part in placed.parts:
            box = part.get_window_extent(renderer).frozen()
            if for_layout and part is self._label and box.height > 0:
                box.y0 = (box.y0 + box.y1) / 2.0 - 0.5
                box.y1 = box.y0 + 1.0
            extents.append(box)
        return Bbox.union(extents)

    def get_children(self) -> list[Any]:
        return [*self._marks, self._text, self._offset, self._label]


class _Placed(NamedTuple):
    """Where :meth:`LeftTicks._place` put the parts of a y axis."""

    labels: list[tuple[float, str]]  # (tick, label) of each label drawn
    boxes: list[Bbox]  # their extents
    spine: Bbox  # the left spine's, with the tick marks beyond it
    parts: list[Text]  # the offset text and the axis label, where they have text


def _in_view(transform: Any, locs: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which of ``locs`` lie in the view ``ends`` (transformed), as matplotlib decides it."""
    if not len(locs):
        return np.zeros(0, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        at = transform.transform(locs)
    # matplotlib's _interval_contains_close: within the interval to 1e-10 of its width.
    tol = (ends[1] - ends[0]) * 1e-10
    return (at >= ends[0] - tol) & (at <= ends[1] + tol)
