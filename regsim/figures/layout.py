"""Where the panels of a grid figure go when σ has more levels than fit side by side.

Up to :data:`MAX_PANEL_COLUMNS` σ panels sit side by side, one line of panels per row,
laid out by matplotlib's constrained layout. More are wrapped onto further lines
(:class:`PanelWrap`), so that a panel keeps a readable width however many σ the grid has,
and placed by :class:`WrappedLayout`: constrained layout measures every panel twice at
each layout and its cost grows with the number of panels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import LayoutEngine
from matplotlib.transforms import Bbox

from .yticks import LeftTicks

#: Most σ panels side by side; more are wrapped onto further lines (:class:`PanelWrap`).
MAX_PANEL_COLUMNS = 4


@dataclass(frozen=True)
class PanelWrap:
    """Where the σ panels of a row go: ``lines`` lines of at most ``columns`` panels.

    Row ``i``'s panels take grid rows ``i * lines`` to ``i * lines + lines - 1``, σ in
    reading order. Unwrapped (one line), the grid is rows × σ as it always was.
    """

    lines: int
    columns: int

    @classmethod
    def of(cls, count: int) -> PanelWrap:
        """The wrap of ``count`` σ panels: as few lines as fit, filled evenly."""
        lines = max(1, math.ceil(count / MAX_PANEL_COLUMNS))
        return cls(lines, max(1, math.ceil(count / lines)))

    @property
    def wrapped(self) -> bool:
        """Whether the σ panels of a row take more than one line."""
        return self.lines > 1

    def cell(self, i: int, j: int) -> tuple[int, int]:
        """Grid row and column of the panel of row ``i`` and σ ``j``."""
        return i * self.lines + j // self.columns, j % self.columns

    def bottom(self, rows: int, sigmas: int) -> list[tuple[int, int]]:
        """(row, σ) of the panels with no panel below them, left to right."""
        if not self.wrapped:
            return [(rows - 1, j) for j in range(sigmas)]
        return [(rows - 1, j) for j in range(sigmas) if j + self.columns >= sigmas]


def panel_axes(figure: Figure, rows: int, sigmas: int, wrap: PanelWrap) -> np.ndarray:
    """The axes of the panels, indexed [row, σ]; unwrapped, their ``n`` axes are shared."""
    if not wrap.wrapped:
        return figure.subplots(rows, sigmas, sharex=True, squeeze=False)
    # Unshared: matplotlib walks a whole group of shared axes whenever one of them asks
    # for its limits, so sharing costs time in the square of the number of panels.
    spec = figure.add_gridspec(rows * wrap.lines, wrap.columns)
    axes = np.empty((rows, sigmas), dtype=object)
    for i in range(rows):
        for j in range(sigmas):
            axes[i, j] = figure.add_subplot(spec[wrap.cell(i, j)])
    return axes


class WrappedLayout(LayoutEngine):
    """Places equal panels on a grid in one pass, around the figure's legends.

    The legend at the top of the figure and the note under it keep their heights; each
    grid row gets its panels' title above and their ``n`` tick labels (or tick marks)
    below; each grid column gets its panels' widest ``y`` tick labels and label on the
    left, and on the right what the ``n`` tick labels reach past the panel. Every panel
    has the same size. Heights are set before the ``y`` tick labels are measured, since
    the number of ``y`` ticks follows a panel's height.

    Parameters
    ----------
    pad : float, default 0.03
        Space in inches around each panel's decorations (as constrained layout's
        ``w_pad`` and ``h_pad``).
    space : float, default 0.04
        Space between panels beyond that, as a fraction of a panel's width or height (as
        constrained layout's ``wspace`` and ``hspace``).
    """

    _adjust_compatible = False
    _colorbar_gridspec = False

    def __init__(self, pad: float = 0.03, space: float = 0.04) -> None:
        super().__init__()
        self._pad = pad
        self._space = space

    def execute(self, fig: Figure) -> None:
        """Place the panels of ``fig`` (axes on a grid spec) for its current size and dpi."""
        panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_subplotspec() is not None]
        if not panels:
            return
        # Text extents need a renderer at the figure's dpi, not a canvas of its size.
        renderer = RendererAgg(1, 1, fig.dpi)
        width, height = fig.bbox.width, fig.bbox.height
        pad = self._pad * fig.dpi
        rows, columns = panels[0].get_subplotspec().get_gridspec().get_geometry()
        cells = {ax: _cell(ax) for ax in panels}
        # From the grid spec's places, so that laying a figure out again changes nothing.
        for ax in panels:
            ax.set_position(ax.get_subplotspec().get_position(fig))

        top, bottom = pad, pad
        for legend in fig.legends:
            box = legend.get_window_extent(renderer)
            if box.y0 > height / 2:
                top = max(top, height - box.y0 + pad)
            else:
                bottom = max(bottom, box.y1 + pad)
        above, below = [0.0] * rows, [0.0] * rows
        for ax, (row, _) in cells.items():
            above[row] = max(above[row], _above(ax, renderer))
            below[row] = max(below[row], _below(ax, renderer))
        panel_height = (height - top - bottom - sum(above) - sum(below) - 2 * pad * rows) / (
            rows + (rows - 1) * self._space
        )
        y_top, y = [], height - top
        for row in range(rows):
            y -= pad + above[row]
            y_top.append(y)
            y -= panel_height + below[row] + pad + self._space * panel_height
        for ax, (row, _) in cells.items():
            box = ax.get_position(original=True)
            _place(ax, box.x0 * width, y_top[row] - panel_height, box.width * width, panel_height)

        # The y tick labels follow the panel's height, set above, and not its width:
        # measured once, now. What the n tick labels reach past the right edge shrinks as
        # the panel widens: measured again at the widths of the first pass, from the same
        # start every time.
        left = [0.0] * columns
        for ax, (_, column) in cells.items():
            left[column] = max(left[column], _left(ax, renderer))
        panel_width = 0.0
        for _ in range(2):
            right = [0.0] * columns
            for ax, (_, column) in cells.items():
                right[column] = max(right[column], _right(ax, renderer))
            panel_width = (width - sum(left) - sum(right) - 2 * pad * columns) / (
                columns + (columns - 1) * self._space
            )
            x_left, x = [], 0.0
            for column in range(columns):
                x += pad + left[column]
                x_left.append(x)
                x += panel_width + right[column] + pad + self._space * panel_width
            for ax, (row, column) in cells.items():
                _place(ax, x_left[column], y_top[row] - panel_height, panel_width, panel_height)


def _cell(ax: Axes) -> tuple[int, int]:
    """Grid row and column of a panel."""
    spec = ax.get_subplotspec()
    return spec.rowspan.start, spec.colspan.start


def _place(ax: Axes, x0: float, y0: float, w: float, h: float) -> None:
    """Put ``ax`` at (x0, y0, w, h) in pixels of its figure."""
    figure = ax.get_figure(root=True)
    width, height = figure.bbox.width, figure.bbox.height
    ax.set_position(Bbox.from_bounds(x0 / width, y0 / height, w / width, h / height))


def _labelled(ax: Axes) -> bool:
    """Whether the panel's ``n`` axis has ticks of its own or a label to measure."""
    return bool(ax.get_xlabel()) or len(ax.xaxis.get_majorticklocs()) > 0


def _above(ax: Axes, renderer: RendererAgg) -> float:
    """Height in pixels of the title above the panel."""
    if not ax.get_title():
        return 0.0
    return max(0.0, ax.title.get_window_extent(renderer).y1 - ax.bbox.y1)


def _below(ax: Axes, renderer: RendererAgg) -> float:
    """Height in pixels of what hangs below the panel: tick labels and label, or ticks."""
    ticks = renderer.points_to_pixels(mpl.rcParams["xtick.major.size"])
    if not _labelled(ax):
        return ticks
    box = ax.xaxis.get_tightbbox(renderer)
    return ticks if box is None else max(ticks, ax.bbox.y0 - box.y0)


def _left(ax: Axes, renderer: RendererAgg) -> float:
    """Width in pixels of the ``y`` tick labels and label left of the panel (drawn by the
    axis, or by a :class:`~regsim.figures.yticks.LeftTicks`)."""
    boxes = [
        artist.get_window_extent(renderer) for artist in ax.artists if isinstance(artist, LeftTicks)
    ]
    box = ax.yaxis.get_tightbbox(renderer)
    if box is not None:
        boxes.append(box)
    # An extent of nothing (Bbox.null(), infinite the wrong way round) takes no room.
    boxes = [box for box in boxes if 0 < box.width < np.inf]
    return max(0.0, ax.bbox.x0 - Bbox.union(boxes).x0) if boxes else 0.0


def _right(ax: Axes, renderer: RendererAgg) -> float:
    """Width in pixels of what the ``n`` tick labels reach right of the panel."""
    if not _labelled(ax):
        return 0.0
    box = ax.xaxis.get_tightbbox(renderer)
    return 0.0 if box is None else max(0.0, box.x1 - ax.bbox.x1)
