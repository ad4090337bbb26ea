"""The replication planner: worst-case and pilot-based replications, run-time estimate."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from regsim.cli import main
from regsim.errors import DataFileError, InputDataError
from regsim.planning import (
    format_plan,
    pilot_replications,
    pilot_seconds_per_replicate,
    plan,
    replications_from_pilot,
    worst_case_replications,
)


def test_worst_case_coverage_formula():
    # √(0.25/R) ≤ 0.005  ⇔  R ≥ 10000
    assert worst_case_replications(0.005) == 10000
    assert worst_case_replications(0.005, 0.95) == math.ceil(0.95 * 0.05 / 0.005**2)
    for target in (0.001, 0.0037, 0.02):
        r = worst_case_replications(target)
        assert math.sqrt(0.25 / r) <= target < math.sqrt(0.25 / (r - 1))


def pilot_metrics() -> pd.DataFrame:
    rows = []
    for n, sigma, method, prior, mcse, reps, failed in [
        (10, 1.0, "ols", "", 0.02, 100, 0),
        (10, 1.0, "map", "weak", 0.04, 100, 0),
        (20, 1.0, "ols", "", 0.01, 200, 0),
        (20, 1.0, "map", "weak", 0.005, 190, 10),
    ]:
        base = {"n": n, "sigma": sigma, "prior": prior, "method": method, "parameter": "beta1"}
        rows.append({**base, "measure": "bias", "estimate": 0.1, "mcse": mcse})
        rows.append({**base, "measure": "n_reps", "estimate": float(reps), "mcse": float("nan")})
        rows.append(
            {**base, "measure": "n_failed", "estimate": float(failed), "mcse": float("nan")}
        )
    return pd.DataFrame(rows)


def test_pilot_scaling_takes_the_binding_method_per_cell():
    table = replications_from_pilot(pilot_metrics(), "bias", 0.01)
    assert list(table["n"]) == [10, 20]
    # R = R₀ (m₀/target)²: 100·4² = 1600 for MAP at n = 10; 200·1² = 200 for OLS at n = 20.
    assert list(table["replications"]) == [1600, 200]
    assert list(table["binding"]) == ["map (weak) beta1", "ols beta1"]


def test_pilot_replications_count_failed_replicates():
    # n = 20: MAP used 190 replicates and 10 failed, so the cell drew 200.
    assert pilot_replications(pilot_metrics()) == {"n10_sigma1": 100, "n20_sigma1": 200}


def benchmark(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:{seconds:02.0f}\t100.0\n")


#: Benchmark files of a pilot whose simulate jobs each covered a whole cell (and
#: summarized it): 5 s for n = 10's 100 replicates, 8 s for n = 20's 200.
WHOLE_CELLS = {"simulate/n10_sigma1.tsv": 5.0, "simulate/n20_sigma1.tsv": 8.0}

#: Benchmark files of a pilot with cells split into chunks, then summarized:
#: n = 10 (2 + 2 + 0.5) s / 100, n = 20 (3 + 3 + 1) s / 200.
CHUNKED = {
    "simulate/n10_sigma1/reps000000-000050.tsv": 2.0,
    "simulate/n10_sigma1/reps000050-000100.tsv": 2.0,
    "summarize/n10_sigma1.tsv": 0.5,
    "simulate/n20_sigma1/reps000000-000100.tsv": 3.0,
    "simulate/n20_sigma1/reps000100-000200.tsv": 3.0,
    "summarize/n20_sigma1.tsv": 1.0,
}


def write_pilot(tmp_path, benchmarks=WHOLE_CELLS):
    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    pilot_metrics().to_csv(results / "tables" / "metrics.csv", index=False)
    for name, seconds in benchmarks.items():
        benchmark(results / "benchmarks" / name, seconds)
    benchmark(results / "benchmarks" / "collect.tsv", 1.0)
    return results


@pytest.mark.parametrize(
    ("benchmarks", "per_replicate"),
    [(WHOLE_CELLS, (0.05, 0.04)), (CHUNKED, (0.045, 0.035))],
    ids=["whole-cells", "chunks"],
)
def test_plan_from_a_pilot_estimates_time(tmp_path, benchmarks, per_replicate):
    results = write_pilot(tmp_path, benchmarks)
    replications = pilot_replications(pilot_metrics())
    assert pilot_seconds_per_replicate(results, replications) == pytest.approx(
        dict(zip(("n10_sigma1", "n20_sigma1"), per_replicate, strict=True))
    )
    table, seconds = plan(0.01, "bias", results)
    assert list(table["replications"]) == [1600, 200]
    assert seconds == pytest.approx(per_replicate[0] * 1600 + per_replicate[1] * 200)


def test_sample_size_files_are_shared_among_their_cells(tmp_path):
    # One job per sample size: n10.tsv covers n10_sigma1 and n10_sigma5 (not n100_sigma1).
    results = tmp_path / "results"
    benchmark(results / "benchmarks" / "simulate" / "n10.tsv", 6.0)
    benchmark(results / "benchmarks" / "simulate" / "n100.tsv", 3.0)
    replications = {"n10_sigma1": 100, "n10_sigma5": 200, "n100_sigma1": 100}
    assert pilot_seconds_per_replicate(results, replications) == pytest.approx(
        {"n10_sigma1": 0.02, "n10_sigma5": 0.02, "n100_sigma1": 0.03}
    )
    # a sample size none of whose cells drew replicates is left out
    assert pilot_seconds_per_replicate(results, {"n100_sigma1": 100}) == pytest.approx(
        {"n100_sigma1": 0.03}
    )


def test_whole_cell_files_need_the_cells_replications(tmp_path):
    results = write_pilot(tmp_path)
    assert pilot_seconds_per_replicate(results, {"n10_sigma1": 100}) == pytest.approx(
        {"n10_sigma1": 0.05}
    )


def test_plan_without_benchmarks_has_no_time(tmp_path):
    # No simulate benchmark files (e.g. not kept): the table alone, no time estimate.
    table, seconds = plan(0.01, "bias", write_pilot(tmp_path, {}))
    assert seconds is None
    assert "estimated" not in format_plan(table, seconds)


def test_plan_command(tmp_path, capsys):
    results = write_pilot(tmp_path)
    assert (
        main(["plan", "--target-mcse", "0.01", "--measure", "bias", "--pilot", str(results)]) == 0
    )
    out = capsys.readouterr().out
    # 0.05 s · 1600 + 0.04 s · 200 = 88 s.
    assert "1600" in out and "estimated simulate time 88 s" in out
    assert main(["plan", "--target-mcse", "0.005"]) == 0
    assert "10000" in capsys.readouterr().out


def test_plan_errors(tmp_path):
    with pytest.raises(InputDataError, match="without --pilot"):
        plan(0.01, "bias")
    with pytest.raises(InputDataError, match="target-mcse"):
        plan(-1.0, "coverage")
    with pytest.raises(DataFileError, match="no metrics table"):
        plan(0.01, "bias", tmp_path)
    with pytest.raises(InputDataError, match="'rmse' is not in the pilot"):
        replications_from_pilot(pilot_metrics(), "rmse", 0.01)
