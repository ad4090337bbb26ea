"""The benchmark script runs: its quick in-process sections and dry runs, on tiny sizes.

It prints figures and never asserts a speed; this checks that it still runs against the
package it measures (an API change once broke its I/O section unnoticed) and that its
report carries every target it prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import run as bench_run  # noqa: E402


def test_quick_benchmark_runs_and_reports_every_target(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["--quick", "--skip-e2e", "--replications", "40", "--repeats", "1"]
    status = bench_run.main([*argv, "--notebook-datasets", "2", "--json", str(out)])
    assert status == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["verification"]["ok"]
    targets = {row["target"] for row in report["summary"]}
    assert {"bayes / MAP, 4 priors, n = 20", "bayes / MAP, 4 priors, n = 1000"} <= targets
    for row in report["bayes"]["rows"]:
        assert row["map_us_per_dataset"] > 0 and row["bayes_us_per_dataset"] > 0
        assert set(row["bayes_s"]) == set(row["map_s"]) == set(row["bayes_bimodal_fraction"])
    assert [row["n"] for row in report["io"]["rows"]] == [10, 100, 1000]
    assert report["e2e"] is None
    shown = report["explorer"]  # measured where Chromium and Playwright are installed
    if "skipped" not in shown:
        assert shown["cells"] == 378 and len(shown["changes"]) == 7
        assert all(change["ms"] > 0 for change in shown["changes"])
    assert any(row["target"].startswith("explorer") for row in report["summary"])
