"""End-to-end test of the Snakemake HTML report, opened as a web page in headless Chromium.

A smoke study is run in a temporary folder (see test_workflow.py), the report is built
with ``snakemake --report`` and then browsed: the landing page, every figure of the
"Figures" category and the list of paper tables.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from PIL import Image
from test_workflow import SMOKE, copy_workflow, snakemake

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("Chromium is not installed (/usr/bin/chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 900}
# figure -> words its caption starts with (report/figures/<family>.rst and report/zip.rst)
FIGURES = {
    "bias": "Bias of each estimator",
    "coverage": "Coverage of the nominal 95.0% intervals",
    "efficiency": "Efficiency: RMSE of MLE and MAP",
    "modelse": "Model SE against empirical SE",
    "nested_loop": "Nested-loop plot",
    "sigma": "Estimators of σ",
    "zip": "Zip plot",
}
TABLES = sorted(
    f"results/tables/{measure}_{parameter}.{ext}"
    for measure in ("bias", "coverage", "rmse")
    for parameter in ("beta0", "beta1", "beta2", "sigma")
    for ext in ("tex", "md")
)
EYE = 'a[iconname="eye"]'
INFO = 'a[iconname="information-circle"]'


@dataclass
class View:
    """An open report page with what it reported while it was open."""

    page: sync_api.Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.errors == [], "JavaScript errors on the report page"
        remote = [url for url in self.requests if not url.startswith(("file:", "data:", "blob:"))]
        assert remote == [], "the report fetched something from outside the file"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a smoke run: its workflow folder's results/report.html."""
    workdir = copy_workflow(tmp_path_factory.mktemp("report"))
    snakemake(workdir, "--cores", "2", "--configfile", "tests/smoke.yaml")
    snakemake(workdir, "--configfile", "tests/smoke.yaml", "--report", "results/report.html")
    return workdir / "results" / "report.html"


@pytest.fixture(scope="module")
def chromium() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def open_report(browser: sync_api.Browser, report: Path) -> View:
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(20_000)
    opened = View(page)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on("request", lambda request: opened.requests.append(request.url))
    page.goto(report.as_uri(), wait_until="load")
    return opened


@pytest.fixture
def view(chromium: sync_api.Browser, report: Path) -> Iterator[View]:
    """The report freshly opened on its landing page."""
    opened = open_report(chromium, report)
    yield opened
    opened.page.close()


@pytest.fixture(scope="module")
def figures_view(chromium: sync_api.Browser, report: Path) -> Iterator[View]:
    """One page for all the figure tests (loading the report takes a while); each test
    starts by opening the Figures category, from wherever the previous one left it."""
    opened = open_report(chromium, report)
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
    """Open a Results category from the menu or the breadcrumb; return its rows."""
    view.page.get_by_role("link", name=name, exact=True).click()
    rows = view.page.locator("tbody tr")
    rows.first.wait_for()
    return rows


def row(view: View, label: str) -> sync_api.Locator:
    cell = view.page.locator("td", has_text=re.compile(rf"^{re.escape(label)}$"))
    return view.page.locator("tbody tr").filter(has=cell)


def assert_listed(rows: sync_api.Locator, names: list[str]) -> None:
    """The first column of ``rows`` reads ``names``, in order (retried while rendering)."""
    sync_api.expect(rows.locator("td:first-child")).to_have_text(names)


# --------------------------------------------------------------------------------------


def test_report_is_one_self_contained_file(report: Path) -> None:
    assert report.is_file()
    html = report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert report.stat().st_size > 100_000  # the figures are embedded
    assert not re.search(r"""src\s*=\s*["']?(https?:)?//""", html), "external src="
    assert not re.search(r"""<link[^>]+href\s*=\s*["']?(https?:)?//""", html), "external <link>"
    assert sorted(p.name for p in report.parent.glob("report*")) == ["report.html"]


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
    for name in ("Workflow", "Statistics", "Figures", "Tables"):
        assert page.get_by_role("link", name=name, exact=True).is_visible()
    screenshot(page, tmp_path / "landing.png")
    view.assert_clean()


@pytest.mark.parametrize("figure", list(FIGURES))
def test_figure_is_listed_and_shown(
    figures_view: View, report: Path, tmp_path: Path, figure: str
) -> None:
    view = figures_view
    page = view.page
    rows = category(view, "Figures")
    assert_listed(rows, list(FIGURES))

    row(view, figure).locator(EYE).click()
    image = page.locator(f'img[src^="data:image/png"][src*="filename={figure}.png;"]')
    image.wait_for()
    width, height = image.evaluate("i => i.decode().then(() => [i.naturalWidth, i.naturalHeight])")
    assert width > 100 and height > 100
    with Image.open(report.parent / "figures" / f"{figure}.png") as on_disk:
        assert (width, height) == on_disk.size
    assert image.is_visible()
    screenshot(page, tmp_path / f"{figure}.png")

    row(view, figure).locator(INFO).click()
    sidebar = page.locator("nav").first
    caption = sidebar.locator(".prose")
    caption.wait_for()
    text = " ".join(caption.inner_text().split())
    assert text.startswith(FIGURES[figure]), text
    assert "{{" not in text and "{%" not in text
    assert f"results/figures/{figure}.png" in sidebar.inner_text()

    rows = category(view, "Figures")  # back via the breadcrumb
    assert_listed(rows, list(FIGURES))
    view.assert_clean()


def test_tables_are_listed(view: View, report: Path) -> None:
    page = view.page
    rows = category(view, "Tables")
    assert_listed(rows, TABLES)
    # each row's eye link is the table itself, as a data: URL
    for name in TABLES:
        href = row(view, name).locator(EYE).get_attribute("href")
        header, _, payload = href.partition(";base64,")
        assert header.startswith("data:") and f"filename={Path(name).name}" in header
        assert base64.b64decode(payload) == (report.parents[1] / name).read_bytes(), name

    row(view, TABLES[0]).locator(INFO).click()
    caption = page.locator("nav .prose").first
    caption.wait_for()
    assert caption.inner_text().startswith("Paper table of one performance measure")
    view.assert_clean()
