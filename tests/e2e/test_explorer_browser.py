"""End-to-end test of the results explorer, opened from ``file://`` in headless Chromium.

The smoke study's ``results/explorer.html`` (the shared session run of test_workflow.py)
is browsed: it opens offline without an error or a request, every plotted number is read
back from the page's Plotly traces and compared with ``metrics.csv``, and the tables,
diagnostics and record are those of the files. A page of a grid with every optional
factor (drawn in-process from a synthetic metrics table) shows that every control
changes what is drawn and where the rejection rate's α band belongs; one of a 378-cell
grid that a control change redraws quickly.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser import WAIT, View, launch, open_page, sync_api
from snakemake.utils import validate
from test_workflow import ROOT, SMOKE, TOGETHER

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.explorer import CHANGES, write_page  # the benchmark's page, made-up numbers
from bench.explorer import GRID as LARGE_PAGE
from regsim import config as cfg
from regsim.schema import cell_label
from regsim.study import Study
from regsim.tableio import read_metrics

pytestmark = pytest.mark.e2e

DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())
# (measure, parameter) pairs whose plotted values are checked against metrics.csv
CHECKED = [("coverage", "beta1"), ("bias", "sigma"), ("rmse", "beta0"), ("n_reps", "beta2")]


def make_study(**layer: Any) -> Study:
    config = cfg.resolve(
        [copy.deepcopy(DEFAULTS), layer],
        validate=lambda c: validate(c, str(ROOT / "schemas" / "config.schema.yaml")),
    )
    return Study.from_config(config)


@pytest.fixture(scope="module")
def smoke(smoke_runs) -> Path:
    """The results folder of the shared smoke run (a job per sample size)."""
    return smoke_runs(2, TOGETHER) / "results"


@pytest.fixture(scope="module")
def chromium() -> Iterator[sync_api.Browser]:
    yield from launch()


def drawn(view: View, at_least: int = 1) -> None:
    """Wait until the explorer has drawn ``at_least`` times."""
    view.page.wait_for_function("n => window.explorer && explorer.draws >= n", arg=at_least)


def act(view: View, action) -> None:
    """Do something to a control and wait for the redraw it causes."""
    before = view.page.evaluate("explorer.draws")
    action()
    drawn(view, before + 1)


@pytest.fixture
def smoke_view(chromium: sync_api.Browser, smoke: Path) -> Iterator[View]:
    view = open_page(chromium, smoke / "explorer.html")
    drawn(view)
    yield view
    view.page.close()


@pytest.fixture(scope="module")
def factors_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    study = make_study(
        truths={"seed": [10.0, 3.8987, 10.1777], "null_slope": [10.0, 0.0, 10.1777]},
        designs={
            "uniform": {"covariates": "uniform"},
            "collinear": {"covariates": "normal", "rho": 0.5},
        },
        grid={"n": [20, 100], "sigma": [1, 5], "errors": ["normal", "t3"]},
        priors={"weak": {"mean": [0, 0, 0], "sd": [100, 100, 100]}},
        methods=["ols", "mle", "map"],
        replications=200,
    )
    return write_page(tmp_path_factory.mktemp("factors") / "explorer.html", study)


def signature(view: View, graph: str = "plot") -> str:
    """What a graph draws: its traces' data and the layout's shapes, titles and axes."""
    return view.page.evaluate(
        """id => {
            const gd = document.getElementById(id);
            return JSON.stringify({
                data: gd.data.map(t => [t.name, t.x, t.y, t.meta, t.xaxis, t.yaxis]),
                shapes: gd.layout.shapes,
                titles: (gd.layout.annotations || []).map(a => a.text),
                x: [gd.layout.xaxis.type, gd.layout.xaxis.title && gd.layout.xaxis.title.text],
            });
        }""",
        graph,
    )


def series_traces(view: View, graph: str) -> list[dict]:
    return view.page.evaluate(
        """id => document.getElementById(id).data
            .filter(t => t.meta && t.meta.kind === "series")
            .map(t => ({meta: t.meta, y: t.y, error: t.error_y ? t.error_y.array : null,
                        hover: t.customdata}))""",
        graph,
    )


def metrics_lookup(results: Path) -> dict[tuple, dict]:
    metrics = read_metrics(results / "tables" / "metrics.csv")
    factors = ["n", "sigma", "errors", "truth", "design"]
    return {
        (
            cell_label({f: r[f] for f in factors}),
            r["method"],
            r["prior"],
            r["parameter"],
            r["measure"],
        ): r
        for r in metrics.to_dict("records")
    }


# --------------------------------------------------------------------------------------


def test_the_explorer_opens_offline_and_draws(smoke_view: View) -> None:
    page = smoke_view.page
    assert page.title() == "regsim results explorer"
    assert page.locator("#plot .main-svg").first.is_visible()
    assert page.locator("#measure").input_value() == "coverage"
    assert page.locator("#parameter").input_value() == "beta1"
    assert page.evaluate("document.getElementById('plot').layout.xaxis.type") == "log"
    for view in ("nested", "zip", "tables", "documents", "study", "plot"):
        act(smoke_view, lambda view=view: page.click(f'nav button[data-view="{view}"]'))
        assert page.locator(f"#view-{view}").is_visible()
    smoke_view.assert_clean()
    assert smoke_view.console == []


def test_every_plotted_value_is_the_metrics_table(smoke_view: View, smoke: Path) -> None:
    page = smoke_view.page
    rows = metrics_lookup(smoke)
    sigmas = [f"σ = {s}" for s in SMOKE["grid"]["sigma"]]
    for measure, parameter in CHECKED:
        act(smoke_view, lambda m=measure: page.select_option("#measure", value=m))
        act(smoke_view, lambda p=parameter: page.select_option("#parameter", value=p))
        for graph in ("plot", "nested"):
            if graph == "nested":
                act(smoke_view, lambda: page.click('nav button[data-view="nested"]'))
            traces = series_traces(smoke_view, graph)
            # OLS, MLE and MAP under each prior (two panels of σ in the plot)
            series = 2 + len(SMOKE["priors"])
            assert len(traces) == series * (len(sigmas) if graph == "plot" else 1)
            checked = 0
            for trace in traces:
                meta = trace["meta"]
                for i, label in enumerate(meta["cells"]):
                    row = rows[label, meta["method"], meta["prior"], parameter, measure]
                    assert trace["y"][i] == row["estimate"], (graph, label, meta["method"])
                    if graph == "plot":
                        if math.isnan(row["mcse"]):
                            assert trace["error"][i] is None
                        else:
                            assert trace["error"][i] == 1.96 * row["mcse"]
                        reps = rows[label, meta["method"], meta["prior"], parameter, "n_reps"]
                        hover = trace["hover"][i]
                        assert f"n_reps {int(reps['estimate'])}, failures 0" in hover
                    checked += 1
            # every cell of the smoke grid, for every series
            assert checked >= series * 4
        act(smoke_view, lambda: page.click('nav button[data-view="plot"]'))
    titles = page.evaluate("document.getElementById('plot').layout.annotations.map(a => a.text)")
    assert titles == sigmas
    smoke_view.assert_clean()


def test_targets_are_drawn_where_they_exist(smoke_view: View) -> None:
    page = smoke_view.page
    band = 1.96 * math.sqrt(0.05 * 0.95 / SMOKE["replications"])

    def lines() -> list[list[float]]:
        shapes = page.evaluate("document.getElementById('plot').layout.shapes")
        return [[s["type"], s["y0"], s["y1"]] for s in shapes]

    act(smoke_view, lambda: page.select_option("#measure", value="coverage"))
    shapes = lines()
    assert ["line", 0.95, 0.95] in shapes
    assert any(t == "rect" and y0 == pytest.approx(0.95 - band) for t, y0, _ in shapes)
    act(smoke_view, lambda: page.select_option("#measure", value="bias"))
    assert ["line", 0, 0] in lines()
    act(smoke_view, lambda: page.select_option("#measure", value="rmse"))
    assert lines() == []
    act(smoke_view, lambda: page.select_option("#measure", value="rejection"))
    assert lines() == []  # no coefficient of the smoke study is 0: power, no target


def test_the_nested_loop_and_zip_views(smoke_view: View, smoke: Path) -> None:
    page = smoke_view.page
    rows = metrics_lookup(smoke)
    act(smoke_view, lambda: page.click('nav button[data-view="nested"]'))
    legs = page.evaluate(
        "document.getElementById('nested').data.filter(t => t.meta.kind === 'loop')"
        ".map(t => t.meta.factor)"
    )
    assert legs == ["sigma", "n"]
    act(smoke_view, lambda: page.click('nav button[data-view="zip"]'))
    panels = page.evaluate(
        "document.getElementById('zip').data.filter(t => t.meta.kind === 'zip')"
        ".map(t => [t.meta.method, t.meta.prior, t.meta.covers, t.x.length / 3])"
    )
    titles = page.evaluate("document.getElementById('zip').layout.annotations.map(a => a.text)")
    series = [("ols", ""), ("mle", ""), *(("map", p) for p in SMOKE["priors"])]
    assert [(m, p) for m, p, covers, _ in panels if covers == 1] == series
    cell = "n10_sigma1"  # the zip plot's default cell: the first of the grid
    for (method, prior), title in zip(series, titles, strict=True):
        coverage = rows[cell, method, prior, "beta1", "coverage"]["estimate"]
        assert f"coverage {100 * coverage:.1f}%" in title
        counts = [count for m, p, _, count in panels if (m, p) == (method, prior)]
        assert sum(counts) == SMOKE["replications"]  # no failed fit in the smoke study
    smoke_view.assert_clean()


def markdown_rows(path: Path) -> list[list[str]]:
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_tables_diagnostics_and_the_record(smoke_view: View, smoke: Path) -> None:
    page = smoke_view.page
    act(smoke_view, lambda: page.click('nav button[data-view="tables"]'))
    options = page.locator("#table-select option").evaluate_all("os => os.map(o => o.value)")
    expected = [
        f"{measure}_{parameter}"
        for measure in ("bias", "coverage", "rmse")
        for parameter in ("beta0", "beta1", "beta2", "sigma")
    ]
    assert options == expected
    for stem in options:
        page.select_option("#table-select", value=stem)
        section = page.locator(f'section.paper-table[data-table="{stem}"]')
        sync_api.expect(section).to_be_visible(timeout=WAIT)
        cells = section.locator("tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
        assert cells == markdown_rows(smoke / "tables" / f"{stem}.md"), stem
        assert page.locator("section.paper-table:visible").count() == 1
    act(smoke_view, lambda: page.click('nav button[data-view="documents"]'))
    theory = page.locator('section[data-document="theory.md"] tbody tr')
    assert theory.count() == len(markdown_rows(smoke / "tables" / "theory.md"))
    assert "No replicate failed." in page.locator('[data-document="failures.md"]').inner_text()
    act(smoke_view, lambda: page.click('nav button[data-view="study"]'))
    record = json.loads((smoke / "provenance.json").read_text())
    hashes = page.locator("#study-hashes tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert dict(hashes) == record["tables"]
    facts = dict(
        page.locator("#study-facts tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
    )
    assert facts["seed"] == str(SMOKE["seed"])
    assert facts["replications per cell"] == str(SMOKE["replications"])
    smoke_view.assert_clean()


def test_every_control_changes_the_plot(chromium: sync_api.Browser, factors_page: Path) -> None:
    view = open_page(chromium, factors_page)
    page = view.page
    drawn(view)
    # the defaults: n on the x axis, a panel per σ, the other factors filtered
    assert page.locator("#x-factor").input_value() == "n"
    assert page.locator("#panel-factor").input_value() == "sigma"
    changes = [
        ("measure", lambda: page.select_option("#measure", value="rmse")),
        ("parameter", lambda: page.select_option("#parameter", value="sigma")),
        ("filter errors", lambda: page.select_option("#filter-errors", value="t3")),
        ("filter truth", lambda: page.select_option("#filter-truth", value="null_slope")),
        ("filter design", lambda: page.select_option("#filter-design", value="collinear")),
        ("method ols", lambda: page.uncheck("#method-ols")),
        ("method mle", lambda: page.uncheck("#method-mle")),
        ("prior weak", lambda: page.uncheck("#prior-weak")),
        ("prior weak again", lambda: page.check("#prior-weak")),
        ("method map", lambda: page.uncheck("#method-map")),
        ("method ols again", lambda: page.check("#method-ols")),
        ("panels", lambda: page.select_option("#panel-factor", value="errors")),
        ("filter sigma", lambda: page.select_option("#filter-sigma", value="5")),
        ("x axis", lambda: page.select_option("#x-factor", value="design")),
        ("no panels", lambda: page.select_option("#panel-factor", value="none")),
        ("filter n", lambda: page.select_option("#filter-n", value="100")),
    ]
    for name, change in changes:
        before = signature(view)
        act(view, change)
        assert signature(view) != before, f"changing {name} did not change the plot"
    # design on the x axis is a category axis of its levels
    layout = page.evaluate("document.getElementById('plot').layout.xaxis")
    assert layout["type"] == "category" and layout["categoryarray"] == ["uniform", "collinear"]
    view.assert_clean()
    assert view.console == []
    view.page.close()


def test_the_alpha_band_is_drawn_where_the_truth_is_zero(
    chromium: sync_api.Browser, factors_page: Path
) -> None:
    view = open_page(chromium, factors_page)
    page = view.page
    drawn(view)
    act(view, lambda: page.select_option("#measure", value="rejection"))
    act(view, lambda: page.select_option("#parameter", value="beta1"))

    def alpha_lines() -> int:
        shapes = page.evaluate("document.getElementById('plot').layout.shapes")
        return sum(1 for s in shapes if s["type"] == "line" and s["y0"] == 0.05)

    assert alpha_lines() == 0  # truth "seed": β1 ≠ 0, the rate is a power
    act(view, lambda: page.select_option("#filter-truth", value="null_slope"))  # null_slope: β1 = 0
    assert alpha_lines() == 2  # one per σ panel
    act(view, lambda: page.select_option("#parameter", value="beta2"))
    assert alpha_lines() == 0
    # truth on the x axis: α marked at the null truth's position only
    act(view, lambda: page.select_option("#parameter", value="beta1"))
    act(view, lambda: page.select_option("#x-factor", value="truth"))
    marks = page.evaluate(
        "document.getElementById('plot').data.filter(t => t.meta.kind === 'target')"
        ".map(t => [t.x, t.y])"
    )
    assert marks == [[["null_slope"], [0.05]]] * 2
    view.assert_clean()
    view.page.close()


def test_a_400_cell_grid_redraws_on_every_control(
    chromium: sync_api.Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """7 n × 18 σ × 3 error models (378 cells), OLS and MLE: the page stays under 10 MB
    and every control change redraws it. How long a redraw takes is the benchmark's to
    measure (bench/explorer.py, section 9), not a test's."""
    study = make_study(**copy.deepcopy(LARGE_PAGE))
    assert len(study.cells) == 378
    path = write_page(tmp_path_factory.mktemp("large") / "explorer.html", study)
    assert path.stat().st_size < 10_000_000
    view = open_page(chromium, path)
    page = view.page
    drawn(view)
    times = []
    for _, change in CHANGES:
        act(view, lambda change=change: change(page))
        times.append(page.evaluate("explorer.lastDrawMs"))
    assert all(math.isfinite(t) and t > 0 for t in times), times
    view.assert_clean()
    view.page.close()
