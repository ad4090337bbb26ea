"""Section 9: the results explorer of a 378-cell grid in headless Chromium.

The explorer (``results/explorer.html``) redraws on every control change; the target is
a redraw under a second for a grid of about 400 cells. The page is written for the large
grid's layout (7 n × 18 σ × 3 error models, OLS and MLE) with made-up numbers — the
drawing depends on the layout, not on the values — and opened from ``file://`` in Debian's
Chromium through Playwright, the browser tests' setup. Each control change is timed in
the page (``explorer.lastDrawMs``: the data and Plotly's drawing). Skipped, with a
reason, where Chromium or Playwright is not installed (``tools/setup.sh --tests``
installs both).
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import fmt_mb, heading, load_study, print_table
from bench.workflow import LARGE_GRID
from regsim.explorer import explorer_html
from regsim.schema import MEASURES, PRIOR_METHODS, metrics_columns, parameter_names
from regsim.study import Study

#: The grid of the timing (and of the browser test's large page): the large grid's sample
#: sizes and error models with 18 σ of its own, OLS and MLE, 100 replicates.
GRID = {
    "replications": 100,
    "grid": {
        **LARGE_GRID["grid"],
        "sigma": [0.5, 1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 50],
    },
    "priors": {},
    "methods": ["ols", "mle"],
}

#: The control changes timed, in order: (what, the Playwright call on the page).
CHANGES: list[tuple[str, Callable[[Any], None]]] = [
    ("measure: bias", lambda page: page.select_option("#measure", value="bias")),
    ("parameter: sigma", lambda page: page.select_option("#parameter", value="sigma")),
    ("filter errors: hetero", lambda page: page.select_option("#filter-errors", value="hetero")),
    ("MLE off", lambda page: page.uncheck("#method-mle")),
    ("MLE on", lambda page: page.check("#method-mle")),
    ("panels by errors", lambda page: page.select_option("#panel-factor", value="errors")),
    ("x axis: sigma", lambda page: page.select_option("#x-factor", value="sigma")),
]

#: Cap of each wait in the page (ms), for a loaded machine.
WAIT_MS = 120_000


def synthetic_metrics(study: Study, seed: int = 1) -> pd.DataFrame:
    """A metrics table of ``study``'s shape (every cell, series, parameter and measure)
    with made-up numbers: what the explorer draws depends on the layout, not the values."""
    rng = np.random.default_rng(seed)
    series = [(m, "") for m in study.methods if m not in PRIOR_METHODS]
    series += [(m, p.name) for m in study.methods if m in PRIOR_METHODS for p in study.priors]
    rows = []
    for cell in study.cells:
        beta = study.truths[cell.truth]
        for method, prior in series:
            for j, parameter in enumerate(parameter_names(study.p)):
                true = cell.sigma if parameter == "sigma" else beta[j]
                for measure in MEASURES:
                    if measure == "n_multimodal" and method not in PRIOR_METHODS:
                        continue
                    counts = measure.startswith("n_")
                    estimate = {"n_reps": study.replications, "n_failed": 0}.get(
                        measure, rng.normal() if not counts else 0
                    )
                    rows.append(
                        {
                            **cell.levels,
                            "prior": prior,
                            "method": method,
                            "parameter": parameter,
                            "true": true,
                            "measure": measure,
                            "estimate": float(estimate),
                            "mcse": math.nan if counts else abs(rng.normal()) / 10,
                        }
                    )
    return pd.DataFrame(rows)[list(metrics_columns())]


def write_page(path: Path, study: Study) -> Path:
    """The explorer of ``study`` with :func:`synthetic_metrics`, written to ``path``."""
    record = {"seed": study.seed, "tables": {}, "packages": {}, "config": dict(study.config)}
    path.write_text(explorer_html(synthetic_metrics(study), study, record), encoding="utf-8")
    return path


def _chromium() -> str | None:
    found = Path("/usr/bin/chromium")
    return str(found) if found.exists() else shutil.which("chromium")


def explorer_section() -> dict[str, Any]:
    """Section 9: page size and redraw time of each control change, 378 cells."""
    heading("9. Results explorer of a 378-cell grid in headless Chromium")
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if chromium is None or sync_playwright is None:
        reason = "Chromium is not installed" if chromium is None else "playwright is not installed"
        print(f"  skipped: {reason} (tools/setup.sh --tests installs both)")
        return {"skipped": reason}
    study = load_study(overrides=GRID)
    rows = []
    with tempfile.TemporaryDirectory(prefix="regsim-bench-explorer-") as tmp:
        page_path = write_page(Path(tmp) / "explorer.html", study)
        size_mb = page_path.stat().st_size / 1e6
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(WAIT_MS)
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function("() => window.explorer && explorer.draws >= 1")
            first = page.evaluate("explorer.lastDrawMs")
            for name, change in CHANGES:
                before = page.evaluate("explorer.draws")
                change(page)
                page.wait_for_function("n => explorer.draws > n", arg=before)
                rows.append({"change": name, "ms": page.evaluate("explorer.lastDrawMs")})
            browser.close()
    median = statistics.median(row["ms"] for row in rows)
    print(
        f"  {len(study.cells)} cells, OLS and MLE; page {fmt_mb(size_mb)} MB; "
        f"first draw {first:.0f} ms; each change timed in the page (data and drawing)"
    )
    print_table(["change", "redraw ms"], [(r["change"], f"{r['ms']:.0f}") for r in rows])
    return {
        "cells": len(study.cells),
        "page_mb": size_mb,
        "first_draw_ms": first,
        "changes": rows,
        "median_ms": median,
        "max_ms": max(row["ms"] for row in rows),
    }
