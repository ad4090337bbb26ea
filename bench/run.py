"""Benchmarks of regsim: correctness first, then speed, I/O, end-to-end runs and dry runs.

    python bench/run.py                      # everything but the 10 000-replicate study
    python bench/run.py --quick --skip-e2e   # a rough look at the kernel, no workflow runs
    python bench/run.py --with-10k --baseline main --json bench.json

Sections, in order (see bench/README.md):

1. verification (bench/verify.py): the seeded datasets against the documented seeding
   scheme, and the batched fits against the unit tests' per-dataset references. A
   mismatch stops the run with exit status 1 before anything is timed;
2. kernel throughput per n, with the cost of each part (bench/kernel.py);
3. the random-number floor;
4. the notebook way (statsmodels and scipy, one dataset at a time);
5. I/O of a simulate job's files;
6. scaling of the kernel with n and with the number of replicates;
7. the workflow end to end (bench/workflow.py): the default study and a large grid from
   clean and rerun, optionally 10 000 replicates and an older commit's default study; per
   rule, time and memory from the benchmark files;
8. dry runs of 10-, 100- and 1000-cell grids;
9. the results explorer of a 378-cell grid in headless Chromium (bench/explorer.py):
   page size and the redraw time of each control change;

then the targets, each beside its measure (never asserted).

Timings are best-of-k wall times where repeating is cheap, end-to-end runs once, on a
possibly shared machine: compare the ratios measured in one run rather than absolute
figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Import this checkout's regsim (installed or not) and the benchmark's modules as the
# package bench, not as top-level modules from the script's folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench import explorer, kernel, verify, workflow  # noqa: E402
from bench.common import (  # noqa: E402
    KERNEL_SIGMA,
    TARGETS,
    Setup,
    fmt_mb,
    fmt_seconds,
    heading,
    load_study,
    machine_info,
    print_machine,
    print_table,
    status,
    to_json,
)


def summary(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets, each with its measure and whether it is met (None: not measured)."""
    rows: list[tuple[str, str, str, bool | None]] = []
    kernel_rows = {r["n"]: r for r in report["kernel"]["rows"] if r["sigma"] == KERNEL_SIGMA}
    for n, key in ((1000, "floor_ratio_n1000"), (100, "floor_ratio_n100")):
        value = kernel_rows[n]["ratio_to_draw_numbers"]
        rows.append(
            (
                f"kernel/floor at n = {n}",
                f"{value:.3f}",
                f">= {TARGETS[key]:g}",
                value >= TARGETS[key],
            )
        )
    for row in report["bayes"]["rows"]:
        if row["sigma"] == KERNEL_SIGMA:
            rows.append(
                (
                    f"bayes / MAP, 4 priors, n = {row['n']}",
                    f"{row['ratio']:.1f}x",
                    f"<= {TARGETS['bayes_over_map']:g}x",
                    row["ratio"] <= TARGETS["bayes_over_map"],
                )
            )
    nb = report["notebook"]
    rows.append(
        (
            "kernel/notebook at n = 100",
            f"{nb['ratio']:,.0f}x",
            f">= {TARGETS['notebook_ratio']:,.0f}x",
            nb["ratio"] >= TARGETS["notebook_ratio"],
        )
    )

    def at_most(name: str, value: float | None, key: str, shown: str, unit: str = "") -> None:
        goal = f"<= {TARGETS[key]:g}{unit}"
        rows.append((name, shown, goal, None if value is None else value <= TARGETS[key]))

    e2e = report.get("e2e")
    if e2e:
        runs = e2e["runs"]
        d = runs["default"]
        at_most(
            "default study, clean", d["clean_s"], "default_study_s", fmt_seconds(d["clean_s"]), " s"
        )
        at_most("default study, no-op rerun", d["noop_s"], "noop_s", fmt_seconds(d["noop_s"]), " s")
        ratio = e2e["large_over_default"]
        at_most("large grid / default study", ratio, "large_over_default", f"{ratio:.2f}")
        if "10k" in runs:
            s = runs["10k"]["clean_s"]
            at_most("replications=10000, clean", s, "study_10k_s", fmt_seconds(s), " s")
        else:
            rows.append(
                (
                    "replications=10000, clean",
                    "not run (--with-10k)",
                    f"<= {TARGETS['study_10k_s']:g} s",
                    None,
                )
            )
        if "baseline" in runs:
            ratio = e2e["baseline_ratio"]["clean"]
            at_most(
                f"default study: this / {runs['baseline']['ref']}",
                ratio,
                "baseline_ratio",
                f"{ratio:.2f}",
            )
        else:
            measured = "failed" if "baseline_failed" in e2e else "not run (--baseline)"
            rows.append(("default study: this / baseline", measured, "<= 1", None))
        for key, run in runs.items():
            if key == "baseline":
                continue
            measured = [(r, e) for r, e in run["rules"].items() if e["max_uss_mb"] is not None]
            if measured:
                rule, entry = max(measured, key=lambda item: item[1]["max_uss_mb"])
                at_most(
                    f"largest job USS, {workflow.RUN_NAMES[key]} ({rule})",
                    entry["max_uss_mb"],
                    "job_uss_mb",
                    f"{fmt_mb(entry['max_uss_mb'])} MB",
                    " MB",
                )
    else:
        for name in (
            "default study, clean",
            "default study, no-op rerun",
            "large grid / default study",
            "replications=10000, clean",
            "default study: this / baseline",
            "largest job USS",
        ):
            rows.append((name, "not run (--skip-e2e)", "", None))
    for dry in report["dry_runs"]:
        if dry["cells"] == 1000:
            at_most(
                "dry run, 1000 cells",
                dry["seconds"],
                "dry_run_1000_cells_s",
                fmt_seconds(dry["seconds"]),
                " s",
            )
    shown = report["explorer"]
    if "skipped" in shown:
        rows.append(("explorer redraw, 378 cells", f"skipped ({shown['skipped']})", "", None))
    else:
        median = shown["median_ms"]
        at_most(
            "explorer redraw, 378 cells (median)",
            median,
            "explorer_redraw_ms",
            f"{median:.0f} ms",
            " ms",
        )
        size = shown["page_mb"]
        at_most("explorer page, 378 cells", size, "explorer_mb", f"{size:.1f} MB", " MB")
    heading("Targets (printed, never asserted)")
    print_table(["target", "measured", "goal", ""], [(a, b, c, status(d)) for a, b, c, d in rows])
    return [{"target": a, "measured": b, "goal": c, "met": d} for a, b, c, d in rows]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Verify, then benchmark regsim (kernel, RNG floor, notebook way, I/O, "
        "scaling, workflow end to end, dry runs, the results explorer).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller batches, fewer repeats and datasets (a rough look)",
    )
    parser.add_argument(
        "--skip-e2e",
        action="store_true",
        help="do not run the workflow end to end (section 7; the dry runs still run)",
    )
    parser.add_argument(
        "--with-10k",
        action="store_true",
        help="also run the default study with --config replications=10000 (long)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        default=None,
        help="also run the default study of commit REF (its own workflow and regsim, from a "
        "temporary git worktree) and compare its wall times",
    )
    parser.add_argument(
        "--replications",
        type=int,
        default=None,
        metavar="R",
        help="datasets per timed kernel batch (n = 1000 uses R/2); default 2000, 500 with --quick",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        metavar="K",
        help="best of K timings; default 5, 3 with --quick",
    )
    parser.add_argument(
        "--notebook-datasets",
        type=int,
        default=None,
        metavar="N",
        help="datasets for the notebook-way timing; default 30, 10 with --quick",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="OUT",
        help="also write every figure to OUT as JSON",
    )
    args = parser.parse_args(argv)
    if args.replications is None:
        args.replications = 500 if args.quick else 2000
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.notebook_datasets is None:
        args.notebook_datasets = 10 if args.quick else 30
    if args.replications < 2 or args.repeats < 1 or args.notebook_datasets < 1:
        parser.error("--replications must be >= 2, --repeats and --notebook-datasets >= 1")
    if args.baseline is not None:
        if args.skip_e2e:
            parser.error("--baseline runs the workflow end to end: leave out --skip-e2e")
        try:
            workflow.resolve_commit(args.baseline)
        except RuntimeError:
            parser.error(f"--baseline: {args.baseline!r} names no commit of this repository")
    return args


def write_json(path: Path | None, report: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(to_json(report), indent=2) + "\n")
        print(f"figures written to {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup = Setup(study=load_study(), repeats=args.repeats, quick=args.quick)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "targets": TARGETS,
        "machine": machine_info(),
    }
    print_machine(report["machine"])

    report["verification"] = verify.verify(setup, per_n=2 if args.quick else 5)
    if not report["verification"]["ok"]:
        print(
            "\nverification FAILED: the batched fits do not match the references; "
            "nothing was timed",
            file=sys.stderr,
        )
        write_json(args.json, report)
        return 1

    report["kernel"] = kernel.kernel_section(setup, args.replications)
    report["bayes"] = kernel.bayes_section(setup, args.replications)
    report["notebook"] = kernel.notebook_section(setup, report["kernel"], args.notebook_datasets)
    report["io"] = kernel.io_section(setup, 250 if args.quick else None)
    report["scaling"] = kernel.scaling_section(setup)
    if args.skip_e2e:
        heading("7. End to end: skipped (--skip-e2e)")
        report["e2e"] = None
    else:
        report["e2e"] = workflow.e2e_section(setup, args.with_10k, args.baseline)
    report["dry_runs"] = workflow.dry_runs_section()
    report["explorer"] = explorer.explorer_section()
    report["summary"] = summary(report)
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    report["seconds"] = time.perf_counter() - started
    print(
        f"\nbenchmark took {report['seconds']:.0f} s; load average now "
        f"{' '.join(f'{x:.2f}' for x in report['machine']['load_average_at_end'])}"
    )
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
