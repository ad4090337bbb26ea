"""The results explorer's page and the report's pages, without a browser.

A small study (two error models and two truths, one of them with a null slope) is
simulated and collected in-process as the workflow does; its paper tables, failure
reports, theory comparison and provenance record are written; then the explorer page is
written from them and taken apart: one self-contained file, its data the numbers of
``metrics.csv`` exactly, its tables those of the Markdown files.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from test_config import schema_validate

from regsim import config as cfg
from regsim import explorer, pages
from regsim.jobs import run_collect, run_simulate
from regsim.provenance import PROVENANCE_NAME, write_provenance
from regsim.schema import SCALE_MEASURES, cell_label
from regsim.sensitivity import fits_reader, write_failure_sensitivity
from regsim.study import Study, slice_suffix
from regsim.tableio import read_metrics, read_parquet, write_metrics_csv
from regsim.tables import write_failure_report, write_paper_tables
from regsim.verify import stale_files

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())
LAYER = {
    "seed": 11,
    "replications": 20,
    "truths": {"seed": [10.0, 3.8987, 10.1777], "null_slope": [10.0, 0.0, 10.1777]},
    "grid": {"n": [12, 30], "sigma": [1], "errors": ["normal", "t3"]},
    "priors": {"weak": {"mean": [0, 0, 0], "sd": [100, 100, 100]}},
    "methods": ["ols", "mle", "map"],
}


def make_study(**layer) -> Study:
    config = cfg.resolve([copy.deepcopy(DEFAULTS), {**LAYER, **layer}], validate=schema_validate)
    return Study.from_config(config)


def build_results(root: Path, study: Study) -> Path:
    """Simulate, collect and tabulate ``study`` under ``root`` as the workflow does."""
    chunks = []
    for name in study.plan:
        chunk = root / "chunks" / f"{name}.parquet"
        run_simulate(study.simulate_job(name), fits=chunk)
        chunks.append(chunk)
    fits = [root / "fits" / f"{label}.parquet" for label in study.labels]
    cells = [root / "metrics" / f"{label}.parquet" for label in study.labels]
    tables = root / "tables"
    table = tables / "metrics.csv"
    theory = (tables / "theory.csv", tables / "theory.md")
    run_collect(
        study.collect_job, chunks=chunks, fits=fits, metrics=cells, table=table, theory=theory
    )
    metrics = read_metrics(table)
    job = study.paper_job
    written = write_paper_tables(metrics, tables, **job.table_options())
    written.append(write_failure_report(metrics, tables / "failures.md"))
    write_failure_sensitivity(
        metrics,
        fits_reader(dict(zip(study.labels, fits, strict=True))),
        job.alpha,
        tables / "failures_sensitivity.csv",
        tables / "failures_sensitivity.md",
        study.reference,
    )
    recorded = [*chunks, *fits, *cells, table, *written, *tables.glob("theory.*")]
    recorded += [*tables.glob("failures_sensitivity.*")]
    write_provenance(root / PROVENANCE_NAME, study.config, recorded, repo=root)
    return root


@pytest.fixture(scope="module")
def study() -> Study:
    return make_study()


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, study: Study) -> Path:
    root = build_results(tmp_path_factory.mktemp("explorer") / "results", study)
    tables = sorted((root / "tables").glob("*.md"))
    explorer.write_explorer(
        root / "explorer.html",
        study.config,
        metrics=root / "tables" / "metrics.csv",
        provenance=root / PROVENANCE_NAME,
        tables=tables,
        zip_fits=root / "fits" / f"{study.zip['cell']}.parquet",
    )
    return root


def scripts(page: str) -> list[tuple[str, str]]:
    """Every ``<script>`` element of a page: its attributes and its text."""
    return re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)


def page_data(page: str) -> dict:
    (text,) = [body for attrs, body in scripts(page) if 'id="explorer-data"' in attrs]
    return json.loads(text)


# --------------------------------------------------------------------------------------
# The explorer page
# --------------------------------------------------------------------------------------


def test_the_page_is_one_self_contained_file(results: Path) -> None:
    page = (results / "explorer.html").read_text(encoding="utf-8")
    bundle, _ = explorer.plotly_bundle()
    assert page.startswith("<!DOCTYPE html>")
    assert len(bundle) < len(page.encode()) < 10_000_000
    # the page outside Plotly's bundle (whose map attributions hold links it never follows
    # in a scatter plot; the browser test checks that no request is made)
    ours = page.replace(bundle, "")
    assert "<link" not in ours and "<iframe" not in ours
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", ours), "a remote reference"
    found = scripts(page)
    assert [attrs.strip() for attrs, _ in found] == [
        "",
        'type="application/json" id="explorer-data"',
        "",
    ]
    assert all("src=" not in attrs for attrs, _ in found)
    plotly, data, app = (body for _, body in found)
    assert plotly == bundle  # the library as shipped, inline
    for ours in (data, app):
        assert "http://" not in ours and "https://" not in ours
        assert "fetch(" not in ours and "XMLHttpRequest" not in ours and "import(" not in ours
    assert "</" not in data and "<!--" not in data


def test_the_page_is_the_same_bytes_for_the_same_files(results: Path, study: Study) -> None:
    again = results.parent / "again.html"
    explorer.write_explorer(
        again,
        study.config,
        metrics=results / "tables" / "metrics.csv",
        provenance=results / PROVENANCE_NAME,
        tables=sorted((results / "tables").glob("*.md")),
        zip_fits=results / "fits" / f"{study.zip['cell']}.parquet",
    )
    assert again.read_bytes() == (results / "explorer.html").read_bytes()


def test_every_number_of_the_metrics_table_round_trips(results: Path) -> None:
    data = page_data((results / "explorer.html").read_text(encoding="utf-8"))
    metrics = read_metrics(results / "tables" / "metrics.csv")
    factors = [f["name"] for f in data["factors"]]
    cells = {c["label"]: i for i, c in enumerate(data["cells"])}
    series = {(s["method"], s["prior"]): i for i, s in enumerate(data["series"])}
    parameters = {p["name"]: i for i, p in enumerate(data["parameters"])}
    groups = data["groups"]
    where = {
        (c, s, p): g
        for g, (c, s, p) in enumerate(
            zip(groups["cell"], groups["series"], groups["parameter"], strict=True)
        )
    }
    assert len(where) == len(metrics.groupby([*factors, "prior", "method", "parameter"]))
    for row in metrics.to_dict("records"):
        label = cell_label({name: row[name] for name in factors})
        g = where[cells[label], series[row["method"], row["prior"]], parameters[row["parameter"]]]
        shown = data["values"][row["measure"]]
        for column in ("estimate", "mcse"):
            if math.isnan(row[column]):
                assert shown[column][g] is None
            else:
                assert shown[column][g] == row[column], (label, row["measure"], column)
        assert groups["true"][g] == row["true"]
    # each cell's levels index the factors' levels
    for cell in data["cells"]:
        levels = {
            f["name"]: f["levels"][i] for f, i in zip(data["factors"], cell["levels"], strict=True)
        }
        assert cell_label(levels) == cell["label"]


def test_an_infinite_measure_is_shown_as_missing(results: Path, study: Study, tmp_path) -> None:
    # relprec is infinite where a method's estimates do not vary; JSON has no infinity.
    metrics = read_metrics(results / "tables" / "metrics.csv")
    metrics.loc[metrics.index[0], "estimate"] = np.inf
    metrics.loc[metrics.index[1], "mcse"] = -np.inf
    table = tmp_path / "metrics.csv"
    write_metrics_csv(metrics, table)
    page = tmp_path / "explorer.html"
    explorer.write_explorer(
        page,
        study.config,
        metrics=table,
        provenance=results / PROVENANCE_NAME,
        tables=sorted((results / "tables").glob("*.md")),
        zip_fits=results / "fits" / f"{study.zip['cell']}.parquet",
    )
    data = page_data(page.read_text(encoding="utf-8"))
    before = page_data((results / "explorer.html").read_text(encoding="utf-8"))
    first, second = metrics.iloc[0], metrics.iloc[1]
    for row, column in ((first, "estimate"), (second, "mcse")):
        shown, was = data["values"][row["measure"]], before["values"][row["measure"]]
        assert shown[column].count(None) == was[column].count(None) + 1, column


def test_data_name_the_grid_its_targets_and_styles(results: Path, study: Study) -> None:
    data = page_data((results / "explorer.html").read_text(encoding="utf-8"))
    levels = {f["name"]: f["levels"] for f in data["factors"]}
    assert levels == {
        "n": [12, 30],
        "sigma": [1],
        "errors": ["normal", "t3"],
        "truth": ["seed", "null_slope"],
        "design": ["uniform"],
    }
    assert data["study"]["loops"] == ["errors", "truth", "sigma", "n"]
    assert data["study"]["alpha"] == 0.05 and data["study"]["replications"] == 20
    # the measures a log axis takes, as the config check and the nested-loop plot know them
    assert data["study"]["scales"] == sorted(SCALE_MEASURES)
    targets = {m["name"]: m["target"] for m in data["measures"]}
    assert targets["coverage"] == "coverage" and targets["rejection"] == "rejection"
    assert targets["bias"] == "zero" and targets["rmse"] is None
    labels = [s["label"] for s in data["series"]]
    assert labels == ["OLS", "MLE", "MAP (weak)"]
    # the figures' Okabe-Ito colours; open markers where the figures' are
    assert [s["color"] for s in data["series"]] == ["#0072B2", "#D55E00", "#009E73"]
    assert [s["symbol"] for s in data["series"]] == ["circle", "square-open", "triangle-up-open"]
    assert data["series"][2]["dash"] != "solid"
    # β1 is 0 under the null truth: the explorer draws the α band there
    null = [
        g
        for g, (c, p) in enumerate(
            zip(data["groups"]["cell"], data["groups"]["parameter"], strict=True)
        )
        if data["groups"]["true"][g] == 0
    ]
    assert null and {data["parameters"][data["groups"]["parameter"][g]]["name"] for g in null} == {
        "beta1"
    }


def test_the_zip_plot_is_the_cells_intervals(results: Path, study: Study) -> None:
    data = page_data((results / "explorer.html").read_text(encoding="utf-8"))
    zip_data = data["zip"]
    assert data["study"]["zip"]["cell"] == study.zip["cell"] == "n12_sigma1_seed"
    assert zip_data["parameters"] == ["beta0", "beta1", "beta2", "sigma"]
    metrics = read_metrics(results / "tables" / "metrics.csv")
    cell = metrics[(metrics["n"] == 12) & (metrics["errors"] == "normal")]
    cell = cell[(cell["truth"] == "seed") & (cell["measure"] == "coverage")]
    for parameter in zip_data["parameters"]:
        for panel in zip_data["panels"][parameter]:
            series = data["series"][panel["series"]]
            row = cell[
                (cell["method"] == series["method"])
                & (cell["prior"] == series["prior"])
                & (cell["parameter"] == parameter)
            ]
            assert panel["coverage"] == pytest.approx(float(row["estimate"].iloc[0]))
            assert panel["count"] + panel["failed"] == 20
            assert sum(panel["covers"]) == round(panel["coverage"] * panel["count"])
            assert panel["centile"] == sorted(panel["centile"])
            assert len(panel["lower"]) == len(panel["upper"]) == panel["count"]


def test_the_zip_plot_follows_the_common_failure_rule() -> None:
    """Under failures: common a replicate any fit failed on is left out of every series,
    as in the measures."""
    from regsim.design import Cell, Prior
    from regsim.fits import fit_table
    from regsim.simulate import draw
    from regsim.specs import FitSpec

    shifted = Prior("shifted", (12.0, 5.8987, 12.1777), (1.0, 1.0, 1.0))
    spec = FitSpec(("ols", "map"), (shifted,), 0.05, map_max_iter=4)
    fits = fit_table(draw(Cell(10, 5.0, (10.0, 3.8987, 10.1777)), 7, 0, 120), spec)
    failed = fits.loc[~fits["converged"], "replicate"].nunique()
    assert 0 < failed < 120
    series = [("ols", ""), ("map", "shifted")]
    for rule, left_out in (("own", 0), ("common", failed)):
        data = explorer._zip_data(explorer._under_rule(fits, rule), "beta1", series)
        (ols,) = [p for p in data["panels"]["beta1"] if p["series"] == 0]
        assert ols["failed"] == left_out and ols["count"] == 120 - left_out, rule


def test_a_large_zip_cell_is_thinned(results: Path, study: Study, monkeypatch) -> None:
    fits = read_parquet(results / "fits" / f"{study.zip['cell']}.parquet")
    monkeypatch.setattr(explorer, "ZIP_INTERVALS", 25)
    series = sorted(set(zip(fits["method"], fits["prior"], strict=True)))
    thinned = explorer._zip_data(fits, "beta1", series)
    assert thinned["parameters"] == ["beta1"]
    assert thinned["stride"] == 3  # 3 series × 20 replicates, at most 25 drawn
    for panel in thinned["panels"]["beta1"]:
        assert panel["count"] == 20 and len(panel["lower"]) == 6  # every third of 20


def test_tables_are_html_tables_of_the_markdown(results: Path, study: Study) -> None:
    page = (results / "explorer.html").read_text(encoding="utf-8")
    stems = [
        f"{group['measure']}_{parameter}{slice_suffix(group['levels'])}"
        for group in study.table_groups.values()
        for parameter in group["parameters"]
    ]
    assert len(stems) == 3 * 4 * 4  # measures × parameters × slices
    for stem in stems:
        section = re.search(
            rf'<section class="paper-table" data-table="{stem}"[^>]*>(.*?)</section>', page, re.S
        )
        assert section, stem
        rows = re.findall(r"<tr>(.*?)</tr>", section.group(1), re.S)
        body = (results / "tables" / f"{stem}.md").read_text().splitlines()
        md_rows = [line for line in body if line.startswith("|")]
        assert len(rows) == len(md_rows) - 1  # the alignment row is not a row
        cells = [
            re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", rows[1])
        ]
        assert cells == [c.strip() for c in md_rows[2].strip("|").split("|")]
    for name in explorer.DOCUMENTS:
        assert f'data-document="{name}"' in page
    theory = re.search(r'data-document="theory.md">(.*?)</section>', page, re.S).group(1)
    rows = [
        line
        for line in (results / "tables" / "theory.md").read_text().splitlines()
        if line.startswith("|")
    ]
    assert theory.count("<tr>") == len(rows) - 1


def test_the_study_view_shows_the_record(results: Path) -> None:
    page = (results / "explorer.html").read_text(encoding="utf-8")
    record = json.loads((results / PROVENANCE_NAME).read_text())
    hashes = re.search(r'<table class="md" id="study-hashes">(.*?)</table>', page, re.S).group(1)
    assert hashes.count("<tr>") == len(record["tables"]) + 1
    for path, digest in record["tables"].items():
        assert f"<td>{path}</td><td>{digest}</td>" in hashes
    assert "<td>seed</td><td>11</td>" in page
    assert f"<td>plotly</td><td>{record['packages']['plotly']}</td>" in page


def test_json_in_a_script_cannot_end_it() -> None:
    text = explorer._json_script({"a": "</script><!-- <b>", "b": [1.5, None]})
    assert "<" not in text
    assert json.loads(text) == {"a": "</script><!-- <b>", "b": [1.5, None]}


def test_results_views_are_not_stale(results: Path, study: Study) -> None:
    (results / "report" / "figures").mkdir(parents=True, exist_ok=True)
    for page in study.report_pages:
        (results / "report" / f"{page}.html").parent.mkdir(parents=True, exist_ok=True)
        (results / "report" / f"{page}.html").write_text("<!DOCTYPE html>")
    (results / "report.html").write_text("<!DOCTYPE html>")
    record = json.loads((results / PROVENANCE_NAME).read_text())
    assert stale_files(results, record) == []
    (results / "tables" / "old_table.md").write_text("|a|\n")
    assert [f.path for f in stale_files(results, record)] == ["tables/old_table.md"]
    (results / "tables" / "old_table.md").unlink()


def test_a_report_page_of_an_earlier_configuration_is_stale(results: Path, study: Study) -> None:
    # The page of a figure this study does not draw (one of heteroskedastic errors) is
    # left by an earlier run; the pages of this study's figures and tables are not stale.
    record = json.loads((results / PROVENANCE_NAME).read_text())
    (results / "report" / "figures").mkdir(parents=True, exist_ok=True)
    for page in study.report_pages:
        (results / "report" / f"{page}.html").parent.mkdir(parents=True, exist_ok=True)
        (results / "report" / f"{page}.html").write_text("<!DOCTYPE html>")
    earlier = results / "report" / "figures" / "bias_hetero.html"
    earlier.write_text("<!DOCTYPE html>")
    try:
        stale = stale_files(results, record)
        assert [(f.status, f.path) for f in stale] == [("STALE", "report/figures/bias_hetero.html")]
        # as the run's own check names them, from its study's pages
        pages = [*study.report_pages, "figures/bias_hetero"]
        assert stale_files(results, record, report_pages=pages) == []
        # a record of format 1 sorted the config's keys, which can name another default
        # cell's pages: its report pages are not judged
        assert stale_files(results, {**record, "format_version": 1}) == []
    finally:
        earlier.unlink()


def test_a_missing_plotly_is_one_line(monkeypatch) -> None:
    monkeypatch.setattr(explorer.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(explorer.RegsimError, match="needs the plotly package") as info:
        explorer.plotly_bundle()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------
# The report's pages
# --------------------------------------------------------------------------------------


def test_markdown_tables_become_html_tables() -> None:
    text = (
        "# Title with `code`\n\nA paragraph\non two lines, **strong** and |z| kept.\n\n"
        "| σ | n | OLS |\n|---:|---:|---|\n| 1 | 10 | 0.95 (0.01) |\n| 5 | 40 | <b> |\n"
    )
    out = pages.markdown_html(text)
    assert "<h1>Title with <code>code</code></h1>" in out
    assert "<p>A paragraph on two lines, <strong>strong</strong> and |z| kept.</p>" in out
    assert out.count("<tr>") == 3 and '<th style="text-align:right">σ</th>' in out
    assert '<td style="text-align:left">&lt;b&gt;</td>' in out
    short = pages.markdown_html(text, max_rows=1, source="x.md")
    assert short.count("<tr>") == 3 and "1 more rows in x.md" in short


def test_fenced_code_blocks_are_kept_as_they_are() -> None:
    # The protocol's table of measures is a fenced block of aligned columns.
    text = "Before.\n\n```\n====  ===\nbias  mean(b - θ) <x>\n  * not a bullet\n```\n\nAfter."
    assert pages.markdown_html(text) == (
        "<p>Before.</p>\n<pre>====  ===\nbias  mean(b - θ) &lt;x&gt;\n  * not a bullet</pre>\n"
        "<p>After.</p>"
    )


def test_bullet_lists_become_nested_html_lists() -> None:
    text = "Intro.\n\n* one\n  continued\n* two:\n  * two a\n  * two b\n* three\n\nAfter."
    assert pages.markdown_html(text) == (
        "<p>Intro.</p>\n<ul><li>one continued</li><li>two:<ul><li>two a</li><li>two b"
        "</li></ul></li><li>three</li></ul>\n<p>After.</p>"
    )


def test_the_protocol_is_a_report_page_with_its_lists(study: Study, tmp_path: Path) -> None:
    # Snakemake's report offers a Markdown output only as a download: the protocol is a
    # page of its own, its bullets lists, not lines of text starting with "*".
    from regsim.protocol import protocol_markdown

    protocol = tmp_path / "results" / "protocol.md"
    (tmp_path / "results" / "tables").mkdir(parents=True)
    text = protocol_markdown(study)
    protocol.write_text(text, encoding="utf-8")
    page = tmp_path / "results" / "report" / "protocol.html"
    pages.write_report_pages(
        figures=[],
        table_groups={},
        tables=tmp_path / "results" / "tables",
        documents=[(protocol, page)],
    )
    html_text = page.read_text(encoding="utf-8")
    assert "<title>Study protocol</title>" in html_text
    bullets = [line for line in text.splitlines() if line.lstrip().startswith("* ")]
    assert len(bullets) > 10 and html_text.count("<li>") == len(bullets)
    assert "<ul><li>" in html_text and "<p>* " not in html_text and "<p>  * " not in html_text
    # the measures' table, a fenced block, kept as its aligned lines
    assert "<pre>============" in html_text and "```" not in html_text


def test_a_figure_page_fits_its_image_and_stays_under_the_limit(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    noise = (rng.random((400, 300, 3)) * 255).astype(np.uint8)  # does not compress
    path = tmp_path / "noise.png"
    Image.fromarray(noise).save(path)
    png = path.read_bytes()
    page = pages.figure_page(png, "noise")
    assert "max-height: 100vh" in page and "max-width: 100vw" in page
    assert png == __import__("base64").b64decode(re.search(r"base64,([^\"]+)", page).group(1))
    small = pages.figure_page(png, "noise", limit=len(png) // 2)
    assert len(small.encode()) <= len(png) // 2
    assert "<img" in small and len(small) < len(page)


def test_report_pages_cover_every_figure_and_table(study: Study, results: Path) -> None:
    assert study.report_pages[: len(study.figures)] == [f"figures/{f}" for f in study.figures]
    assert set(study.figures.values()) >= {"bias", "coverage", "rejection", "zip", "estimates"}
    assert list(study.table_groups)[:2] == ["bias_seed", "bias_null_slope"]
    figures = results / "figures"
    figures.mkdir(exist_ok=True)
    Image.new("RGB", (40, 80), "white").save(figures / "bias.png")
    out = results / "report"
    groups = {out / f"tables/{g}.html": group for g, group in study.table_groups.items()}
    written = pages.write_report_pages(
        figures=[(figures / "bias.png", out / "figures" / "bias.html")],
        table_groups=groups,
        tables=results / "tables",
        documents=[(results / "tables" / "theory.md", out / "theory.html")],
    )
    assert len(written) == 1 + len(groups) + 1
    coverage = (out / "tables" / "coverage_t3_null_slope.html").read_text()
    assert "<h1>Coverage (errors t3, truth null_slope)</h1>" in coverage
    assert coverage.count('<table class="md">') == 4 and coverage.count("<details>") == 4
    assert "Coverage of the estimators of β1 (errors t3, truth null_slope)" in coverage
    theory = (out / "theory.html").read_text()
    assert "<title>Simulation against exact theory (normal errors)</title>" in theory
    assert all(len(path.read_bytes()) < pages.PAGE_LIMIT for path in written)


def test_an_opaque_rgba_figure_is_reduced_to_an_opaque_palette(tmp_path: Path) -> None:
    # The paper figures' PNGs are opaque RGBA: reduced without an RGB copy, their palette
    # records no transparency and keeps their colours.
    rng = np.random.default_rng(3)
    colours = np.array([[255, 255, 255], [0, 114, 178], [213, 94, 0], [0, 0, 0]], np.uint8)
    rgb = colours[rng.integers(0, 4, size=(600, 500))]
    noise = (rng.random((600, 500, 3)) * 40).astype(np.uint8)  # does not compress
    rgb = np.clip(rgb.astype(int) - noise, 0, 255).astype(np.uint8)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    path = tmp_path / "figure.png"
    Image.fromarray(rgba, "RGBA").save(path)
    png = path.read_bytes()
    page = pages.figure_page(png, "figure", limit=len(png) // 2)
    reduced = __import__("base64").b64decode(re.search(r"base64,([^\"]+)", page).group(1))
    with Image.open(io.BytesIO(reduced)) as image:
        assert image.mode == "P" and "transparency" not in image.info
        shown = np.asarray(image.convert("RGBA"))
    assert (shown[..., 3] == 255).all()
    assert np.abs(shown[..., :3].astype(int) - rgb).mean() < 4


def test_figure_pages_written_by_workers_are_those_written_in_turn(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    figures = []
    for k, size in enumerate([(300, 200), (900, 700), (60, 40)]):
        path = tmp_path / f"figure{k}.png"
        Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(path)
        figures.append(path)
    pages_of = {}
    for workers in (1, 2):
        out = tmp_path / f"pages{workers}"
        pairs = [(png, out / f"{png.stem}.html") for png in figures]
        written = pages.write_report_pages(
            figures=pairs, table_groups={}, tables=tmp_path, documents=[], workers=workers
        )
        assert written == [page for _, page in pairs]  # in the order given, not by size
        pages_of[workers] = [page.read_bytes() for page in written]
    assert pages_of[1] == pages_of[2]
    # The large noise image needed a lighter copy: the parallel path reduced it too.
    assert len(pages_of[2][1]) < pages.PAGE_LIMIT < 4 / 3 * figures[1].stat().st_size
    with pytest.raises(FileNotFoundError):
        pages.write_report_pages(
            figures=[(tmp_path / "missing.png", tmp_path / "missing.html"), *pairs],
            table_groups={},
            tables=tmp_path,
            documents=[],
            workers=2,
        )


def test_a_long_table_page_is_cut_short_with_a_note() -> None:
    rows = "\n".join(f"| {i} | {'x' * 50} |" for i in range(2000))
    markdown = f"# Long\n\n| i | text |\n|---:|---|\n{rows}\n"
    page = pages.document_page(markdown, "tables/long.md", limit=50_000)
    assert len(page.encode()) <= 50_000
    assert re.search(r"… \d+ more rows in tables/long.md", page)
    assert pd.Series(re.findall(r"<tr>", page)).size > 10


def test_the_explorer_does_not_import_matplotlib() -> None:
    # The explorer job ends the study's run: matplotlib's import (most of a second) would
    # add to every run's wall time for a page drawn by Plotly.
    import subprocess
    import sys

    code = (
        "import sys, regsim.explorer as e; "
        "e._series_styles([('ols', ''), ('map', 'weak')]); "
        "print('matplotlib' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
