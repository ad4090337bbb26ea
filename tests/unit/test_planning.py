"""The replication planner: worst-case and pilot-based replications, run-time estimate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from regsim.cli import main
from regsim.design import Cell, Unit
from regsim.errors import DataFileError, InputDataError
from regsim.jobs import CELLS_TIME, UNIT_TIME
from regsim.parquet import ChunkWriter
from regsim.planning import (
    TimeEstimate,
    format_plan,
    pilot_replications,
    pilot_times,
    plan,
    replications_from_pilot,
    worst_case_replications,
)
from regsim.provenance import sha256_file
from regsim.tableio import read_metrics, write_metrics_csv


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
        base["true"] = 3.8987
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


def test_pilot_ties_go_to_the_first_method_and_groups_without_mcse_are_named():
    rows = pilot_metrics()
    rows = rows[rows["n"] == 20].copy()
    bias = rows["measure"] == "bias"
    # MAP's MCSE equal to OLS's but for rounding, as under flat priors: OLS binds
    rows.loc[bias & (rows["method"] == "ols"), "mcse"] = 0.01
    rows.loc[bias & (rows["method"] == "map"), "mcse"] = 0.01 * (1 + 1e-14)
    rows.loc[(rows["method"] == "map") & (rows["measure"] == "n_reps"), "estimate"] = 200.0
    rows.loc[(rows["method"] == "map") & (rows["measure"] == "n_failed"), "estimate"] = 0.0
    table = replications_from_pilot(rows, "bias", 0.01)
    assert list(table["binding"]) == ["ols beta1"] and list(table["replications"]) == [200]
    assert table.attrs["without_mcse"] == []
    # a group without an MCSE (a relative bias of a true value 0) is named, not planned
    rows.loc[bias & (rows["method"] == "ols"), "mcse"] = float("nan")
    table = replications_from_pilot(rows, "bias", 0.01)
    assert list(table["binding"]) == ["map (weak) beta1"]
    assert table.attrs["without_mcse"] == ["ols beta1 in n20_sigma1"]
    text = format_plan(table, None)
    assert "left out: 1 method, prior and parameter group(s)" in text
    assert "e.g. ols beta1 in n20_sigma1\n" in text
    assert table.attrs["unplanned_cells"] == [] and "no plan for" not in text
    # a cell none of whose groups has an MCSE has no row: it is named, out of the total
    whole = pilot_metrics()
    whole.loc[(whole["measure"] == "bias") & (whole["n"] == 20), "mcse"] = float("nan")
    table = replications_from_pilot(whole, "bias", 0.01)
    assert list(table["n"]) == [10] and table.attrs["unplanned_cells"] == ["n20_sigma1"]
    text = format_plan(table, None)
    assert "no plan for 1 cell(s), none of whose groups has one: n20_sigma1 (not in" in text
    assert "total: 1600 datasets" in text


def test_pilot_scaling_plans_datasets_drawn_where_fits_fail():
    """A method that failed on a third of the pilot's datasets fails as often in the run:
    the plan counts datasets to draw, so it scales the drawn ones, not the used ones."""
    rows = pilot_metrics()
    rows = rows[rows["n"] == 10].copy()
    at = (rows["method"] == "map") & (rows["measure"] == "n_reps")
    rows.loc[at, "estimate"] = 135.0
    rows.loc[(rows["method"] == "map") & (rows["measure"] == "n_failed"), "estimate"] = 65.0
    table = replications_from_pilot(rows, "bias", 0.01)
    # MAP drew 200 (135 used): 200·4² = 3200 datasets, of which about 2160 are used, and
    # its MCSE then is 0.04·√(135/2160) = 0.01; scaling the 135 used would give 0.0122.
    assert list(table["replications"]) == [3200]
    assert list(table["binding"]) == ["map (weak) beta1"]
    used = 3200 * 135 / 200
    assert math.isclose(0.04 * math.sqrt(135 / used), 0.01)


def test_pilot_replications_count_failed_replicates():
    # n = 20: MAP used 190 replicates and 10 failed, so the cell drew 200.
    assert pilot_replications(pilot_metrics()) == {"n10_sigma1": 100, "n20_sigma1": 200}


def benchmark(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:{seconds:02.0f}\t100.0\n")


def chunk(results: Path, job: str, units: list[tuple[Cell, int, int]]) -> None:
    """A simulate job's chunk of fits listing ``units`` (cell, start, stop), 4 rows each
    replicate (one fit, four parameters)."""
    path = results / "chunks" / f"{job}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    with ChunkWriter(path, job) as writer:
        for cell, start, stop in units:
            rows = 4 * (stop - start)
            table = pd.DataFrame({"n": [cell.n] * rows, "prior": "", "method": "ols"})
            writer.write(Unit(cell, start, stop), table)


N10, N20 = Cell(10, 1.0, (1.0, 2.0)), Cell(20, 1.0, (1.0, 2.0))

#: A pilot whose jobs each held a whole cell: 5 s for n = 10's 100 replicates, 8 s for
#: n = 20's 200, and collect 1 s shared by fit rows (100 : 200).
WHOLE_CELLS = ({"n10-1": [(N10, 0, 100)], "n20-1": [(N20, 0, 200)]}, {"n10-1": 5, "n20-1": 8})

#: A pilot with cells cut into ranges: n = 10 (2 + 2) s / 100, n = 20 (3 + 3) s / 200.
CHUNKED = (
    {
        "n10-1": [(N10, 0, 50)],
        "n10-2": [(N10, 50, 100)],
        "n20-1": [(N20, 0, 100)],
        "n20-2": [(N20, 100, 200)],
    },
    {"n10-1": 2, "n10-2": 2, "n20-1": 3, "n20-2": 3},
)


def job_log(path: Path, *messages: str) -> None:
    """A job's log of ``messages``, as regsim.workflow.log_to writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"2026-12-06 12:00:00,000 INFO regsim.jobs: {message}\n" for message in messages]
    path.write_text("".join(lines))


def write_pilot(tmp_path, jobs=WHOLE_CELLS, metrics=None, work=None):
    """A pilot's results folder; with ``work`` (job -> seconds of each of its units'
    drawing and fitting, and "collect" -> its cells' tables), the jobs' logs say so."""
    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    write_metrics_csv(
        pilot_metrics() if metrics is None else metrics, results / "tables" / "metrics.csv"
    )
    units, seconds = jobs
    for job, job_units in units.items():
        chunk(results, job, job_units)
        benchmark(results / "benchmarks" / "simulate" / f"{job}.tsv", seconds[job])
        if work is not None:
            lines = [
                UNIT_TIME % (cell.label, start, stop - 1, took)
                for (cell, start, stop), took in zip(job_units, work[job], strict=True)
            ]
            job_log(results / "logs" / "simulate" / f"{job}.log", "n10_sigma1 (key k)", *lines)
    benchmark(results / "benchmarks" / "collect.tsv", 1.5)
    if work is not None:
        job_log(results / "logs" / "collect.log", "2 cells", CELLS_TIME % (2, work["collect"]))
    return results


@pytest.mark.parametrize(
    ("jobs", "per_replicate"),
    # collect's 1.5 s by fit rows: 0.5 s to n = 10 (100 replicates), 1 s to n = 20 (200)
    [(WHOLE_CELLS, (0.055, 0.045)), (CHUNKED, (0.045, 0.035))],
    ids=["whole-cells", "chunks"],
)
def test_without_the_jobs_work_in_their_logs_their_whole_time_grows(tmp_path, jobs, per_replicate):
    # A pilot whose logs do not give the units' times: every second of a job is taken to
    # grow with the replications (an upper bound), and said so.
    results = write_pilot(tmp_path, jobs)
    times = pilot_times(results)
    assert times.per_replicate == pytest.approx(
        dict(zip(("n10_sigma1", "n20_sigma1"), per_replicate, strict=True))
    )
    assert times.fixed == 0.0 and not times.measured
    table, seconds = plan(0.01, "bias", results)
    assert list(table["replications"]) == [1600, 200]
    assert seconds.total == pytest.approx(per_replicate[0] * 1600 + per_replicate[1] * 200)
    assert "at most" in format_plan(table, seconds)


def test_a_jobs_start_up_does_not_grow_with_the_replications(tmp_path):
    # n = 10's job: 5 s, 3 of them drawing and fitting; n = 20's: 8 s, 6 of them; collect:
    # 1.5 s, 0.9 of them the cells' tables.
    results = write_pilot(
        tmp_path, WHOLE_CELLS, work={"n10-1": [3.0], "n20-1": [6.0], "collect": 0.9}
    )
    times = pilot_times(results)
    assert times.measured
    assert times.fixed == pytest.approx(2.0 + 2.0 + 0.6)
    # collect's 0.9 s by fit rows: 0.3 s to n = 10 (400 rows), 0.6 s to n = 20 (800)
    assert times.per_replicate == pytest.approx(
        {"n10_sigma1": (3.0 + 0.3) / 100, "n20_sigma1": (6.0 + 0.6) / 200}
    )
    table, seconds = plan(0.01, "bias", results)
    assert seconds.growing == pytest.approx(0.033 * 1600 + 0.033 * 200)
    assert seconds.fixed == pytest.approx(4.6)
    text = format_plan(table, seconds)
    assert (
        "estimated time of the simulate and collect jobs 64 s of one core: 59 s drawing, "
        "fitting and summarizing, at the pilot's time per replicate, and 4.6 s the jobs' "
        "start-up and the tables of all cells, as in the pilot" in text
    )
    # a job whose log lacks a unit's time: the whole job's time grows, and the plan says so
    job_log(results / "logs" / "simulate" / "n20-1.log", "n20_sigma1 (key k)")
    assert not pilot_times(results).measured


def test_a_jobs_time_is_shared_among_its_cells(tmp_path):
    # One job of two cells of n = 10 (100 and 200 replicates): 6 s, 0.02 s per replicate.
    results = tmp_path / "results"
    cells = [Cell(10, 1.0, (1.0, 2.0)), Cell(10, 5.0, (1.0, 2.0))]
    chunk(results, "n10-1", [(cells[0], 0, 100), (cells[1], 0, 200)])
    benchmark(results / "benchmarks" / "simulate" / "n10-1.tsv", 6.0)
    benchmark(results / "benchmarks" / "simulate" / "n99-1.tsv", 6.0)  # no chunk: left out
    assert pilot_times(results).per_replicate == pytest.approx(
        {"n10_sigma1": 0.02, "n10_sigma5": 0.02}
    )


def test_jobs_the_runs_record_does_not_list_are_not_timed(tmp_path):
    # A job of an earlier configuration left in the folder (its chunk, benchmark and log
    # still there; `regsim verify` lists it as stale) ran another study: with the run's
    # record, only the jobs it lists count, in the per-replicate times and the start-up.
    results = write_pilot(
        tmp_path, WHOLE_CELLS, work={"n10-1": [3.0], "n20-1": [6.0], "collect": 0.9}
    )
    expected = pilot_times(results)
    stale = Cell(4, 1.0, (1.0, 2.0))
    chunk(results, "n4-1", [(stale, 0, 50)])
    benchmark(results / "benchmarks" / "simulate" / "n4-1.tsv", 9.0)
    job_log(results / "logs" / "simulate" / "n4-1.log", UNIT_TIME % (stale.label, 0, 49, 1.0))
    assert pilot_times(results).fixed > expected.fixed  # without a record, it counts
    digests = {"tables/metrics.csv": sha256_file(results / "tables" / "metrics.csv")}
    digests |= {f"chunks/{job}.parquet": "0" * 64 for job in ("n10-1", "n20-1")}
    (results / "provenance.json").write_text(json.dumps({"tables": digests}))
    times = pilot_times(results)
    assert times.fixed == pytest.approx(expected.fixed)
    assert times.per_replicate == pytest.approx(expected.per_replicate)


def test_plan_covers_every_factor_of_the_grid(tmp_path):
    # Two error models at each (n, sigma): four cells, each planned and counted.
    rows = pilot_metrics()
    rows = pd.concat([rows.assign(errors="normal"), rows.assign(errors="t3")], ignore_index=True)
    table = replications_from_pilot(rows, "bias", 0.01)
    assert list(table.columns) == ["n", "sigma", "errors", "replications", "binding"]
    assert len(table) == 4 and list(table["replications"]) == [1600, 1600, 200, 200]
    assert pilot_replications(rows) == {
        "n10_sigma1": 100,
        "n10_sigma1_t3": 100,
        "n20_sigma1": 200,
        "n20_sigma1_t3": 200,
    }
    assert "total: 3600 datasets" in format_plan(table, TimeEstimate(1.0, 0.0, True))


def test_plan_without_benchmarks_has_no_time(tmp_path):
    # No simulate benchmark files (e.g. not kept): the table alone, no time estimate.
    table, seconds = plan(0.01, "bias", write_pilot(tmp_path, ({}, {})))
    assert seconds is None
    text = format_plan(table, seconds)
    assert "estimated" not in text
    assert "no time estimate: the pilot's benchmark files do not cover every cell" in text
    assert "R = R_pilot (MCSE_pilot / target)^2" in text and "(n_reps + n_failed" in text


def test_plan_command(tmp_path, capsys):
    results = write_pilot(tmp_path)
    assert (
        main(["plan", "--target-mcse", "0.01", "--measure", "bias", "--pilot", str(results)]) == 0
    )
    out = capsys.readouterr().out
    # 0.055 s · 1600 + 0.045 s · 200 = 97 s, from whole job times.
    assert "1600" in out and "simulate and collect jobs at most 97 s of one core" in out
    # sigma as in the cells' labels and metrics.csv: 1, not 1.0
    table_lines = out.split("\n\n")[0].splitlines()
    assert table_lines[0].split()[:2] == ["n", "sigma"] and table_lines[1].split()[:2] == [
        "10",
        "1",
    ]
    assert main(["plan", "--target-mcse", "0.005"]) == 0
    out = capsys.readouterr().out
    assert "10000" in out and "R = p (1 - p) / target^2" in out and "at least 2" in out
    assert main(["plan", "--target-mcse", "0.005", "--alpha", "0.1"]) == 0
    assert "at nominal p = 0.9" in capsys.readouterr().out
    # with a pilot the level would change nothing: refused, not ignored
    pilot = ["plan", "--target-mcse", "0.01", "--measure", "coverage", "--pilot", str(results)]
    assert main([*pilot, "--alpha", "0.1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "error: --alpha: not used with --pilot (the pilot's MCSEs, at its own alpha, set the "
        "replications)"
    )


def test_plan_errors(tmp_path):
    with pytest.raises(InputDataError, match="without --pilot"):
        plan(0.01, "bias")
    with pytest.raises(InputDataError, match="--measure foo: not a measure; known: bias"):
        plan(0.01, "foo")
    with pytest.raises(InputDataError, match="--measure foo: not a measure"):
        plan(0.01, "foo", tmp_path)
    with pytest.raises(InputDataError, match="target-mcse"):
        plan(-1.0, "coverage")
    with pytest.raises(DataFileError, match="no metrics table"):
        plan(0.01, "bias", tmp_path)
    with pytest.raises(InputDataError, match="'rmse' is not in the pilot"):
        replications_from_pilot(pilot_metrics(), "rmse", 0.01)


def test_a_pilot_table_that_is_not_the_recorded_one_is_refused(tmp_path):
    from regsim.provenance import PROVENANCE_NAME, write_provenance

    results = write_pilot(tmp_path)
    table = results / "tables" / "metrics.csv"
    write_provenance(results / PROVENANCE_NAME, {"seed": 1}, [table], repo=tmp_path)
    plan(0.01, "bias", results)  # the recorded bytes
    # cut short in its last row, mid-number: the reader still takes every row (that one's
    # true value shortened, the rest of it missing)
    text = table.read_text()
    table.write_text(text[: text.rindex(".") + 2])
    assert len(read_metrics(table)) == len(text.splitlines()) - 1
    with pytest.raises(DataFileError, match=r"not the metrics table .*records \(cut short"):
        plan(0.01, "bias", results)
    # without a record there is nothing to compare with: read as it is
    (results / PROVENANCE_NAME).unlink()
    plan(0.01, "bias", results)
