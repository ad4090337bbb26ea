"""A panel's y axis drawn by one artist (regsim.figures.yticks) looks as matplotlib's does."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from regsim.figures import panels
from regsim.figures.layout import WrappedLayout
from regsim.figures.style import RC
from regsim.figures.yticks import LeftTicks, draw_left_ticks


def _linear(ax: Axes) -> None:
    ax.plot([10, 100, 1000], [0.91, 0.95, 0.97])
    ax.set_ylabel("Coverage of\n" + r"$\hat\beta_1$")


def _log(ax: Axes) -> None:
    ax.plot([10, 100, 1000], [0.4, 1.3, 7.0])
    panels.log_axis(ax)
    ax.set_ylabel("Relative efficiency")


def _offset(ax: Axes) -> None:
    # A range the ScalarFormatter writes with an offset above the axis.
    ax.plot([10, 100, 1000], [1e6 + 1.0, 1e6 + 2.0, 1e6 + 3.0])
    ax.set_ylabel("Offset")


def _tall_label(ax: Axes) -> None:
    # A label taller than its panel: the layout must not push the rows apart for it.
    ax.plot([10, 100, 1000], [-1.0, 0.0, 2.5])
    ax.set_ylabel("Relative error of model SE (%) of a long name\n" + r"$\hat\beta_0$")


def _limits(ax: Axes) -> None:
    # Ticks the locator puts beyond the view are not drawn, but formatted with the rest.
    ax.plot([10, 100, 1000], [0.0, 0.5, 1.0])
    ax.set_ylim(0.013, 0.987)


def _padded(ax: Axes) -> None:
    ax.plot([10, 100, 1000], [3.0, 2.0, 1.0])
    ax.set_ylabel("Padded", labelpad=9.0)


def _offset_under_title(ax: Axes) -> None:
    # matplotlib lifts an automatic title above the offset text it would overlap.
    _offset(ax)
    ax.set_title("A title over the offset", loc="left")


def _offset_hidden(ax: Axes) -> None:
    _offset(ax)
    ax.yaxis.get_offset_text().set_visible(False)


def _label_settings(ax: Axes) -> None:
    # The axis' own label is drawn: its rotation, alpha and place along the axis hold.
    ax.plot([10, 100, 1000], [3.0, 2.0, 1.0])
    ax.set_ylabel("Turned", rotation=0, alpha=0.5, loc="top")


def _label_coords(ax: Axes) -> None:
    ax.plot([10, 100, 1000], [3.0, 2.0, 1.0])
    ax.set_ylabel("Fixed")
    ax.yaxis.set_label_coords(-0.3, 0.2)


def _minor_points(ax: Axes) -> None:
    # No major label: the minor ticks' empty labels, further out, place the axis label.
    ax.plot([10, 100, 1000], [0.0, 0.01, 0.02])
    ax.yaxis.set_major_formatter(mpl.ticker.NullFormatter())
    ax.yaxis.set_minor_locator(mpl.ticker.FixedLocator([0.0025, 0.0075, 0.0125]))
    ax.set_ylabel("Minor")


def _overlapping_minor(ax: Axes) -> None:
    _log(ax)
    ax.yaxis.remove_overlapping_locs = False


def _no_spine(ax: Axes) -> None:
    ax.plot([10, 100, 1000], [3.0, 2.0, 1.0])
    ax.yaxis.set_major_formatter(mpl.ticker.NullFormatter())
    ax.spines["left"].set_visible(False)


def _out_of_layout(ax: Axes) -> None:
    _linear(ax)
    ax.yaxis.set_in_layout(False)


def _draw(setup: Callable[[Axes], None], *, ours: bool, wrapped: bool) -> np.ndarray:
    with mpl.rc_context(RC):
        if wrapped:
            figure = Figure(figsize=(4.0, 3.0), dpi=100, layout=WrappedLayout())
            spec = figure.add_gridspec(2, 2)
            axes = [figure.add_subplot(spec[i, j]) for i in range(2) for j in range(2)]
        else:
            figure = Figure(figsize=(4.0, 3.0), dpi=100, layout="constrained")
            axes = list(figure.subplots(2, 2).flat)
        for ax in axes:
            setup(ax)
            ax.set_xscale("log")
            if ours:
                assert draw_left_ticks(ax) is not None
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy()


@pytest.mark.parametrize(
    "setup",
    [
        _linear,
        _log,
        _offset,
        _tall_label,
        _limits,
        _padded,
        _offset_under_title,
        _offset_hidden,
        _label_settings,
        _label_coords,
        _minor_points,
        _overlapping_minor,
        _no_spine,
        _out_of_layout,
    ],
)
@pytest.mark.parametrize("wrapped", [False, True])
def test_the_y_axis_drawn_as_one_artist_is_the_same_picture(
    setup: Callable[[Axes], None], wrapped: bool
) -> None:
    theirs = _draw(setup, ours=False, wrapped=wrapped)
    ours = _draw(setup, ours=True, wrapped=wrapped)
    assert ours.shape == theirs.shape
    assert (ours != theirs).any(axis=2).sum() == 0


def test_the_axis_keeps_its_label_text_and_draws_no_ticks_of_its_own() -> None:
    with mpl.rc_context(RC):
        figure = Figure()
        ax = figure.add_subplot()
        _linear(ax)
        artist = draw_left_ticks(ax)
        figure.canvas.draw()
    assert isinstance(artist, LeftTicks)
    assert ax.get_ylabel().startswith("Coverage of")
    assert not ax.yaxis.label.get_visible()
    assert len(ax.yaxis.get_majorticklocs()) == 0
    assert len(ax.yaxis.get_minorticklocs()) == 0


@pytest.mark.parametrize(
    "change",
    [
        lambda ax: ax.yaxis.tick_right(),
        lambda ax: ax.tick_params(axis="y", labelleft=False),
        lambda ax: ax.grid(True, axis="y"),
        lambda ax: ax.yaxis.set_label_position("right"),
        lambda ax: ax.yaxis.set_minor_formatter(mpl.ticker.ScalarFormatter()),
    ],
)
def test_an_axis_asking_for_what_it_does_not_draw_keeps_matplotlib_s_ticks(
    change: Callable[[Axes], None],
) -> None:
    with mpl.rc_context(RC):
        figure = Figure()
        ax = figure.add_subplot()
        _linear(ax)
        change(ax)
        locator = ax.yaxis.get_major_locator()
        assert draw_left_ticks(ax) is None
    assert ax.yaxis.get_major_locator() is locator
    assert not any(isinstance(artist, LeftTicks) for artist in ax.artists)


def test_shared_y_axes_keep_matplotlib_s_ticks() -> None:
    # They share one locator: replacing it for one panel would take the others' ticks.
    with mpl.rc_context(RC):
        figure = Figure()
        left, right = figure.subplots(1, 2, sharey=True)
        _linear(left)
        assert draw_left_ticks(left) is None
        assert draw_left_ticks(right) is None
        figure.canvas.draw()
    assert len(right.yaxis.get_majorticklocs()) > 0


@pytest.mark.parametrize(
    "rc",
    [
        {"ytick.direction": "in"},
        # Minor ticks placed from the major ticks, which the axis no longer has.
        {"ytick.minor.visible": True},
        # The axis drawn above its spine, at the spine's zorder.
        {"axes.axisbelow": False},
    ],
)
def test_rcparams_it_does_not_draw_keep_matplotlib_s_ticks(rc: dict) -> None:
    with mpl.rc_context({**RC, **rc}):
        figure = Figure()
        ax = figure.add_subplot()
        _linear(ax)
        assert draw_left_ticks(ax) is None
