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


#: Two jobs as Snakemake logs them: started, then finished, each after a time stamp.
SNAKEMAKE_LOG = """\
[Sun Dec  6 09:11:33 2026]
localrule collect:
    input: results/chunks/n10-1.parquet
    jobid: 1
    threads: 2
[Sun Dec  6 09:11:48 2026]
Finished jobid: 1 (Rule: collect)
[Sun Dec  6 09:11:48 2026]
rule paper:
    input: results/tables/metrics.csv
    jobid: 12
[Sun Dec  6 09:12:51 2026]
Finished jobid: 12 (Rule: paper)
"""


def test_job_spans_read_start_and_finish_from_the_log():
    from bench.workflow import job_spans

    spans = job_spans(SNAKEMAKE_LOG)
    assert spans == {
        "collect": {"jobs": 1, "total_s": 15.0, "max_s": 15.0},
        "paper": {"jobs": 1, "total_s": 63.0, "max_s": 63.0},
    }
