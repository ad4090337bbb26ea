"""End-to-end runs of the Snakemake workflow on a small study, in temporary folders.

Each run copies the workflow (Snakefile, rules, scripts, schemas, envs, profiles,
config.yaml and tests/smoke.yaml) into its own folder and runs Snakemake there as a
subprocess, so the checkout's results/ is never touched.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from commits import commit_files, cpu_paths, pinned_environment

from regsim.design import Cell, plan_jobs
from regsim.schema import GROUP_FIELDS, MEASURES, metrics_columns
from regsim.tableio import read_metrics

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
    "examples",
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


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir``; on unexpected failure show its output."""
    result = subprocess.run(
        [*snakemake_command(), *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def smoke_run(workdir: Path, cores: int, budget: int, *extra: str) -> Path:
    copy_workflow(workdir)
    snakemake(
        workdir,
        f"--cores={cores}",
        "--configfile=tests/smoke.yaml",
        *extra,
        "--config",
        f"observations_per_job={budget}",
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


def smoke_cells(config: dict = SMOKE) -> list[Cell]:
    return [
        Cell(n, sigma, tuple(config["beta"]))
        for n, sigma in itertools.product(config["grid"]["n"], config["grid"]["sigma"])
    ]


def cell_labels(config: dict = SMOKE) -> list[str]:
    return [cell.label for cell in smoke_cells(config)]


def planned_jobs(budget: int) -> list[str]:
    """The simulate jobs of the smoke study at a budget (regsim.design.plan_jobs)."""
    return [job.name for job in plan_jobs(smoke_cells(), SMOKE["replications"], budget)]


#: Budgets (observations_per_job) of the shared smoke runs. The smoke study has two cells
#: of n = 10 (500 observations each) and two of n = 40 (2000 each).
#: CUT: n = 10 in one job, each n = 40 cell cut into two ranges of 25 (5 jobs);
#: PER_CELL: n = 10 in one job, a job per n = 40 cell (3); TOGETHER: a job per n (2).
CUT, PER_CELL, TOGETHER = 1000, 2000, 10_000_000


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
    """Four complete smoke runs: 1 core / 2 cores with cells cut into ranges (CUT), 2 cores
    with a job per n = 40 cell (PER_CELL) and with a job per sample size (TOGETHER).
    "cores1" is a private copy that tests may rerun in; the others are shared with other
    modules (see conftest.py) and only read."""
    root = tmp_path_factory.mktemp("smoke")
    return {
        "cores1": smoke_run(root / "cores1", 1, CUT),
        "cores2": smoke_runs(2, CUT),
        "percell": smoke_runs(2, PER_CELL),
        "together": smoke_runs(2, TOGETHER),
    }


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


def test_metrics_table_has_every_row(runs: dict[str, Path]) -> None:
    path = runs["cores1"] / "results" / "tables" / "metrics.csv"
    assert path.read_text().splitlines()[0] == ",".join(metrics_columns())
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
    groups = metrics.groupby(["n", "sigma", *GROUP_FIELDS], sort=False)["measure"].agg(list)
    assert set(groups.index) == expected
    base = [m for m in MEASURES if m != "n_multimodal"]  # with the paired ones: OLS is there
    for (_, _, _, method, _), measures in groups.items():
        assert measures == (base + ["n_multimodal"] if method == "map" else base)
    reps = metrics[metrics["measure"] == "n_reps"]["estimate"].to_numpy()
    failed = metrics[metrics["measure"] == "n_failed"]["estimate"].to_numpy()
    assert ((reps + failed) == SMOKE["replications"]).all()


def names(folder: Path) -> list[str]:
    """The names of the entries of ``folder``, sorted."""
    return sorted(p.name for p in folder.iterdir())


def test_per_cell_tables_and_per_job_files_exist(runs: dict[str, Path]) -> None:
    """Cells cut into ranges (CUT): per job, a chunk of fits, a dataset file, a log and a
    benchmark file; per cell, its table of fits and its metrics, written by collect."""
    results = runs["cores1"] / "results"
    jobs = planned_jobs(CUT)
    assert jobs == ["n10-1", "n40-1", "n40-2", "n40-3", "n40-4"]
    assert names(results / "chunks") == sorted(f"{job}.parquet" for job in jobs)
    assert names(results / "datasets") == sorted(f"{job}.npz" for job in jobs)
    assert names(results / "logs" / "simulate") == sorted(f"{job}.log" for job in jobs)
    assert names(results / "benchmarks" / "simulate") == sorted(f"{job}.tsv" for job in jobs)
    labels = cell_labels()
    assert names(results / "fits") == sorted(f"{label}.parquet" for label in labels)
    assert names(results / "metrics") == sorted(f"{label}.parquet" for label in labels)
    assert (results / "logs" / "collect.log").is_file()
    fits = pd.read_parquet(results / "fits" / "n40_sigma1.parquet")
    assert sorted(fits["replicate"].unique()) == list(range(SMOKE["replications"]))
    # the log of a job names each cell it drew
    log = (results / "logs" / "simulate" / "n10-1.log").read_text()
    assert "n10_sigma1 (key " in log and "n10_sigma5 (key " in log


@pytest.mark.parametrize("run", ["percell", "together"])
def test_every_run_follows_its_plan(runs: dict[str, Path], run: str) -> None:
    budget = {"percell": PER_CELL, "together": TOGETHER}[run]
    results = runs[run] / "results"
    jobs = planned_jobs(budget)
    assert names(results / "chunks") == sorted(f"{job}.parquet" for job in jobs)
    assert names(results / "logs" / "simulate") == sorted(f"{job}.log" for job in jobs)


# Jobs of a fresh run of tests/smoke.yaml besides the simulate jobs: the collection, every
# figure and table (the zip plot and the estimate-level plots too), and the views of the
# results (the report's pages and the explorer).
AFTER_THE_STUDY = {
    "protocol": 1,
    "collect": 1,
    "paper": 1,
    "provenance": 1,
    "views": 1,
    "all": 1,
}


@pytest.mark.parametrize(
    ("budget", "simulate"),
    [
        (None, 2),  # the default, 10 million: a job per sample size
        (2000, 3),  # exactly one n = 40 cell: a job each, n = 10's two cells together
        (1999, 5),  # one too few: each n = 40 cell in two ranges
        (CUT, 5),
        (500, 12),  # a job per n = 10 cell; n = 40 cells in four ranges
        (100, 60),  # ranges of 10 (n = 10) and of 2 replicates (n = 40)
    ],
)
def test_jobs_follow_the_plan(tmp_path: Path, budget: int | None, simulate: int) -> None:
    workdir = copy_workflow(tmp_path / "plan")
    extra = [] if budget is None else ["--config", f"observations_per_job={budget}"]
    plan = snakemake(workdir, "-n", "--configfile=tests/smoke.yaml", *extra)
    assert job_counts(plan.stdout + plan.stderr) == {"simulate": simulate, **AFTER_THE_STUDY}
    assert len(planned_jobs(budget or TOGETHER)) == simulate
    assert not (workdir / "results").exists()


def test_identical_across_core_counts(runs: dict[str, Path]) -> None:
    one, two = snapshot(runs["cores1"] / "results"), snapshot(runs["cores2"] / "results")
    data = [k for k in one if not k.startswith(RUN_RECORDS)]
    assert data == [k for k in two if not k.startswith(RUN_RECORDS)]
    for key in data:
        assert one[key][2] == two[key][2], f"{key} differs between --cores 1 and --cores 2"


def test_identical_across_plans(runs: dict[str, Path]) -> None:
    """Cells cut into ranges, a job per cell and a job per sample size give the same
    tables, byte for byte, and the same datasets."""
    from regsim.simulate import draw, load_datasets

    runs_ = [runs["cores2"] / "results", runs["percell"] / "results", runs["together"] / "results"]
    files = ["tables/metrics.csv", "tables/failures.md", "tables/theory.csv"] + [
        f"{kind}/{label}.parquet" for label in cell_labels() for kind in ("fits", "metrics")
    ]
    for name in files:
        for other in runs_[1:]:
            assert (other / name).read_bytes() == (runs_[0] / name).read_bytes(), name
    for results in runs_:
        units = [d for path in (results / "datasets").glob("*.npz") for d in load_datasets(path)]
        for cell in smoke_cells():
            mine = sorted((d for d in units if d.cell == cell), key=lambda d: d.replicates[0])
            drawn = draw(cell, SMOKE["seed"], 0, SMOKE["replications"])
            for field in ("replicates", "x", "y"):
                joined = np.concatenate([getattr(d, field) for d in mine])
                np.testing.assert_array_equal(joined, getattr(drawn, field), err_msg=cell.label)


def test_a_study_in_another_folder_is_the_same_study(smoke_runs, tmp_path: Path) -> None:
    """``--directory`` puts a second study's results/ in a folder of its own, the workflow
    where it is (docs/configuration.md): with config.yaml given as its first layer, the
    same tables, byte for byte, and nothing written beside the workflow."""
    workflow = copy_workflow(tmp_path / "workflow")
    elsewhere = tmp_path / "studies" / "smoke"
    before = snapshot(workflow)
    layers = ["--configfile", "config.yaml", "tests/smoke.yaml"]
    budget = ["--config", f"observations_per_job={CUT}"]
    snakemake(workflow, "--cores=2", "--directory", str(elsewhere), *layers, *budget)
    assert snapshot(workflow) == before
    same = smoke_runs(2, CUT) / "results"
    files = ["tables/metrics.csv", "tables/theory.csv"] + [
        f"{kind}/{label}.parquet" for label in cell_labels() for kind in ("fits", "metrics")
    ]
    for name in files:
        assert (elsewhere / "results" / name).read_bytes() == (same / name).read_bytes(), name
    # The defaults are read from the working folder: there, without config.yaml as a
    # layer, a partial config file (the Bayes example names no seed) is refused before
    # any job, in one line.
    partial = snakemake(
        workflow,
        "-n",
        "--directory",
        str(tmp_path / "other"),
        "--configfile",
        "examples/bayes.yaml",
        check=False,
    )
    assert partial.returncode == 1
    lines = [line for line in partial.stderr.splitlines() if line.startswith("config error")]
    assert lines == [
        "config error: seed: required key is missing (there is no config.yaml in "
        f"{tmp_path / 'other'}, so the config files given are the whole config: give the "
        "workflow's config.yaml as the first --configfile)"
    ]
    assert not (tmp_path / "other" / "results").exists()


def test_rerun_with_nothing_changed_does_nothing(runs: dict[str, Path]) -> None:
    workdir = runs["cores1"]
    args = ["--configfile=tests/smoke.yaml", "--config", f"observations_per_job={CUT}"]
    before = snapshot(workdir / "results")
    dry = snakemake(workdir, "-n", *args)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    real = snakemake(workdir, "--cores=2", *args)
    assert "Nothing to be done" in real.stdout + real.stderr
    assert snapshot(workdir / "results") == before


def test_the_jobs_records_do_not_list_the_cells(runs: dict[str, Path]) -> None:
    # Snakemake keeps a job's params in its record of each of the job's outputs (two per
    # cell for the collect job): a spec listing every cell there grows as their square.
    # It prints them, before and after, for each job a change of them reruns: a simulate
    # job's spec lists its units.
    folder = runs["cores2"] / ".snakemake" / "metadata"
    records = [json.loads(path.read_text()) for path in folder.iterdir()]
    collect = [record for record in records if record.get("rule") == "collect"]
    simulate = [record for record in records if record.get("rule") == "simulate"]
    assert len(collect) >= 2 * len(cell_labels()) and simulate
    for record in collect + simulate:
        text = json.dumps(record["params"])
        assert len(text) < 100, text
        assert not any(label in text for label in cell_labels())
        assert "units" not in text and "beta" not in text


def test_growing_the_grid_keeps_old_rows(runs: dict[str, Path], tmp_path: Path) -> None:
    workdir = tmp_path / "grown"
    shutil.copytree(runs["cores1"], workdir)  # copy2 keeps mtimes, so old outputs stay fresh
    grown = {"grid": {"n": [10, 25, 40], "sigma": SMOKE["grid"]["sigma"]}}
    (workdir / "tests" / "grow.yaml").write_text(yaml.safe_dump(grown))
    old = snapshot(workdir / "results")
    args = ["--configfile", "tests/smoke.yaml", "tests/grow.yaml"]
    config = ["--config", f"observations_per_job={CUT}"]
    plan = snakemake(workdir, "-n", *args, *config)
    # only the new cells' jobs (n = 25: 1250 observations a cell, two ranges each), the
    # collection, the figures and tables and the views of them; the protocol, which states
    # the grid, is written again
    expected = {
        "protocol": 1,
        "simulate": 4,
        "collect": 1,
        "paper": 1,
        "provenance": 1,
        "views": 1,
        "all": 1,
    }
    assert job_counts(plan.stdout + plan.stderr) == expected
    snakemake(workdir, "--cores=2", *args, *config)
    new = snapshot(workdir / "results")
    changed = {k for k in old if not k.startswith(RUN_RECORDS) and old[k] != new[k]}
    # Old jobs' chunks and datasets are untouched; the old cells' tables are written again
    # by the collection, with the same bytes; only whole-grid outputs change.
    assert not {k for k in changed if k.startswith(("chunks/", "datasets/"))}
    rewritten = {k for k in changed if k.startswith(("fits/", "metrics/"))}
    assert all(old[k][2] == new[k][2] for k in rewritten)
    assert "tables/metrics.csv" in changed
    # the zip plot's cell (n = 10) is unchanged, and so is its picture, drawn again
    assert all(old[k][2] == new[k][2] for k in ("figures/zip.png", "figures/zip.pdf"))
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


def test_default_levels_given_explicitly_change_nothing(smoke_runs, tmp_path: Path) -> None:
    """Normal errors, one truth named ``beta`` and the uniform design, given as factors of
    the grid, give the same bytes as a config that names none of them."""
    workdir = copy_workflow(tmp_path / "normal")
    study = {key: value for key, value in SMOKE.items() if key != "beta"}
    study["truths"] = {"beta": SMOKE["beta"]}
    study["designs"] = {"uniform": {"covariates": "uniform"}}
    study["grid"] = {**SMOKE["grid"], "errors": ["normal"], "truth": ["beta"]}
    (workdir / "tests" / "normal.yaml").write_text(yaml.safe_dump(study))
    snakemake(
        workdir,
        "--cores=2",
        "--configfile=tests/normal.yaml",
        "--config",
        f"observations_per_job={CUT}",
    )
    before, after = smoke_runs(2, CUT) / "results", workdir / "results"
    files = ["tables/metrics.csv", "tables/failures.md", "tables/theory.csv"] + [
        f"{kind}/{label}.parquet" for label in cell_labels() for kind in ("fits", "metrics")
    ]
    files += [str(p.relative_to(before)) for p in sorted((before / "tables").glob("*_*.*"))]
    for name in files:
        assert (after / name).read_bytes() == (before / name).read_bytes(), name
    header = (after / "tables" / "metrics.csv").read_text().splitlines()[0]
    assert header == ",".join(metrics_columns())
    assert sorted(p.name for p in (after / "figures").iterdir()) == sorted(
        p.name for p in (before / "figures").iterdir()
    )


def test_the_factor_example_runs_and_agrees_with_exact_theory(tmp_path: Path) -> None:
    """examples/factors.yaml (truths with a null slope, collinear and fixed designs) runs
    end to end; its theory table holds the tests' size, coverage and the OLS variance of
    the normal and fixed designs within 4 MCSE; verify finds every file as recorded."""
    workdir = copy_workflow(tmp_path / "factors")
    snakemake(
        workdir,
        "--cores=2",
        "--configfile=examples/factors.yaml",
        "--config",
        "replications=400",
    )
    results = workdir / "results"
    metrics = read_metrics(results / "tables" / "metrics.csv")
    assert list(metrics.columns[:5]) == ["n", "sigma", "errors", "truth", "design"]
    assert len(metrics[["n", "sigma", "truth", "design"]].drop_duplicates()) == 24
    nulls = metrics.loc[metrics["true"] == 0.0, ["truth", "parameter"]].drop_duplicates()
    assert nulls.values.tolist() == [["null_slope", "beta1"]]
    figures = {p.stem for p in (results / "figures").glob("*.png")}
    for truth in ("seed", "null_slope"):
        for suffix in ("", "_collinear", "_fixed"):
            assert f"rejection_{truth}{suffix}" in figures
    assert "nested_loop" in figures and "nested_loop_seed" not in figures
    assert (results / "tables" / "coverage_beta1_null_slope_collinear.md").is_file()
    theory = pd.read_csv(results / "tables" / "theory.csv")
    quantities = theory.groupby(["design", "quantity"]).size()
    assert quantities[("collinear", "variance")] == 2 * 2 * 2 * 3  # truths, n, σ, β_j
    assert quantities[("fixed", "variance")] == 24
    assert ("uniform", "variance") not in quantities
    assert set(theory.loc[theory["quantity"] == "size", "truth"]) == {"null_slope"}
    off = theory.loc[theory["z"].abs() > 4]
    assert off.empty, off.to_string()
    verify = subprocess.run(
        [sys.executable, "-m", "regsim", "verify", "results"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


# --------------------------------------------------------------------------------------
# The same bytes as recorded
# --------------------------------------------------------------------------------------

#: SHA-256 of the tables of the smoke and default studies at the reference commit, a set
#: per kind of machine they were recorded on (tests/data/reference_hashes.json; its
#: "commit" and "why" say where they come from, "cpu" which paths numpy takes there). A
#: change of layout updates them in one commit that says why.
REFERENCE = json.loads((ROOT / "tests" / "data" / "reference_hashes.json").read_text())


def _differ(results: Path, expected: dict[str, str]) -> list[str]:
    return [
        name
        for name, digest in expected.items()
        if not (results / name).is_file()
        or hashlib.sha256((results / name).read_bytes()).hexdigest() != digest
    ]


def recorded_bytes_differ(results: Path, study: str) -> list[str]:
    """The tables under ``results`` whose bytes differ from the reference commit's (or that
    are missing): ``study`` is ``"default"`` or ``"smoke"``. Empty where they are the
    bytes recorded on some machine; else, on a kind of machine none was recorded on and in
    the pinned environment, where they are those of the reference commit's study run here
    (tests/commits.py)."""
    machines = REFERENCE["machines"]
    for machine in machines:
        if not _differ(results, machine[study]):
            return []
    here = cpu_paths()
    recorded = next((m for m in machines if m["cpu"] == here), None)
    if recorded is not None:
        return _differ(results, recorded[study])
    if not pinned_environment():
        pytest.fail(
            f"the {study} study's tables are none of the recorded bytes, and numpy, scipy, "
            "pandas or pyarrow is not the version requirements.txt pins"
        )
    return _differ(results, reference_commit_hashes(study))


@functools.cache
def reference_commit_hashes(study: str) -> dict[str, str]:
    """The hashes of the recorded tables as the reference commit's own workflow and
    package write them on this machine (run once per test session and study)."""
    commit = REFERENCE["commit"]
    names = REFERENCE["machines"][0][study]
    with tempfile.TemporaryDirectory(prefix="regsim-reference-") as scratch:
        checkout = Path(scratch)
        if not commit_files(commit, checkout):
            pytest.fail(
                f"the {study} study's tables are none of the recorded bytes, and the "
                f"reference commit {commit} is not in this clone to run here"
            )
        configs = ["config.yaml", *(["tests/smoke.yaml"] if study == "smoke" else [])]
        env = {**os.environ, "PYTHONPATH": str(checkout)}  # its own package, not this one
        snakemake(checkout, "--cores=2", "--configfile", *configs, env=env)
        results = checkout / "results"
        return {name: hashlib.sha256((results / name).read_bytes()).hexdigest() for name in names}


def test_smoke_study_tables_are_the_recorded_bytes(runs: dict[str, Path]) -> None:
    for run in ("cores2", "percell", "together"):
        assert recorded_bytes_differ(runs[run] / "results", "smoke") == [], run


def test_a_study_without_its_dataset_files_writes_the_same_tables(tmp_path: Path) -> None:
    """keep_datasets false (the default): no dataset file, every table the recorded bytes,
    and any replicate drawn again from the seed alone (python -m regsim dataset)."""
    workdir = copy_workflow(tmp_path / "lean")
    snakemake(
        workdir, "--cores=2", "--configfile=tests/smoke.yaml", "--config", "keep_datasets=false"
    )
    results = workdir / "results"
    assert not (results / "datasets").exists()
    assert recorded_bytes_differ(results, "smoke") == []
    drawn = subprocess.run(
        [sys.executable, "-m", "regsim", "dataset", "--cell", "n40_sigma5", "--replicate", "17"]
        + ["--configfile", "tests/smoke.yaml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    from regsim.design import Cell
    from regsim.simulate import draw

    data = draw(Cell(40, 5.0, tuple(SMOKE["beta"])), SMOKE["seed"], 17, 18)
    table = pd.read_csv(io.StringIO(drawn.stdout))
    assert list(table.columns) == ["x1", "x2", "y"]
    np.testing.assert_array_equal(table[["x1", "x2"]].to_numpy(), data.x[0])
    np.testing.assert_array_equal(table["y"].to_numpy(), data.y[0])


@pytest.mark.slow
def test_default_study_tables_are_the_recorded_bytes(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path / "default")
    snakemake(workdir, "--cores=2")
    assert recorded_bytes_differ(workdir / "results", "default") == []
    # The README's reviewer command, as it stands, on the study it was written for: the
    # fits of that replicate, to the bit (config.yaml lists the priors otherwise than the
    # run record does).
    shown = subprocess.run(
        [sys.executable, "-m", "regsim", "refit", "--cell", "n20_sigma1", "--replicate", "417"]
        + ["--json"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert shown.returncode == 0, shown.stderr
    printed = json.loads(shown.stdout)
    fits = pd.read_parquet(workdir / "results" / "fits" / "n20_sigma1.parquet")
    rows = fits.loc[fits["replicate"] == 417].to_dict("records")
    assert len(rows) == 4 * 6 and sum(len(fit) for fit in printed.values()) == len(rows)
    for r in rows:
        series = r["method"] if not r["prior"] else f"{r['method']}:{r['prior']}"
        assert printed[series][r["parameter"]]["estimate"] == r["estimate"], series
