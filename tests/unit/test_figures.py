"""Tests of ``regsim.figures`` on small synthetic tables (not study results).

:func:`synthetic_metrics` and :func:`synthetic_replicates` build tables with the columns
of ``results/tables/metrics.csv`` and of a cell's replicate fits; ``test_tables`` imports
the former.
"""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from regsim import figures, theory
from regsim.errors import InputDataError
from regsim.figures import panels
from regsim.figures.style import RC
from regsim.figures.yticks import LeftTicks
from regsim.parallel import run_tasks
from regsim.styles import series_styles

MEASURES = (
    "bias",
    "relbias",
    "empse",
    "modelse",
    "relerror",
    "mse",
    "rmse",
    "coverage",
    "becoverage",
    "width",
    "rejection",
    "n_reps",
    "n_failed",
)
TRUE = {"beta0": 10.0, "beta1": 3.8987, "beta2": 10.1777}


def synthetic_metrics(
    ns: Sequence[int] = (10, 50, 200),
    sigmas: Sequence[float] = (1.0, 5.0),
    priors: Sequence[str] = ("weak", "informative"),
    parameters: Sequence[str] = ("beta0", "beta1", "beta2", "sigma"),
    replications: int = 200,
    seed: int = 1,
) -> pd.DataFrame:
    """A long metrics table with plausible values, one row per cell, series and measure.

    Methods ``ols`` and ``mle`` have an empty prior; ``map`` has one series per prior and
    the ``n_multimodal`` count. Values follow rough large-sample formulas plus noise.
    """
    rng = np.random.default_rng(seed)
    series = [("ols", ""), ("mle", "")] + [("map", p) for p in priors]
    rows = []
    for n in ns:
        for sigma in sigmas:
            for method, prior in series:
                for parameter in parameters:
                    true = TRUE.get(parameter, sigma)
                    empse = sigma / np.sqrt(n) * (0.8 if prior == "informative" else 1.0)
                    bias = rng.normal(0.0, empse / np.sqrt(replications))
                    if method == "mle" and parameter == "sigma":
                        bias -= sigma * 1.5 / n
                    modelse = empse * (1.0 - (0.5 / n if method == "mle" else 0.0))
                    mse = bias**2 + empse**2
                    coverage = min(0.95 - (2.0 / n if method == "mle" else 0.0), 1.0)
                    values = {
                        "bias": (bias, empse / np.sqrt(replications)),
                        "relbias": (bias / true, empse / true / np.sqrt(replications)),
                        "empse": (empse, empse / np.sqrt(2 * (replications - 1))),
                        "modelse": (modelse, modelse / np.sqrt(4 * replications)),
                        "relerror": (100 * (modelse / empse - 1), 100 / np.sqrt(2 * replications)),
                        "mse": (mse, mse * np.sqrt(2 / replications)),
                        "rmse": (np.sqrt(mse), np.sqrt(mse) / np.sqrt(2 * replications)),
                        "coverage": (coverage, np.sqrt(coverage * (1 - coverage) / replications)),
                        "becoverage": (0.95, np.sqrt(0.95 * 0.05 / replications)),
                        "width": (2 * 1.96 * modelse, modelse / np.sqrt(replications)),
                        "rejection": (1.0, 0.0),
                        "n_reps": (float(replications), np.nan),
                        "n_failed": (0.0, np.nan),
                    }
                    if method == "map":
                        values["n_multimodal"] = (0.0, np.nan)
                    for measure, (estimate, mcse) in values.items():
                        rows.append((n, sigma, prior, method, parameter, measure, estimate, mcse))
    columns = ["n", "sigma", "prior", "method", "parameter", "measure", "estimate", "mcse"]
    return pd.DataFrame(rows, columns=columns)


def synthetic_replicates(
    n: int = 20,
    sigma: float = 5.0,
    replications: int = 100,
    priors: Sequence[str] = ("weak", "informative"),
    seed: int = 2,
) -> pd.DataFrame:
    """A long table of one cell's replicate fits (the columns of the fit tables)."""
    rng = np.random.default_rng(seed)
    series = [("ols", ""), ("mle", "")] + [("map", p) for p in priors]
    parts = []
    for method, prior in series:
        for parameter, true in (("beta1", TRUE["beta1"]), ("sigma", sigma)):
            se = np.full(replications, sigma / np.sqrt(n)) * rng.uniform(0.8, 1.2, replications)
            estimate = true + rng.normal(0.0, sigma / np.sqrt(n), replications)
            parts.append(
                pd.DataFrame(
                    {
                        "n": n,
                        "sigma": sigma,
                        "prior": prior,
                        "method": method,
                        "parameter": parameter,
                        "replicate": np.arange(replications),
                        "estimate": estimate,
                        "se": se,
                        "lower": estimate - 1.96 * se,
                        "upper": estimate + 1.96 * se,
                        "true": true,
                        "converged": True,
                        "multimodal": False,
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    return synthetic_metrics()


def visible_axes(figure: Figure) -> list:
    return [ax for ax in figure.axes if ax.get_visible()]


def errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def legend_texts(figure: Figure) -> list[str]:
    return [t.get_text() for legend in figure.legends for t in legend.get_texts()]


# --------------------------------------------------------------------------------------
# One test per figure
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rows", "lines_per_panel"),
    [("bias", 4, 4), ("coverage", 4, 4), ("efficiency", 4, 3), ("modelse", 4, 4), ("sigma", 1, 4)],
)
def test_grid_figures_have_a_panel_per_row_and_sigma_and_a_line_per_series(
    metrics: pd.DataFrame, name: str, rows: int, lines_per_panel: int
) -> None:
    figure = figures.FIGURES[name](metrics)
    assert isinstance(figure, Figure)
    axes = visible_axes(figure)
    assert len(axes) == rows * 2  # two sigma columns
    for ax in axes:
        bars = errorbars(ax)
        assert len(bars) == lines_per_panel
        assert all(bar.has_yerr for bar in bars)
        assert ax.get_xscale() == "log"
        # The y axis drawn as one artist, not a tick object per tick (regsim.figures.yticks).
        assert sum(isinstance(artist, LeftTicks) for artist in ax.artists) == 1
    assert not [c for ax in axes for c in ax.get_children() if c.get_gid() == "regsim-missing"]


def test_bias_figure_labels_use_symbols_and_sigma_titles(metrics: pd.DataFrame) -> None:
    figure = figures.bias_figure(metrics, parameters=["beta1", "sigma"])
    axes = visible_axes(figure)
    assert [ax.get_title() for ax in axes[:2]] == [r"$\sigma$ = 1", r"$\sigma$ = 5"]
    assert axes[0].get_ylabel() == r"Bias of $\hat\beta_{1}$"
    assert axes[2].get_ylabel() == r"Bias of $\hat\sigma$"
    assert all(ax.get_xlabel() == "$n$ (log scale)" for ax in axes[-2:])
    assert {"OLS", "MLE", "MAP (weak)", "MAP (informative)"} <= set(legend_texts(figure))


def test_error_bars_are_196_mcse(metrics: pd.DataFrame) -> None:
    figure = figures.bias_figure(metrics, parameters=["beta1"])
    ax = visible_axes(figure)[0]
    ols = errorbars(ax)[0]
    segments = ols.lines[2][0].get_segments()
    half = [(seg[1][1] - seg[0][1]) / 2 for seg in segments]
    rows = metrics.query(
        "measure == 'bias' and parameter == 'beta1' and method == 'ols' and sigma == 1"
    ).sort_values("n")
    np.testing.assert_allclose(half, 1.96 * rows["mcse"].to_numpy())


def test_method_colours_are_the_same_in_every_figure(metrics: pd.DataFrame) -> None:
    for name in ("bias", "coverage", "modelse"):
        ax = visible_axes(figures.FIGURES[name](metrics, parameters=["beta1"]))[0]
        colours = [bar.lines[0].get_color() for bar in errorbars(ax)]
        assert colours[0] == figures.METHOD_COLOURS["ols"]
        assert colours[1] == figures.METHOD_COLOURS["mle"]
        assert colours[2] == colours[3] == figures.METHOD_COLOURS["map"]
        markers = [bar.lines[0].get_marker() for bar in errorbars(ax)]
        assert len(set(markers)) == 4  # MAP priors differ in marker (and line style)
    assert figures.PRIOR_STYLES["weak"][0] != figures.PRIOR_STYLES["informative"][0]


def test_coverage_figure_draws_nominal_line_and_monte_carlo_band(metrics: pd.DataFrame) -> None:
    figure = figures.coverage_figure(metrics, parameters=["beta1"], alpha=0.05)
    ax = visible_axes(figure)[0]
    nominal = [line for line in ax.get_lines() if list(line.get_ydata()) == [0.95, 0.95]]
    assert nominal
    (band,) = ax.patches
    half = 1.96 * np.sqrt(0.05 * 0.95 / 200)
    assert band.get_y() == pytest.approx(0.95 - half)
    assert band.get_height() == pytest.approx(2 * half)
    assert "MC band (R = 200)" in legend_texts(figure)


def test_coverage_bars_stop_at_a_proportions_bounds(metrics: pd.DataFrame) -> None:
    # 0.99 ± 1.96 × 0.02 had drawn a coverage bar up to 1.03: now it stops at 1 (and a
    # rejection rate's at 0), its other end where it was.
    changed = metrics.copy()
    row = (
        (changed["measure"] == "coverage")
        & (changed["method"] == "ols")
        & (changed["parameter"] == "beta1")
        & (changed["sigma"] == 1)
    )
    changed.loc[row, ["estimate", "mcse"]] = [0.99, 0.02]
    ax = visible_axes(figures.coverage_figure(changed, parameters=["beta1"], alpha=0.05))[0]
    bars = errorbars(ax)[0].lines[2][0].get_segments()
    assert [segment[1][1] for segment in bars] == [1.0] * len(bars)
    assert [segment[0][1] for segment in bars] == pytest.approx([0.99 - 1.96 * 0.02] * len(bars))
    null = metrics.copy()
    low = (null["measure"] == "rejection") & (null["method"] == "ols")
    null.loc[low, ["estimate", "mcse"]] = [0.01, 0.02]
    ax = visible_axes(figures.rejection_figure(null, parameters=["beta1"], alpha=0.05))[0]
    bars = errorbars(ax)[0].lines[2][0].get_segments()
    assert [segment[0][1] for segment in bars] == [0.0] * len(bars)


def test_efficiency_figure_is_rmse_relative_to_ols(metrics: pd.DataFrame) -> None:
    figure = figures.efficiency_figure(metrics, parameters=["beta1"])
    ax = visible_axes(figure)[0]
    assert ax.get_yscale() == "log"
    informative = errorbars(ax)[2].lines[0].get_ydata()
    rmse = metrics.query("measure == 'rmse' and parameter == 'beta1' and sigma == 1")
    ratio = (
        rmse.query("prior == 'informative'").sort_values("n")["estimate"].to_numpy()
        / rmse.query("method == 'ols'").sort_values("n")["estimate"].to_numpy()
    )
    np.testing.assert_allclose(informative, ratio)
    assert "OLS (= 1)" in legend_texts(figure)


def test_sigma_figure_names_the_three_estimators(metrics: pd.DataFrame) -> None:
    figure = figures.sigma_figure(metrics, measures=("bias", "relbias"))
    assert len(visible_axes(figure)) == 4
    texts = legend_texts(figure)
    assert "OLS, $s$" in texts
    assert r"MLE, $\hat\sigma$" in texts
    assert r"MAP (weak), $\hat\sigma$" in texts


def test_nested_loop_figure_orders_scenarios_sigma_outer(metrics: pd.DataFrame) -> None:
    figure = figures.nested_loop_figure(metrics, measure="rmse", parameter="beta1")
    main, loops = figure.axes
    assert main.get_yscale() == "log"
    lines = [line for line in main.get_lines() if line.get_label() == "OLS"]
    assert len(lines) == 1
    rmse = metrics.query("measure == 'rmse' and parameter == 'beta1' and method == 'ols'")
    expected = rmse.sort_values(["sigma", "n"])["estimate"].to_numpy()
    y = lines[0].get_ydata()
    assert len(set(np.round(y, 12))) == len(expected)  # one step per scenario
    assert np.allclose(sorted(set(y)), sorted(expected))
    labels = [t.get_text() for t in loops.texts]
    assert r"$\sigma$" in labels and r"$n$" in labels
    assert {"1", "5", "10", "50", "200"} <= set(labels)
    assert len([line for line in main.get_lines() if line.get_label() in legend_texts(figure)]) == 4


def test_nested_loop_figure_rejects_unknown_loops(metrics: pd.DataFrame) -> None:
    with pytest.raises(InputDataError, match="loops"):
        figures.nested_loop_figure(metrics, loops=("sigma", "prior"))


def test_zip_plot_ranks_intervals_and_marks_non_coverers() -> None:
    replicates = synthetic_replicates(replications=100)
    replicates.loc[
        (replicates["method"] == "ols") & (replicates["replicate"] == 0), "converged"
    ] = False
    figure = figures.zip_plot(replicates, parameter="beta1", alpha=0.05)
    axes = visible_axes(figure)
    assert len(axes) == 4
    for ax in axes:
        collections = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(collections) == 1
    ols = [c for c in axes[0].collections if isinstance(c, LineCollection)][0]
    assert len(ols.get_segments()) == 99  # the failed replicate is left out ...
    assert axes[0].get_title().endswith("\n1 failed")  # ... and counted, on its own line
    # four panels, three to a row: the two columns whose last panel is in the top row
    # label their x ticks there
    figure.canvas.draw()
    labelled = [
        bool([t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]) for ax in axes
    ]
    assert labelled == [False, True, True, True]  # the first has the fourth below it
    rows = replicates.query("method == 'ols' and parameter == 'beta1' and converged")
    covers = (rows["lower"] <= rows["true"]) & (rows["true"] <= rows["upper"])
    colours = ols.get_colors()
    orange = np.array([0.902, 0.624, 0.0])
    assert sum(np.allclose(c[:3], orange, atol=0.01) for c in colours) == (~covers).sum()
    assert f"coverage {100 * covers.mean():.1f}%" in axes[0].get_title()
    centiles = sorted(seg[0][1] for seg in ols.get_segments())
    np.testing.assert_allclose(centiles, 100 * np.arange(1, 100) / 99)


def test_zip_plot_coverage_interval_stays_within_0_and_100() -> None:
    # 20 replicates, 19 covering: 95% ± 1.96·√(0.95·0.05/20) = 95 ± 9.6 would pass 100.
    replicates = synthetic_replicates(replications=20)
    ols = (replicates["method"] == "ols") & (replicates["parameter"] == "beta1")
    rows = replicates.loc[ols]
    replicates.loc[ols, "lower"] = rows["true"] - 1.0
    replicates.loc[ols, "upper"] = rows["true"] + 1.0
    first = ols & (replicates["replicate"] == 0)
    replicates.loc[first, "lower"] = replicates.loc[first, "true"] + 0.5
    replicates.loc[first, "upper"] = replicates.loc[first, "true"] + 1.5
    figure = figures.zip_plot(replicates, parameter="beta1", alpha=0.05)
    title = visible_axes(figure)[0].get_title()
    assert "coverage 95.0% (85.4–100.0)" in title, title


def test_zip_plot_needs_one_cell(metrics: pd.DataFrame) -> None:
    two = pd.concat([synthetic_replicates(n=20), synthetic_replicates(n=50)])
    with pytest.raises(InputDataError, match="several values of n"):
        figures.zip_plot(two)
    assert isinstance(figures.zip_plot(two, n=50, sigma=5), Figure)
    with pytest.raises(InputDataError, match="no rows with n = 30"):
        figures.zip_plot(two, n=30)


# --------------------------------------------------------------------------------------
# Missing cells, off-scale values, saving
# --------------------------------------------------------------------------------------


def test_missing_and_failed_cells_are_reported_not_dropped(metrics: pd.DataFrame) -> None:
    table = metrics.copy()
    gone = (table["method"] == "map") & (table["prior"] == "weak") & (table["n"] == 10)
    gone &= table["sigma"] == 5
    table = table.loc[~gone]
    failed = (table["method"] == "mle") & (table["n"] == 200) & (table["sigma"] == 1)
    table.loc[failed & (table["measure"] == "n_reps"), "estimate"] = 0.0
    table.loc[failed & (table["measure"] != "n_reps"), ["estimate", "mcse"]] = np.nan

    missing = figures.missing_cells(table, "bias", "beta1")
    assert len(missing) == 2
    reasons = dict(zip(missing["method"], missing["reason"], strict=True))
    assert reasons == {"map": "not in the table", "mle": "all replicates failed"}

    figure = figures.bias_figure(table, parameters=["beta1"])
    notes = [legend for legend in figure.legends if legend.get_gid() == "regsim-missing-note"]
    assert len(notes) == 1
    text = notes[0].get_texts()[0].get_text()
    assert "MAP (weak)" in text and "not in the table" in text and "σ = 5, n = 10" in text
    assert "MLE" in text and "all replicates failed" in text
    crosses = [
        line for ax in figure.axes for line in ax.get_lines() if line.get_gid() == "regsim-missing"
    ]
    assert len(crosses) == 2
    mle = errorbars(visible_axes(figure)[0])[1].lines[0].get_ydata()
    assert np.isnan(mle[-1]) and np.isfinite(mle[:-1]).all()  # a gap, not a dropped point

    with pytest.raises(InputDataError, match="2 expected cell"):
        figures.bias_figure(table, parameters=["beta1"], on_missing="raise")
    nested = figures.nested_loop_figure(table, measure="bias", parameter="beta1")
    assert any(legend.get_gid() == "regsim-missing-note" for legend in nested.legends)


def test_missing_reference_makes_ratio_missing(metrics: pd.DataFrame) -> None:
    table = metrics.loc[~((metrics["method"] == "ols") & (metrics["n"] == 50))]
    missing = figures.missing_cells(table, "rmse", "beta1")
    assert set(missing["method"]) == {"ols"}
    figure = figures.efficiency_figure(table, parameters=["beta1"])
    note = [legend for legend in figure.legends if legend.get_gid() == "regsim-missing-note"]
    assert "OLS reference: not in the table" in note[0].get_texts()[0].get_text()


def test_values_beyond_ylim_are_marked_at_the_edge(metrics: pd.DataFrame) -> None:
    figure = figures.coverage_figure(metrics, parameters=["beta1"], ylim=(0.94, 1.0))
    ax = visible_axes(figure)[0]
    assert ax.get_ylim() == (0.94, 1.0)
    edges = [line for line in ax.get_lines() if line.get_gid() == "regsim-off-scale"]
    assert edges  # the MLE at n = 10 and 50 is below 0.94
    assert "beyond the y range (at edge)" in legend_texts(figure)
    with pytest.raises(InputDataError, match="ylim"):
        figures.coverage_figure(metrics, ylim=(1.0, 0.5))


def test_bad_input_is_one_clear_error(metrics: pd.DataFrame) -> None:
    with pytest.raises(InputDataError, match="missing column"):
        figures.bias_figure(metrics.drop(columns="mcse"))
    with pytest.raises(InputDataError, match="no parameter 'beta7'"):
        figures.bias_figure(metrics, parameters=["beta7"])
    with pytest.raises(InputDataError, match="no measure 'nonsense'"):
        figures.nested_loop_figure(metrics, measure="nonsense")


def test_prior_read_back_as_nan_is_handled(metrics: pd.DataFrame, tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    metrics.to_csv(path, index=False)
    table = pd.read_csv(path)
    assert table["prior"].isna().any()
    figure = figures.bias_figure(table, parameters=["beta1"])
    assert {"OLS", "MLE"} <= set(legend_texts(figure))
    assert not figures.missing_cells(table, "bias", "beta1").shape[0]


def test_crowded_n_labels_are_thinned_but_ends_kept() -> None:
    table = synthetic_metrics(ns=(10, 20, 50, 100, 200, 500, 1000), sigmas=(1.0, 5.0, 10.0))
    figure = figures.sigma_figure(table)
    figure.draw_without_rendering()
    texts = visible_axes(figure)[0].get_xticklabels()
    labels = [t.get_text() for t in texts]
    assert labels[0] == "10" and labels[-1] == "1000"
    assert len(figure.axes[0].get_xticks()) == 7  # every sample size keeps its tick
    boxes = [t.get_window_extent() for t in texts if t.get_text()]
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:], strict=False))  # no overlap


def test_save_figure_writes_non_empty_pdf_and_png(tmp_path) -> None:
    figure = figures.sigma_figure(synthetic_metrics(ns=(10, 100), sigmas=(1.0,)))
    paths = figures.save_figure(figure, tmp_path / "out" / "sigma.pdf")
    assert [p.name for p in paths] == ["sigma.pdf", "sigma.png"]
    pdf, png = (p.read_bytes() for p in paths)
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    width = int.from_bytes(png[16:20], "big")
    assert width == pytest.approx(7.0 * 300, abs=2)  # 7 in at 300 dpi
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sigma.pdf", "sigma.png"]
    (again,) = figures.save_figure(figure, tmp_path / "again" / "sigma", formats=("pdf",))
    assert again.read_bytes() == pdf  # no creation date: the same bytes every time


def _zlib_level(png: bytes) -> int:
    """FLEVEL of a PNG's first IDAT stream: 0 for zlib levels 0-1, 1 for 2-5, 2 for 6,
    3 for 7-9 (RFC 1950)."""
    at = png.index(b"IDAT") + 4
    return png[at + 1] >> 6


def test_pngs_are_compressed_at_zlib_s_fast_level(tmp_path) -> None:
    from PIL import Image

    figure = figures.sigma_figure(synthetic_metrics(ns=(10, 100), sigmas=(1.0,)))
    pdf, agg = figures.save_figure(figure, tmp_path / "sigma")
    agg_bytes = agg.read_bytes()
    rastered = figures.png_from_pdf(pdf).read_bytes()
    for png in (agg_bytes, rastered):
        assert _zlib_level(png) == 0
    # The check tells the levels apart: Pillow's default is level 6.
    with Image.open(agg) as image:
        image.save(tmp_path / "default.png")
    assert _zlib_level((tmp_path / "default.png").read_bytes()) == 2


def test_importing_regsim_does_not_import_matplotlib() -> None:
    code = (
        "import sys, regsim, regsim.tables, regsim.provenance, regsim.cli.verify; "
        "sys.exit('matplotlib' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_expected_design_catches_levels_absent_from_the_whole_table(
    metrics: pd.DataFrame,
) -> None:
    expected = {"n": [10, 50, 200, 1000], "methods": ["ols", "mle", "map"]}
    expected["priors"] = ["weak", "informative", "skeptical"]
    missing = figures.missing_cells(metrics, "bias", "beta1", expected=expected)
    # n = 1000 for all 5 series at both sigmas, plus MAP (skeptical) at the 3 other n
    assert len(missing) == 5 * 2 + 3 * 2
    assert set(missing["reason"]) == {"not in the table"}
    figure = figures.coverage_figure(metrics, parameters=["beta1"], expected=expected)
    assert len(errorbars(visible_axes(figure)[0])) == 5
    assert any(legend.get_gid() == "regsim-missing-note" for legend in figure.legends)


def test_y_limits_cover_series_drawn_after_a_decoration(metrics: pd.DataFrame) -> None:
    figure = figures.coverage_figure(metrics, parameters=["beta1"])
    low = metrics.query("measure == 'coverage' and parameter == 'beta1'")["estimate"].min()
    for ax in visible_axes(figure):
        assert ax.get_ylim()[0] < low  # not fitted to the MC band drawn first


def test_error_bars_look_exactly_like_axes_errorbar() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    x = np.array([10.0, 20.0, 50.0, 100.0])
    y = np.array([0.2, np.nan, -0.1, 0.05])
    err = np.array([0.05, 0.0, 0.02, 0.0])
    style = series_styles([("map", "weak")])[("map", "weak")]
    pixels = []
    for draw in ("errorbar", "figures"):
        with mpl.rc_context(RC):
            figure = Figure(figsize=(2.0, 1.5), dpi=150)
            ax = figure.add_axes((0.1, 0.1, 0.8, 0.8))
            ax.set_xscale("log")
            if draw == "errorbar":
                ax.errorbar(x, y, yerr=err, elinewidth=0.7, **style)
            else:
                panels.errorbar(ax, x, y, err, style, "MAP (weak)")
                ax.autoscale(axis="y")
            ax.set_xlim(7.0, 150.0)
            canvas = FigureCanvasAgg(figure)
            canvas.draw()
            pixels.append(np.asarray(canvas.buffer_rgba()).copy())
            limits = ax.get_ylim()
        assert limits[0] < 0.2 - 0.05 and limits[1] > 0.2 + 0.05
    np.testing.assert_array_equal(pixels[0], pixels[1])


def test_save_figure_lays_out_once_and_keeps_the_layout_engine(tmp_path) -> None:
    figure = figures.bias_figure(synthetic_metrics(ns=(10, 100), sigmas=(1.0,)))
    engine = figure.get_layout_engine()
    unplaced = [ax.get_position().bounds for ax in figure.axes]
    figures.save_figure(figure, tmp_path / "bias")
    assert figure.get_layout_engine() is engine
    placed = [ax.get_position().bounds for ax in figure.axes]
    assert not np.allclose(placed, unplaced, atol=0.01)
    with mpl.rc_context(RC):
        figure.savefig(tmp_path / "again.png", dpi=300)  # lays the figure out itself, twice
    np.testing.assert_allclose([ax.get_position().bounds for ax in figure.axes], placed, atol=1e-4)


def test_fixing_the_y_ticks_while_saving_changes_no_byte_and_is_undone(
    tmp_path, monkeypatch
) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    from regsim.figures import save

    def draw() -> Figure:
        figure = Figure(figsize=(4.0, 3.0), layout="constrained")
        left, right = figure.subplots(1, 2, sharey=True)
        left.plot([1, 2, 3], [0.0, 2.5, -1.2])
        right.plot([1, 2, 3], [1e-3, 7.0, 3.0])
        third = figure.add_subplot(3, 3, 9)
        third.plot([0, 1], [1000.0, 1000.001])  # an offset: left as it is
        return figure

    figure = draw()
    locators = [ax.yaxis.get_major_locator() for ax in figure.axes]
    formatters = [ax.yaxis.get_major_formatter() for ax in figure.axes]
    assert all(type(f) is ScalarFormatter for f in formatters)
    fixed = save.save_figure(figure, tmp_path / "fixed")
    # the shared ticker and the others are the figure's own again
    assert [ax.yaxis.get_major_locator() for ax in figure.axes] == locators
    assert [ax.yaxis.get_major_formatter() for ax in figure.axes] == formatters

    monkeypatch.setattr(save, "_freeze_y_ticks", lambda figure: [])
    free = save.save_figure(draw(), tmp_path / "free")
    for a, b in zip(fixed, free, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


# --------------------------------------------------------------------------------------
# Exact finite-sample curves (normal errors)
# --------------------------------------------------------------------------------------


def exact_lines(ax) -> list:
    return [line for line in ax.get_lines() if line.get_gid() == figures.EXACT_GID]


def test_coverage_figure_draws_the_exact_mle_coverage(metrics: pd.DataFrame) -> None:
    figure = figures.coverage_figure(metrics, alpha=0.1, p=3)
    axes = np.array(visible_axes(figure)).reshape(4, 2)  # beta0, beta1, beta2, sigma
    for ax in axes[:3].flat:
        (line,) = exact_lines(ax)
        n = line.get_xdata()
        assert n[0] == 10 and n[-1] == 200 and len(n) > 50
        assert np.all(np.diff(n) > 0) and np.all(n == np.round(n))
        expected = [theory.mle_wald_coverage(int(k), 3, 0.1) for k in n]
        np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-12)
        assert line.get_color() == figures.METHOD_COLOURS["mle"]
        assert line.get_linestyle() == "--"
    assert not [line for ax in axes[3] for line in exact_lines(ax)]  # not for sigma
    assert "MLE exact (normal errors)" in legend_texts(figure)


def test_exact_coverage_starts_above_p() -> None:
    table = synthetic_metrics(ns=(3, 4, 10), sigmas=(1.0,), priors=())
    figure = figures.coverage_figure(table, parameters=["beta1"], p=3)
    (line,) = exact_lines(visible_axes(figure)[0])
    assert line.get_xdata()[0] == 4 and line.get_xdata()[-1] == 10
    with pytest.raises(InputDataError, match="positive integer"):
        figures.coverage_figure(table, p=0)


def test_with_one_sample_size_the_exact_values_are_drawn_as_levels() -> None:
    # One n: the exact curve is one point, which a dashed line did not show while the
    # legend listed it; it is a dashed level across the estimates' place.
    table = synthetic_metrics(ns=(40,), sigmas=(1.0,), priors=())
    for figure, value in (
        (
            figures.coverage_figure(table, parameters=["beta1"], p=3),
            theory.mle_wald_coverage(40, 3, 0.05),
        ),
        (
            figures.sigma_figure(table, measures=("bias",), p=3),
            theory.expected_s(40, 3, 1.0) - 1.0,
        ),
    ):
        lines = exact_lines(visible_axes(figure)[0])
        assert lines
        for line in lines:
            n = np.asarray(line.get_xdata(), dtype=float)
            assert len(n) == 2 and n[0] < 40 < n[1]
            low, high = visible_axes(figure)[0].get_xlim()
            assert low < n[0] and n[1] < high  # inside the axis
            assert line.get_ydata()[0] == line.get_ydata()[1]
        assert any(line.get_ydata()[0] == pytest.approx(value, rel=1e-12) for line in lines)


def test_sigma_figure_draws_the_exact_bias_of_s_and_the_mle(metrics: pd.DataFrame) -> None:
    figure = figures.sigma_figure(metrics, measures=("bias", "relbias", "rmse"), p=3)
    axes = np.array(visible_axes(figure)).reshape(3, 2)
    for row, measure in enumerate(("bias", "relbias")):
        for col, sigma in enumerate((1.0, 5.0)):
            lines = {line.get_color(): line for line in exact_lines(axes[row, col])}
            for method, expectation in (
                ("ols", theory.expected_s),
                ("mle", theory.expected_sigma_mle),
            ):
                line = lines[figures.METHOD_COLOURS[method]]
                n = line.get_xdata()
                assert n[0] == 10 and n[-1] == 200
                mean = np.array([expectation(int(k), 3, sigma) for k in n])
                scale = 1.0 if measure == "bias" else sigma
                np.testing.assert_allclose(line.get_ydata(), (mean - sigma) / scale, rtol=1e-12)
    assert not exact_lines(axes[2, 0]) and not exact_lines(axes[2, 1])  # none for RMSE
    texts = legend_texts(figure)
    assert "OLS, $s$: exact (normal errors)" in texts
    assert r"MLE, $\hat\sigma$: exact (normal errors)" in texts


@pytest.mark.parametrize(
    ("errors", "p", "drawn"),
    [
        (None, 3, True),
        ("normal", 3, True),
        ("t3", 3, False),
        ("hetero", 3, False),
        (None, None, False),
    ],
)
def test_exact_curves_only_with_p_and_normal_errors(
    metrics: pd.DataFrame, errors: str | None, p: int | None, drawn: bool
) -> None:
    table = metrics if errors is None else metrics.assign(errors=errors)
    for name in ("coverage", "sigma"):
        figure = figures.FIGURES[name](table, p=p)
        lines = [line for ax in figure.axes for line in exact_lines(ax)]
        assert bool(lines) == drawn
        assert any("exact (normal errors)" in text for text in legend_texts(figure)) == drawn


def test_study_keywords_offer_each_figure_only_its_own() -> None:
    offered = {"p": 3, "alpha": 0.1}
    assert figures.study_keywords("coverage", **offered) == offered
    assert figures.study_keywords("sigma", **offered) == {"p": 3}
    assert figures.study_keywords("bias", **offered) == {}


# --------------------------------------------------------------------------------------
# Error models
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(figures.FIGURES))
@pytest.mark.parametrize(
    ("errors", "words"), [("t3", "$t_3$ scaled to sd"), ("hetero", "heteroskedastic")]
)
def test_figures_of_other_error_models_name_them(
    metrics: pd.DataFrame, name: str, errors: str, words: str
) -> None:
    if name == "laplace":  # MAP beside the exact posterior: a table with both
        maps = metrics.loc[metrics["method"] == "map"]
        metrics = pd.concat([metrics, maps.assign(method="bayes")], ignore_index=True)
    figure = figures.FIGURES[name](metrics.assign(errors=errors))
    titles = [legend.get_title().get_text() for legend in figure.legends]
    assert titles[0] == figures.ERROR_TITLES[errors] and words in titles[0]
    plain = figures.FIGURES[name](metrics)
    assert [legend.get_title().get_text() for legend in plain.legends] == [""] * len(titles)


def test_normal_error_figures_are_unchanged_by_an_errors_column(tmp_path) -> None:
    table = synthetic_metrics(ns=(10, 100), sigmas=(1.0,))
    (plain,) = figures.save_figure(figures.bias_figure(table), tmp_path / "a", formats=("pdf",))
    (normal,) = figures.save_figure(
        figures.bias_figure(table.assign(errors="normal")), tmp_path / "b", formats=("pdf",)
    )
    assert plain.read_bytes() == normal.read_bytes()


def test_zip_plot_names_a_non_normal_error_model() -> None:
    replicates = synthetic_replicates(replications=20)
    figure = figures.zip_plot(replicates.assign(errors="t3"))
    assert figure.legends[0].get_title().get_text() == figures.ERROR_TITLES["t3"]
    assert figures.zip_plot(replicates).legends[0].get_title().get_text() == ""


def test_figures_leave_the_garbage_collector_as_they_found_it(metrics: pd.DataFrame) -> None:
    assert gc.isenabled()
    figures.bias_figure(metrics, parameters=["beta1"])
    assert gc.isenabled() and gc.get_freeze_count() == 0  # nothing left frozen
    gc.disable()
    try:
        figures.bias_figure(metrics, parameters=["beta1"])
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(InputDataError):
        figures.bias_figure(metrics, parameters=["beta7"])
    assert gc.isenabled()


def test_a_figure_taller_than_a_page_is_rastered_at_a_lower_dpi(tmp_path) -> None:
    from regsim.figures.save import MAX_RASTER_PIXELS, raster_dpi

    figure = Figure(figsize=(7.0, 32.0))  # a grid of many sigma panels
    figure.add_subplot().plot([0, 1], [0, 1])
    dpi = raster_dpi(figure, 300)
    assert dpi < 300
    pdf, png = figures.save_figure(figure, tmp_path / "tall")
    width, height = (int.from_bytes(png.read_bytes()[i : i + 4], "big") for i in (16, 20))
    assert (width, height) == (7 * dpi, 32 * dpi)
    assert width * height <= MAX_RASTER_PIXELS < 7 * (dpi + 1) * 32 * (dpi + 1)
    # the PDF keeps the figure's size in points
    assert b"/MediaBox [ 0 0 504 2304 ]" in pdf.read_bytes()
    # an A4 page and a US-letter page fit at 300 dpi
    assert raster_dpi(Figure(figsize=(8.27, 11.69)), 300) == 300
    assert raster_dpi(Figure(figsize=(8.5, 11.0)), 300) == 300


def test_the_png_rastered_from_the_pdf_is_agg_s_size_and_picture(tmp_path) -> None:
    from PIL import Image

    short = Figure(figsize=(7.0, 2.45))  # 176.4 pt: PDFium reads 176.39999...
    short.add_subplot().plot([0, 1], [0, 1])
    tall = Figure(figsize=(7.0, 32.0))  # rastered below 300 dpi
    tall.add_subplot().plot([0, 1], [0, 1])
    bias = figures.bias_figure(synthetic_metrics(ns=(10, 100), sigmas=(1.0, 5.0)))
    for name, figure in {"short": short, "tall": tall, "bias": bias}.items():
        pdf, agg = figures.save_figure(figure, tmp_path / name)
        png = tmp_path / f"{name}.png"
        agg.rename(tmp_path / f"{name}_agg.png")
        assert figures.png_from_pdf(pdf) == png
        with Image.open(png) as ours, Image.open(tmp_path / f"{name}_agg.png") as theirs:
            assert ours.size == theirs.size, name
            assert ours.mode == "RGBA" and ours.getextrema()[3] == (255, 255)  # opaque
            np.testing.assert_allclose(ours.info["dpi"], theirs.info["dpi"])
            a = np.asarray(ours.convert("RGB"), dtype=float)
            b = np.asarray(theirs.convert("RGB"), dtype=float)
        # The same picture, drawn by another renderer: edges are smoothed differently
        # (a figure's mean difference is a few levels of 255; a missing line or label,
        # or a black page, would be many more).
        difference = np.abs(a - b).max(axis=2)
        assert difference.mean() < 6.0, name
        assert (difference > 128).mean() < 0.01, name
    # the same bytes every time
    first = png.read_bytes()
    figures.png_from_pdf(pdf)
    assert png.read_bytes() == first


def test_png_from_pdf_takes_a_figure_of_one_page(tmp_path) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(tmp_path / "two.pdf") as pages:
        for _ in range(2):
            figure = Figure(figsize=(2.0, 2.0))
            figure.add_subplot().plot([0, 1], [0, 1])
            pages.savefig(figure)
    with pytest.raises(ValueError, match="one page, this one 2"):
        figures.png_from_pdf(tmp_path / "two.pdf")
    assert not (tmp_path / "two.png").exists()


def test_a_figure_s_pdf_is_found_from_either_of_its_files_or_its_stem() -> None:
    from regsim.paper import _pdf_of

    assert _pdf_of("results/figures/bias.png") == Path("results/figures/bias.pdf")
    assert _pdf_of("results/figures/bias_t3") == Path("results/figures/bias_t3.pdf")
    assert _pdf_of("figures/coverage_design1.5.pdf") == Path("figures/coverage_design1.5.pdf")


def test_vector_raster_dpi_sets_the_resolution_of_the_zip_plots_pdf(tmp_path) -> None:
    import re

    figure = figures.zip_plot(synthetic_replicates(replications=200), parameter="beta1")
    widths = {}
    for dpi in (50, 300):
        (pdf,) = figures.save_figure(
            figure, tmp_path / f"zip{dpi}", formats=("pdf",), vector_raster_dpi=dpi
        )
        # the rasterized intervals are embedded as images; the widest one's pixel width
        widths[dpi] = max(int(w) for w in re.findall(rb"/Width (\d+)", pdf.read_bytes()))
    assert 5 < widths[300] / widths[50] < 7  # 300/50 = 6, up to pixel rounding


@pytest.mark.parametrize("workers", [1, 2])
def test_figure_tasks_write_each_figure_as_drawn_alone(tmp_path, workers: int) -> None:
    table = synthetic_metrics(ns=(10, 100), sigmas=(1.0,), parameters=("beta0", "sigma"))
    table = pd.concat([table, table.assign(errors="t3")], ignore_index=True)
    table["errors"] = table["errors"].fillna("normal")
    wanted = {
        tmp_path / "many" / "bias.pdf": ("bias", {"errors": "normal"}),
        tmp_path / "many" / "sigma_t3": ("sigma", {"errors": "t3"}),
        tmp_path / "many" / "nested_loop.pdf": ("nested_loop", {"errors": "normal"}),
    }
    options = {"nested_loop": {"parameter": "sigma"}}
    tasks = figures.figure_tasks(table, wanted, options=options, p=2, alpha=0.05)
    run_tasks(tasks, workers)

    alone = {
        "bias": figures.bias_figure(table.loc[table["errors"] == "normal"]),
        "sigma_t3": figures.sigma_figure(table.loc[table["errors"] == "t3"], p=2),
        "nested_loop": figures.nested_loop_figure(
            table.loc[table["errors"] == "normal"], parameter="sigma"
        ),
    }
    for stem, figure in alone.items():
        figures.save_figure(figure, tmp_path / "alone" / stem)
        for ext in ("pdf", "png"):
            drawn = (tmp_path / "many" / f"{stem}.{ext}").read_bytes()
            assert drawn == (tmp_path / "alone" / f"{stem}.{ext}").read_bytes(), (stem, ext)


def test_figure_tasks_reject_an_unknown_family_before_drawing(tmp_path) -> None:
    table = synthetic_metrics(ns=(10, 100), sigmas=(1.0,))
    wanted = {tmp_path / "bias": ("bias", {"errors": "normal"}), tmp_path / "pie": ("pie", {})}
    with pytest.raises(KeyError, match="unknown figure family: \\['pie'\\]"):
        figures.figure_tasks(table, wanted)
    assert not list(tmp_path.iterdir())


def test_figure_tasks_pass_a_figures_error_on(tmp_path) -> None:
    table = synthetic_metrics(ns=(10, 100), sigmas=(1.0,))
    wanted = {
        tmp_path / "bias": ("bias", {"errors": "normal"}),
        tmp_path / "sigma": ("sigma", {"errors": "normal"}),
    }
    with pytest.raises(InputDataError, match="missing column"):
        run_tasks(figures.figure_tasks(table.drop(columns="mcse"), wanted), 2)


# --------------------------------------------------------------------------------------
# Slices: one level of each optional factor
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(figures.FIGURES) - {"nested_loop"}))
def test_a_table_mixing_levels_of_a_factor_is_refused_in_one_line(
    metrics: pd.DataFrame, name: str
) -> None:
    mixed = pd.concat([metrics, metrics.assign(errors="t3")], ignore_index=True)
    with pytest.raises(InputDataError) as caught:
        figures.FIGURES[name](mixed)
    message = str(caught.value)
    assert "\n" not in message
    assert "several errors levels (normal, t3)" in message
    with pytest.raises(InputDataError, match="several errors levels"):
        figures.missing_cells(mixed, "bias", "beta1")


def test_an_optional_factor_missing_in_some_rows_is_at_its_default(
    metrics: pd.DataFrame,
) -> None:
    table = metrics.assign(errors=None)
    table.loc[table.index[:10], "errors"] = "normal"
    figure = figures.bias_figure(table, parameters=["beta1"])
    assert [legend.get_title().get_text() for legend in figure.legends] == [""]


def test_the_legend_title_names_each_non_default_level(monkeypatch) -> None:
    from regsim.figures import style
    from regsim.schema import Factor

    assert style.slice_title({"errors": "normal"}) is None
    assert style.slice_title({}) is None
    assert style.slice_title({"errors": "t3"}) == figures.ERROR_TITLES["t3"]
    assert style.slice_title({"errors": "skewed"}) == "Errors: skewed"
    assert style.slice_title({"errors": "normal", "design": "collinear"}) == "Design: collinear"
    three = style.slice_title({"errors": "hetero", "truth": "null", "design": "collinear"})
    assert three == f"{figures.ERROR_TITLES['hetero']}; Truth: null; Design: collinear"
    assert style.slice_title({"errors": "normal", "truth": "beta", "design": "uniform"}) is None
    # a factor added to the grid is named by its column
    extra = Factor("scale", ("unit", "wide"), "unit")
    monkeypatch.setattr(style, "OPTIONAL_FACTORS", (*style.OPTIONAL_FACTORS, extra))
    assert style.slice_title({"errors": "normal", "scale": "wide"}) == "scale: wide"


def drawn_by_tasks(monkeypatch, metrics: pd.DataFrame, wanted: dict, **keywords) -> dict:
    """The figures figure_tasks would save, by path, drawn in this process."""
    drawn = {}
    monkeypatch.setattr(
        figures, "save_figure", lambda figure, path, formats: drawn.update({path: figure})
    )
    for task in figures.figure_tasks(metrics, wanted, **keywords):
        task()
    return drawn


def test_figure_tasks_draw_the_slice_of_their_levels(monkeypatch, tmp_path) -> None:
    table = synthetic_metrics(ns=(10, 100), sigmas=(1.0,))
    both = pd.concat([table.assign(errors="normal"), table.assign(errors="hetero")])
    both.loc[both["errors"] == "hetero", "estimate"] += 1.0
    wanted = {
        tmp_path / "bias": ("bias", {"errors": "normal"}),
        tmp_path / "bias_hetero": ("bias", {"errors": "hetero"}),
        tmp_path / "coverage_hetero": ("coverage", {"errors": "hetero"}),
    }
    drawn = drawn_by_tasks(monkeypatch, both, wanted, p=3, alpha=0.05)
    titles = {path.name: figure.legends[0].get_title().get_text() for path, figure in drawn.items()}
    hetero = figures.ERROR_TITLES["hetero"]
    assert titles == {"bias": "", "bias_hetero": hetero, "coverage_hetero": hetero}
    # each figure shows the rows of its own level
    normal_ols = errorbars(visible_axes(drawn[tmp_path / "bias"])[0])[0]
    hetero_ols = errorbars(visible_axes(drawn[tmp_path / "bias_hetero"])[0])[0]
    shift = hetero_ols.lines[0].get_ydata() - normal_ols.lines[0].get_ydata()
    np.testing.assert_allclose(shift, 1.0)
    # no exact curves off the levels the theory assumes
    coverage = drawn[tmp_path / "coverage_hetero"]
    assert not [line for ax in coverage.axes for line in exact_lines(ax)]


def test_figure_tasks_take_a_table_without_the_factor_column(monkeypatch, tmp_path) -> None:
    table = synthetic_metrics(ns=(10, 100), sigmas=(1.0,))
    wanted = {tmp_path / "a": ("sigma", {"errors": "normal"}), tmp_path / "b": ("sigma", {})}
    drawn = drawn_by_tasks(monkeypatch, table, wanted, p=2)
    for figure in drawn.values():
        assert figure.legends[0].get_title().get_text() == ""
        assert [line for ax in figure.axes for line in exact_lines(ax)]
    (task,) = figures.figure_tasks(table, {tmp_path / "c": ("sigma", {"errors": "t3"})})
    with pytest.raises(InputDataError, match="no rows at errors=t3"):
        task()


def test_figure_tasks_refuse_levels_that_are_not_a_mapping_of_factors(tmp_path) -> None:
    table = synthetic_metrics(ns=(10, 100), sigmas=(1.0,))
    with pytest.raises(TypeError, match="levels must be a mapping"):
        figures.figure_tasks(table, {tmp_path / "bias": ("bias", "normal")})
    with pytest.raises(KeyError, match="not an optional grid factor: colour"):
        figures.figure_tasks(table, {tmp_path / "bias": ("bias", {"colour": "red"})})
    assert not list(tmp_path.iterdir())


def test_figure_tasks_without_a_level_of_a_varied_factor_refuse_the_mix(tmp_path) -> None:
    table = synthetic_metrics(ns=(10, 100), sigmas=(1.0,))
    both = pd.concat([table.assign(errors="normal"), table.assign(errors="t3")])
    (task,) = figures.figure_tasks(both, {tmp_path / "bias": ("bias", {})})
    with pytest.raises(InputDataError, match="several errors levels"):
        task()


# --------------------------------------------------------------------------------------
# Grids of many σ: wrapped panels, drawn with fewer artists
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "lines", "columns"),
    [(1, 1, 1), (3, 1, 3), (4, 1, 4), (5, 2, 3), (9, 3, 3), (18, 5, 4)],
)
def test_sigma_panels_wrap_onto_as_few_lines_as_fit(count: int, lines: int, columns: int) -> None:
    from regsim.figures.layout import PanelWrap

    wrap = PanelWrap.of(count)
    assert (wrap.lines, wrap.columns) == (lines, columns)
    cells = {wrap.cell(0, j) for j in range(count)}
    assert len(cells) == count and max(c for _, c in cells) < columns


def test_grids_of_up_to_four_sigmas_keep_one_line_of_shared_panels() -> None:
    table = synthetic_metrics(ns=(10, 100), sigmas=(1.0, 2.0, 5.0, 10.0))
    figure = figures.bias_figure(table, parameters=["beta1", "sigma"])
    assert type(figure.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
    axes = visible_axes(figure)
    assert len(axes) == 8
    assert [ax.get_title() for ax in axes[4:]] == [""] * 4  # σ named once, above the top row
    assert all(ax.get_shared_x_axes().joined(axes[0], ax) for ax in axes)


def test_many_sigmas_wrap_into_panels_that_do_not_overlap(tmp_path) -> None:
    from matplotlib.backends.backend_agg import RendererAgg

    sigmas = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0, 20.0, 50.0)
    table = synthetic_metrics(ns=(10, 20, 50, 100, 200, 500, 1000), sigmas=sigmas)
    table.loc[(table["method"] == "mle") & (table["n"] == 10), ["estimate", "mcse"]] = np.nan
    figure = figures.efficiency_figure(table, parameters=["beta1", "sigma"])
    axes = visible_axes(figure)
    assert len(axes) == 2 * len(sigmas)
    assert [ax.get_title() for ax in axes[:9]] == [rf"$\sigma$ = {s:g}" for s in sigmas]
    labelled = [ax for ax in axes if ax.get_xlabel()]
    assert len(labelled) == 3  # the last line of the last row
    assert all(ax.get_yscale() == "log" for ax in axes)
    assert any(legend.get_gid() == "regsim-missing-note" for legend in figure.legends)

    (first,) = figures.save_figure(figure, tmp_path / "a", formats=("png",))
    (again,) = figures.save_figure(figure, tmp_path / "b", formats=("png",))
    assert first.read_bytes() == again.read_bytes()  # the layout is the same every time
    figure.dpi = 300
    renderer = RendererAgg(1, 1, 300)
    boxes = [ax.get_tightbbox(renderer) for ax in axes]
    boxes += [legend.get_window_extent(renderer) for legend in figure.legends]
    for a in range(len(boxes)):
        assert 0 <= boxes[a].x0 and boxes[a].x1 <= figure.bbox.width
        assert 0 <= boxes[a].y0 and boxes[a].y1 <= figure.bbox.height
        for b in range(a):
            assert not boxes[a].overlaps(boxes[b]), (a, b)
    sizes = {(round(ax.bbox.width), round(ax.bbox.height)) for ax in axes}
    assert len(sizes) == 1
    assert len({round(ax.bbox.x0) for ax in axes}) == 3  # three panels a line


def test_series_error_bars_look_exactly_like_one_errorbar_per_series() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    x = np.array([10.0, 20.0, 50.0, 100.0])
    y = np.array([0.2, np.nan, -0.1, 0.05])
    err = np.array([0.05, 0.0, 0.02, 0.0])
    # The third series has no estimate at all: no bars, and no path of none.
    styles = list(series_styles([("ols", ""), ("map", "weak"), ("mle", "")]).values())
    pixels = []
    for merged in (False, True):
        with mpl.rc_context(RC):
            figure = Figure(figsize=(2.0, 1.5), dpi=150)
            ax = figure.add_axes((0.1, 0.1, 0.8, 0.8))
            ax.set_xscale("log")
            xs = np.array([x, 1.05 * x, 1.1 * x])
            ys = np.array([y, y + 1.0, np.full_like(y, np.nan)])
            errs = np.array([err, err, err])
            if merged:
                panels.series_errorbars(ax, xs, ys, errs, styles)
            else:
                for k, style in enumerate(styles):
                    panels.errorbar(ax, xs[k], ys[k], errs[k], style, "series")
            ax.autoscale(axis="y")
            ax.set_xlim(7.0, 150.0)
            canvas = FigureCanvasAgg(figure)
            canvas.draw()
            pixels.append(np.asarray(canvas.buffer_rgba()).copy())
    np.testing.assert_array_equal(pixels[0], pixels[1])


def test_unlabelled_n_ticks_look_exactly_like_matplotlibs_ticks() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    pixels = []
    for labels in (True, False):
        with mpl.rc_context(RC):
            figure = Figure(figsize=(2.0, 1.0), dpi=150)
            ax = figure.add_axes((0.1, 0.3, 0.8, 0.6))
            panels.format_n_axis(ax, [10, 20, 50, 100, 1000], labels=labels)
            ax.tick_params(labelbottom=False)
            canvas = FigureCanvasAgg(figure)
            canvas.draw()
            pixels.append(np.asarray(canvas.buffer_rgba()).copy())
            assert ax.get_xlim() == pytest.approx((10 / 10**0.09, 1000 * 10**0.09))
    np.testing.assert_array_equal(pixels[0], pixels[1])


def test_font_subsetting_does_not_fill_the_jobs_logs(tmp_path, caplog) -> None:
    """fontTools logs each step of a PDF's font subsetting at INFO level, a hundred lines
    a PDF: the warm-up and every saved figure keep it to its warnings."""
    from regsim.figures.save import warm_up

    table = synthetic_metrics(sigmas=(1.0, 2.0))
    with caplog.at_level(logging.INFO):
        warm_up()
        figures.save_figure(figures.bias_figure(table), tmp_path / "bias", formats=("pdf",))
    assert (tmp_path / "bias.pdf").exists()
    assert not [r for r in caplog.records if r.name.startswith("fontTools")]
    assert logging.getLogger("fontTools").level == logging.NOTSET


def _embedded_fonts(pdf: bytes) -> list[bytes]:
    """The TrueType programs (``/FontFile2`` streams) a PDF of matplotlib embeds."""
    import re
    import zlib

    fonts = []
    for number in re.findall(rb"/FontFile2 (\d+) 0 R", pdf):
        start = pdf.index(b"\n" + number + b" 0 obj")
        head = pdf.index(b"stream\n", start) + len(b"stream\n")
        length = int(re.search(rb"/Length (\d+)", pdf[start:head]).group(1))
        fonts.append(zlib.decompress(pdf[head : head + length]))
    return fonts


def test_pdf_fonts_leave_out_the_layout_tables_and_draw_the_same_pixels(
    tmp_path, monkeypatch
) -> None:
    """The PDF's fonts are subset without OpenType's layout tables (decoding them was most
    of the subsetting's time): the fonts lack them, the page rasters to the same pixels
    as the same figure's PDF with matplotlib's own subsets, and fontTools' defaults are
    put back."""
    import io

    import pypdfium2
    from fontTools import subset
    from fontTools.ttLib import TTFont

    from regsim.figures import save

    # What the speed-up relies on: were it gone, fonts would be subset in full, slowly.
    assert isinstance(getattr(subset.Options, "_drop_tables_default", None), list), (
        "fontTools.subset.Options._drop_tables_default is gone: regsim.figures.save."
        "_font_subsetting no longer leaves out the fonts' layout tables"
    )
    before = list(subset.Options._drop_tables_default)
    assert not set(save.LAYOUT_TABLES) & set(before)  # else there is nothing to test
    table = synthetic_metrics(sigmas=(1.0, 2.0))
    figures.save_figure(figures.bias_figure(table), tmp_path / "ours", formats=("pdf",))
    assert subset.Options._drop_tables_default == before
    monkeypatch.setattr(save, "LAYOUT_TABLES", ())
    figures.save_figure(figures.bias_figure(table), tmp_path / "full", formats=("pdf",))
    pdfs = {name: (tmp_path / f"{name}.pdf").read_bytes() for name in ("ours", "full")}
    fonts = {name: _embedded_fonts(pdf) for name, pdf in pdfs.items()}
    assert len(fonts["ours"]) == len(fonts["full"]) >= 1
    for name, programs in fonts.items():
        for program in programs:
            tables = set(TTFont(io.BytesIO(program)).keys())
            if name == "ours":
                assert not tables & {"GSUB", "GPOS", "GDEF"}, tables
            else:  # DejaVu Sans has them, and matplotlib keeps them
                assert {"GSUB", "GPOS"} <= tables, tables
    assert len(pdfs["ours"]) < len(pdfs["full"])
    pixels = [
        pypdfium2.PdfDocument(pdf)[0].render(scale=300 / 72).to_numpy() for pdf in pdfs.values()
    ]
    np.testing.assert_array_equal(pixels[0], pixels[1])


def test_a_figure_drawn_after_the_warm_up_is_the_same_bytes(tmp_path) -> None:
    """The paper job draws a small figure before it forks its workers
    (``save.warm_up``): a figure then drawn is the one a fresh process draws."""
    table = tmp_path / "metrics.csv"
    synthetic_metrics(sigmas=(1.0, 2.0, 3.0, 4.0, 5.0)).to_csv(table, index=False)
    code = (
        "import sys, pandas as pd\n"
        "from regsim import figures\n"
        "from regsim.figures.save import warm_up\n"
        "if sys.argv[3] == 'warm':\n"
        "    warm_up()\n"
        "figures.save_figure(figures.bias_figure(pd.read_csv(sys.argv[1])), sys.argv[2])\n"
    )
    for how in ("cold", "warm"):
        subprocess.run(
            [sys.executable, "-c", code, str(table), str(tmp_path / how / "bias"), how],
            check=True,
        )
    for suffix in (".pdf", ".png"):
        cold, warm = (tmp_path / how / f"bias{suffix}" for how in ("cold", "warm"))
        assert cold.read_bytes() == warm.read_bytes(), suffix


def test_every_prior_s_legend_handle_shows_a_gap_on_each_side_of_its_marker() -> None:
    """A handle is a dash pattern along the legend's handle with the marker in its
    middle: the skeptical prior's (10, 3) had put its only gap under the marker, and its
    handle read as a solid line."""
    from regsim.figures.style import handle_linestyle
    from regsim.styles import PRIOR_STYLES

    length = RC["legend.handlelength"] * RC["legend.fontsize"]  # points
    width = RC["lines.linewidth"]  # dashes are in units of the line's width
    marker = RC["lines.markersize"]
    priors = [*PRIOR_STYLES, "extra1", "extra2", "extra3", "extra4"]
    styles = series_styles([("map", prior) for prior in priors])
    for (_, prior), style in styles.items():
        offset, dashes = handle_linestyle(style["linestyle"])
        on_off = np.asarray(dashes, dtype=float) * width
        gaps = []  # (start, stop) of each gap along the handle, in points
        start = -offset * width
        while start < length:
            for k, part in enumerate(on_off):
                if k % 2 == 1:
                    gaps.append((max(start, 0.0), min(start + part, length)))
                start += part
        visible = [(a, b) for a, b in gaps if b - a >= 1.0]
        left = [g for g in visible if g[1] <= length / 2 - marker / 2]
        right = [g for g in visible if g[0] >= length / 2 + marker / 2]
        assert left and right, (prior, visible)


@pytest.mark.parametrize(
    ("low", "high", "shown"),
    [
        (0.05, 20.0, ["0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10", "20"]),
        (0.8, 1.6, ["0.8", "0.9", "1"]),
        (0.92, 1.08, ["0.95", "1", "1.05"]),
    ],
)
def test_a_narrow_log_axis_still_has_two_labels(low: float, high: float, shown) -> None:
    # An efficiency panel spanning 0.8 to 1.6 had a single label, 1: where fewer than two
    # 1-2-5 ticks are in view every integer multiple is labelled, and failing that linear
    # steps.
    with mpl.rc_context(RC):
        figure = Figure()
        ax = figure.add_subplot()
        ax.plot([0, 1], [low, high])
        panels.log_axis(ax)
        ax.set_ylim(low, high)
        figure.canvas.draw()
    labels = [
        tick.get_text()
        for tick in ax.get_yticklabels()
        if tick.get_text() and low <= tick.get_position()[1] <= high
    ]
    assert labels == shown


@pytest.mark.parametrize("series", [1, 4, 10])
def test_the_n_axis_leaves_its_margin_beyond_the_outermost_dodged_series(series: int) -> None:
    # Ten series (MAP and Bayes under four priors, OLS, MLE) are dodged 0.072 decades
    # either side of each n, beyond the axis' margin of 0.045 decades at the outer n:
    # their markers were cut in half at the panel's edges.
    ns = [20, 50, 100]
    with mpl.rc_context(RC):
        ax = Figure().add_subplot()
        panels.format_n_axis(ax, ns, series=series)
    low, high = ax.get_xlim()
    outer_low = ns[0] * panels.dodge(0, series)
    outer_high = ns[-1] * panels.dodge(series - 1, series)
    assert outer_low / low == pytest.approx(10**0.045)
    assert high / outer_high == pytest.approx(10**0.045)
