"""The replication planner: worst-case and pilot-based replications, run-time estimate."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from regsim.cli import main
from regsim.errors import DataFileError, InputDataError
from regsim.planning import plan, replications_from_pilot, worst_case_replications


def test_worst_case_coverage_formula():
    # √(0.25/R) ≤ 0.005  ⇔  R ≥ 10000
    assert worst_case_replications(0.005) == 10000
    assert worst_case_replications(0.005, 0.95) == math.ceil(0.95 * 0.05 / 0.005**2)
    for target in (0.001, 0.0037, 0.02):
        r = worst_case_replications(target)
        assert math.sqrt(0.25 / r) <= target < math.sqrt(0.25 / (r - 1))


def pilot_metrics() -> pd.DataFrame:
    rows = []
    for n, sigma, method, prior, mcse, reps in [
        (10, 1.0, "ols", "", 0.02, 100),
        (10, 1.0, "map", "weak", 0.04, 100),
        (20, 1.0, "ols", "", 0.01, 200),
        (20, 1.0, "map", "weak", 0.005, 190),
    ]:
        base = {"n": n, "sigma": sigma, "prior": prior, "method": method, "parameter": "beta1"}
        rows.append({**base, "measure": "bias", "estimate": 0.1, "mcse": mcse})
        rows.append({**base, "measure": "n_reps", "estimate": float(reps), "mcse": float("nan")})
    return pd.DataFrame(rows)


def test_pilot_scaling_takes_the_binding_method_per_cell():
    table = replications_from_pilot(pilot_metrics(), "bias", 0.01)
    assert list(table["n"]) == [10, 20]
    # R = R₀ (m₀/target)²: 100·4² = 1600 for MAP at n = 10; 200·1² = 200 for OLS at n = 20.
    assert list(table["replications"]) == [1600, 200]
    assert list(table["binding"]) == ["map (weak) beta1", "ols beta1"]


def write_pilot(tmp_path, seconds_per_job=2.0):
    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    pilot_metrics().to_csv(results / "tables" / "metrics.csv", index=False)
    for stage in ("generate", "fit"):
        for cell in ("n10_sigma1", "n20_sigma1"):
            folder = results / "benchmarks" / stage / cell
            folder.mkdir(parents=True)
            (folder / "reps000000-000100.tsv").write_text(f"s\th:m:s\n{seconds_per_job}\t0:00:02\n")
    return results


def test_plan_from_a_pilot_estimates_time(tmp_path):
    results = write_pilot(tmp_path)
    table, seconds = plan(0.01, "bias", results)
    # 4 s of generate+fit per 100 replicates of each cell: 0.04 s a replicate.
    assert seconds == pytest.approx(0.04 * (1600 + 200))
    assert int(table["replications"].sum()) == 1800


def test_plan_command(tmp_path, capsys):
    results = write_pilot(tmp_path)
    assert (
        main(["plan", "--target-mcse", "0.01", "--measure", "bias", "--pilot", str(results)]) == 0
    )
    out = capsys.readouterr().out
    assert "1600" in out and "estimated generate+fit time 72 s" in out
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
