"""Tests of the estimate-level figures: estimate against model SE, and Bland–Altman panels.

The replicate fits are made by the package itself (``draw`` then ``fit_table``), so the
figures are checked on the very table the workflow hands them.
"""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from scipy import stats

from regsim import figures
from regsim.design import Cell, Design, Prior
from regsim.errors import InputDataError
from regsim.fits import fit_table
from regsim.simulate import draw
from regsim.specs import FitSpec

BETA = (10.0, 3.8987, 10.1777)
NULL = (10.0, 0.0, 10.1777)
PRIORS = (
    Prior("weak", (0.0, 0.0, 0.0), (100.0, 100.0, 100.0)),
    Prior("informative", BETA, (1.0, 1.0, 1.0)),
)
SPEC = FitSpec(("ols", "mle", "map"), PRIORS, 0.05)


def replicate_fits(replications: int = 100, **cell: object) -> pd.DataFrame:
    """The fits of OLS, MLE and MAP (weak, informative prior) on one cell's replicates."""
    settings = {"n": 20, "sigma": 5.0, "beta": BETA, **cell}
    return fit_table(draw(Cell(**settings), 3, 0, replications), SPEC)


@pytest.fixture(scope="module")
def fits() -> pd.DataFrame:
    return replicate_fits()


def panels(figure: Figure) -> list[Axes]:
    return [ax for ax in figure.axes if ax.get_visible()]


def points(ax: Axes) -> np.ndarray:
    """The offsets of a panel's points within the axis range (its first collection)."""
    collection = ax.collections[0]
    assert isinstance(collection, PathCollection) and collection.get_rasterized()
    return np.asarray(collection.get_offsets())


def edge_points(ax: Axes) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if c.get_gid() == "regsim-off-scale")


def rows(table: pd.DataFrame, method: str, prior: str = "", parameter: str = "beta1"):
    chosen = table.loc[
        (table["method"] == method) & (table["prior"] == prior) & (table["parameter"] == parameter)
    ]
    return chosen.sort_values("replicate")


def fail(table: pd.DataFrame, method: str, replicates: list[int], prior: str = "") -> pd.DataFrame:
    """A copy with the fits of ``method`` on ``replicates`` marked as failed."""
    out = table.copy()
    chosen = (out["method"] == method) & (out["prior"] == prior) & out["replicate"].isin(replicates)
    out.loc[chosen, "converged"] = False
    return out


def lines(ax: Axes, gid: str) -> list[float]:
    """The y values of a panel's horizontal lines with this gid."""
    return sorted(float(line.get_ydata()[0]) for line in ax.get_lines() if line.get_gid() == gid)


def legend_text(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.legends[0].get_texts()]


# --------------------------------------------------------------------------------------
# Estimate against model SE
# --------------------------------------------------------------------------------------


def test_estimate_se_points_are_the_usable_replicates_and_the_wedge_their_intervals(
    fits: pd.DataFrame,
) -> None:
    table = fail(fits, "ols", [0, 5])
    table.loc[(table["method"] == "mle") & (table["replicate"] == 3), "se"] = np.nan
    figure = figures.estimate_se_figure(table, parameter="beta1")
    axes = panels(figure)
    assert [ax.get_title().splitlines()[0] for ax in axes] == [
        "OLS",
        "MLE",
        "MAP (weak)",
        "MAP (informative)",
    ]
    truth = BETA[1]
    for ax, (method, prior), failed in zip(
        axes,
        [("ols", ""), ("mle", ""), ("map", "weak"), ("map", "informative")],
        [2, 1, 0, 0],
        strict=True,
    ):
        chosen = rows(table, method, prior)
        usable = chosen.loc[chosen["converged"] & chosen["se"].notna()]
        assert len(usable) == 100 - failed
        assert edge_points(ax) == 0  # every point within the axis range ...
        np.testing.assert_array_equal(points(ax), usable[["se", "estimate"]].to_numpy())
        title = ax.get_title()
        assert (f"{failed} failed" in title) == bool(failed)  # ... the failed ones counted
        misses = (usable["lower"] > truth) | (usable["upper"] < truth)
        assert f"{100 * misses.mean():.1f}% miss θ" in title
        assert [float(y) for y in ax.get_lines()[0].get_ydata()] == [truth, truth]
    # the wedge θ ± c·se with c the intervals' own multiplier: t(n − p) for OLS, z for MLE
    for ax, c in ((axes[0], stats.t.ppf(0.975, 17)), (axes[1], stats.norm.ppf(0.975))):
        assert f"c = {c:.2f}" in ax.get_title()
        wedge = [line for line in ax.get_lines() if line.get_gid() == "regsim-wedge"]
        assert len(wedge) == 2
        for line, sign in zip(wedge, (-1, 1), strict=True):
            x = np.asarray(line.get_xdata())
            np.testing.assert_allclose(line.get_ydata(), truth + sign * c * x, rtol=1e-6)
    # a point outside the wedge is exactly a replicate whose interval misses θ
    usable = rows(table, "ols").query("converged")
    outside = np.abs(usable["estimate"] - truth) > stats.t.ppf(0.975, 17) * usable["se"]
    assert f"{100 * outside.mean():.1f}% miss" in axes[0].get_title()
    # shared axes, so the methods compare; x starts at 0 at the lowest
    assert axes[0].get_shared_x_axes().joined(axes[0], axes[3])
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[3])
    assert axes[0].get_xlim()[0] >= 0.0
    assert axes[0].get_ylabel() == r"Estimate $\hat\beta_{1}$"
    assert figure.get_supxlabel().startswith(r"Model SE of $\hat\beta_{1}$ (cell $n$ = 20")


def test_estimate_se_marks_a_point_beyond_the_range_at_the_edge(fits: pd.DataFrame) -> None:
    table = fits.copy()
    wild = (table["method"] == "ols") & (table["parameter"] == "beta1") & (table["replicate"] == 7)
    table.loc[wild, "estimate"] = 1e4
    table.loc[wild, ["lower", "upper"]] = 1e4
    figure = figures.estimate_se_figure(table)
    ols = panels(figure)[0]
    assert len(points(ols)) == 99 and edge_points(ols) == 1
    (edge,) = [c for c in ols.collections if c.get_gid() == "regsim-off-scale"]
    assert edge.get_offsets()[0][1] == pytest.approx(ols.get_ylim()[1])  # at the top edge
    # hollow, unlike the filled points of a series whose marker is a triangle too
    assert tuple(edge.get_facecolor()[0]) == (1.0, 1.0, 1.0, 1.0)
    inside = [c for c in ols.collections if c.get_gid() != "regsim-off-scale"]
    assert all(tuple(c.get_facecolor()[0][:3]) != (1.0, 1.0, 1.0) for c in inside)
    assert ols.get_ylim()[1] < 100  # the bulk keeps its scale
    assert "beyond the range" in legend_text(figure)
    assert "beyond the range" not in legend_text(figures.estimate_se_figure(fits))


def test_a_series_without_usable_replicates_says_so(fits: pd.DataFrame) -> None:
    table = fail(fits, "mle", list(range(100)))
    figure = figures.estimate_se_figure(table)
    mle = panels(figure)[1]
    assert mle.get_title() == "MLE\nno usable replicates (100 failed)"
    assert not [c for c in mle.collections if isinstance(c, PathCollection)]
    ba = figures.bland_altman_figure(table)
    assert panels(ba)[0].get_title() == "MLE − OLS\nno pairs of usable fits (100 unpaired)"


# --------------------------------------------------------------------------------------
# Bland–Altman
# --------------------------------------------------------------------------------------


def test_bland_altman_draws_each_series_minus_the_reference_by_replicate(
    fits: pd.DataFrame,
) -> None:
    table = fail(fail(fits, "ols", [0]), "map", [1], prior="weak")
    lost = (table["method"] == "map") & (table["prior"] == "weak") & (table["replicate"] == 7)
    table = table.loc[~lost]  # a replicate the reference has and the series lacks
    # rows in another order: pairs are made by replicate index, not by position
    table = table.sample(frac=1.0, random_state=1)
    figure = figures.bland_altman_figure(table, reference="ols", sigma=None, parameter="beta1")
    axes = panels(figure)
    assert [ax.get_title().splitlines()[0] for ax in axes] == [
        "MLE − OLS",
        "MAP (weak) − OLS",
        "MAP (informative) − OLS",
    ]
    ols = rows(table, "ols").set_index("replicate")
    for ax, (method, prior), unpaired in zip(
        axes, [("mle", ""), ("map", "weak"), ("map", "informative")], [1, 3, 1], strict=True
    ):
        series = rows(table, method, prior).set_index("replicate")
        both = series.index.intersection(ols.index)
        both = both[series.loc[both, "converged"] & ols.loc[both, "converged"]]
        a, b = series.loc[both, "estimate"].to_numpy(), ols.loc[both, "estimate"].to_numpy()
        difference = a - b
        assert edge_points(ax) == 0
        np.testing.assert_allclose(points(ax), np.column_stack([(a + b) / 2, difference]))
        mean = difference.mean()
        half = 1.96 * np.std(difference, ddof=1)
        assert lines(ax, "regsim-mean") == pytest.approx([mean])
        assert lines(ax, "regsim-loa") == pytest.approx([mean - half, mean + half])
        assert f"{unpaired} unpaired" in ax.get_title()
    weak = axes[1]
    assert len(points(weak)) == 100 - 3  # replicate 0 (reference failed), 1 (failed), 7 (absent)
    mean = lines(weak, "regsim-mean")[0]
    low, high = lines(weak, "regsim-loa")
    fmt = "{:.3g}"
    assert fmt.format(mean).replace("-", "−") in weak.get_title()
    assert f"LoA {fmt.format(low)} to {fmt.format(high)}".replace("-", "−") in weak.get_title()
    # OLS and MLE coefficients are the same numbers: every difference is 0
    assert np.all(points(axes[0])[:, 1] == 0.0)
    assert axes[0].get_ylabel() == r"Difference in $\hat\beta_{1}$"
    assert figure.get_supxlabel().startswith(r"Mean of the pair's $\hat\beta_{1}$ (cell $n$ = 20")


def test_bland_altman_takes_a_prior_series_as_reference_and_separate_y_axes(
    fits: pd.DataFrame,
) -> None:
    figure = figures.bland_altman_figure(fits, reference=("map", "weak"), parameter="sigma")
    titles = [ax.get_title().splitlines()[0] for ax in panels(figure)]
    assert titles == ["OLS − MAP (weak)", "MLE − MAP (weak)", "MAP (informative) − MAP (weak)"]
    shared = panels(figure)
    assert shared[0].get_ylim() == shared[2].get_ylim()
    apart = panels(figures.bland_altman_figure(fits, parameter="sigma", sharey=False))
    assert not apart[0].get_shared_y_axes().joined(apart[0], apart[1])
    for ax in apart:  # each panel shows its own mean and limits
        low, high = ax.get_ylim()
        assert all(low <= y <= high for y in lines(ax, "regsim-loa") + lines(ax, "regsim-mean"))


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("ols_hc3", "reference ols_hc3 is not in the table; methods: ols, mle, map"),
        (("map", "flat"), r"reference MAP \(flat\) is not in the table; methods: ols, mle, map"),
        ("map", r"reference map has several priors \(weak, informative\); pass one"),
    ],
)
def test_bland_altman_refuses_a_reference_it_cannot_find(
    fits: pd.DataFrame, reference: object, message: str
) -> None:
    with pytest.raises(InputDataError, match=message) as error:
        figures.bland_altman_figure(fits, reference=reference)
    assert "\n" not in str(error.value)


def test_bland_altman_needs_a_second_series_and_one_fit_per_replicate(
    fits: pd.DataFrame,
) -> None:
    with pytest.raises(InputDataError, match="no method besides the reference ols"):
        figures.bland_altman_figure(fits.loc[fits["method"] == "ols"])
    twice = pd.concat([fits, fits.loc[(fits["method"] == "mle") & (fits["replicate"] == 4)]])
    with pytest.raises(InputDataError, match="replicate 4 of MLE appears more than once"):
        figures.bland_altman_figure(twice)


# --------------------------------------------------------------------------------------
# Both
# --------------------------------------------------------------------------------------

BOTH = [figures.estimate_se_figure, figures.bland_altman_figure]


@pytest.mark.parametrize("figure_of", BOTH)
def test_one_cell_only(fits: pd.DataFrame, figure_of) -> None:
    two = pd.concat([fits, replicate_fits(20, n=50)], ignore_index=True)
    with pytest.raises(InputDataError, match=r"several values of n \(20, 50\); choose one"):
        figure_of(two)
    assert len(panels(figure_of(two, n=50))) >= 3
    with pytest.raises(InputDataError, match="no rows with sigma = 2"):
        figure_of(two, n=50, sigma=2)
    mixed = pd.concat([fits, replicate_fits(20, errors="t3")], ignore_index=True)
    with pytest.raises(InputDataError, match=r"several errors levels \(normal, t3\)") as error:
        figure_of(mixed)
    assert "\n" not in str(error.value)
    with pytest.raises(InputDataError, match="no rows for parameter 'beta7'"):
        figure_of(fits, parameter="beta7")


@pytest.mark.parametrize("figure_of", BOTH)
@pytest.mark.parametrize(
    ("cell", "title"),
    [
        ({"errors": "t3"}, figures.ERROR_TITLES["t3"]),
        ({"truth": "null_slope", "beta": NULL}, "Truth: null_slope"),
        ({"design": Design("collinear", "normal", 0.9)}, "Design: collinear"),
        (
            {"errors": "hetero", "truth": "null_slope", "beta": NULL},
            f"{figures.ERROR_TITLES['hetero']}; Truth: null_slope",
        ),
    ],
)
def test_the_legend_names_the_cells_non_default_levels(figure_of, cell: dict, title: str) -> None:
    figure = figure_of(replicate_fits(30, **cell))
    assert figure.legends[0].get_title().get_text() == title


@pytest.mark.parametrize("figure_of", BOTH)
def test_a_cell_at_every_default_has_no_legend_title(fits: pd.DataFrame, figure_of) -> None:
    assert figure_of(fits).legends[0].get_title().get_text() == ""
    plain = fits.drop(columns=["errors", "truth", "design"])  # factor columns are optional
    assert figure_of(plain).legends[0].get_title().get_text() == ""


@pytest.mark.parametrize("figure_of", BOTH)
def test_colours_are_the_methods_and_the_collector_is_left_alone(
    fits: pd.DataFrame, figure_of
) -> None:
    figure = figure_of(fits)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    colours = {
        ax.get_title().splitlines()[0].split(" − ")[0]: ax.collections[0].get_facecolor()[0][:3]
        for ax in panels(figure)
    }
    mle = np.array([int(figures.METHOD_COLOURS["mle"][i : i + 2], 16) for i in (1, 3, 5)]) / 255
    np.testing.assert_allclose(colours["MLE"], mle)
    assert np.allclose(colours["MAP (weak)"], colours["MAP (informative)"])


@pytest.mark.parametrize("figure_of", BOTH)
def test_saved_as_pdf_and_png(tmp_path, fits: pd.DataFrame, figure_of) -> None:
    from PIL import Image

    written = figures.save_figure(figure_of(fits), tmp_path / "figures" / "estimates_n20_sigma5")
    assert [path.name for path in written] == [
        "estimates_n20_sigma5.pdf",
        "estimates_n20_sigma5.png",
    ]
    assert written[0].read_bytes().startswith(b"%PDF")
    with Image.open(written[1]) as png:
        assert png.size[0] == 7 * 300  # 7 in at 300 dpi


def test_ten_thousand_replicates_make_a_small_pdf(tmp_path) -> None:
    """The points are rasterized: the PDF holds one image per panel, not 10 000 markers.

    Measured at 10 000 replicates of four series: the estimate-SE PDF is about 100 kB
    rasterized and 610 kB with vector markers, the Bland–Altman PDF 40 kB and 400 kB.
    """
    table = replicate_fits(10_000)
    table = table.loc[table["parameter"] == "beta1"]
    for name, figure_of in (
        ("se", figures.estimate_se_figure),
        ("ba", figures.bland_altman_figure),
    ):
        figure = figure_of(table)
        assert all(c.get_rasterized() for ax in figure.axes for c in ax.collections)
        (pdf,) = figures.save_figure(
            figure,
            tmp_path / name,
            formats=("pdf",),
            vector_raster_dpi=figures.ESTIMATE_PDF_RASTER_DPI,
        )
        assert pdf.stat().st_size < 250_000, name
