"""End-to-end runs of the workflow on a real Slurm cluster through profiles/slurm.

A session fixture starts a single-node cluster on this machine with tools/local_slurm.sh
(which installs slurm-wlm and munge with apt when they are missing) and stops it at the
end, unless it was running already. Without root, or without Slurm and apt-get, the
cluster tests are skipped with the reason.

Each run copies the workflow into a temporary folder (as tests/e2e/test_workflow.py does)
and runs `snakemake --profile profiles/slurm` there, the partition overridden to the local
cluster's `debug`. The checks: every simulate and collect job went through sbatch and
completed in Slurm, under three plans of jobs; the tables are byte-identical to a local
run; a job that fails on the cluster stops the run naming the rule and its logs, and the
rerun resumes without redoing finished jobs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from test_workflow import (
    CUT,
    PER_CELL,
    ROOT,
    TOGETHER,
    copy_workflow,
    job_counts,
    snakemake,
    snapshot,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

SCRIPT = ROOT / "tools" / "local_slurm.sh"
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
NO_PLUGIN = "snakemake-executor-plugin-slurm is not installed (see requirements.txt)"
STUDY = ("simulate", "collect")  # the rules that do the computing
CLUSTER = [
    "--profile",
    "profiles/slurm",
    "--default-resources",  # replaces the profile's placeholders
    "slurm_partition=debug",
    # a test cluster answers at once: poll every 2 s rather than after 40 s
    "--slurm-init-seconds-before-status-checks=2",
    "--seconds-between-status-checks=2",
    "--slurm-keep-successful-logs",
    # The figures job asks for a CPU per figure (up to 8); this cluster's one node has
    # only the machine's CPUs, and Slurm refuses a job larger than any node.
    f"--max-threads={len(os.sched_getaffinity(0))}",
]
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.")
RUN_ID = re.compile(r"^SLURM run ID: (\S+)$", re.MULTILINE)
FAILING_COLLECT = '''"""Rule collect, made to fail on purpose by tests/e2e/test_slurm.py."""

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with open(sm.log[0], "w") as log:
    print("collect failed on purpose", file=log)
raise RuntimeError("collect failed on purpose")
'''


def local_slurm(command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), command],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def slurm_conf_from(output: str) -> str:
    match = re.search(r"^export SLURM_CONF=(\S+)$", output, re.MULTILINE)
    assert match, f"no SLURM_CONF in the output of {SCRIPT.name}:\n{output}"
    return match.group(1)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Path]:
    """A running single-node Slurm cluster; SLURM_CONF is set for the session.

    Returns the path of Slurm's job completion file (one line per finished job).
    """
    pytest.importorskip("snakemake_executor_plugin_slurm", reason=NO_PLUGIN)
    status = local_slurm("status")
    started = False
    if status.returncode != 0:
        if os.geteuid() != 0:
            pytest.skip("the local Slurm cluster needs root (slurmd runs as root)")
        if SYSTEM_CONF.exists() and not SYSTEM_CONF.is_symlink():
            pytest.skip(f"{SYSTEM_CONF} exists: this machine has its own Slurm setup")
        installed = all(shutil.which(c) for c in ("slurmctld", "slurmd", "sbatch", "munged"))
        if not installed and not shutil.which("apt-get"):
            pytest.skip("Slurm is not installed and there is no apt-get to install it")
        start = local_slurm("start", timeout=900)
        if start.returncode != 0:
            pytest.fail(f"{SCRIPT.name} start failed:\n{start.stdout}\n{start.stderr}")
        started = True
        status = start
    conf = slurm_conf_from(status.stdout)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        text = Path(conf).read_text()
        jobcomp = re.search(r"^JobCompLoc=(\S+)$", text, re.MULTILINE)
        assert jobcomp, f"no JobCompLoc in {conf}"
        yield Path(jobcomp.group(1))
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        if started:
            stop = local_slurm("stop")
            assert stop.returncode == 0, stop.stdout + stop.stderr


@pytest.fixture(scope="module")
def local_run(smoke_runs: Callable[[int, int], Path]) -> Path:
    """The smoke study run locally with 2 cores and a job per n = 40 cell, the reference
    for the cluster runs (shared with the other end-to-end tests; only read here)."""
    return smoke_runs(2, PER_CELL)


def completed_jobs(jobcomp: Path, workdir: Path) -> dict[str, dict[str, str]]:
    """Slurm's records of the jobs that ran in ``workdir``, by job id."""
    records = {}
    if jobcomp.exists():
        for line in jobcomp.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if fields.get("WorkDir") == str(workdir):
                records[fields["JobId"]] = fields
    return records


def submissions(output: str) -> dict[str, Path]:
    """Slurm job id -> Slurm log file, from Snakemake's "has been submitted" lines."""
    return {jobid: Path(log) for jobid, log in SUBMITTED.findall(output)}


def rule_of(slurm_log: Path) -> str:
    """The rule of a job from its Slurm log's path: .../slurm_logs/rule_<name>/<id>.log, or
    .../slurm_logs/rule_<name>/<wildcards>/<id>.log for a rule with wildcards."""
    parts = slurm_log.parts
    return parts[parts.index("slurm_logs") + 1].removeprefix("rule_")


def data_files(results: Path) -> dict[str, tuple[int, int, str]]:
    """:func:`snapshot` of ``results`` without logs and timings, which differ between runs."""
    return {
        k: v for k, v in snapshot(results).items() if not k.startswith(("logs/", "benchmarks/"))
    }


@pytest.mark.parametrize(
    ("budget", "study"),
    [
        (TOGETHER, {"simulate": 2, "collect": 1}),
        (PER_CELL, {"simulate": 3, "collect": 1}),
        (CUT, {"simulate": 5, "collect": 1}),
    ],
    ids=["sample-size", "per-cell", "cut"],
)
def test_cluster_run_matches_local_run(
    slurm_cluster: Path,
    smoke_runs: Callable[[int, int], Path],
    tmp_path: Path,
    budget: int,
    study: dict[str, int],
):
    local_run = smoke_runs(2, budget)  # the same files: chunks and datasets named by job
    workdir = copy_workflow(tmp_path / "cluster")
    config = f"observations_per_job={budget}"
    result = snakemake(workdir, *CLUSTER, "--configfile=tests/smoke.yaml", "--config", config)
    output = result.stdout + result.stderr

    # every job but those of local rules was submitted with sbatch, once; the study's
    # computing among them
    jobs = submissions(output)
    submitted = Counter(rule_of(log) for log in jobs.values())
    remote = Counter(re.findall(r"^rule (\w+):$", output, re.MULTILINE))
    local = Counter(re.findall(r"^localrule (\w+):$", output, re.MULTILINE))
    assert submitted == remote, output
    assert remote + local == Counter(job_counts(output))
    assert {rule: submitted[rule] for rule in STUDY} == study
    # ... ran under Slurm, which logged it, in this folder's Slurm log directory
    for jobid, log in jobs.items():
        assert log.is_relative_to(workdir / ".snakemake" / "slurm_logs")
        assert log.name == f"{jobid}.log"
        assert f"rule {rule_of(log)}:" in log.read_text()
    # ... and completed, as recorded by Slurm itself under this run's job name
    run_id = RUN_ID.search(output)
    assert run_id, output
    records = completed_jobs(slurm_cluster, workdir)
    assert sorted(records) == sorted(jobs)
    for record in records.values():
        assert record["JobState"] == "COMPLETED"
        assert record["Name"] == run_id.group(1)
        assert record["Partition"] == "debug"

    cluster, local_results = workdir / "results", local_run / "results"
    assert (cluster / "tables" / "metrics.csv").read_bytes() == (
        local_results / "tables" / "metrics.csv"
    ).read_bytes()
    ours, theirs = data_files(cluster), data_files(local_results)
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        assert ours[name][2] == theirs[name][2], f"{name} differs from the local run"


def test_failed_cluster_job_stops_the_run_and_the_rerun_resumes(
    slurm_cluster: Path, local_run: Path, tmp_path: Path
):
    workdir = copy_workflow(tmp_path / "failing")
    cells = ["n10_sigma1", "n10_sigma5"]
    (workdir / "tests" / "two_cells.yaml").write_text(
        yaml.safe_dump({"grid": {"n": [10], "sigma": [1, 5]}})
    )
    args = [*CLUSTER, "--configfile", "tests/smoke.yaml", "tests/two_cells.yaml"]
    # each cell in two ranges (500 observations a cell): four simulate jobs, then collect
    args += ["--config", "observations_per_job=250", "--", "results/tables/metrics.csv"]
    dry = snakemake(workdir, "-n", *args)
    plan = job_counts(dry.stdout + dry.stderr)
    assert {rule: plan[rule] for rule in STUDY} == {"simulate": 4, "collect": 1}
    script = workdir / "scripts" / "collect.py"
    original = script.read_text()
    script.write_text(FAILING_COLLECT)

    failed = snakemake(workdir, *args, check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output
    assert "Error in rule collect:" in output
    failures = re.findall(r"SLURM-job '(\d+)' failed, SLURM status is: 'FAILED'", output)
    assert failures, output
    jobs = submissions(output)
    for jobid in failures:
        # the rule's own log (printed too, with the exception) and the job's Slurm log
        log = jobs[jobid]
        assert rule_of(log) == "collect"
        assert f"log: results/logs/collect.log, {log} " in output
        assert log.is_file()
    assert "RuntimeError: collect failed on purpose" in output
    records = completed_jobs(slurm_cluster, workdir)
    assert {jobid: records[jobid]["JobState"] for jobid in failures} == dict.fromkeys(
        failures, "FAILED"
    )

    # a job only fails after its inputs were made: every simulate job finished, each with
    # its dataset file and chunk of fits, and nothing after the failed collect job
    results = workdir / "results"
    finished = data_files(results)
    generated = [k for k in finished if k.startswith("datasets/")]
    fitted = [k for k in finished if k.startswith("chunks/")]
    assert len(generated) == len(fitted) == 4, sorted(finished)
    assert sorted(finished) == sorted(generated + fitted)
    assert sorted(k.removeprefix("datasets/").removesuffix(".npz") for k in generated) == sorted(
        k.removeprefix("chunks/").removesuffix(".parquet") for k in fitted
    )

    script.write_text(original)
    expected = Counter(plan) - Counter(simulate=len(fitted))
    replan = snakemake(workdir, "-n", *args)
    assert job_counts(replan.stdout + replan.stderr) == expected
    rerun = snakemake(workdir, *args)
    rerun_output = rerun.stdout + rerun.stderr
    assert job_counts(rerun_output) == expected
    assert {rule: count for rule, count in expected.items() if rule in STUDY} == Counter(
        rule_of(log) for log in submissions(rerun_output).values() if rule_of(log) in STUDY
    )
    after = data_files(results)
    assert {k: after[k] for k in finished} == finished, "finished jobs were redone"
    for cell in cells:
        for kind in ("fits", "metrics"):
            name = f"{kind}/{cell}.parquet"
            assert (results / name).read_bytes() == (local_run / "results" / name).read_bytes()


def test_slurm_profile_repeats_the_workflow_settings() -> None:
    slurm = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    default = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    workflow_keys = set(default) - {"cores"}
    assert {k: slurm.get(k) for k in workflow_keys} == {k: default[k] for k in workflow_keys}
    assert slurm["executor"] == "slurm"
    assert slurm["slurm-status-command"] == "squeue"


def test_lint_is_clean_with_the_slurm_profile(tmp_path: Path) -> None:
    pytest.importorskip("snakemake_executor_plugin_slurm", reason=NO_PLUGIN)
    workdir = copy_workflow(tmp_path / "lint")
    result = snakemake(workdir, "--lint", "--profile", "profiles/slurm")
    assert "Congratulations, your workflow is in a good condition!" in (
        result.stdout + result.stderr
    )
