"""Sections 7-8: the workflow run by Snakemake, on copies of it in temporary folders.

7. End to end, ``snakemake --cores 2``, each run once: the default study from clean and
   its no-op rerun; a large grid (the default n × 18 σ × 3 error models, 500 replicates)
   from clean and its no-op rerun; optionally the default study with 10 000 replicates
   and the default study of an older commit. Per rule, from the rules' ``benchmark:``
   files: jobs, their total and longest wall time, and the largest max_uss, max_pss and
   max_rss of a job (each summed over the job's processes). Then one job of each rule of
   the default study rerun in a subprocess for the peak resident set of its largest
   process, and the fixed start-up cost of a job.
8. Dry runs (``snakemake -n``) of 10-, 100- and 1000-cell grids.

Subprocesses import ``regsim`` from this checkout (``PYTHONPATH``), the baseline from its
own checkout.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    ROOT,
    TARGETS,
    Setup,
    at_most,
    fmt_mb,
    fmt_seconds,
    heading,
    load_study,
    print_table,
)

#: The files that make up the workflow, copied for the end-to-end runs.
WORKFLOW = ("Snakefile", "config.yaml", "schemas", "scripts", "envs", "profiles", "rules", "report")
#: Where the rules' ``benchmark:`` directives write, under the workflow directory.
BENCHMARK_DIR = Path("results") / "benchmarks"
#: Cores of every Snakemake run.
CORES = "2"
#: The large grid: the default study's sample sizes, 18 noise levels, every error model.
LARGE_GRID = {
    "replications": 500,
    "grid": {
        "n": [10, 20, 50, 100, 200, 500, 1000],
        "sigma": [0.5, 0.75, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 18, 20],
        "errors": ["normal", "t3", "hetero"],
    },
}


# --------------------------------------------------------------------------------------
# Running commands
# --------------------------------------------------------------------------------------


@dataclass
class Measured:
    """A finished subprocess: wall time, peak RSS of its largest process, output."""

    returncode: int
    seconds: float
    max_rss_mb: float
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


#: Runs argv[2:], then writes the peak RSS (KiB) of its largest waited-for descendant to
#: argv[1]. A child forked from this (large) benchmark process would report the parent's
#: resident set as its own high-water mark, so the command is started from this small
#: launcher instead, and ``getrusage(RUSAGE_CHILDREN)`` is read there.
_LAUNCHER = """\
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as handle:
    handle.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def environment(pythonpath: Path = ROOT) -> dict[str, str]:
    """This environment with the interpreter's folder first on PATH (so jobs run with the
    same Python) and ``pythonpath`` first on PYTHONPATH (so it is the regsim imported)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(pythonpath), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    )
    return env


def run_measured(
    command: Sequence[str],
    cwd: Path | None = None,
    timeout: float = 7200,
    pythonpath: Path = ROOT,
) -> Measured:
    """Run ``command``; return its wall time, output and peak RSS.

    The peak RSS is ``ru_maxrss`` of ``getrusage(RUSAGE_CHILDREN)`` read by a small
    launcher process once the command has finished: the largest resident set of the
    command's process or of any process it waited for (for Snakemake, itself or a job).
    The wall time includes the launcher's start (about 20 ms).
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".rss") as rss,
    ):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, rss.name, *command],
            cwd=cwd,
            env=environment(pythonpath),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a timeout kills the launcher and everything under it
        )
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, 9))
        timer.start()
        try:
            returncode = proc.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        text = rss.read().strip()
        out.seek(0)
        err.seek(0)
        return Measured(
            returncode,
            seconds,
            int(text) / 1024 if text else math.nan,  # KiB on Linux
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def snakemake_command() -> list[str]:
    beside = Path(sys.executable).with_name("snakemake")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "snakemake"]


def copy_workflow(dest: Path, source: Path = ROOT) -> Path:
    """Copy the workflow's files (:data:`WORKFLOW`, those ``source`` has) to ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.exists():
            shutil.copy2(path, dest / name)
    return dest


def run_snakemake(workdir: Path, *args: str, what: str, pythonpath: Path = ROOT) -> Measured:
    result = run_measured([*snakemake_command(), *args], cwd=workdir, pythonpath=pythonpath)
    if result.returncode != 0:
        tail = "\n".join(result.output.splitlines()[-30:])
        raise RuntimeError(f"snakemake {what} failed (exit {result.returncode}):\n{tail}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake log: {rule: count, 'total': count}."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Job stats"):
            counts = {}
            for row in lines[i + 1 :]:
                parts = row.split()
                if len(parts) == 2 and parts[1].isdigit():
                    counts[parts[0]] = int(parts[1])
                    if parts[0] == "total":
                        break
    return counts


_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_STARTED = re.compile(r"^(?:local)?rule (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def job_spans(output: str) -> dict[str, dict[str, float]]:
    """Per rule, from a Snakemake log's time stamps (whole seconds): jobs, total and
    longest time from a job's start to Snakemake's "Finished" line.

    Unlike a ``benchmark:`` file's time, which covers the job's script alone, this
    includes what Snakemake does for a job before and after it (e.g. checksums of its
    inputs for its outputs' records)."""
    stamp: datetime | None = None
    started: dict[str, tuple[str, datetime]] = {}
    pending_rule: tuple[str, datetime] | None = None
    spans: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        if m := _STAMP.match(line):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif (m := _STARTED.match(line)) and stamp is not None:
            pending_rule = (m.group(1), stamp)
        elif (m := _JOBID.match(line)) and pending_rule is not None:
            started[m.group(1)] = pending_rule
            pending_rule = None
        elif (m := _FINISHED.match(line)) and stamp is not None and m.group(1) in started:
            rule, start = started.pop(m.group(1))
            seconds = (stamp - start).total_seconds()
            entry = spans.setdefault(rule, {"jobs": 0, "total_s": 0.0, "max_s": 0.0})
            entry["jobs"] += 1
            entry["total_s"] += seconds
            entry["max_s"] = max(entry["max_s"], seconds)
    return spans


def _number(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


#: Memory columns of Snakemake's benchmark files (MB), each summed over a job's processes.
MEMORY_COLUMNS = ("max_uss", "max_pss", "max_rss")


def read_benchmark_files(workdir: Path) -> dict[str, dict[str, Any]]:
    """Per rule, from the Snakemake ``benchmark:`` files under results/benchmarks/: jobs,
    total and longest job wall time, and the largest max_uss, max_pss and max_rss of a job
    (MB; sampled while the job runs, each summed over the job's processes), with the job
    of the largest max_uss."""
    per_rule: dict[str, dict[str, Any]] = {}
    base = workdir / BENCHMARK_DIR
    for path in sorted(base.rglob("*.tsv")) if base.exists() else []:
        rel = path.relative_to(base)
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        lines = path.read_text().splitlines()
        if len(lines) < 2:
            continue
        header = lines[0].split("\t")
        entry = per_rule.setdefault(
            rule,
            {
                "jobs": 0,
                "total_s": 0.0,
                "max_s": 0.0,
                **{f"{column}_mb": None for column in MEMORY_COLUMNS},
                "max_uss_job": None,
            },
        )
        for line in lines[1:]:
            record = dict(zip(header, line.split("\t"), strict=False))
            entry["jobs"] += 1
            seconds = _number(record.get("s"))
            if seconds is not None:
                entry["max_s"] = max(entry["max_s"], seconds)
                entry["total_s"] += seconds
            for column in MEMORY_COLUMNS:
                value = _number(record.get(column))
                if value is not None and value > (entry[f"{column}_mb"] or -1.0):
                    entry[f"{column}_mb"] = value
                    if column == "max_uss":
                        entry["max_uss_job"] = "/".join(rel.with_suffix("").parts[1:]) or rule
    return per_rule


# --------------------------------------------------------------------------------------
# Study runs
# --------------------------------------------------------------------------------------


def run_study(
    workdir: Path,
    *args: str,
    what: str,
    noop: bool = True,
    pythonpath: Path = ROOT,
) -> dict[str, Any]:
    """The workflow in ``workdir`` from clean with ``--cores 2`` and ``args``, then (with
    ``noop``) the same command again, which should find nothing to do."""
    print(f"  running {what} ...", flush=True)
    load = os.getloadavg()[0]
    clean = run_snakemake(workdir, "--cores", CORES, *args, what=what, pythonpath=pythonpath)
    out: dict[str, Any] = {
        "what": what,
        "args": list(args),
        "clean_s": clean.seconds,
        "load_average_at_start": load,
        "jobs": job_counts(clean.output),
        "largest_process_rss_mb": clean.max_rss_mb,
        "rules": read_benchmark_files(workdir),
        "spans": job_spans(clean.output),
        "results_mb": folder_mb(workdir / "results"),
        "datasets_mb": folder_mb(workdir / "results" / "datasets"),
    }
    if noop:
        again = run_snakemake(
            workdir, "--cores", CORES, *args, what=f"{what}, rerun", pythonpath=pythonpath
        )
        out["noop_s"] = again.seconds
        out["noop_did_nothing"] = "Nothing to be done" in again.output
    job_seconds = sum(entry["total_s"] for entry in out["rules"].values())
    out["sum_of_job_seconds"] = job_seconds
    return out


def folder_mb(folder: Path) -> float:
    """Megabytes (10^6 bytes) of the files under ``folder`` (0 if it does not exist)."""
    if not folder.is_dir():
        return 0.0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def git(*args: str) -> str:
    """Output of a git command in this checkout; RuntimeError with git's message."""
    result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def resolve_commit(ref: str) -> str:
    """The commit ``ref`` names in this repository; RuntimeError if none."""
    return git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")


def compile_package(checkout: Path) -> None:
    """Byte-compile a checkout's ``regsim`` first, so no timed run pays for it."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(checkout / "regsim")],
        check=False,
        capture_output=True,
    )


def run_baseline(ref: str, tmp: Path) -> dict[str, Any]:
    """The default study of commit ``ref``: its own workflow files and ``regsim``, run from
    clean and rerun, in a temporary worktree removed afterwards."""
    commit = resolve_commit(ref)
    checkout = tmp / "baseline-checkout"
    git("worktree", "add", "--detach", str(checkout), commit)
    try:
        compile_package(checkout)
        workdir = copy_workflow(tmp / "baseline", source=checkout)
        out = run_study(
            workdir, what=f"the default study of {ref} ({commit[:7]})", pythonpath=checkout
        )
        config = yaml.safe_load((workdir / "config.yaml").read_text())
        grid = config["grid"]
        out["cells"] = math.prod(len(grid.get(key) or [None]) for key in ("n", "sigma", "errors"))
        out["replications"] = config.get("replications")
    except RuntimeError as error:  # the baseline's own failure: reported, not fatal
        print(f"  the baseline failed: {error}")
        out = {"error": str(error)}
    finally:
        git("worktree", "remove", "--force", str(checkout))
    out["ref"], out["commit"] = ref, commit
    return out


# --------------------------------------------------------------------------------------
# One job of each rule, rerun alone
# --------------------------------------------------------------------------------------


def _job(code: str, **arguments: Any) -> list[str]:
    """A command running ``code`` with ``args`` (the JSON of ``arguments``) defined."""
    prelude = "import json, sys; args = json.loads(sys.argv[1])\n"
    return [sys.executable, "-c", prelude + code, json.dumps(arguments)]


def representative_jobs(workdir: Path, setup: Setup, scratch: Path) -> dict[str, Any]:
    """Rerun one job of each heavy rule in a subprocess on a finished run's files.

    The largest simulate job (most observations), and the study's collect and paper (two
    workers, as on 2 cores) jobs, each writing under ``scratch``. Returns per
    rule the job, its wall time and the peak resident set of its largest process.
    """
    study = setup.study
    results = workdir / "results"
    chunks = [str(results / "chunks" / f"{name}.parquet") for name in study.plan]
    largest = max(study.plan.values(), key=lambda job: (job.work, job.name))
    cells = list(study.labels)
    figures = [str(scratch / "figures" / f"{stem}.pdf") for stem in study.figure_files]
    cell_figures = [str(scratch / "figures" / f"{stem}.pdf") for stem in study.cell_figures]
    jobs = {
        "simulate": (
            largest.name,
            _job(
                "from regsim.jobs import run_simulate\n"
                "from regsim.specs import SimulateJob\n"
                "run_simulate(SimulateJob.from_params(args['job']), args['fits'], "
                "args['datasets'])",
                job=study.simulate_job(largest.name).to_params(),
                fits=str(scratch / "chunk.parquet"),
                datasets=str(scratch / "datasets.npz") if study.keep_datasets else None,
            ),
        ),
        "collect": (
            f"{len(cells)} cells",
            _job(
                "from regsim.jobs import run_collect\n"
                "from regsim.specs import CollectJob\n"
                "run_collect(CollectJob.from_params(args['job']), chunks=args['chunks'], "
                "fits=args['fits'], metrics=args['metrics'], table=args['table'], workers=2)",
                job=study.collect_job.to_params(),
                chunks=chunks,
                fits=[str(scratch / "fits" / f"{c}.parquet") for c in cells],
                metrics=[str(scratch / "metrics" / f"{c}.parquet") for c in cells],
                table=str(scratch / "metrics.csv"),
            ),
        ),
        "paper": (
            f"{len(figures) + len(cell_figures)} figures",
            _job(
                "from regsim.paper import write_paper\n"
                "from regsim.specs import PaperJob\n"
                "from regsim.tableio import read_metrics\n"
                "write_paper(read_metrics(args['metrics']), PaperJob.from_params(args['job']), "
                "figures=args['figures'], tables=args['tables'], failures=args['failures'], "
                "cell_figures=args['cell_figures'], cell_fits=args['cell_fits'], workers=2)",
                metrics=str(results / "tables" / "metrics.csv"),
                job=study.paper_job.to_params(),
                figures=figures,
                tables=str(scratch / "tables"),
                failures=str(scratch / "tables" / "failures.md"),
                cell_figures=cell_figures,
                cell_fits={
                    cell: str(results / "fits" / f"{cell}.parquet")
                    for cell in study.cell_figure_cells
                },
            ),
        ),
    }
    measured = {}
    for rule, (job, command) in jobs.items():
        result = run_measured(command)
        if result.returncode != 0:
            print(f"  (could not rerun a {rule} job: {result.stderr.strip().splitlines()[-1:]})")
            continue
        measured[rule] = {"job": job, "seconds": result.seconds, "max_rss_mb": result.max_rss_mb}
    return measured


def startup_costs(repeats: int = 3) -> dict[str, float]:
    """Fixed cost every job pays before its work: interpreter start and imports."""
    imports = {
        "python": "pass",
        # what scripts/simulate.py imports; the collect job imports its modules too
        "simulate imports": "import regsim.jobs, regsim.specs, regsim.workflow",
        "collect imports": "import regsim.jobs, regsim.cells, regsim.exact, regsim.sensitivity",
        "paper imports": "import regsim.paper, regsim.tableio",
    }
    return {
        name: min(run_measured([sys.executable, "-c", code]).seconds for _ in range(repeats))
        for name, code in imports.items()
    }


def import_breakdown(
    statement: str = "import regsim.jobs, regsim.cells, regsim.exact, regsim.sensitivity",
    packages: Sequence[str] = ("numpy", "pandas", "scipy.special", "pyarrow", "regsim.estimators"),
) -> dict[str, float]:
    """Cumulative import time (s) of a few packages inside ``statement`` (python -X importtime)."""
    result = run_measured([sys.executable, "-X", "importtime", "-c", statement])
    found: dict[str, float] = {}
    for line in result.stderr.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] in packages and parts[2] not in found:
            found[parts[2]] = int(parts[1]) / 1e6
    return found


# --------------------------------------------------------------------------------------
# 7. End to end
# --------------------------------------------------------------------------------------


def e2e_section(setup: Setup, with_10k: bool, baseline: str | None) -> dict[str, Any]:
    """Section 7: the studies from clean and their no-op reruns, per-rule time and memory."""
    heading(f"7. End to end: snakemake --cores {CORES} on copies of the workflow (each run once)")
    large = load_study([], LARGE_GRID)  # checked before anything runs
    runs: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {"runs": runs}
    with tempfile.TemporaryDirectory(prefix="regsim-bench-e2e-") as tmp_name:
        tmp = Path(tmp_name)
        compile_package(ROOT)
        default_dir = copy_workflow(tmp / "default")
        runs["default"] = run_study(default_dir, what="the default study")
        runs["default"]["cells"] = len(setup.study.cells)
        runs["default"]["replications"] = setup.study.replications
        if baseline:
            result = run_baseline(baseline, tmp)
            if "error" in result:
                out["baseline_failed"] = result
            else:
                runs["baseline"] = result
        large_dir = copy_workflow(tmp / "large")
        (large_dir / "large_grid.yaml").write_text(yaml.safe_dump(LARGE_GRID, sort_keys=False))
        runs["large"] = run_study(
            large_dir, "--configfile", "large_grid.yaml", what="the large grid"
        )
        runs["large"]["cells"] = len(large.cells)
        runs["large"]["replications"] = large.replications
        # the same two studies keeping their dataset files (keep_datasets is off by default)
        keep = ("--config", "keep_datasets=true")
        runs["default_keep"] = run_study(
            copy_workflow(tmp / "default_keep"), *keep, what="the default study, datasets kept"
        )
        large_keep = copy_workflow(tmp / "large_keep")
        (large_keep / "large_grid.yaml").write_text(yaml.safe_dump(LARGE_GRID, sort_keys=False))
        runs["large_keep"] = run_study(
            large_keep,
            "--configfile",
            "large_grid.yaml",
            *keep,
            what="the large grid, datasets kept",
        )
        for key, source in (("default_keep", "default"), ("large_keep", "large")):
            runs[key]["cells"] = runs[source]["cells"]
            runs[key]["replications"] = runs[source]["replications"]
        if with_10k:
            big_dir = copy_workflow(tmp / "study10k")
            runs["10k"] = run_study(
                big_dir,
                "--config",
                "replications=10000",
                what="the default study with 10 000 replicates",
                noop=False,
            )
            runs["10k"]["cells"] = len(setup.study.cells)
            runs["10k"]["replications"] = 10_000
        print("  rerunning one job of each rule of the default study ...", flush=True)
        scratch = tmp / "scratch"
        scratch.mkdir()
        out["representative_jobs"] = representative_jobs(default_dir, setup, scratch)
    out["startup_s"] = startup_costs()
    out["import_breakdown_s"] = import_breakdown()
    print_e2e(out)
    return out


RUN_NAMES = {
    "default": "default study",
    "baseline": "baseline: default study",
    "large": "large grid",
    "default_keep": "default study, datasets kept",
    "large_keep": "large grid, datasets kept",
    "10k": "replications=10000",
}


def print_e2e(out: dict[str, Any]) -> None:
    runs = out["runs"]
    default = runs["default"]
    rows = []
    for key, run in runs.items():
        name = RUN_NAMES[key] + (f" of {run['ref']}" if key == "baseline" else "")
        clean_target = {"default": TARGETS["default_study_s"], "10k": TARGETS["study_10k_s"]}
        target, ok = (
            at_most(run["clean_s"], clean_target[key], " s") if key in clean_target else ("", "")
        )
        rows.append(
            (
                name,
                f"{run['cells']} x {run.get('replications', '?')}",
                run["jobs"].get("total", "?"),
                fmt_seconds(run["clean_s"]),
                f"{run['load_average_at_start']:.1f}",
                target,
                ok,
            )
        )
        if "noop_s" in run:
            target, ok = at_most(run["noop_s"], TARGETS["noop_s"], " s")
            rows.append(
                (
                    f"  no-op rerun{'' if run['noop_did_nothing'] else ' (DID SOMETHING)'}",
                    "",
                    0 if run["noop_did_nothing"] else "?",
                    fmt_seconds(run["noop_s"]),
                    "",
                    target,
                    ok,
                )
            )
    print()
    print_table(
        ["run", "cells x replicates", "jobs", "wall", "load average at start", "target", ""], rows
    )
    print(f"  (load average: of the machine's {os.cpu_count()} cores, over the last minute)")

    storage = [
        (
            RUN_NAMES[key],
            f"{run['results_mb']:.1f}",
            f"{run['datasets_mb']:.1f}",
            fmt_seconds(run["clean_s"]),
        )
        for key, run in runs.items()
        if key in ("default", "default_keep", "large", "large_keep")
    ]
    print("\n  disk: results/ after the clean run, MB (10^6 bytes)")
    print_table(["run", "results/", "of which datasets/", "wall, clean"], storage)

    ratio = runs["large"]["clean_s"] / default["clean_s"]
    out["large_over_default"] = ratio
    target, ok = at_most(ratio, TARGETS["large_over_default"])
    print(
        f"\n  large grid / default study, clean: {ratio:.2f} ({target}: {ok}); "
        f"{runs['large']['cells']} cells x {runs['large']['replications']} replicates against "
        f"{default['cells']} x {default['replications']}"
    )
    for key, run in runs.items():
        jobs = ", ".join(f"{rule} {count}" for rule, count in run["jobs"].items())
        print(f"  jobs of the {RUN_NAMES[key]} run: {jobs}")

    if "baseline_failed" in out:
        failed = out["baseline_failed"]
        print(f"\n  the default study of {failed['ref']} failed; no comparison (see above)")
    if "baseline" in runs:
        base = runs["baseline"]
        ratios = {
            "clean": default["clean_s"] / base["clean_s"],
            "noop": default["noop_s"] / base["noop_s"],
        }
        out["baseline_ratio"] = ratios
        print(f"\n  the default study, this checkout against {base['ref']} ({base['commit'][:7]})")
        print_table(
            ["run", "this checkout", base["ref"], "this / baseline", "target", ""],
            [
                (
                    what,
                    fmt_seconds(default[key]),
                    fmt_seconds(base[key]),
                    f"{ratios[short]:.2f}",
                    *at_most(ratios[short], TARGETS["baseline_ratio"]),
                )
                for what, key, short in (
                    ("clean", "clean_s", "clean"),
                    ("no-op rerun", "noop_s", "noop"),
                )
            ],
        )

    print(
        "\n  per rule, from the rules' benchmark: files: wall times of the jobs, and memory in MB"
        "\n  summed over each job's processes (its forked workers count in max_uss for their own"
        "\n  pages, in max_pss with shared pages split, in max_rss with shared pages once per"
        "\n  process). Snakemake samples memory every 0.5 s for a job's first ~15 s, then every"
        "\n  30 s: for longer jobs the maxima are lower bounds. 'in Snakemake': the jobs' time"
        "\n  from start to Snakemake's 'Finished' line (whole seconds, from its log), which adds"
        "\n  what Snakemake does for a job around its script"
    )
    for key, run in runs.items():
        print(f"\n  {RUN_NAMES[key]}" + (f" of {run['ref']}" if key == "baseline" else ""))
        print_rules(run["rules"], run.get("spans"))
        if run["sum_of_job_seconds"]:
            print(
                f"  jobs ran {run['sum_of_job_seconds']:.1f} s in all (start-up included), i.e. "
                f"{run['sum_of_job_seconds'] / int(CORES):.1f} s on {CORES} cores, of the "
                f"{run['clean_s']:.1f} s wall; the rest is Snakemake's parsing, scheduling and "
                "job launching"
            )

    print(
        "\n  one job of each rule of the default study rerun alone in a subprocess: peak resident"
        "\n  set of its largest process (getrusage RUSAGE_CHILDREN ru_maxrss; collect and paper"
        "\n  with 2 workers, as on 2 cores)"
    )
    print_table(
        ["rule", "job", "wall", "largest process RSS MB"],
        [
            (rule, m["job"], fmt_seconds(m["seconds"]), fmt_mb(m["max_rss_mb"]))
            for rule, m in out["representative_jobs"].items()
        ],
    )

    print("\n  fixed cost per job (interpreter start + imports, best of 3)")
    print_table(["", "seconds"], [(k, f"{v:.2f}") for k, v in out["startup_s"].items()])
    print(
        "  of which (python -X importtime, cumulative): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in out["import_breakdown_s"].items())
    )


def print_rules(
    rules: dict[str, dict[str, Any]], spans: dict[str, dict[str, float]] | None = None
) -> None:
    """The per-rule table of one run's benchmark files, with the USS target, and the
    rules' jobs' time from start to finish in Snakemake's log (``spans``)."""
    if not rules:
        print(f"  no benchmark: files under {BENCHMARK_DIR}/")
        return
    spans = spans or {}
    print_table(
        [
            "rule",
            "jobs",
            "total",
            "longest",
            "in Snakemake",
            "max_uss",
            "max_pss",
            "max_rss",
            "job of max_uss",
            "target (USS)",
            "",
        ],
        [
            (
                rule,
                entry["jobs"],
                fmt_seconds(entry["total_s"]),
                fmt_seconds(entry["max_s"]),
                fmt_seconds(spans[rule]["total_s"]) if rule in spans else "-",
                fmt_mb(entry["max_uss_mb"]),
                fmt_mb(entry["max_pss_mb"]),
                fmt_mb(entry["max_rss_mb"]),
                entry["max_uss_job"] or "-",
                *at_most(entry["max_uss_mb"], TARGETS["job_uss_mb"], " MB"),
            )
            for rule, entry in sorted(rules.items(), key=lambda item: -item[1]["total_s"])
        ],
    )


# --------------------------------------------------------------------------------------
# 8. Dry runs
# --------------------------------------------------------------------------------------


#: Dry-run grids: (σ values, n values); n = 10, 20, … and σ = 0.5, 1, ….
DRY_RUN_GRIDS = ((1, 10), (10, 10), (10, 100))


def dry_runs_section() -> list[dict[str, Any]]:
    """Section 8: ``snakemake -n`` on grids of 10, 100 and 1000 cells (default replicates)."""
    heading("8. Dry runs (snakemake -n) of large grids")
    rows = []
    with tempfile.TemporaryDirectory(prefix="regsim-bench-dry-") as tmp:
        workdir = copy_workflow(Path(tmp) / "wf")
        for n_sigma, n_n in DRY_RUN_GRIDS:
            grid = {
                "grid": {
                    "n": list(range(10, 10 * n_n + 1, 10)),
                    "sigma": [0.5 * (i + 1) for i in range(n_sigma)],
                },
            }
            path = workdir / f"grid{n_sigma * n_n}.yaml"
            path.write_text(yaml.safe_dump(grid))
            result = run_snakemake(workdir, "-n", "--configfile", path.name, what="dry run")
            counts = job_counts(result.output)
            rows.append(
                {
                    "cells": n_sigma * n_n,
                    "grid": f"{n_n} n x {n_sigma} sigma",
                    "jobs": counts.get("total"),
                    "simulate_jobs": counts.get("simulate"),
                    "seconds": result.seconds,
                    "max_rss_mb": result.max_rss_mb,
                }
            )
    print("  default replicates and priors; each run once")
    print_table(
        ["cells", "grid", "jobs", "simulate jobs", "wall", "peak RSS MB", "target", ""],
        [
            (
                r["cells"],
                r["grid"],
                r["jobs"],
                r["simulate_jobs"],
                fmt_seconds(r["seconds"]),
                fmt_mb(r["max_rss_mb"]),
                *(
                    at_most(r["seconds"], TARGETS["dry_run_1000_cells_s"], " s")
                    if r["cells"] == 1000
                    else ("", "")
                ),
            )
            for r in rows
        ],
    )
    return rows
