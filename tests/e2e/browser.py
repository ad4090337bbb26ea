"""Headless Chromium for the end-to-end tests of the HTML pages (report and explorer).

Every wait is on a condition, with a generous cap for a loaded machine: the pages are
large (the report embeds every figure, the explorer Plotly) and other work may share the
cores.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("Chromium is not installed (/usr/bin/chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 900}
#: Cap of every wait (ms): a condition usually holds within a second, but a loaded
#: 2-core machine has taken over 20 s to lay out the report.
WAIT = 120_000


@dataclass
class View:
    """An open page with what it reported while it was open: uncaught errors, messages
    logged as console errors, and every request."""

    page: sync_api.Page
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.errors == [], "JavaScript errors on the page"
        remote = [url for url in self.requests if not url.startswith(("file:", "data:", "blob:"))]
        assert remote == [], "the page fetched something from outside the file"


def launch() -> Iterator[sync_api.Browser]:
    """A headless Chromium, closed at the end."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def open_page(browser: sync_api.Browser, path: Path) -> View:
    """Open a file in a 1400 × 900 window, recording errors and requests."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(WAIT)
    opened = View(page)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on(
        "console",
        lambda message: opened.console.append(message.text) if message.type == "error" else None,
    )
    page.on("request", lambda request: opened.requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load", timeout=WAIT)
    return opened
