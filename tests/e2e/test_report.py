"""End-to-end test of the Snakemake HTML report, opened as a web page in headless Chromium.

A smoke study is run in a temporary folder (see test_workflow.py), the report is built
with ``snakemake --report`` and then browsed: the landing page and its link to the
results explorer, every figure of the study (each shown whole in a 1400 × 900 window),
every group of paper tables and the diagnostics (HTML tables, not Markdown or LaTeX
files).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browser import VIEWPORT, WAIT, View, launch, open_page, sync_api
from matplotlib.image import imread
from PIL import Image
from snakemake.utils import validate
from test_workflow import ROOT, SMOKE, copy_workflow, snakemake

from regsim.workflow import load_study

pytestmark = pytest.mark.e2e

#: The smoke study as the workflow resolves it: its figures and tables are the report's.
STUDY = load_study(
    [ROOT / "tests" / "smoke.yaml"],
    None,
    defaults=str(ROOT / "config.yaml"),
    validate=lambda config: validate(config, str(ROOT / "schemas" / "config.schema.yaml")),
)
#: figure family -> words its caption starts with (report/figures/<family>.rst and
#: report/{zip,estimates_se,bland_altman}.rst)
CAPTIONS = {
    "bias": "Bias of each estimator",
    "coverage": "Coverage of the nominal 95.0% intervals",
    "rejection": "Rejection rate of the level-0.05 test",
    "efficiency": "Efficiency: RMSE of each method divided by the RMSE of the reference",
    "modelse": "Model SE against empirical SE",
    "nested_loop": "Nested-loop plot",
    "sigma": "Estimators of σ",
    "zip": "Zip plot",
    "estimates": "Estimate against model SE",
    "bland_altman": "Bland–Altman plots",
}
#: The report lists the entries of a category by label, alphabetically.
FIGURES = sorted(STUDY.figures)
TABLE_GROUPS = sorted(STUDY.table_groups)
EYE = 'a[iconname="eye"]'
INFO = 'a[iconname="information-circle"]'


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a smoke run: its workflow folder's results/report.html (what building
    it printed: report.log beside the workflow)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("report"))
    snakemake(workdir, "--cores", "2", "--configfile", "tests/smoke.yaml")
    built = snakemake(
        workdir, "--configfile", "tests/smoke.yaml", "--report", "results/report.html"
    )
    (workdir / "report.log").write_text(built.stdout + built.stderr)
    return workdir / "results" / "report.html"


def test_a_report_of_another_configs_results_is_refused(report: Path) -> None:
    """With a config other than the run's, the report would show the run's figures under
    this config's description: refused in one line, before anything is written."""
    workdir = report.parent.parent
    refused = snakemake(
        workdir,
        "--configfile",
        "tests/smoke.yaml",
        "--config",
        "alpha=0.1",
        "--report",
        "other.html",
        check=False,
    )
    assert refused.returncode == 1
    assert [line for line in refused.stderr.splitlines() if "error" in line] == [
        "report error: results/provenance.json records another configuration than this "
        "one (alpha differ): give --report the --configfile and --config arguments of the "
        "run that made the results, or run this study first"
    ]
    assert not (workdir / "other.html").exists()


@pytest.fixture(scope="module")
def chromium() -> Iterator[sync_api.Browser]:
    yield from launch()


@pytest.fixture
def view(chromium: sync_api.Browser, report: Path) -> Iterator[View]:
    """The report freshly opened on its landing page."""
    opened = open_page(chromium, report)
    yield opened
    opened.page.close()


@pytest.fixture(scope="module")
def figures_view(chromium: sync_api.Browser, report: Path) -> Iterator[View]:
    """One page for all the figure tests (loading the report takes a while); each test
    starts by opening the Figures category, from wherever the previous one left it."""
    opened = open_page(chromium, report)
    yield opened
    opened.page.close()


def screenshot(page: sync_api.Page, path: Path) -> None:
    """Save a full-page screenshot and check it is a real picture."""
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 20_000, f"{path.name} is suspiciously small"
    pixels = imread(path)
    rgb = np.round(pixels[..., :3] * 255).astype(np.uint32)
    colours = np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])
    assert len(colours) > 16, f"{path.name} has only {len(colours)} colours"


def category(view: View, name: str) -> sync_api.Locator:
    """Open a Results category from the menu, or from the breadcrumb's Results; return
    its rows."""
    page = view.page
    link = page.get_by_role("link", name=name, exact=True)
    if not link.count():
        page.get_by_role("link", name="Results", exact=True).click()
    link.click()
    rows = page.locator("tbody tr")
    rows.first.wait_for()
    return rows


def row(view: View, label: str) -> sync_api.Locator:
    cell = view.page.locator("td", has_text=re.compile(rf"^{re.escape(label)}$"))
    return view.page.locator("tbody tr").filter(has=cell)


def assert_listed(rows: sync_api.Locator, names: list[str]) -> None:
    """The first column of ``rows`` reads ``names``, in order (retried while rendering)."""
    sync_api.expect(rows.locator("td:first-child")).to_have_text(names, timeout=WAIT)


def shown_page(view: View, name: str) -> sync_api.Frame:
    """The page of report entry ``name`` (``<name>.html``), shown in the report's frame."""
    frame = view.page.locator(f'iframe[src*="filename={name}.html;"]')
    frame.wait_for()
    content = frame.element_handle().content_frame()
    assert content is not None
    content.wait_for_load_state("load", timeout=WAIT)
    return content


def markdown_rows(path: Path) -> list[list[str]]:
    """The body rows of the pipe tables of a Markdown file, cell by cell."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def table_rows(table: sync_api.Locator) -> list[list[str]]:
    return table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )


# --------------------------------------------------------------------------------------


def test_report_is_one_self_contained_file(report: Path) -> None:
    assert report.is_file()
    html = report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert report.stat().st_size > 100_000  # the figures are embedded
    assert not re.search(r"""src\s*=\s*["']?(https?:)?//""", html), "external src="
    assert not re.search(r"""<link[^>]+href\s*=\s*["']?(https?:)?//""", html), "external <link>"
    files = sorted(p.name for p in report.parent.glob("report*") if p.is_file())
    assert files == ["report.html"]


def test_the_report_is_checked_against_the_pages_it_shows(report: Path, tmp_path: Path) -> None:
    """regsim verify reads which pages Snakemake's report embeds (base64 of each page's
    bytes under its path): this fails, rather than the check falling silent, if a
    Snakemake release embeds them otherwise."""
    from regsim.verify import outdated_report

    results = tmp_path / "results"
    shutil.copytree(report.parent, results)  # judged where it is, by content
    assert outdated_report(results) is None
    page = results / "report" / "theory.html"
    page.write_bytes(page.read_bytes().replace(b"</body>", b"<p>again</p></body>"))
    finding = outdated_report(results)
    assert finding is not None and "(e.g. report/theory.html)" in finding.detail
    assert "1 of the" in finding.detail


def test_report_builds_without_an_rst_error(report: Path) -> None:
    log = (report.parents[1] / "report.log").read_text()
    assert "Report created." in log
    assert not re.search(r"\((ERROR|SEVERE|WARNING)/\d\)", log), log
    assert "Undefined substitution" not in log


def test_landing_page_shows_the_study(view: View, tmp_path: Path) -> None:
    page = view.page
    assert page.title() == "Snakemake Report"
    sidebar = page.locator("nav h1").first.inner_text()
    assert "Snakemake" in sidebar and "Report" in sidebar
    description = page.locator(".document").first
    description.wait_for()
    text = " ".join(description.inner_text().split())
    assert f"has {SMOKE['replications']} seeded replicate datasets" in text
    assert f"(base seed {SMOKE['seed']})" in text
    assert f"grid: n = {SMOKE['grid']['n']}, σ = {SMOKE['grid']['sigma']}" in text
    assert "methods: " + ", ".join(SMOKE["methods"]) in text
    for prior in SMOKE["priors"]:
        assert f"prior {prior}: mean" in text
    assert "{{" not in text and "{%" not in text
    for name in ("Workflow", "Statistics", "Figures", "Tables", "Diagnostics", "Validation"):
        assert page.get_by_role("link", name=name, exact=True).is_visible()
    screenshot(page, tmp_path / "landing.png")
    view.assert_clean()


def test_the_explorer_is_reachable_from_the_report(view: View, report: Path) -> None:
    page = view.page
    link = page.get_by_role("link", name="open explorer.html")
    assert link.get_attribute("href") == "explorer.html"
    link.click()
    page.wait_for_url(report.with_name("explorer.html").as_uri(), timeout=WAIT)
    page.wait_for_function("window.explorer && explorer.draws >= 1", timeout=WAIT)
    assert page.title() == "regsim results explorer"
    view.assert_clean()


@pytest.mark.parametrize("figure", FIGURES)
def test_figure_is_listed_and_shown_whole(
    figures_view: View, report: Path, tmp_path: Path, figure: str
) -> None:
    view = figures_view
    page = view.page
    rows = category(view, "Figures")
    assert_listed(rows, FIGURES)

    row(view, figure).locator(EYE).click()
    frame = shown_page(view, figure)
    image = frame.locator('img[src^="data:image/png"]')
    image.wait_for()
    width, height = image.evaluate("i => i.decode().then(() => [i.naturalWidth, i.naturalHeight])")
    with Image.open(report.parent / "figures" / f"{figure}.png") as on_disk:
        assert (width, height) == on_disk.size  # the figure itself, not a copy
    # the whole image inside the 1400 × 900 window, at a readable size
    frame.wait_for_function("() => document.querySelector('img').getBoundingClientRect().width > 0")
    box = image.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 300, box
    assert box["x"] >= -0.5 and box["y"] >= -0.5, box
    assert box["x"] + box["width"] <= VIEWPORT["width"] + 0.5, box
    assert box["y"] + box["height"] <= VIEWPORT["height"] + 0.5, box
    screenshot(page, tmp_path / f"{figure}.png")

    row(view, figure).locator(INFO).click()
    sidebar = page.locator("nav").first
    caption = sidebar.locator(".prose")
    caption.wait_for()
    text = " ".join(caption.inner_text().split())
    assert text.startswith(CAPTIONS[STUDY.figures[figure]]), text
    assert "{{" not in text and "{%" not in text
    assert f"results/report/figures/{figure}.html" in sidebar.inner_text()

    rows = category(view, "Figures")  # back via the breadcrumb
    assert_listed(rows, FIGURES)
    view.assert_clean()


def test_tables_are_shown_as_html_tables(view: View, report: Path) -> None:
    page = view.page
    rows = category(view, "Tables")
    assert_listed(rows, TABLE_GROUPS)
    tables = report.parent / "tables"
    for group in TABLE_GROUPS:
        row(view, group).locator(EYE).click()
        frame = shown_page(view, group)
        shown = frame.locator("table.md")
        sync_api.expect(shown).to_have_count(len(STUDY.parameters), timeout=WAIT)
        for parameter, table in zip(STUDY.parameters, shown.all(), strict=True):
            assert table_rows(table) == markdown_rows(tables / f"{group}_{parameter}.md")
        assert frame.locator("details summary").first.inner_text() == "LaTeX"
    row(view, TABLE_GROUPS[0]).locator(INFO).click()
    caption = page.locator("nav .prose").first
    caption.wait_for()
    assert caption.inner_text().startswith("Paper tables of one performance measure")
    view.assert_clean()


def test_diagnostics_and_validation_are_shown_as_html(view: View, report: Path) -> None:
    rows = category(view, "Diagnostics")
    names = ["results/report/failures.html", "results/report/failures_sensitivity.html"]
    sync_api.expect(rows).to_have_count(len(names), timeout=WAIT)
    assert sorted(rows.locator("td:first-child").all_inner_texts()) == names
    for name in names:
        row(view, name).locator(EYE).click()
        frame = shown_page(view, Path(name).stem)
        sync_api.expect(frame.locator("h1")).to_have_count(1, timeout=WAIT)
        assert "No replicate failed." in frame.locator("body").inner_text()
    rows = category(view, "Validation")
    assert_listed(rows, ["results/report/theory.html"])
    row(view, "results/report/theory.html").locator(EYE).click()
    frame = shown_page(view, "theory")
    table = frame.locator("table.md")
    sync_api.expect(table).to_have_count(1, timeout=WAIT)
    assert table_rows(table) == markdown_rows(report.parent / "tables" / "theory.md")
    # The protocol is shown as a page (Snakemake offers a Markdown file as a download).
    rows = category(view, "Protocol")
    assert_listed(rows, ["results/report/protocol.html"])
    row(view, "results/report/protocol.html").locator(EYE).click()
    frame = shown_page(view, "protocol")
    sync_api.expect(frame.locator("h1")).to_have_text("Study protocol", timeout=WAIT)
    sync_api.expect(frame.locator("h2", has_text="Aims")).to_have_count(1, timeout=WAIT)
    bullets = (report.parent / "protocol.md").read_text(encoding="utf-8").count("* ")
    assert frame.locator("li").count() >= 10 and frame.locator("li").count() <= bullets
    view.assert_clean()
