"""Truths and covariate designs as grid factors: cells, keys, datasets and outputs."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.axes import Axes
from scipy import stats
from test_config import schema_validate

from regsim import config as cfg
from regsim import figures
from regsim.cells import summarize_cell
from regsim.design import UNIFORM, Cell, Design
from regsim.fits import fit_table
from regsim.simulate import (
    block_streams,
    draw,
    equicorrelation_factor,
    fixed_covariates,
    make_covariates,
)
from regsim.specs import FitSpec
from regsim.study import Study

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())
BETA = tuple(DEFAULTS["beta"])
NULL = (10.0, 0.0, 10.1777)

#: The example of docs/configuration.md: type I error and collinearity.
EXAMPLE = yaml.safe_load((ROOT / "examples" / "factors.yaml").read_text())

COLLINEAR = Design("collinear", "normal", 0.9)
FIXED = Design("fixed", "uniform", fixed=True)
COINS = Design("coins", "binary")


def study(layer: dict[str, Any]) -> Study:
    config = cfg.resolve([copy.deepcopy(DEFAULTS), copy.deepcopy(layer)], validate=schema_validate)
    return Study.from_config(config)


# --------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------


def test_the_example_crosses_every_factor_in_grid_order() -> None:
    s = study(EXAMPLE)
    grid = EXAMPLE["grid"]
    assert len(s.cells) == 2 * 2 * 1 * 2 * 3
    assert [(c.truth, c.design.name) for c in s.cells[:6]] == [
        (truth, design) for truth in grid["truth"] for design in grid["design"]
    ]
    assert s.cells[0].label == "n20_sigma1_seed"
    assert s.cells[1].label == "n20_sigma1_seed_collinear"
    assert s.cells[5].label == "n20_sigma1_null_slope_fixed"
    assert s.cells[4].beta == (10.0, 0.0, 10.1777)
    assert s.cells[4].design == Design("collinear", "normal", 0.9)
    assert s.varied == ("truth", "design")
    assert len(s.slices) == 6 and s.slices[0] == {
        "errors": "normal",
        "truth": "seed",
        "design": "uniform",
    }
    assert "rejection_null_slope_collinear" in s.figure_files
    assert "bias_beta1_null_slope_fixed.tex" in s.paper_tables
    assert s.figure_files["nested_loop"] == ("nested_loop", {})


def test_beta_alone_is_one_truth_and_the_uniform_design() -> None:
    s = study({})
    assert {c.truth for c in s.cells} == {"beta"} and {c.design for c in s.cells} == {UNIFORM}
    assert s.varied == ()


def test_a_configfile_of_truths_replaces_the_defaults_beta() -> None:
    s = study({"truths": {"a": [1.0, 2.0, 3.0]}})
    assert {c.truth for c in s.cells} == {"a"} and s.cells[0].beta == (1.0, 2.0, 3.0)


def test_without_grid_keys_every_defined_truth_and_design_is_used() -> None:
    s = study(
        {
            "truths": {"b": list(BETA), "a": list(NULL)},
            "designs": {"coins": {"covariates": "binary"}, "fixed": {"fixed": True}},
        }
    )
    assert list(s.truths) == ["b", "a"]
    assert list(s.designs) == ["coins", "fixed"]  # the default design is not added
    assert s.designs["fixed"] == Design("fixed", "uniform", fixed=True)


# --------------------------------------------------------------------------------------
# Keys and seeds
# --------------------------------------------------------------------------------------


def test_the_default_grid_keeps_its_keys_and_datasets() -> None:
    """A cell of one truth and the uniform random design has the key it had before the
    factors existed: the pinned recipe of test_design, names playing no part."""
    plain = Cell(20, 5.0, BETA)
    named = Cell(20, 5.0, BETA, truth="seed", design=Design("uniform"))
    assert plain.canonical() == {"beta": ["10.0", "3.8987", "10.1777"], "n": 20, "sigma": "5.0"}
    assert named.key == plain.key
    np.testing.assert_array_equal(draw(named, 7, 0, 20).x, draw(plain, 7, 0, 20).x)
    np.testing.assert_array_equal(draw(named, 7, 0, 20).y, draw(plain, 7, 0, 20).y)


def test_adding_a_truth_or_design_keeps_every_other_cells_datasets() -> None:
    before = study({"truths": {"seed": list(BETA)}})
    after = study(EXAMPLE)
    old = {(c.n, c.sigma, c.truth): c for c in before.cells if c.n in (20, 100)}
    kept = [c for c in after.cells if c.truth == "seed" and c.design.name == "uniform"]
    assert kept and all(c.key == old[(c.n, c.sigma, c.truth)].key for c in kept)
    keys = [c.key for c in after.cells]
    assert len(set(keys)) == len(keys)  # every other cell has datasets of its own


def test_a_design_or_truth_renamed_keeps_its_datasets() -> None:
    assert Cell(20, 1.0, BETA, design=COLLINEAR).key == (
        Cell(20, 1.0, BETA, design=Design("corr", "normal", 0.9)).key
    )
    assert Cell(20, 1.0, NULL, truth="null").key == Cell(20, 1.0, NULL, truth="h0").key
    assert Cell(20, 1.0, BETA, design=COLLINEAR).key != (
        Cell(20, 1.0, BETA, design=Design("collinear", "normal", 0.5)).key
    )


@pytest.mark.parametrize("design", [COLLINEAR, COINS], ids=["normal", "binary"])
def test_random_designs_keep_the_seeding_invariants(design: Design) -> None:
    """Made from the same uniforms as U(0, 1) covariates: a range starting anywhere, in a
    block or across blocks, is the slice of the whole."""
    cell = Cell(15, 2.0, BETA, design=design)
    whole = draw(cell, 3, 0, 600)
    for start, stop in ((0, 1), (100, 300), (255, 257), (599, 600)):
        part = draw(cell, 3, start, stop)
        np.testing.assert_array_equal(part.x, whole.x[start:stop])
        np.testing.assert_array_equal(part.y, whole.y[start:stop])
    # replicate 0's covariates follow the documented recipe from the block's uniforms
    covariates, _ = block_streams(cell, 3, 0)
    expected = make_covariates(design, covariates.random((1, 15, 2)))
    np.testing.assert_array_equal(whole.x[:1], expected)


def test_normal_covariates_are_finite_for_every_uniform_the_generator_gives() -> None:
    from scipy.special import ndtri

    # Generator.random gives k·2⁻⁵³ for k = 0 … 2⁵³ − 1: the ends, both sides of ½, and
    # random ones, which keep the values they always had (ndtri of u + 2⁻⁵⁴).
    ends = np.array([0.0, 2.0**-53, 0.5 - 2.0**-53, 0.5, 0.5 + 2.0**-53, 1 - 2 * 2.0**-53])
    top = 1 - 2.0**-53
    inner = np.concatenate([ends, np.random.default_rng(5).random(994)])
    uniforms = np.concatenate([inner, [top]]).reshape(1, -1, 1)
    x = make_covariates(Design(covariates="normal"), uniforms.copy())
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x.ravel()[:-1], ndtri(inner + 2.0**-54))
    assert x.ravel()[-1] == ndtri(top) and 8.2 < x.ravel()[-1] < 8.3
    assert x.ravel()[0] == ndtri(2.0**-54) and -8.3 < x.ravel()[0] < -8.2
    correlated = make_covariates(Design(covariates="normal", rho=0.5), np.array([[[top, 0.3]]]))
    assert np.isfinite(correlated).all()


def test_a_fixed_design_has_one_x_per_sample_size() -> None:
    cells = [
        Cell(20, 1.0, BETA, design=FIXED),
        Cell(20, 5.0, NULL, truth="null", design=FIXED),
        Cell(20, 1.0, BETA, errors="t3", design=FIXED),
    ]
    x = fixed_covariates(FIXED, 20, 2, 11)
    for cell in cells:
        data = draw(cell, 11, 250, 260)  # across a seeding block's edge
        assert (data.x == x).all()
    assert not np.array_equal(fixed_covariates(FIXED, 21, 2, 11)[:20], x)
    assert not np.array_equal(fixed_covariates(FIXED, 20, 2, 12), x)
    fixed_normal = Design("fixed_normal", "normal", 0.9, fixed=True)
    assert not np.array_equal(fixed_covariates(fixed_normal, 20, 2, 11), x)
    # the errors still differ from replicate to replicate, and from the random design's
    data = draw(cells[0], 11, 0, 3)
    assert len({tuple(row) for row in data.y}) == 3
    assert not np.array_equal(data.y, draw(Cell(20, 1.0, BETA), 11, 0, 3).y)


# --------------------------------------------------------------------------------------
# The covariates' distributions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.9, -0.3, 0.0])
def test_normal_covariates_are_standard_normal_with_equicorrelation_rho(rho: float) -> None:
    design = Design("d", "normal", rho)
    x = draw(Cell(40, 1.0, (1.0, 2.0, 3.0, 4.0), design=design), 5, 0, 500).x.reshape(-1, 3)
    for j in range(3):
        assert stats.kstest(x[:, j], "norm").pvalue > 1e-3
    corr = np.corrcoef(x.T)
    off = corr[~np.eye(3, dtype=bool)]
    # 20 000 rows: the sd of a sample correlation is at most (1 − ρ²)/√m ≈ 0.007
    assert np.abs(off - rho).max() < 5 * (1 - rho**2) / math.sqrt(len(x)) + 1e-12
    factor = equicorrelation_factor(3, rho)
    np.testing.assert_allclose(factor @ factor.T, np.eye(3) * (1 - rho) + rho)


def test_binary_covariates_are_fair_coins() -> None:
    x = draw(Cell(40, 1.0, BETA, design=COINS), 5, 0, 500).x
    assert set(np.unique(x)) == {0.0, 1.0}
    assert abs(x.mean() - 0.5) < 5 * 0.5 / math.sqrt(x.size)


@pytest.mark.parametrize("design", [COLLINEAR, COINS, FIXED], ids=["normal", "binary", "fixed"])
def test_hetero_errors_average_sigma2_and_grow_with_the_first_covariate(design: Design) -> None:
    cell = Cell(60, 2.0, BETA, errors="hetero", design=design)
    data = draw(cell, 9, 0, 3000)
    noise = data.y - BETA[0] - data.x @ np.array(BETA[1:])
    assert noise.var() == pytest.approx(4.0, rel=0.05 if not design.fixed else 0.15)
    first = data.x[:, :, 0]
    low, high = noise[first < first.mean()], noise[first > first.mean()]
    assert low.var() < high.var()
    if design.covariates == "binary":  # sd ∝ 0.5 + x_1: (0.5 / 1.5)² of the variance
        assert low.var() / high.var() == pytest.approx(1 / 9, rel=0.05)


def test_a_singular_binary_replicate_fails_without_a_warning() -> None:
    """At n = 5, binary covariates are often constant: those replicates are flagged as
    failed fits (not identified), the others fitted."""
    cell = Cell(5, 1.0, BETA, design=COINS)
    data = draw(cell, 1, 0, 400)
    with np.errstate(all="raise"):
        table = fit_table(data, FitSpec(("ols", "mle"), (), 0.05))
    failed = ~table.groupby("replicate")["converged"].all()
    constant = (data.x.max(axis=1) == data.x.min(axis=1)).any(axis=1)
    assert constant.any()
    assert (failed.to_numpy()[constant]).all()


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


def test_metrics_carry_every_factor_and_the_true_value() -> None:
    cell = Cell(30, 1.0, NULL, truth="null", design=COLLINEAR)
    metrics = summarize_cell(fit_table(draw(cell, 4, 0, 200), FitSpec(("ols",), (), 0.05)), 0.05)
    assert list(metrics.columns[:5]) == ["n", "sigma", "errors", "truth", "design"]
    assert set(metrics["truth"]) == {"null"} and set(metrics["design"]) == {"collinear"}
    truths = metrics.drop_duplicates("parameter").set_index("parameter")["true"]
    assert truths.to_dict() == {"beta0": 10.0, "beta1": 0.0, "beta2": 10.1777, "sigma": 1.0}
    rejection = metrics.loc[metrics["measure"] == "rejection"].set_index("parameter")
    # the null slope's rejection rate is the test's size; the others' is near 1
    assert rejection.loc["beta1", "estimate"] < 0.15
    assert rejection.loc["beta0", "estimate"] == 1.0
    estimate = rejection.loc["beta1", "estimate"]
    assert rejection.loc["beta1", "mcse"] == pytest.approx(
        math.sqrt(estimate * (1 - estimate) / 200)
    )


def slice_metrics(truth: tuple[float, ...], replicates: int = 300) -> pd.DataFrame:
    rows = []
    for n in (12, 40):
        for sigma in (1.0, 5.0):
            cell = Cell(n, sigma, truth, truth="null", design=COLLINEAR)
            fits = fit_table(draw(cell, 2, 0, replicates), FitSpec(("ols", "mle"), (), 0.05))
            rows.append(summarize_cell(fits, 0.05))
    return pd.concat(rows, ignore_index=True)


def test_the_rejection_figure_shows_size_where_the_truth_is_zero() -> None:
    figure = figures.rejection_figure(slice_metrics(NULL), alpha=0.05, p=3)
    axes = [ax for ax in figure.axes if ax.get_ylabel()]
    labels = [ax.get_ylabel() for ax in axes]
    assert labels == [
        "Power\n($\\beta_{0}$ = 10)",
        "Type I error\n($\\beta_{1}$ = 0)",
        "Power\n($\\beta_{2}$ = 10.18)",
    ]
    title = figure.legends[0].get_title().get_text()
    assert title == "Truth: null; Design: collinear"
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "nominal α = 0.05" in legend and "MC band (R = 300)" in legend
    assert "MLE exact size (normal errors)" in legend

    def bands(ax: Axes) -> int:
        return sum(1 for patch in ax.patches if patch.get_facecolor()[:3] != (1.0, 1.0, 1.0))

    # the band is drawn in the null row's panels only (both σ), not in the power rows
    rows = figure.axes[:6]
    assert [bands(ax) > 0 for ax in rows] == [False, False, True, True, False, False]
    # σ has no test of 0
    with pytest.raises(Exception, match="no parameter|sigma"):
        figures.rejection_figure(slice_metrics(NULL), parameters=["sigma", "beta9"])


def test_the_nested_loop_plot_loops_over_every_factor_the_table_varies() -> None:
    parts = []
    for truth, beta in (("seed", BETA), ("null", NULL)):
        for design in (UNIFORM, COLLINEAR):
            for n in (12, 40):
                cell = Cell(n, 1.0, beta, truth=truth, design=design)
                fits = fit_table(draw(cell, 2, 0, 100), FitSpec(("ols",), (), 0.05))
                parts.append(summarize_cell(fits, 0.05))
    metrics = pd.concat(parts, ignore_index=True)
    expected = {"truth": ["seed", "null"], "design": ["uniform", "collinear"]}
    figure = figures.nested_loop_figure(metrics, expected=expected)
    loops_axis = figure.axes[1]
    texts = [t.get_text() for t in loops_axis.texts]
    assert texts[:2] == ["truth", "seed"]  # the outermost loop, in the expected order
    assert "null" in texts and "collinear" in texts and "design" in texts
    step = figure.axes[0].lines[0]
    assert len(step.get_xdata()) == 2 * 2 * 1 * 2 + 1  # 8 scenarios, and the closing edge
    with pytest.raises(Exception, match="loops must be a permutation"):
        figures.nested_loop_figure(metrics, loops=["sigma", "n"])
    ordered = figures.nested_loop_figure(metrics, loops=["n", "design", "truth", "sigma"])
    assert [t.get_text() for t in ordered.axes[1].texts][0] == "$n$"


# --------------------------------------------------------------------------------------
# Bayes beside MAP: the Laplace figure
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def laplace_metrics() -> pd.DataFrame:
    from regsim.design import Prior

    priors = (
        Prior("weak", (0.0, 0.0, 0.0), (100.0, 100.0, 100.0)),
        Prior("skeptical", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    )
    spec = FitSpec(("ols", "map", "bayes"), priors, 0.05)
    parts = []
    for n in (12, 40):
        for sigma in (1.0, 5.0):
            fits = fit_table(draw(Cell(n, sigma, BETA), 3, 0, 60), spec)
            parts.append(summarize_cell(fits, 0.05, reference="ols"))
    return pd.concat(parts, ignore_index=True)


def test_the_laplace_figure_sets_map_beside_the_exact_interval_per_prior(
    laplace_metrics: pd.DataFrame,
) -> None:
    metrics = laplace_metrics
    figure = figures.laplace_figure(metrics, "beta1", alpha=0.05)
    labels = [ax.get_ylabel() for ax in figure.axes if ax.get_ylabel().startswith("Coverage")]
    assert labels == [
        "Coverage of $\\beta_{1}$\nprior weak",
        "Coverage of $\\beta_{1}$\nprior skeptical",
    ]
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend[:2] == ["MAP (Laplace)", "Bayes (exact)"]
    # the plotted coverages are the table's, MAP's and Bayes's of each prior
    main = [ax for ax in figure.axes if ax.get_ylabel() or ax.get_title()][:4]
    rows = metrics.loc[(metrics["measure"] == "coverage") & (metrics["parameter"] == "beta1")]
    weak_map = rows.loc[
        (rows["method"] == "map") & (rows["prior"] == "weak") & (rows["sigma"] == 1.0)
    ]
    line = next(a for a in main[0].lines if len(a.get_ydata()) == 2 and a.get_color() == "#009E73")
    np.testing.assert_allclose(line.get_ydata(), weak_map.sort_values("n")["estimate"])
    with pytest.raises(Exception, match="no bayes rows"):
        figures.laplace_figure(metrics.loc[metrics["method"] != "bayes"])
    assert "laplace" in study({"methods": ["ols", "mle", "map", "bayes"]}).families
    assert "laplace" not in study({}).families


def test_the_bimodal_share_is_drawn_only_where_a_posterior_had_two_modes(
    laplace_metrics: pd.DataFrame,
) -> None:
    """A right axis of zeros beside every panel would crowd the coverage axes."""
    counts = laplace_metrics["measure"] == "n_multimodal"
    one = (
        counts
        & (laplace_metrics["method"] == "bayes")
        & (laplace_metrics["prior"] == "skeptical")
        & (laplace_metrics["sigma"] == 1.0)
        & (laplace_metrics["n"] == 12)
    )
    for shown, table in (
        (
            1,
            laplace_metrics.assign(
                estimate=np.where(counts, np.where(one, 7.0, 0.0), laplace_metrics["estimate"])
            ),
        ),
        (0, laplace_metrics.assign(estimate=np.where(counts, 0.0, laplace_metrics["estimate"]))),
    ):
        figure = figures.laplace_figure(table, "beta1", alpha=0.05)
        right = [
            ax
            for ax in figure.axes
            if ax.get_ylim() == (0.0, 1.0) and ax.lines and ax.get_lines()[0].get_linestyle() == ":"
        ]
        assert len(right) == shown
        legend = [t.get_text() for t in figure.legends[0].get_texts()]
        assert ("log σ's posterior with 2+ modes (right axis)" in legend) == bool(shown)
        if shown:
            np.testing.assert_allclose(right[0].get_lines()[0].get_ydata(), [7.0 / 60.0, 0.0])


def test_the_bimodal_share_shows_in_a_grid_of_one_n(laplace_metrics: pd.DataFrame) -> None:
    """A dotted line through a single point draws nothing: the share is marked."""
    table = laplace_metrics.loc[laplace_metrics["n"] == 12]
    counts = (table["measure"] == "n_multimodal") & (table["method"] == "bayes")
    table = table.assign(estimate=np.where(counts, 6.0, table["estimate"]))
    figure = figures.laplace_figure(table, "beta1", alpha=0.05)
    shares = [
        line
        for ax in figure.axes
        if ax.get_ylim() == (0.0, 1.0)
        for line in ax.get_lines()
        if line.get_linestyle() == ":"
    ]
    assert shares and all(len(line.get_xdata()) == 1 for line in shares)
    assert all(line.get_marker() not in (None, "", "None") for line in shares)
    assert all(line.get_markersize() > 0 for line in shares)


@pytest.mark.parametrize(("n", "k"), [(5, 1), (6, 2), (7, 2), (6, 3)])
def test_singular_share_of_binary_designs_against_enumeration(n: int, k: int) -> None:
    # Every n × k binary matrix, equally likely: the share whose [1, x] is singular is
    # exactly singular_share for k ≤ 2 (a constant covariate, x1 = x2 or x1 = 1 − x2),
    # and at least it for k = 3 (where more dependencies exist).
    cells = n * k
    codes = np.arange(2**cells, dtype=np.int64)[:, None] >> np.arange(cells) & 1
    x = codes.reshape(-1, n, k).astype(float)
    design = np.concatenate([np.ones((len(x), n, 1)), x], axis=2)
    singular = np.linalg.matrix_rank(design) < k + 1
    exact = float(singular.mean())
    if k <= 2:
        assert cfg.singular_share(n, k) == pytest.approx(exact, rel=1e-12)
    else:
        assert 0 < cfg.singular_share(n, k) <= exact


# --------------------------------------------------------------------------------------
# The figures of one cell's fits follow the failure rule of the measures
# --------------------------------------------------------------------------------------


def test_the_zip_plot_under_the_common_rule_shows_the_measures_replicates() -> None:
    from regsim.design import Prior
    from regsim.figures.replicates import add_note, common_replicates

    shifted = Prior("shifted", (12.0, 5.8987, 12.1777), (1.0, 1.0, 1.0))
    # four Newton steps: some MAP fits fail, and the common rule leaves those replicates
    # out of OLS's measures too
    spec = FitSpec(("ols", "map"), (shifted,), 0.05, map_max_iter=4)
    fits = fit_table(draw(Cell(10, 5.0, BETA), 7, 0, 120), spec)
    failed = fits.loc[~fits["converged"], "replicate"].unique()
    assert 0 < len(failed) < 120
    metrics = summarize_cell(fits, 0.05, failures="common")
    coverage = metrics.loc[
        (metrics["measure"] == "coverage")
        & (metrics["method"] == "ols")
        & (metrics["parameter"] == "beta1"),
        "estimate",
    ].item()
    rows, note = common_replicates(fits.loc[fits["parameter"] == "beta1"])
    assert note == (
        f"failures: common: the {120 - len(failed)} of 120 replicates every fit converged "
        "on; the others are left out"
    )
    figure = figures.zip_plot(rows, parameter="beta1")
    title = next(ax.get_title() for ax in figure.axes if ax.get_title().startswith("OLS"))
    assert f"coverage {100 * coverage:.1f}%" in title
    assert f"{len(failed)} failed" in title
    add_note(figure, note)
    assert figure.legends[0].get_title().get_text().endswith(note)


def test_the_paper_job_draws_a_cells_figures_under_its_failure_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import regsim.paper as paper
    from regsim.design import Prior
    from regsim.tableio import write_parquet

    shifted = Prior("shifted", (12.0, 5.8987, 12.1777), (1.0, 1.0, 1.0))
    spec = FitSpec(("ols", "map"), (shifted,), 0.05, map_max_iter=4)
    fits = fit_table(draw(Cell(10, 5.0, BETA), 7, 0, 120), spec)
    write_parquet(fits, tmp_path / "n10_sigma5.parquet")
    drawn: dict[str, Any] = {}
    monkeypatch.setattr(
        paper, "save_figure", lambda figure, path, **_: drawn.update({path: figure})
    )
    figures_of = {tmp_path / "zip.pdf": ("zip", "n10_sigma5", "beta1")}
    for rule, noted in (("own", False), ("common", True)):
        (task,) = paper._cell_figures_task(
            figures_of,
            {"n10_sigma5": tmp_path / "n10_sigma5.parquet"},
            alpha=0.05,
            reference=None,
            failures=rule,
        )
        task()
        title = drawn[tmp_path / "zip.pdf"].legends[0].get_title().get_text()
        assert ("failures: common: the" in title) == noted, rule
