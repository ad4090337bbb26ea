"""Reliability of the workflow: bad configurations, interruption and resume, damaged files
and failed replicates, each on a real ``snakemake`` run of tests/smoke.yaml in a temporary
copy of the workflow (see test_workflow.py).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_workflow import (
    CUT,
    PER_CELL,
    ROOT,
    SMOKE,
    TIMEOUT,
    TOGETHER,
    cell_labels,
    copy_workflow,
    error_lines,
    planned_jobs,
    snakemake,
    snakemake_command,
    snapshot,
)

from regsim.cells import summarize_cell
from regsim.config import KNOWN_METHODS
from regsim.schema import GROUP_FIELDS
from regsim.tableio import read_metrics

pytestmark = pytest.mark.e2e

SMOKE_ARGS = ("--configfile", "tests/smoke.yaml")
CATALOGUE = yaml.safe_load((ROOT / "tests" / "data" / "bad_configs.yaml").read_text())


def catalogue_message(case: dict) -> str:
    """A catalogue case's expected message, its placeholders filled in."""
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    return (
        case["message"]
        .replace("{keys}", ", ".join(sorted(schema["properties"])))
        .replace("{methods}", ", ".join(KNOWN_METHODS))
    )


CELLS = cell_labels(SMOKE)


def study_tables(results: Path) -> dict[str, bytes]:
    """The study's result tables: metrics.csv, the per-cell tables and the paper tables."""
    names = ["tables/metrics.csv"]
    names += [f"{kind}/{label}.parquet" for label in CELLS for kind in ("fits", "metrics")]
    names += sorted(str(p.relative_to(results)) for p in (results / "tables").glob("*.[mt][de]*"))
    return {name: (results / name).read_bytes() for name in names if (results / name).exists()}


def mtimes(results: Path, pattern: str) -> dict[str, int]:
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in results.glob(pattern)}


@pytest.fixture(scope="module")
def finished(smoke_runs) -> Path:
    """A complete smoke run (2 cores, cells cut into ranges); copy it before changing it."""
    return smoke_runs(2, CUT)


@pytest.fixture(scope="module")
def reference(finished: Path) -> dict[str, bytes]:
    return study_tables(finished / "results")


def copy_run(finished: Path, dest: Path) -> Path:
    """A copy of a finished run; copy2 keeps mtimes, so its outputs stay up to date."""
    shutil.copytree(finished, dest, symlinks=True)
    return dest


# --------------------------------------------------------------------------------------
# 1. Bad configurations: one line, exit status 1, results/ untouched
# --------------------------------------------------------------------------------------


@dataclass
class Rejected:
    result: subprocess.CompletedProcess
    before: dict
    after: dict
    locks: list[Path]


def run_case(finished: Path, workdir: Path, case: dict) -> Rejected:
    """Run ``snakemake --cores=2`` on a copy of the finished run with the case's config."""
    copy_run(finished, workdir)
    if "config_yaml" in case:
        (workdir / "config.yaml").write_text(case["config_yaml"])
    (workdir / "tests" / "bad.yaml").write_text(case.get("layer", ""))
    if case.get("replace"):
        args = ["--replace-workflow-config", "--configfile", "tests/bad.yaml"]
    else:
        args = [*SMOKE_ARGS] + (["tests/bad.yaml"] if "layer" in case else [])
    for key, value in (case.get("overrides") or {}).items():
        args += ["--config", f"{key}={value}"]
    before = snapshot(workdir / "results")
    result = snakemake(workdir, "--cores=2", *args, check=False)
    locks = list((workdir / ".snakemake" / "locks").glob("*"))
    return Rejected(result, before, snapshot(workdir / "results"), locks)


@pytest.fixture(scope="module")
def rejected(finished: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rejected]:
    """Every catalogue case run by the real snakemake, two at a time, each on its own copy
    of the finished run (a run is mostly Snakemake parsing the workflow)."""
    root = tmp_path_factory.mktemp("catalogue")
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda case: run_case(finished, root / case["id"], case), CATALOGUE)
        return {case["id"]: run for case, run in zip(CATALOGUE, runs, strict=True)}


@pytest.mark.parametrize("case", CATALOGUE, ids=[case["id"] for case in CATALOGUE])
def test_bad_config_is_rejected_before_any_job(rejected: dict[str, Rejected], case: dict) -> None:
    run = rejected[case["id"]]
    output = run.result.stdout + run.result.stderr
    assert run.result.returncode == 1, output
    assert error_lines(run.result) == [f"config error: {catalogue_message(case)}"], output
    assert run.after == run.before, "results/ changed"
    assert run.locks == [], "a lock was left behind"


def test_bad_config_in_a_fresh_folder_creates_nothing(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "fresh")
    (workdir / "tests" / "bad.yaml").write_text("replicatons: 100\n")
    result = snakemake(workdir, "--cores=2", *SMOKE_ARGS, "tests/bad.yaml", check=False)
    assert result.returncode == 1
    assert len(error_lines(result)) == 1
    assert not (workdir / "results").exists()


# --------------------------------------------------------------------------------------
# 2. Interruption and resume
# --------------------------------------------------------------------------------------

BUDGET = 200  # 26 simulate jobs, a wide window to interrupt
RUN_ARGS = ["--cores=2", *SMOKE_ARGS, "--config", f"observations_per_job={BUDGET}"]
N_CHUNKS = len(planned_jobs(BUDGET))


def interrupt(workdir: Path, sig: signal.Signals) -> None:
    """Start the smoke run, wait until some (not all) chunks of fits exist, then send
    ``sig`` to the whole process group (Snakemake and its jobs), as Ctrl-C or a crash
    would."""
    process = subprocess.Popen(
        [*snakemake_command(), *RUN_ARGS],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        # A shell running the tests in the background (CI) starts them with SIGINT
        # ignored, and children inherit that: give the run Ctrl-C's default action back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    chunks = workdir / "results" / "chunks"
    try:
        deadline = time.monotonic() + TIMEOUT
        while len(list(chunks.glob("*.parquet"))) < 3:
            assert process.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(process.pid, sig)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode != 0


def outputs(results: Path) -> dict[str, int]:
    """mtime of every chunk of fits and dataset file."""
    return {**mtimes(results, "chunks/*.parquet"), **mtimes(results, "datasets/*.npz")}


def simulate_job(output: str) -> str:
    """The simulate job that writes a chunk of fits or a dataset file (its name)."""
    return Path(output).stem


def assert_resumed(results: Path, done: dict[str, int], reference: dict[str, bytes]) -> None:
    """The study is complete, identical to an uninterrupted run, and of the outputs that
    existed after the interruption only those of jobs still running then (at most one
    per core, outputs Snakemake had not recorded as finished) were made again."""
    assert study_tables(results) == reference
    after = outputs(results)
    remade = sorted(k for k in done if after[k] != done[k])
    jobs = {simulate_job(k) for k in remade}
    assert len(jobs) <= 2, f"finished outputs were recomputed: {remade}"
    assert not list(results.rglob(".*.tmp")), "a temporary file was left behind"


def test_resume_after_ctrl_c(tmp_path: Path, reference: dict[str, bytes]) -> None:
    workdir = copy_workflow(tmp_path / "sigint")
    interrupt(workdir, signal.SIGINT)
    results = workdir / "results"
    done = outputs(results)
    assert 0 < len([k for k in done if k.startswith("chunks/")]) < N_CHUNKS
    snakemake(workdir, *RUN_ARGS)  # a plain rerun resumes
    assert_resumed(results, done, reference)


def test_resume_after_a_hard_kill(tmp_path: Path, reference: dict[str, bytes]) -> None:
    workdir = copy_workflow(tmp_path / "sigkill")
    interrupt(workdir, signal.SIGKILL)
    results = workdir / "results"
    done = outputs(results)
    assert 0 < len([k for k in done if k.startswith("chunks/")]) < N_CHUNKS

    # The killed run could not remove its lock: a plain rerun refuses and says why.
    refused = snakemake(workdir, *RUN_ARGS, check=False)
    assert refused.returncode != 0
    assert "LockException" in refused.stdout + refused.stderr
    assert "--unlock" in refused.stdout + refused.stderr
    snakemake(workdir, "--unlock", *SMOKE_ARGS)
    # the profile's rerun-incomplete remakes outputs of jobs that were running
    snakemake(workdir, *RUN_ARGS)
    assert_resumed(results, done, reference)


# --------------------------------------------------------------------------------------
# 3. Damaged files: one clear line naming the file, never a wrong table
# --------------------------------------------------------------------------------------


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not the file you wrote\n" * 10)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip(path: Path) -> None:
    """Flip one byte of a parquet file's data: the last byte of the column chunk around
    the middle of the file, the end of a data page's contents (not of a page header,
    whose statistics nothing reads), whatever the layout of row groups and pages."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    data = bytearray(path.read_bytes())
    ends = []
    for group in range(meta.num_row_groups):
        for column in range(meta.num_columns):
            chunk = meta.row_group(group).column(column)
            start = chunk.dictionary_page_offset if chunk.has_dictionary_page else None
            start = chunk.data_page_offset if start is None else start
            if start <= len(data) // 2 < start + chunk.total_compressed_size:
                ends.append(start + chunk.total_compressed_size - 1)
    assert len(ends) == 1, f"no column chunk around the middle of {path}"
    data[ends[0]] ^= 0xFF
    path.write_bytes(bytes(data))


# A damaged file that jobs read, and the rules that read it: whichever of them runs first
# fails, naming the file. (Dataset files are written by the simulate jobs, never read:
# see test_damaged_dataset_file_is_not_read.)
DAMAGE = {
    "chunk-garbage": ("chunks/n10-1.parquet", garbage, {"collect"}),
    "chunk-truncated": ("chunks/n40-2.parquet", truncate, {"collect"}),
    "chunk-flipped-byte": ("chunks/n40-3.parquet", flip, {"collect"}),
    "metrics-csv-garbage": ("tables/metrics.csv", garbage, {"paper"}),
    # the table of fits of the zip plot's cell, which the paper job and the explorer (rule
    # views) read
    "cell-fits-garbage": ("fits/n10_sigma1.parquet", garbage, {"paper", "views"}),
}
ADVICE = "; delete it and rerun the workflow to regenerate it"
MESSAGES = {
    "chunks": r"unreadable table file \(.+\)" + ADVICE,
    "fits": r"unreadable table file \(.+\)" + ADVICE,
    "tables": r"not a metrics table \(no column .+\)" + ADVICE,
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_file_stops_with_its_name(
    finished: Path, reference: dict[str, bytes], tmp_path: Path, case: str
) -> None:
    name, damage, readers = DAMAGE[case]
    workdir = copy_run(finished, tmp_path / "run")
    results = workdir / "results"
    damage(results / name)
    later = time.time() + 5
    os.utime(results / name, (later, later))  # newer than its outputs: they are rerun
    result = snakemake(
        workdir, "--cores=2", *SMOKE_ARGS, "--config", f"observations_per_job={CUT}", check=False
    )
    assert result.returncode != 0

    message = MESSAGES[name.split("/")[0]]
    expected = re.compile(rf"error: results/{re.escape(name)}: {message}$")
    console = [
        line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error: ")
    ]
    assert console and all(expected.match(line) for line in console), console
    logs = [p for p in (results / "logs").rglob("*.log") if "job failed: results/" in p.read_text()]
    rules = {p.relative_to(results / "logs").parts[0].removesuffix(".log") for p in logs}
    assert rules and rules <= readers, logs
    for log in logs:
        assert f"ERROR regsim: job failed: results/{name}: " in log.read_text()

    # Never a wrong table: whatever is left is exactly what the intact run wrote.
    for table, data in study_tables(results).items():
        if table != name:
            assert data == reference[table], f"{table} changed"

    if case in ("chunk-garbage", "chunk-truncated"):  # the advice works
        (results / name).unlink()
        snakemake(workdir, "--cores=2", *SMOKE_ARGS, "--config", f"observations_per_job={CUT}")
        assert study_tables(results) == reference


# A damaged dataset file, under each plan of the shared runs: budget, file.
DATASET_DAMAGE = {
    "garbage-cut": (CUT, "datasets/n10-1.npz", garbage),
    "truncated-cut": (CUT, "datasets/n40-3.npz", truncate),
    "garbage-per-cell": (PER_CELL, "datasets/n40-2.npz", garbage),
    "truncated-together": (TOGETHER, "datasets/n40-1.npz", truncate),
}


@pytest.mark.parametrize("case", list(DATASET_DAMAGE))
def test_damaged_dataset_file_is_not_read(smoke_runs, tmp_path: Path, case: str) -> None:
    """A simulate job fits the replicates it draws as it saves them: nothing reads a
    dataset file back, so a damaged one (even newer than everything else) leaves a rerun
    with nothing to do and every table as the intact run wrote it. Deleted, it is drawn
    again by a plain rerun, the same bytes."""
    budget, name, damage = DATASET_DAMAGE[case]
    workdir = copy_run(smoke_runs(2, budget), tmp_path / "run")
    results = workdir / "results"
    tables, intact = study_tables(results), (results / name).read_bytes()
    damage(results / name)
    later = time.time() + 5
    os.utime(results / name, (later, later))
    before = snapshot(results)
    args = ["--cores=2", *SMOKE_ARGS, "--config", f"observations_per_job={budget}"]
    result = snakemake(workdir, *args)
    assert "Nothing to be done" in result.stdout + result.stderr
    assert snapshot(results) == before
    assert study_tables(results) == tables

    (results / name).unlink()
    snakemake(workdir, *args)
    assert (results / name).read_bytes() == intact
    assert study_tables(results) == tables


# --------------------------------------------------------------------------------------
# 4. Failed replicates: flagged, left out consistently, counted and reported
# --------------------------------------------------------------------------------------


def test_failed_replicates_are_flagged_left_out_and_reported(
    finished: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    workdir = copy_run(finished, tmp_path / "run")
    results = workdir / "results"
    # map_max_iter caps the MAP Newton iteration: 3 steps leave some fits unconverged.
    args = ["--config", f"observations_per_job={CUT}", "map_max_iter=3"]
    snakemake(workdir, "--cores=2", *SMOKE_ARGS, *args)

    metrics = read_metrics(results / "tables" / "metrics.csv")
    failed = metrics[metrics["measure"] == "n_failed"]
    assert (failed.loc[failed["method"] == "map", "estimate"] > 0).any()
    assert (failed.loc[failed["method"] != "map", "estimate"] == 0).all()
    partial = 0
    for label in CELLS:
        fits = pd.read_parquet(results / "fits" / f"{label}.parquet")
        # a replicate fails for all parameters of its method and prior, or for none
        flags = fits.groupby(["prior", "method", "replicate"])["converged"].nunique()
        assert (flags == 1).all()
        cell_metrics = metrics[
            (metrics["n"] == fits["n"].iloc[0]) & (metrics["sigma"] == fits["sigma"].iloc[0])
        ].reset_index(drop=True)
        # the measures are those of the table with the failed replicates dropped
        kept = summarize_cell(fits[fits["converged"]], SMOKE["alpha"], reference="ols")
        keys = ["n", "sigma", *GROUP_FIELDS, "measure"]
        merged = cell_metrics.merge(kept, on=keys, how="inner", suffixes=("", "_kept"))
        same = merged[~merged["measure"].isin(["n_failed", "n_multimodal"])]
        np.testing.assert_array_equal(same["estimate"], same["estimate_kept"])
        np.testing.assert_array_equal(same["mcse"], same["mcse_kept"])
        # a group whose replicates all failed has no measures, n_reps 0
        lost = cell_metrics.merge(kept[keys], on=keys, how="left", indicator=True)
        lost = lost[lost["_merge"] == "left_only"]
        assert lost.loc[lost["measure"] == "n_reps", "estimate"].eq(0).all()
        measures = lost[~lost["measure"].isin(["n_reps", "n_failed", "n_multimodal"])]
        assert measures["estimate"].isna().all()
        counts = fits.loc[fits["parameter"] == "sigma"].groupby(["prior", "method"])["converged"]
        for (prior, method), flags in counts:
            rows = cell_metrics[
                (cell_metrics["prior"] == prior) & (cell_metrics["method"] == method)
            ]
            by_measure = rows.groupby("measure")["estimate"].first()
            assert by_measure["n_failed"] == (~flags).sum()
            assert by_measure["n_reps"] == flags.sum()
            partial += 0 < (~flags).sum() < len(flags)
    assert partial, "no cell with some (not all) replicates failed"

    # OLS and MLE are untouched
    before = read_metrics(finished / "results" / "tables" / "metrics.csv")
    plain = before["method"] != "map"
    pd.testing.assert_frame_equal(
        metrics[metrics["method"] != "map"].reset_index(drop=True),
        before[plain].reset_index(drop=True),
    )

    report = (results / "tables" / "failures.md").read_text()
    assert "| 1 | 10 | MAP (shifted) |" in report and "No replicate failed" not in report
    assert "†" in (results / "tables" / "bias_beta1.md").read_text()
    assert r"$^\dagger$" in (results / "tables" / "bias_beta1.tex").read_text()
    warnings = [
        line
        for log in (results / "logs" / "simulate").rglob("*.log")
        for line in log.read_text().splitlines()
        if " WARNING " in line
    ]
    assert any("map (shifted)" in line and "replicates failed" in line for line in warnings)
    assert "No replicate failed." in (finished / "results" / "tables" / "failures.md").read_text()


# --------------------------------------------------------------------------------------
# 5. Results that lie: python -m regsim verify tells (tests/data/artefacts.yaml)
# --------------------------------------------------------------------------------------

ARTEFACTS = yaml.safe_load((ROOT / "tests" / "data" / "artefacts.yaml").read_text())


def edit_csv(path: Path) -> None:
    """Change the estimate (or value) of the first data row of a CSV table."""
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    column = "estimate" if "estimate" in table.columns else "simulated"
    table.loc[0, column] = str(float(table.loc[0, column]) + 0.125)
    table.to_csv(path, index=False, lineterminator="\n")


def edit_parquet(path: Path) -> None:
    """Rewrite a parquet table, valid, with its first estimate changed."""
    from regsim.tableio import write_parquet

    table = pd.read_parquet(path)
    table.loc[0, "estimate"] += 0.125
    write_parquet(table, path)


@pytest.mark.parametrize("case", ARTEFACTS, ids=[case["id"] for case in ARTEFACTS])
def test_verify_tells_which_results_lie(finished: Path, tmp_path: Path, case: dict) -> None:
    workdir = copy_run(finished, tmp_path / "run")
    results = workdir / "results"
    for action, name in (case["act"] or {}).items():
        {"edit-csv": edit_csv, "edit-parquet": edit_parquet, "truncate": truncate}[action](
            results / name
        )
    if case.get("rerun"):
        args = [*SMOKE_ARGS, "--config", f"observations_per_job={CUT}"]
        if "layer" in case:
            (workdir / "tests" / "layer.yaml").write_text(case["layer"])
            args[1:2] = ["tests/smoke.yaml", "tests/layer.yaml"]
        snakemake(workdir, "--cores=2", *args)
    check = subprocess.run(
        [sys.executable, "-m", "regsim", "verify", "results"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    lines = check.stdout.splitlines()
    assert check.stderr == ""
    if not case.get("lines"):
        assert check.returncode == 0 and all(line.startswith("ok ") for line in lines), lines
        return
    assert check.returncode == 1
    for line in case["lines"]:
        assert line in lines, check.stdout
    problems = [line for line in lines if not line.startswith("ok ")]
    if case.get("exactly"):
        assert sorted(problems) == sorted(case["lines"]), check.stdout
    assert all(
        line in case["lines"] or line.startswith(("STALE ", "MISMATCH ", "DISAGREES "))
        for line in problems
    )


# --------------------------------------------------------------------------------------
# 6. A --configfile snakemake itself cannot open: one line (tests/data/tracebacks.yaml)
# --------------------------------------------------------------------------------------

UNOPENED = [
    case
    for case in yaml.safe_load((ROOT / "tests" / "data" / "tracebacks.yaml").read_text())
    if "configfile" in case
]


@pytest.mark.parametrize("case", UNOPENED, ids=[case["id"] for case in UNOPENED])
def test_a_configfile_snakemake_cannot_open_is_one_line(tmp_path: Path, case: dict) -> None:
    workdir = copy_workflow(tmp_path / "run")
    bad = workdir / "tests" / "bad.yaml"
    if case["configfile"] is None:
        bad.mkdir()
    else:
        bad.write_bytes(case["configfile"].encode("latin-1"))
    result = snakemake(workdir, "-n", "--configfile", "tests/bad.yaml", check=False)
    assert result.returncode == 1
    assert error_lines(result) == [case["line"]]
    assert not (workdir / "results").exists()


# --------------------------------------------------------------------------------------
# 7. Legal studies run to the end (tests/data/late_failures.yaml)
# --------------------------------------------------------------------------------------

LEGAL = [
    case
    for case in yaml.safe_load((ROOT / "tests" / "data" / "late_failures.yaml").read_text())
    if "figures" in case
]


@pytest.mark.parametrize("case", LEGAL, ids=[case["id"] for case in LEGAL])
def test_a_legal_study_writes_what_makes_sense_for_it(tmp_path: Path, case: dict) -> None:
    workdir = copy_workflow(tmp_path / "run")
    (workdir / "tests" / "layer.yaml").write_text(case["layer"] + "\nreplications: 20\n")
    snakemake(workdir, "--cores=2", *SMOKE_ARGS, "tests/layer.yaml")
    figures = workdir / "results" / "figures"
    drawn = sorted(p.stem for p in figures.glob("*.pdf"))
    # the estimate-level plots of the zip plot's cell: Bland-Altman where there is a
    # reference and another series to set against it, as for the efficiency figure
    plots = ["estimates_n10_sigma1"]
    plots += ["bland_altman_n10_sigma1"] if "efficiency" in case["figures"] else []
    assert drawn == sorted([*case["figures"], "zip", *plots])
    assert (workdir / "results" / "provenance.json").is_file()
