"""End-to-end runs of the Snakemake workflow on a small study, in temporary folders.

Each run copies the workflow (Snakefile, rules, scripts, schemas, envs, profiles,
config.yaml and tests/smoke.yaml) into its own folder and runs Snakemake there as a
subprocess, so the checkout's results/ is never touched.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from regsim.metrics import MEASURES
from regsim.pipeline import GROUP_COLUMNS, METRICS_COLUMNS, cell_label
from regsim.stages import read_metrics

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = [
    "Snakefile",
    "config.yaml",
    "schemas",
    "scripts",
    "envs",
    "profiles",
    "rules",
    "report",
]
SMOKE = yaml.safe_load((ROOT / "tests" / "smoke.yaml").read_text())
PROFILE_NOTICE = "Using workflow specific profile"
TIMEOUT = 900
# Job logs and benchmark files record how a run went (times, memory): they differ between
# runs by nature and are left out where results are compared.
RUN_RECORDS = ("logs/", "benchmarks/")


def snakemake_command() -> list[str]:
    """The Snakemake of the running interpreter's environment."""
    beside = Path(sys.executable).with_name("snakemake")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "snakemake"]


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow files into ``dest`` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, dest / name)
    (dest / "tests").mkdir(exist_ok=True)
    shutil.copy2(ROOT / "tests" / "smoke.yaml", dest / "tests" / "smoke.yaml")
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir``; on unexpected failure show its output."""
    result = subprocess.run(
        [*snakemake_command(), *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def smoke_run(workdir: Path, cores: int, per_job: int, *extra: str) -> Path:
    copy_workflow(workdir)
    snakemake(
        workdir,
        f"--cores={cores}",
        "--configfile=tests/smoke.yaml",
        *extra,
        "--config",
        f"replications_per_job={per_job}",
    )
    return workdir


def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``folder``: size, mtime and content hash."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): (
            path.stat().st_size,
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def cell_labels(config: dict) -> list[str]:
    from regsim.design import Cell

    return [
        cell_label(Cell(n, sigma, tuple(config["beta"])))
        for n, sigma in itertools.product(config["grid"]["n"], config["grid"]["sigma"])
    ]


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from the first "Job stats" table Snakemake prints."""
    lines = output.splitlines()
    start = lines.index("Job stats:") + 3
    counts = {}
    for line in lines[start:]:
        fields = line.split()
        if len(fields) != 2 or fields[0] == "total":
            break
        counts[fields[0]] = int(fields[1])
    return counts


@pytest.fixture(scope="module")
def runs(smoke_runs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four complete smoke runs: 1 core / 2 cores with 25 replicates per job (two simulate
    jobs a cell, then a summarize job), 2 cores with 50 (the whole cell in one simulate
    job, no summarize job) and 2 cores with 100 (the two cells of a sample size in one
    job). "cores1" is a private copy that tests may rerun in; the others are shared with
    other modules (see conftest.py) and only read."""
    root = tmp_path_factory.mktemp("smoke")
    return {
        "cores1": smoke_run(root / "cores1", 1, 25),
        "cores2": smoke_runs(2, 25),
        "onechunk": smoke_runs(2, 50),
        "together": smoke_runs(2, 100),
    }


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


def test_metrics_table_has_every_row(runs: dict[str, Path]) -> None:
    path = runs["cores1"] / "results" / "tables" / "metrics.csv"
    assert path.read_text().splitlines()[0] == ",".join(METRICS_COLUMNS)
    metrics = read_metrics(path)
    parameters = [f"beta{j}" for j in range(len(SMOKE["beta"]))] + ["sigma"]
    methods = [("", m) for m in SMOKE["methods"] if m != "map"]
    methods += [(prior, "map") for prior in SMOKE["priors"]]
    expected = {
        (n, float(sigma), prior, method, parameter)
        for n, sigma in itertools.product(SMOKE["grid"]["n"], SMOKE["grid"]["sigma"])
        for prior, method in methods
        for parameter in parameters
    }
    groups = metrics.groupby(list(GROUP_COLUMNS), sort=False)["measure"].agg(list)
    assert set(groups.index) == expected
    base = [m for m in MEASURES if m not in ("relprec", "n_multimodal")]
    for (_, _, _, method, _), measures in groups.items():
        assert measures == (base + ["n_multimodal"] if method == "map" else base)
    reps = metrics[metrics["measure"] == "n_reps"]["estimate"].to_numpy()
    failed = metrics[metrics["measure"] == "n_failed"]["estimate"].to_numpy()
    assert ((reps + failed) == SMOKE["replications"]).all()


def names(folder: Path) -> list[str]:
    """The names of the entries of ``folder``, sorted."""
    return sorted(p.name for p in folder.iterdir())


def test_per_cell_tables_exist(runs: dict[str, Path]) -> None:
    """Chunked (25 of 50 replicates a job): per cell, two simulate jobs each write a dataset
    file and a fit chunk, and a summarize job combines the chunks."""
    results = runs["cores1"] / "results"
    chunks = ["reps000000-000025", "reps000025-000050"]
    for label in cell_labels(SMOKE):
        assert (results / "fits" / f"{label}.parquet").is_file()
        assert (results / "metrics" / f"{label}.parquet").is_file()
        assert names(results / "datasets" / label) == [f"{c}.npz" for c in chunks]
        assert names(results / "fits" / label) == [f"{c}.parquet" for c in chunks]
        assert names(results / "logs" / "simulate" / label) == [f"{c}.log" for c in chunks]
        assert names(results / "benchmarks" / "simulate" / label) == [f"{c}.tsv" for c in chunks]
        assert (results / "logs" / "summarize" / f"{label}.log").is_file()
        assert (results / "benchmarks" / "summarize" / f"{label}.tsv").is_file()
    fits = pd.read_parquet(results / "fits" / "n10_sigma1.parquet")
    assert sorted(fits["replicate"].unique()) == list(range(SMOKE["replications"]))


def test_whole_cell_is_one_simulate_job(runs: dict[str, Path]) -> None:
    """With all 50 replicates in one job, one simulate job per cell writes the cell's
    dataset file, fit table and metrics: no fit chunks, no summarize job."""
    results = runs["onechunk"] / "results"
    labels = cell_labels(SMOKE)
    for label in labels:
        assert (results / "fits" / f"{label}.parquet").is_file()
        assert (results / "metrics" / f"{label}.parquet").is_file()
        assert names(results / "datasets" / label) == ["reps000000-000050.npz"]
        assert not (results / "fits" / label).exists()
    assert names(results / "fits") == sorted(f"{label}.parquet" for label in labels)
    assert names(results / "logs" / "simulate") == sorted(f"{label}.log" for label in labels)
    assert names(results / "benchmarks" / "simulate") == sorted(f"{label}.tsv" for label in labels)
    assert not (results / "logs" / "summarize").exists()
    assert not (results / "benchmarks" / "summarize").exists()
    fits = pd.read_parquet(results / "fits" / "n10_sigma1.parquet")
    assert sorted(fits["replicate"].unique()) == list(range(SMOKE["replications"]))


def test_cells_of_a_sample_size_are_one_simulate_job(runs: dict[str, Path]) -> None:
    """With 100 replicates a job, the two cells of each n (50 replicates each) are one
    simulate job: the same per-cell files as a whole-cell run, one log and benchmark file
    per sample size, whose log names every cell."""
    results = runs["together"] / "results"
    labels = cell_labels(SMOKE)
    for label in labels:
        assert names(results / "datasets" / label) == ["reps000000-000050.npz"]
        assert (results / "metrics" / f"{label}.parquet").is_file()
    assert names(results / "fits") == sorted(f"{label}.parquet" for label in labels)
    sizes = [f"n{n}" for n in SMOKE["grid"]["n"]]
    assert names(results / "benchmarks" / "simulate") == sorted(f"{n}.tsv" for n in sizes)
    for n in sizes:
        log = (results / "logs" / "simulate" / f"{n}.log").read_text()
        assert all(f"cell {n}_sigma{s} " in log for s in SMOKE["grid"]["sigma"]), log
    assert not (results / "logs" / "summarize").exists()


# Jobs of a fresh run of tests/smoke.yaml (4 cells) besides the study's simulate and
# summarize jobs: the collection and what is drawn from the whole table.
AFTER_THE_STUDY = {
    "collect": 1,
    "zip_plot": 1,
    "paper": 1,
    "provenance": 1,
    "all": 1,
}


@pytest.mark.parametrize(
    ("per_job", "study"),
    [
        (None, {"simulate": 2}),  # the default, 10000: the two cells of an n a job
        (100, {"simulate": 2}),  # exactly those two cells' replicates: still one job
        (99, {"simulate": 4}),  # one too few: a whole cell a job
        (50, {"simulate": 4}),  # exactly the cell's replicates: still one job
        (49, {"simulate": 8, "summarize": 4}),  # one too few: two chunks a cell
        (25, {"simulate": 8, "summarize": 4}),
        (10, {"simulate": 20, "summarize": 4}),
    ],
)
def test_jobs_planned_per_cell(tmp_path: Path, per_job: int | None, study: dict) -> None:
    workdir = copy_workflow(tmp_path / "plan")
    extra = [] if per_job is None else ["--config", f"replications_per_job={per_job}"]
    plan = snakemake(workdir, "-n", "--configfile=tests/smoke.yaml", *extra)
    assert job_counts(plan.stdout + plan.stderr) == {**study, **AFTER_THE_STUDY}
    assert not (workdir / "results").exists()


def test_identical_across_core_counts(runs: dict[str, Path]) -> None:
    one, two = snapshot(runs["cores1"] / "results"), snapshot(runs["cores2"] / "results")
    data = [k for k in one if not k.startswith(RUN_RECORDS)]
    assert data == [k for k in two if not k.startswith(RUN_RECORDS)]
    for key in data:
        assert one[key][2] == two[key][2], f"{key} differs between --cores 1 and --cores 2"


def test_identical_across_replications_per_job(runs: dict[str, Path]) -> None:
    """A chunked run (simulate chunks, then summarize), a whole-cell run (one simulate job
    a cell) and a run with one job per sample size give the same tables, byte for byte,
    and the same datasets."""
    from regsim.simulate import load_datasets

    a, b = runs["cores2"] / "results", runs["onechunk"] / "results"
    c = runs["together"] / "results"
    # one run of each mode, so every way of making a cell's tables is compared
    assert (a / "logs" / "summarize").is_dir() and (a / "fits" / "n10_sigma1").is_dir()
    assert not (b / "logs" / "summarize").exists() and not (b / "fits" / "n10_sigma1").exists()
    assert (b / "logs" / "simulate" / "n10_sigma1.log").is_file()
    assert sorted(p.name for p in (c / "logs" / "simulate").iterdir()) == ["n10.log", "n40.log"]
    files = ["tables/metrics.csv"] + [
        f"{kind}/{label}.parquet" for label in cell_labels(SMOKE) for kind in ("fits", "metrics")
    ]
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
        assert (c / name).read_bytes() == (b / name).read_bytes(), name
    for label in cell_labels(SMOKE):
        chunks = [load_datasets(p) for p in sorted((a / "datasets" / label).glob("*.npz"))]
        (whole,) = [load_datasets(p) for p in sorted((b / "datasets" / label).glob("*.npz"))]
        assert len(chunks) == 2
        for field in ("replicates", "x", "y"):
            joined = np.concatenate([getattr(chunk, field) for chunk in chunks])
            np.testing.assert_array_equal(joined, getattr(whole, field), err_msg=label)
        (together,) = sorted((c / "datasets" / label).glob("*.npz"))
        whole_file = b / "datasets" / label / together.name
        assert together.read_bytes() == whole_file.read_bytes(), label


def test_rerun_with_nothing_changed_does_nothing(runs: dict[str, Path]) -> None:
    workdir = runs["cores1"]
    args = ["--configfile=tests/smoke.yaml", "--config", "replications_per_job=25"]
    before = snapshot(workdir / "results")
    dry = snakemake(workdir, "-n", *args)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    real = snakemake(workdir, "--cores=2", *args)
    assert "Nothing to be done" in real.stdout + real.stderr
    assert snapshot(workdir / "results") == before


def test_growing_the_grid_keeps_old_rows(runs: dict[str, Path], tmp_path: Path) -> None:
    workdir = tmp_path / "grown"
    shutil.copytree(runs["cores1"], workdir)  # copy2 keeps mtimes, so old outputs stay fresh
    grown = {"grid": {"n": [10, 25, 40], "sigma": SMOKE["grid"]["sigma"]}}
    (workdir / "tests" / "grow.yaml").write_text(yaml.safe_dump(grown))
    old = snapshot(workdir / "results")
    args = ["--configfile", "tests/smoke.yaml", "tests/grow.yaml"]
    plan = snakemake(workdir, "-n", *args, "--config", "replications_per_job=25")
    # only the new cells (n = 25, two sigmas, two simulate chunks and a summarize each), the
    # collection and what is drawn from the whole table; not the zip plot, whose cell
    # (n = 10) is unchanged
    expected = {
        "simulate": 4,
        "summarize": 2,
        "collect": 1,
        "paper": 1,
        "provenance": 1,
        "all": 1,
    }
    assert job_counts(plan.stdout + plan.stderr) == expected
    snakemake(workdir, "--cores=2", *args, "--config", "replications_per_job=25")
    new = snapshot(workdir / "results")
    changed = {k for k in old if not k.startswith(RUN_RECORDS) and old[k] != new[k]}
    # Old cells' datasets, fits and metrics are untouched; only whole-grid outputs change.
    assert all(k.startswith(("tables/", "figures/", "provenance.json")) for k in changed)
    assert "tables/metrics.csv" in changed and "figures/zip.png" not in changed
    assert any(k.startswith("fits/n25_sigma") for k in new)

    before = read_metrics(runs["cores1"] / "results" / "tables" / "metrics.csv")
    after = read_metrics(workdir / "results" / "tables" / "metrics.csv")
    kept = after[after["n"] != 25].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before)
    assert set(after["n"]) == {10, 25, 40}


def test_user_priors_replace_the_defaults(runs: dict[str, Path]) -> None:
    metrics = read_metrics(runs["cores1"] / "results" / "tables" / "metrics.csv")
    assert sorted(set(metrics["prior"])) == ["", *sorted(SMOKE["priors"])]
    assert sorted(set(metrics["n"])) == SMOKE["grid"]["n"]


# --------------------------------------------------------------------------------------
# Lint and bad configs
# --------------------------------------------------------------------------------------


def test_lint_is_clean(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "lint")
    result = snakemake(workdir, "--lint")
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + (
        result.stderr
    )
    assert not (workdir / "results").exists()


def test_snakefile_is_formatted() -> None:
    snakefmt = Path(sys.executable).with_name("snakefmt")
    if not snakefmt.exists():
        pytest.skip("snakefmt is not installed beside this interpreter")
    files = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]
    result = subprocess.run(
        [str(snakefmt), "--check", *map(str, files)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.strip() and not line.startswith(PROFILE_NOTICE)]


# The catalogue of bad configurations is run by test_reliability.py.


# --------------------------------------------------------------------------------------
# Statistical sanity
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ols_coverage_is_nominal(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "coverage")
    study = {
        "seed": 20230406,
        "replications": 400,
        "alpha": 0.05,
        "grid": {"n": [10, 100], "sigma": [1, 10]},
        "priors": {},
        "methods": ["ols"],
    }
    (workdir / "tests" / "coverage.yaml").write_text(yaml.safe_dump(study))
    snakemake(workdir, "--cores=2", "--configfile", "tests/coverage.yaml")
    metrics = read_metrics(workdir / "results" / "tables" / "metrics.csv")
    coverage = metrics[(metrics["measure"] == "coverage") & metrics["parameter"].str.match("beta")]
    assert len(coverage) == 4 * 3
    off = (coverage["estimate"] - (1 - study["alpha"])).abs() / coverage["mcse"]
    assert (off <= 3).all(), coverage.assign(off=off).to_string()


# --------------------------------------------------------------------------------------
# Error models
# --------------------------------------------------------------------------------------


def test_normal_error_factor_changes_nothing(smoke_runs, tmp_path: Path) -> None:
    """``grid.errors: [normal]`` gives the same bytes as a config without the factor."""
    workdir = copy_workflow(tmp_path / "normal")
    study = {**SMOKE, "grid": {**SMOKE["grid"], "errors": ["normal"]}}
    (workdir / "tests" / "normal.yaml").write_text(yaml.safe_dump(study))
    snakemake(
        workdir,
        "--cores=2",
        "--configfile=tests/normal.yaml",
        "--config",
        "replications_per_job=25",
    )
    before, after = smoke_runs(2, 25) / "results", workdir / "results"
    files = ["tables/metrics.csv", "tables/failures.md"] + [
        f"{kind}/{label}.parquet" for label in cell_labels(SMOKE) for kind in ("fits", "metrics")
    ]
    files += [str(p.relative_to(before)) for p in sorted((before / "tables").glob("*_*.*"))]
    for name in files:
        assert (after / name).read_bytes() == (before / name).read_bytes(), name
    assert "errors" not in (after / "tables" / "metrics.csv").read_text().splitlines()[0]
    assert sorted(p.name for p in (after / "figures").iterdir()) == sorted(
        p.name for p in (before / "figures").iterdir()
    )
