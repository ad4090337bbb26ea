"""Benchmarks of regsim: correctness first, then speed, I/O, end-to-end runs and scaling.

    python bench/run.py                      # everything but the 10 000-replicate study
    python bench/run.py --quick --skip-e2e   # about 15 s: kernel, floor, I/O, scaling
    python bench/run.py --with-10k --json bench.json

Sections, in order (see bench/README.md):

1. verification: the seeded datasets against the documented seeding scheme, and the
   batched OLS/MLE/MAP fits against per-dataset references (statsmodels OLS; scipy BFGS
   on the full Gaussian negative log-likelihood and on the negative log posterior, from
   the MLE and from the prior mean, best of the two). A mismatch stops the run with
   exit status 1 before anything is timed;
2. kernel throughput (draw + statistics + OLS + MLE + MAP for every default prior) per n,
   with the cost of each part;
3. the random-number floor: the same random numbers alone (uniforms and normals), and
   numpy's own generator;
4. the notebook way (statsmodels OLS + scipy L-BFGS-B fits, one dataset at a time);
5. I/O of dataset files and fit tables;
6. the workflow end to end (clean run, no-op rerun, optionally 10 000 replications) and
   the peak memory of each rule's jobs;
7. scaling of the kernel with n and with the number of replicates, and dry runs of large
   grids.

Timings are best-of-k wall times on a possibly shared machine: compare the ratios
measured in one run rather than absolute figures across runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the checkout's regsim, installed or not

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from numpy.random import PCG64, Generator, SeedSequence  # noqa: E402

import regsim.config  # noqa: E402
from regsim.design import Cell, Prior  # noqa: E402
from regsim.estimators import (  # noqa: E402
    concat_stats,
    fit_map,
    fit_methods,
    fit_mle,
    fit_ols,
    fit_table,
    parameter_names,
    sufficient_stats,
)
from regsim.pipeline import (  # noqa: E402
    FIGURES,
    cell_label,
    cell_params,
    chunk_label,
    figure_files,
    figure_options,
)
from regsim.simulate import (  # noqa: E402
    BLOCK_REPLICATES,
    draw,
    draw_batches,
    draw_numbers,
    load_datasets,
    save_datasets,
)
from regsim.stages import batch_replicates, read_parquet, write_parquet  # noqa: E402

#: The estimators benchmarked (the study's default methods).
METHODS = ("ols", "mle", "map")
#: Sample sizes of the throughput, floor and I/O sections.
KERNEL_NS = (10, 100, 1000)
#: Noise level of the throughput sections (the seed notebook's σ).
KERNEL_SIGMA = 5.0
#: The cell (n, σ) where the skeptical N(0, 1) prior gives two posterior modes.
BIMODAL_CELL = (20, 1.0)
#: Targets printed next to the measures.
TARGETS = {
    "floor_ratio_n1000": 0.5,
    "floor_ratio_n100": 0.25,
    "notebook_ratio": 1000.0,
    "default_study_s": 15.0,
    "study_10k_s": 60.0,
    "noop_s": 3.0,
    "peak_rss_mb": 300.0,
    "dry_run_1000_cells_s": 10.0,
}
#: Tolerances of the verification: relative error |a − b| / max(|b|, 1).
TOL_OLS = 1e-8  # closed form against statsmodels
TOL_ESTIMATE = 1e-5  # against an optimiser
TOL_SE = 1e-4  # standard errors and interval bounds from the Hessian at the optimiser's point
#: The files that make up the workflow, copied for the end-to-end runs.
WORKFLOW = ("Snakefile", "config.yaml", "schemas", "scripts", "envs", "profiles", "rules", "report")
#: Where the rules' ``benchmark:`` directives write, under the workflow directory.
BENCHMARK_DIR = Path("results") / "benchmarks"


# ======================================================================================
# Small helpers
# ======================================================================================


@dataclass(frozen=True)
class Setup:
    """Everything the sections share: study defaults and run options."""

    seed: int
    beta: tuple[float, ...]
    alpha: float
    priors: list[Prior]
    repeats: int
    quick: bool
    per_job: int  # replicates per simulate job in the default profile


def profile_replications_per_job() -> int:
    """``replications_per_job`` of profiles/default (the schema default if unset)."""
    path = ROOT / "profiles" / "default" / "config.yaml"
    profile = yaml.safe_load(path.read_text()) if path.exists() else {}
    entry = (profile or {}).get("config") or {}
    if isinstance(entry, list | str):  # KEY=VALUE strings, as on the command line
        items = [entry] if isinstance(entry, str) else entry
        entry = dict(item.split("=", 1) for item in items if "=" in item)
    return int(entry.get("replications_per_job", regsim.config.DEFAULT_REPLICATIONS_PER_JOB))


def best_of(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls and the last result (warm up separately)."""
    best, result = math.inf, None
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a − b| / max(|b|, 1); inf if either has a non-finite entry."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0), initial=0.0))


def fmt_rate(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: int = 2) -> None:
    """Print an aligned table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            row[i].ljust(widths[i]) if i == 0 else row[i].rjust(widths[i]) for i in range(len(row))
        ]
        return " " * indent + "  ".join(parts).rstrip()

    print(line(cells[0]))
    print(" " * indent + "  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def heading(title: str) -> None:
    print(f"\n{title}\n{'=' * len(title)}", flush=True)


def to_json(value: Any) -> Any:
    """Plain JSON values from numpy scalars/arrays, tuples and non-finite floats."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ======================================================================================
# Machine
# ======================================================================================


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, load, versions, BLAS and the BLAS-related environment."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "pandas", "pyarrow", "statsmodels", "snakemake"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - report what is there
            versions[name] = None
    blas: dict[str, Any] = {}
    try:
        config = np.show_config(mode="dicts")
        for key in ("blas", "lapack"):
            entry = config["Build Dependencies"][key]
            blas[key] = {k: entry.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception:  # noqa: BLE001
        pass
    try:
        import threadpoolctl

        blas["threadpools"] = [
            {k: pool.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for pool in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        blas["threadpools"] = None
    env_names = (
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
    )
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": ram_gb,
        "platform": platform.platform(),
        "versions": versions,
        "blas": blas,
        "environment": {k: os.environ[k] for k in env_names if k in os.environ},
        "load_average_at_start": list(os.getloadavg()),
    }


def print_machine(info: dict[str, Any]) -> None:
    heading("Machine")
    blas = info["blas"].get("blas") or {}
    rows = [
        ("CPU", info["cpu"]),
        ("cores", f"{info['usable_cpus']} usable of {info['logical_cpus']}"),
        ("RAM", f"{info['ram_gb']:.1f} GB" if info["ram_gb"] else "unknown"),
        ("versions", ", ".join(f"{k} {v}" for k, v in info["versions"].items())),
        ("BLAS", f"{blas.get('name')} {blas.get('version')}"),
        ("environment", ", ".join(f"{k}={v}" for k, v in info["environment"].items()) or "-"),
        ("load average", " ".join(f"{x:.2f}" for x in info["load_average_at_start"])),
    ]
    for key, value in rows:
        print(f"  {key:<13} {value}")


# ======================================================================================
# 1. Verification
# ======================================================================================


def reference_data(cell: Cell, seed: int, replicate: int) -> tuple[np.ndarray, np.ndarray]:
    """Replicate ``replicate`` of ``cell`` (normal errors) rebuilt from the documented scheme.

    Its block b = replicate // BLOCK_REPLICATES owns two PCG64 streams,
    ``SeedSequence(seed, spawn_key=(key, b, 0))`` for the covariates and ``(key, b, 1)``
    for the error normals; the block's earlier replicates are drawn one at a time and
    dropped, then this one's n·k uniforms and n normals are drawn, and y = Xβ + σ·z.
    """
    n, k = cell.n, cell.p - 1
    block, offset = divmod(replicate, BLOCK_REPLICATES)
    covariates, errors = (
        Generator(PCG64(SeedSequence(entropy=seed, spawn_key=(cell.key_int, block, part))))
        for part in (0, 1)
    )
    for _ in range(offset):
        covariates.random((n, k))
        errors.standard_normal(n)
    x = covariates.random((n, k))
    beta = np.asarray(cell.beta)
    y = beta[0] + x @ beta[1:] + cell.sigma * errors.standard_normal(n)
    return x, y


def _nlp(theta: np.ndarray, X: np.ndarray, y: np.ndarray, mu: np.ndarray, prec: np.ndarray):
    """Full Gaussian negative log-likelihood (+ normal prior terms) in θ = (β, log σ).

    Returns the value and its gradient; ``prec`` = 0 everywhere gives the likelihood alone.
    """
    beta, t = theta[:-1], theta[-1]
    n = len(y)
    r = y - X @ beta
    s2 = math.exp(2.0 * t)
    value = 0.5 * n * math.log(2 * math.pi) + n * t + r @ r / (2 * s2)
    value += 0.5 * float(np.sum(prec * (beta - mu) ** 2))
    grad = np.append(-X.T @ r / s2 + prec * (beta - mu), n - r @ r / s2)
    return value, grad


def _bfgs(theta0: np.ndarray, X, y, mu, prec):
    from scipy import optimize

    return optimize.minimize(
        _nlp,
        theta0,
        args=(X, y, mu, prec),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-10, "maxiter": 10_000},
    )


def _laplace(beta: np.ndarray, sigma: float, X, y, prec, z: float):
    """SEs and Wald bounds from the analytic Hessian of f in (β, σ) at (β, σ)."""
    n, p = X.shape
    r = y - X @ beta
    h = np.empty((p + 1, p + 1))
    h[:p, :p] = X.T @ X / sigma**2 + np.diag(prec)
    h[:p, p] = h[p, :p] = 2 * X.T @ r / sigma**3
    h[p, p] = -n / sigma**2 + 3 * (r @ r) / sigma**4
    estimate = np.append(beta, sigma)
    se = np.sqrt(np.diag(np.linalg.inv(h)))
    return estimate, se, estimate - z * se, estimate + z * se


def reference_fits(x: np.ndarray, y: np.ndarray, priors: Sequence[Prior], alpha: float):
    """OLS, MLE and MAP of one dataset by general-purpose tools, one dataset at a time.

    Returns ``{(method, prior): (estimate, se, lower, upper)}`` plus, per prior, the σ of
    the two local searches (from the MLE and from the prior mean).
    """
    import statsmodels.api as sm
    from scipy import stats

    n, k = x.shape
    p = k + 1
    X = np.column_stack([np.ones(n), x])
    res = sm.OLS(y, X).fit()
    df = n - p
    s = math.sqrt(res.scale)
    out: dict[tuple[str, str], tuple[np.ndarray, ...]] = {}
    ci = np.asarray(res.conf_int(alpha))
    out["ols", ""] = (
        np.append(res.params, s),
        np.append(res.bse, s / math.sqrt(2 * df)),
        np.append(ci[:, 0], math.sqrt(res.ssr / stats.chi2.isf(alpha / 2, df))),
        np.append(ci[:, 1], math.sqrt(res.ssr / stats.chi2.isf(1 - alpha / 2, df))),
    )
    z = float(stats.norm.isf(alpha / 2))
    zeros = np.zeros(p)
    # MLE: from β = 0 and σ = sd(y), nothing taken from least squares.
    mle = _bfgs(np.append(zeros, math.log(np.std(y))), X, y, zeros, zeros)
    out["mle", ""] = _laplace(mle.x[:-1], math.exp(mle.x[-1]), X, y, zeros, z)
    searches: dict[str, list[float]] = {}
    for prior in priors:
        mu, prec = np.asarray(prior.mean), np.asarray(prior.precision)
        r_mu = y - X @ mu
        starts = (mle.x, np.append(mu, 0.5 * math.log(r_mu @ r_mu / n)))
        runs = [_bfgs(start, X, y, mu, prec) for start in starts]
        best = min(runs, key=lambda run: run.fun)
        out["map", prior.name] = _laplace(best.x[:-1], math.exp(best.x[-1]), X, y, prec, z)
        searches[prior.name] = [math.exp(run.x[-1]) for run in runs]
    return out, searches


def compare_batch(
    label: str,
    datasets,
    indices: Sequence[int],
    priors: Sequence[Prior],
    alpha: float,
    records: list[dict[str, Any]],
) -> dict[str, Any]:
    """Compare regsim's batched fits with the references on ``indices``; append records."""
    stats = sufficient_stats(datasets.x, datasets.y)
    fits = {(f.method, name): f for name, f in fit_methods(stats, priors, METHODS, alpha)}
    worst: dict[tuple[str, str], dict[str, float]] = {}
    distinct = 0
    for i in indices:
        ref, searches = reference_fits(datasets.x[i], datasets.y[i], priors, alpha)
        for key, (est, se, lower, upper) in ref.items():
            fit = fits[key]
            errors = {
                "estimate": rel_error(fit.estimate[i], est),
                "se": rel_error(fit.se[i], se),
                "bounds": max(rel_error(fit.lower[i], lower), rel_error(fit.upper[i], upper)),
                "not_converged": float(not fit.converged[i]),
            }
            slot = worst.setdefault(key, dict.fromkeys(errors, 0.0))
            for name, value in errors.items():
                slot[name] = max(slot[name], value)
        for sigmas in searches.values():
            distinct += abs(sigmas[0] - sigmas[1]) > 1e-3 * max(sigmas)
    for (method, prior), errors in worst.items():
        tol_est = TOL_OLS if method == "ols" else TOL_ESTIMATE
        tol_se = TOL_OLS if method == "ols" else TOL_SE
        ok = (
            errors["estimate"] <= tol_est
            and errors["se"] <= tol_se
            and errors["bounds"] <= tol_se
            and errors["not_converged"] == 0
        )
        records.append(
            {
                "case": label,
                "method": method,
                "prior": prior,
                "datasets": len(indices),
                "max_rel_error_estimate": errors["estimate"],
                "max_rel_error_se": errors["se"],
                "max_rel_error_bounds": errors["bounds"],
                "all_converged": errors["not_converged"] == 0,
                "tolerance_estimate": tol_est,
                "tolerance_se": tol_se,
                "ok": ok,
            }
        )
    return {"fits": fits, "searches_with_distinct_modes": distinct}


def verify(setup: Setup, per_n: int) -> dict[str, Any]:
    """Section 1: data and estimators against their references. Exit 1 on any mismatch."""
    heading("1. Verification (before any timing)")
    result: dict[str, Any] = {"ok": True}

    # Datasets: draw() against the seeding scheme, for a chunk across two seeding blocks.
    data_rows = []
    start, stop = BLOCK_REPLICATES - 2, BLOCK_REPLICATES - 2 + per_n
    for n in (*KERNEL_NS, 20):
        cell = Cell(n=n, sigma=KERNEL_SIGMA, beta=setup.beta)
        batch = draw(cell, setup.seed, start, stop)
        uniforms, _ = draw_numbers(cell, setup.seed, start, stop)
        ref = [reference_data(cell, setup.seed, r) for r in range(start, stop)]
        x_equal = all(np.array_equal(batch.x[i], ref[i][0]) for i in range(per_n))
        x_equal &= bool(np.array_equal(uniforms, batch.x))
        y_error = max(
            float(np.max(np.abs(batch.y[i] - ref[i][1])) / np.max(np.abs(ref[i][1])))
            for i in range(per_n)
        )
        ok = x_equal and y_error <= 1e-12 and list(batch.replicates) == list(range(start, stop))
        data_rows.append({"n": n, "x_identical": x_equal, "y_rel_error": y_error, "ok": ok})
    print(
        f"\n  datasets: draw() against the documented seeding scheme, replicates {start}-{stop - 1}"
    )
    print_table(
        ["n", "x identical", "max rel error y", "ok"],
        [
            (r["n"], r["x_identical"], f"{r['y_rel_error']:.1e}", "ok" if r["ok"] else "MISMATCH")
            for r in data_rows
        ],
    )
    result["data"] = data_rows

    # Estimators: every method and default prior, per n.
    records: list[dict[str, Any]] = []
    for n in KERNEL_NS:
        cell = Cell(n=n, sigma=KERNEL_SIGMA, beta=setup.beta)
        compare_batch(
            f"n={n}, sigma=5",
            draw(cell, setup.seed, 0, per_n),
            range(per_n),
            setup.priors,
            setup.alpha,
            records,
        )
        if n == KERNEL_NS[0]:
            # fit_table (what the fit jobs write) carries exactly the fit_methods numbers.
            data = draw(cell, setup.seed, 0, per_n)
            table = fit_table(data, setup.priors, list(METHODS), setup.alpha)
            stats = sufficient_stats(data.x, data.y)
            names = parameter_names(cell.p)
            same = True
            for prior_name, fit in fit_methods(stats, setup.priors, METHODS, setup.alpha):
                rows = table[(table["method"] == fit.method) & (table["prior"] == prior_name)]
                wide = rows.pivot(index="replicate", columns="parameter", values="estimate")
                same &= bool(np.array_equal(wide[names].to_numpy(), fit.estimate))
            result["fit_table_matches_fit_methods"] = same

    # The bimodal case: n = 20, σ = 1, a N(0, 1) prior on every coefficient.
    cell = Cell(n=BIMODAL_CELL[0], sigma=BIMODAL_CELL[1], beta=setup.beta)
    skeptical = Prior("skeptical_0_1", (0.0,) * cell.p, (1.0,) * cell.p)
    pool = draw(cell, setup.seed, 0, 400)
    flagged = fit_map(sufficient_stats(pool.x, pool.y), skeptical, setup.alpha).multimodal
    bimodal = np.flatnonzero(flagged)[:per_n]
    unimodal = np.flatnonzero(~flagged)[:2]
    picked = sorted([*bimodal.tolist(), *unimodal.tolist()])
    extra = compare_batch(
        "n=20, sigma=1, N(0,1) prior (bimodal)", pool, picked, [skeptical], setup.alpha, records
    )
    result["bimodal"] = {
        "pool": len(pool),
        "flagged_multimodal": int(flagged.sum()),
        "checked_multimodal": len(bimodal),
        "checked_unimodal": len(unimodal),
        "reference_searches_ending_in_different_modes": int(extra["searches_with_distinct_modes"]),
    }

    print(
        f"\n  estimators: regsim.estimators.fit_methods against statsmodels OLS and scipy BFGS "
        f"(MAP: best of\n  the searches from the MLE and from the prior mean); relative error "
        f"|a - b| / max(|b|, 1);\n  tolerances OLS {TOL_OLS:g}, MLE/MAP estimates "
        f"{TOL_ESTIMATE:g}, SEs and bounds {TOL_SE:g}"
    )
    print_table(
        ["case", "method", "prior", "datasets", "estimate", "se", "bounds", "ok"],
        [
            (
                r["case"],
                r["method"],
                r["prior"] or "-",
                r["datasets"],
                f"{r['max_rel_error_estimate']:.1e}",
                f"{r['max_rel_error_se']:.1e}",
                f"{r['max_rel_error_bounds']:.1e}",
                "ok" if r["ok"] else "MISMATCH",
            )
            for r in records
        ],
    )
    b = result["bimodal"]
    print(
        f"\n  bimodal case: {b['flagged_multimodal']} of {b['pool']} datasets flagged multimodal; "
        f"checked {b['checked_multimodal']} of them and {b['checked_unimodal']} unimodal ones;\n"
        f"  the two reference searches ended in different modes on "
        f"{b['reference_searches_ending_in_different_modes']} of them (regsim matched the better)"
    )
    print(f"  fit_table carries the fit_methods numbers: {result['fit_table_matches_fit_methods']}")
    result["estimators"] = records
    result["ok"] = (
        all(r["ok"] for r in data_rows)
        and all(r["ok"] for r in records)
        and result["fit_table_matches_fit_methods"]
        and b["checked_multimodal"] > 0
        and b["reference_searches_ending_in_different_modes"] > 0
    )
    print(f"\n  verification: {'PASSED' if result['ok'] else 'FAILED'}")
    return result


# ======================================================================================
# 2-3. Kernel throughput and the random-number floor
# ======================================================================================


def batch_size(n: int, replications: int) -> int:
    """Datasets per timed batch: ``replications``, halved at n ≥ 1000 to bound memory."""
    return max(replications // 2, 1) if n >= 1000 else replications


def kernel_function(cell: Cell, setup: Setup, replicates: int) -> Callable[[], Any]:
    """One batch of the study's per-dataset work, as a simulate job does it minus the files.

    The datasets are drawn in the job's batches (``batch_replicates(n)``: 200 at
    n = 1000), each batch's statistics computed while it is in cache, and every method
    and prior fitted once on the statistics of all ``replicates``.
    """

    def kernel() -> Any:
        batches = draw_batches(cell, setup.seed, 0, replicates, batch_replicates(cell.n))
        stats = concat_stats([sufficient_stats(b.x, b.y) for b in batches])
        return fit_methods(stats, setup.priors, METHODS, setup.alpha)

    return kernel


def numpy_floor(cell: Cell, seed: int, replicates: int) -> Callable[[], Any]:
    def floor() -> Any:
        generator = Generator(PCG64(seed))
        return (
            generator.random((replicates, cell.n, cell.p - 1)),
            generator.standard_normal((replicates, cell.n)),
        )

    return floor


def kernel_section(setup: Setup, replications: int) -> dict[str, Any]:
    """Sections 2 and 3: kernel throughput, its breakdown and the RNG floor, per n."""
    heading("2. Kernel throughput: draw + statistics + OLS + MLE + global-mode MAP (4 priors)")
    rows = []
    # The default σ at every n, plus the bimodal cell, where MAP needs its profile scan.
    for n, sigma in [*((n, KERNEL_SIGMA) for n in KERNEL_NS), BIMODAL_CELL]:
        cell = Cell(n=n, sigma=sigma, beta=setup.beta)
        replicates = batch_size(n, replications)
        kernel = kernel_function(cell, setup, replicates)
        kernel()  # warm up
        t_kernel, _ = best_of(kernel, setup.repeats)
        per_batch = batch_replicates(n)
        t_draw, batches = best_of(
            lambda c=cell, r=replicates, b=per_batch: list(draw_batches(c, setup.seed, 0, r, b)),
            setup.repeats,
        )
        t_stats, stats = best_of(
            lambda bs=batches: concat_stats([sufficient_stats(b.x, b.y) for b in bs]),
            setup.repeats,
        )
        data = draw(cell, setup.seed, 0, replicates)
        t_ols_mle, _ = best_of(
            lambda s=stats: (fit_ols(s, setup.alpha), fit_mle(s, setup.alpha)), setup.repeats
        )
        t_map, multimodal, converged = {}, {}, {}
        for prior in setup.priors:
            t, fit = best_of(lambda s=stats, pr=prior: fit_map(s, pr, setup.alpha), setup.repeats)
            t_map[prior.name] = t
            multimodal[prior.name] = float(fit.multimodal.mean())
            converged[prior.name] = float(fit.converged.mean())
        t_table, _ = best_of(
            lambda d=data: fit_table(d, setup.priors, list(METHODS), setup.alpha), setup.repeats
        )
        t_uniforms, _ = best_of(
            lambda c=cell, r=replicates: draw_numbers(c, setup.seed, 0, r), setup.repeats
        )
        t_numpy, _ = best_of(numpy_floor(cell, setup.seed, replicates), setup.repeats)
        rows.append(
            {
                "n": n,
                "sigma": sigma,
                "cell": f"n={n}" if sigma == KERNEL_SIGMA else f"n={n}, sigma={sigma:g}",
                "replicates": replicates,
                "kernel_s": t_kernel,
                "kernel_per_s": replicates / t_kernel,
                "parts_s": {
                    "draw": t_draw,
                    "stats": t_stats,
                    "ols+mle": t_ols_mle,
                    **{f"map:{k}": v for k, v in t_map.items()},
                },
                "fit_table_s": t_table,
                "fit_table_per_s": replicates / t_table,
                "map_multimodal_fraction": multimodal,
                "map_converged_fraction": converged,
                "floor_draw_numbers_s": t_uniforms,
                "floor_draw_numbers_per_s": replicates / t_uniforms,
                "floor_numpy_s": t_numpy,
                "floor_numpy_per_s": replicates / t_numpy,
                "ratio_to_draw_numbers": t_uniforms / t_kernel,
                "ratio_to_numpy": t_numpy / t_kernel,
            }
        )

    print(
        f"\n  sigma = {KERNEL_SIGMA:g}, beta = {setup.beta}, priors "
        f"{', '.join(p.name for p in setup.priors)}; best of {setup.repeats};\n"
        f"  n={BIMODAL_CELL[0]}, sigma={BIMODAL_CELL[1]:g} is the cell where the skeptical prior "
        "has two modes (MAP scans its profile there)"
    )
    print_table(
        ["cell", "R", "datasets/s", "µs/dataset", "fit_table (no draw) datasets/s"],
        [
            (
                r["cell"],
                r["replicates"],
                fmt_rate(r["kernel_per_s"]),
                f"{r['kernel_s'] / r['replicates'] * 1e6:.1f}",
                fmt_rate(r["fit_table_per_s"]),
            )
            for r in rows
        ],
    )
    part_names = list(rows[0]["parts_s"])
    print("\n  where the time goes (share of the sum of the parts, each timed alone)")
    print_table(
        ["cell", *part_names, "sum of parts"],
        [
            (
                r["cell"],
                *(f"{100 * r['parts_s'][k] / sum(r['parts_s'].values()):.0f}%" for k in part_names),
                fmt_seconds(sum(r["parts_s"].values())),
            )
            for r in rows
        ],
    )
    print("\n  MAP: share of datasets with two local modes (the profile scan's cases)")
    print_table(
        ["cell", *(p.name for p in setup.priors)],
        [
            (
                r["cell"],
                *(f"{100 * r['map_multimodal_fraction'][p.name]:.1f}%" for p in setup.priors),
            )
            for r in rows
        ],
    )

    heading("3. Random-number floor: the same draws alone, same generator, same run")
    print_table(
        ["n", "R", "draw_numbers/s", "numpy PCG64/s", "kernel/s", "kernel/floor", "target", ""],
        [
            (
                r["n"],
                r["replicates"],
                fmt_rate(r["floor_draw_numbers_per_s"]),
                fmt_rate(r["floor_numpy_per_s"]),
                fmt_rate(r["kernel_per_s"]),
                f"{r['ratio_to_draw_numbers']:.3f}",
                *floor_target(r),
            )
            for r in rows
            if r["sigma"] == KERNEL_SIGMA
        ],
    )
    print(
        "  (numpy PCG64: Generator.random((R, n, k)) + standard_normal((R, n)); "
        "kernel/floor uses draw_numbers: the same uniforms and normals, same streams)"
    )
    return {"rows": rows}


def floor_target(row: dict[str, Any]) -> tuple[str, str]:
    target = {1000: TARGETS["floor_ratio_n1000"], 100: TARGETS["floor_ratio_n100"]}.get(row["n"])
    if target is None:
        return "-", ""
    return f">= {target:g}", status(row["ratio_to_draw_numbers"] >= target)


# ======================================================================================
# 4. The notebook way
# ======================================================================================


def notebook_fit(x: np.ndarray, y: np.ndarray, priors: Sequence[Prior]) -> dict[str, np.ndarray]:
    """One dataset the notebook's way, done right: intercept in the design, signs restored.

    statsmodels OLS, then scipy L-BFGS-B on −Σ log N(y; Xβ, σ) in (β, σ) from β = 0,
    σ = 1, then per prior on −[Σ log N(y; Xβ, σ) + Σ log N(β; μ, η)] from the MLE;
    numerical gradients, default tolerances, as a notebook would.
    """
    import statsmodels.api as sm
    from scipy import optimize, stats

    n, k = x.shape
    X = sm.add_constant(x, prepend=True, has_constant="add")
    ols = sm.OLS(y, X).fit()
    _ = ols.params, ols.bse, ols.conf_int()
    bounds = [(None, None)] * (k + 1) + [(1e-8, None)]

    def nll(theta: np.ndarray) -> float:
        return -float(np.sum(stats.norm.logpdf(y, X @ theta[:-1], theta[-1])))

    mle = optimize.minimize(nll, np.append(np.zeros(k + 1), 1.0), method="L-BFGS-B", bounds=bounds)
    out = {"ols": np.append(ols.params, math.sqrt(ols.scale)), "mle": mle.x}
    for prior in priors:
        mean, sd = np.asarray(prior.mean), np.asarray(prior.sd)
        finite = np.isfinite(sd)

        def nlp(theta: np.ndarray, mean=mean, sd=sd, finite=finite) -> float:
            prior_term = np.sum(stats.norm.logpdf(theta[:-1][finite], mean[finite], sd[finite]))
            return nll(theta) - float(prior_term)

        out[f"map:{prior.name}"] = optimize.minimize(nlp, mle.x, method="L-BFGS-B", bounds=bounds).x
    return out


def notebook_section(setup: Setup, kernel: dict[str, Any], count: int) -> dict[str, Any]:
    """Section 4: per-dataset statsmodels/scipy fits at n = 100 against the kernel."""
    heading("4. The notebook way: one dataset at a time (statsmodels + scipy L-BFGS-B)")
    n = 100
    cell = Cell(n=n, sigma=KERNEL_SIGMA, beta=setup.beta)
    notebook_fit(*_one(cell, setup.seed, 0), setup.priors)  # warm up imports
    start = time.perf_counter()
    results = []
    for r in range(count):
        x, y = _one(cell, setup.seed, r)
        results.append(notebook_fit(x, y, setup.priors))
    elapsed = time.perf_counter() - start
    # How close the notebook's default tolerances get to the exact fits.
    data = draw(cell, setup.seed, 0, count)
    fits = fit_methods(sufficient_stats(data.x, data.y), setup.priors, METHODS, setup.alpha)
    accuracy = {}
    for prior_name, fit in fits:
        key = fit.method if not prior_name else f"map:{prior_name}"
        accuracy[key] = rel_error(np.array([res[key] for res in results]), fit.estimate)
    per_s = count / elapsed
    kernel_row = next(r for r in kernel["rows"] if (r["n"], r["sigma"]) == (n, KERNEL_SIGMA))
    ratio = kernel_row["kernel_per_s"] / per_s
    print(
        f"\n  n = {n}, {count} datasets: per dataset 1 statsmodels OLS + 1 L-BFGS-B MLE + "
        f"{len(setup.priors)} L-BFGS-B MAP fits (and its draw)"
    )
    print_table(
        ["way", "datasets/s", "ms/dataset", "speed-up", "target", ""],
        [
            ("notebook", fmt_rate(per_s), f"{1e3 / per_s:.1f}", "1", "", ""),
            (
                "regsim kernel",
                fmt_rate(kernel_row["kernel_per_s"]),
                f"{1e3 / kernel_row['kernel_per_s']:.4f}",
                f"{ratio:,.0f}x",
                f">= {TARGETS['notebook_ratio']:,.0f}x",
                status(ratio >= TARGETS["notebook_ratio"]),
            ),
        ],
    )
    print(
        "  notebook estimates vs regsim (max relative error, default L-BFGS-B tolerances): "
        + ", ".join(f"{k} {v:.1e}" for k, v in accuracy.items())
    )
    return {
        "n": n,
        "datasets": count,
        "seconds": elapsed,
        "per_s": per_s,
        "kernel_per_s": kernel_row["kernel_per_s"],
        "ratio": ratio,
        "notebook_max_rel_error_vs_regsim": accuracy,
    }


def _one(cell: Cell, seed: int, replicate: int) -> tuple[np.ndarray, np.ndarray]:
    data = draw(cell, seed, replicate, replicate + 1)
    return data.x[0], data.y[0]


# ======================================================================================
# 5. I/O
# ======================================================================================


def io_section(setup: Setup) -> dict[str, Any]:
    """Section 5: dataset files and fit tables, one job's chunk, against the kernel."""
    replicates = setup.per_job
    heading(f"5. I/O: one job's chunk ({replicates} replicates), warm page cache")
    rows = []
    with tempfile.TemporaryDirectory(prefix="regsim-bench-io-") as tmp:
        for n in KERNEL_NS:
            cell = Cell(n=n, sigma=KERNEL_SIGMA, beta=setup.beta)
            data = draw(cell, setup.seed, 0, replicates)
            npz = Path(tmp) / f"n{n}.npz"
            t_save, _ = best_of(lambda d=data, f=npz: save_datasets(f, d), setup.repeats)
            t_load, _ = best_of(lambda f=npz: load_datasets(f), setup.repeats)
            table = fit_table(data, setup.priors, list(METHODS), setup.alpha)
            parquet = Path(tmp) / f"n{n}.parquet"
            t_write, _ = best_of(lambda t=table, f=parquet: write_parquet(t, f), setup.repeats)
            t_read, _ = best_of(lambda f=parquet: read_parquet(f), setup.repeats)
            t_kernel, _ = best_of(kernel_function(cell, setup, replicates), setup.repeats)
            npz_mb = npz.stat().st_size / 1e6
            parquet_mb = parquet.stat().st_size / 1e6
            io_total = t_save + t_load + t_write + t_read
            rows.append(
                {
                    "n": n,
                    "replicates": replicates,
                    "npz_mb": npz_mb,
                    "save_s": t_save,
                    "load_s": t_load,
                    "fit_rows": len(table),
                    "parquet_mb": parquet_mb,
                    "parquet_write_s": t_write,
                    "parquet_read_s": t_read,
                    "kernel_s": t_kernel,
                    "io_share": io_total / (io_total + t_kernel),
                }
            )
    print_table(
        ["n", "npz MB", "save MB/s", "save ds/s", "load MB/s", "load ds/s"],
        [
            (
                r["n"],
                f"{r['npz_mb']:.2f}",
                fmt_rate(r["npz_mb"] / r["save_s"]),
                fmt_rate(r["replicates"] / r["save_s"]),
                fmt_rate(r["npz_mb"] / r["load_s"]),
                fmt_rate(r["replicates"] / r["load_s"]),
            )
            for r in rows
        ],
    )
    print()
    print_table(
        ["n", "fit rows", "parquet MB", "write", "write MB/s", "read", "read MB/s", "I/O share"],
        [
            (
                r["n"],
                f"{r['fit_rows']:,}",
                f"{r['parquet_mb']:.2f}",
                fmt_seconds(r["parquet_write_s"]),
                fmt_rate(r["parquet_mb"] / r["parquet_write_s"]),
                fmt_seconds(r["parquet_read_s"]),
                fmt_rate(r["parquet_mb"] / r["parquet_read_s"]),
                f"{100 * r['io_share']:.0f}%",
            )
            for r in rows
        ],
    )
    print(
        "  I/O share = (npz save + load + parquet write + read) / (that + kernel) for the chunk;"
        "\n  save_datasets fsyncs, so its rate depends on the disk"
    )
    return {"rows": rows}


# ======================================================================================
# 6. End to end
# ======================================================================================


@dataclass
class Measured:
    """A finished subprocess: wall time, peak RSS of its largest process, output."""

    returncode: int
    seconds: float
    max_rss_mb: float
    stdout: str
    stderr: str


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


def run_measured(
    command: Sequence[str], cwd: Path | None = None, timeout: float = 7200
) -> Measured:
    """Run ``command``; return its wall time, output and peak RSS.

    The peak RSS is ``ru_maxrss`` of ``getrusage(RUSAGE_CHILDREN)`` read by a small
    launcher process once the command has finished: the largest resident set of the
    command's process or of any process it waited for (for Snakemake, itself or a job).
    The wall time includes the launcher's start (about 20 ms).
    """
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".rss") as rss,
    ):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, rss.name, *command],
            cwd=cwd,
            env=env,
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


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, dest / name)
    return dest


def run_snakemake(workdir: Path, *args: str, what: str) -> Measured:
    result = run_measured([*snakemake_command(), *args], cwd=workdir)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
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


def read_benchmark_files(workdir: Path) -> dict[str, dict[str, Any]]:
    """Per rule, from Snakemake ``benchmark:`` files under results/benchmarks/: jobs,
    largest max_rss (MB; sampled, so a lower bound, NA for jobs under half a second) and
    the longest and total job time."""
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
            {"jobs": 0, "max_rss_mb": None, "max_pss_mb": None, "max_s": 0.0, "total_s": 0.0},
        )
        for line in lines[1:]:
            record = dict(zip(header, line.split("\t"), strict=False))
            entry["jobs"] += 1
            seconds = _number(record.get("s"))
            if seconds is not None:
                entry["max_s"] = max(entry["max_s"], seconds)
                entry["total_s"] += seconds
            for column in ("max_rss", "max_pss"):
                value = _number(record.get(column))
                if value is not None:
                    entry[f"{column}_mb"] = max(entry[f"{column}_mb"] or 0.0, value)
    return per_rule


def _number(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _job(code: str, **arguments: Any) -> list[str]:
    """A command running ``code`` with ``args`` (the JSON of ``arguments``) defined."""
    prelude = "import json, sys; args = json.loads(sys.argv[1])\n"
    return [sys.executable, "-c", prelude + code, json.dumps(arguments)]


def representative_jobs(workdir: Path, config: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """Rerun one job of each rule in a subprocess on a finished run's files; its peak RSS.

    The largest data cell (largest n, first σ) for simulate (the whole cell when one job
    covers it, else its first chunk, then summarize); the whole study for collect,
    paper (figures and tables, two workers as on 2 cores) and the zip plot.
    """
    cells = regsim.config.cells(config)
    chunks = regsim.config.chunks(config)
    cell = max(cells, key=lambda c: (c.n, -config["grid"]["sigma"].index(c.sigma)))
    label = cell_label(cell)
    first = chunk_label(*chunks[0])
    results = workdir / "results"
    priors = [
        {"name": p.name, "mean": list(p.mean), "sd": list(p.sd)}
        for p in regsim.config.priors(config)
    ]
    expected = {
        "n": config["grid"]["n"],
        "sigma": config["grid"]["sigma"],
        "methods": config["methods"],
        "priors": list(config["priors"]),
    }
    whole_cell = len(chunks) == 1
    errors = regsim.config.error_models(config)
    # A job of all the cells of the largest n when they share one (the default study).
    job_cells = (
        [c for c in cells if c.n == cell.n]
        if regsim.config.simulate_sample_sizes_together(config)
        else [cell]
    )
    outputs = [scratch / cell_label(c) for c in job_cells]
    jobs = {
        "simulate": _job(
            "from regsim.stages import run_simulate_cells\nrun_simulate_cells(**args)",
            cells=[cell_params(c) for c in job_cells],
            seed=config["seed"],
            start=chunks[0][0],
            stop=chunks[0][1],
            priors=priors,
            methods=config["methods"],
            alpha=config["alpha"],
            datasets_outputs=[str(out / f"{first}.npz") for out in outputs],
            fits_outputs=[
                str(out / ("fits.parquet" if whole_cell else "chunk.parquet")) for out in outputs
            ],
            metrics_outputs=[str(out / "metrics.parquet") for out in outputs]
            if whole_cell
            else None,
        ),
    }
    if not whole_cell:
        jobs["summarize"] = _job(
            "from regsim.stages import run_summarize\nrun_summarize(**args)",
            fits=[str(results / "fits" / label / f"{chunk_label(*c)}.parquet") for c in chunks],
            alpha=config["alpha"],
            fits_output=str(scratch / "fits.parquet"),
            metrics_output=str(scratch / "metrics.parquet"),
        )
    jobs |= {
        "collect": _job(
            "from regsim.stages import run_collect\nrun_collect(**args)",
            metrics=[str(results / "metrics" / f"{cell_label(c)}.parquet") for c in cells],
            output=str(scratch / "metrics.csv"),
        ),
        "paper": _job(
            "from regsim.paper import write_paper\n"
            "from regsim.stages import read_metrics\n"
            "args['figures'] = {path: tuple(spec) for path, spec in args['figures'].items()}\n"
            "write_paper(read_metrics(args.pop('metrics')), workers=2, **args)",
            metrics=str(results / "tables" / "metrics.csv"),
            figures={
                str(scratch / "figures" / f"{stem}.pdf"): spec
                for stem, spec in figure_files(errors).items()
            },
            figure_options={family: figure_options(config, family) for family in FIGURES},
            expected=expected,
            alpha=config["alpha"],
            p=len(config["beta"]),
            tables=str(scratch / "tables"),
            measures=["bias", "coverage", "rmse"],
            parameters=[f"beta{j}" for j in range(len(config["beta"]))] + ["sigma"],
            errors=errors,
            failures=str(scratch / "tables" / "failures.md"),
            theory_csv=str(scratch / "tables" / "theory.csv"),
            theory_md=str(scratch / "tables" / "theory.md"),
        ),
        "zip_plot": _job(
            "from regsim.figures import REPLICATE_COLUMNS, ZIP_PDF_RASTER_DPI, save_figure, "
            "zip_plot\n"
            "from regsim.stages import read_parquet\n"
            "fits = read_parquet(args['fits'], only=[*REPLICATE_COLUMNS, 'errors'], "
            "where={'parameter': 'beta1'})\n"
            "figure = zip_plot(fits, n=args['n'], sigma=args['sigma'], "
            "parameter='beta1', alpha=args['alpha'])\n"
            "save_figure(figure, args['output'], vector_raster_dpi=ZIP_PDF_RASTER_DPI)",
            fits=str(results / "fits" / f"{label}.parquet"),
            n=cell.n,
            sigma=cell.sigma,
            alpha=config["alpha"],
            output=str(scratch / "zip.pdf"),
        ),
    }
    measured = {}
    for rule, command in jobs.items():
        result = run_measured(command)
        if result.returncode != 0:
            print(f"  (could not rerun a {rule} job: {result.stderr.strip().splitlines()[-1:]})")
            continue
        measured[rule] = {
            "job": (
                ", ".join(cell_label(c) for c in job_cells)
                if rule == "simulate"
                else label
                if rule in ("summarize", "zip_plot")
                else "study"
            ),
            "seconds": result.seconds,
            "max_rss_mb": result.max_rss_mb,
        }
    return measured


def startup_costs(repeats: int = 3) -> dict[str, float]:
    """Fixed cost every job pays before its work: interpreter start and imports."""
    imports = {
        "python": "pass",
        "simulate/summarize imports": "import regsim.stages",
        "paper imports": "import regsim.paper, regsim.stages",
    }
    return {
        name: min(run_measured([sys.executable, "-c", code]).seconds for _ in range(repeats))
        for name, code in imports.items()
    }


def import_breakdown(
    statement: str = "import regsim.stages",
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


def e2e_section(setup: Setup, with_10k: bool) -> dict[str, Any]:
    """Section 6: the workflow from clean, a no-op rerun, optionally 10 000 replicates."""
    heading("6. End to end: snakemake --cores 2 on a copy of the workflow")
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["replications_per_job"] = setup.per_job
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="regsim-bench-e2e-") as tmp:
        workdir = copy_workflow(Path(tmp) / "default")
        clean = run_snakemake(workdir, "--cores", "2", what="clean run")
        counts = job_counts(clean.stderr + clean.stdout)
        noop = run_snakemake(workdir, "--cores", "2", what="no-op rerun")
        nothing = "Nothing to be done" in (noop.stdout + noop.stderr)
        out["default"] = {
            "clean_s": clean.seconds,
            "jobs": counts,
            "snakemake_tree_max_rss_mb": clean.max_rss_mb,
            "noop_s": noop.seconds,
            "noop_did_nothing": nothing,
        }
        out["benchmark_files"] = read_benchmark_files(workdir)
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        out["representative_jobs"] = representative_jobs(workdir, config, scratch)
        if with_10k:
            big = copy_workflow(Path(tmp) / "study10k")
            run = run_snakemake(
                big, "--cores", "2", "--config", "replications=10000", what="10k run"
            )
            config_10k = {
                **config,
                "replications": 10000,
                # --config replaces the profile's config entry: the schema default applies.
                "replications_per_job": regsim.config.DEFAULT_REPLICATIONS_PER_JOB,
            }
            jobs_10k = representative_jobs(big, config_10k, scratch)
            out["study_10k"] = {
                "clean_s": run.seconds,
                "jobs": job_counts(run.stderr + run.stdout),
                "snakemake_tree_max_rss_mb": run.max_rss_mb,
                # The jobs whose input grows with the replications; the others do not.
                "measured_jobs": {
                    k: v for k, v in jobs_10k.items() if k in ("simulate", "summarize", "zip_plot")
                },
                "benchmark_files": read_benchmark_files(big),
            }
    out["startup_s"] = startup_costs()
    out["import_breakdown_s"] = import_breakdown()

    d = out["default"]
    rows = [
        (
            "default study, clean",
            fmt_seconds(d["clean_s"]),
            d["jobs"].get("total", "?"),
            f"<= {TARGETS['default_study_s']:g} s",
            status(d["clean_s"] <= TARGETS["default_study_s"]),
        ),
        (
            "no-op rerun",
            fmt_seconds(d["noop_s"]),
            0 if d["noop_did_nothing"] else "?",
            f"<= {TARGETS['noop_s']:g} s",
            status(d["noop_s"] <= TARGETS["noop_s"]),
        ),
    ]
    if "study_10k" in out:
        s = out["study_10k"]
        rows.append(
            (
                "replications=10000, clean",
                fmt_seconds(s["clean_s"]),
                s["jobs"].get("total", "?"),
                f"<= {TARGETS['study_10k_s']:g} s",
                status(s["clean_s"] <= TARGETS["study_10k_s"]),
            )
        )
    else:
        rows.append(("replications=10000, clean", "not run (--with-10k)", "", "", ""))
    print_table(["run", "wall", "jobs", "target", ""], rows)
    print(f"  job counts: {', '.join(f'{k} {v}' for k, v in d['jobs'].items() if k != 'total')}")

    print("\n  fixed cost per job (interpreter start + imports, best of 3)")
    print_table(["", "seconds"], [(k, f"{v:.2f}") for k, v in out["startup_s"].items()])
    print(
        "  of which (python -X importtime, cumulative): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in out["import_breakdown_s"].items())
    )
    per_job = out["startup_s"]["simulate/summarize imports"]
    total_jobs = d["jobs"].get("total", 0)
    print(
        f"  => {total_jobs} jobs x {per_job:.2f} s / 2 cores = {total_jobs * per_job / 2:.0f} s "
        "of start-up alone in the default study"
    )

    print(
        "\n  peak RSS per rule: of the largest process of one job rerun in a subprocess"
        "\n  (RUSAGE_CHILDREN ru_maxrss; the paper job with 2 workers, as on 2 cores), and the"
        "\n  largest max_rss and max_pss of the rule's Snakemake benchmark: files (sampled every"
        "\n  0.5 s, summed over a job's processes: max_rss counts the pages the paper job's"
        "\n  workers share with it once per process, max_pss once in all)"
    )
    rss_rows = []
    for rule, m in out["representative_jobs"].items():
        bench = out["benchmark_files"].get(rule, {})
        rss_rows.append(
            (
                rule,
                m["job"],
                f"{m['max_rss_mb']:.0f}",
                fmt_seconds(m["seconds"]),
                _benchmark_mb(bench),
                _benchmark_mb(bench, "max_pss_mb"),
                f"<= {TARGETS['peak_rss_mb']:g}",
                status(m["max_rss_mb"] <= TARGETS["peak_rss_mb"]),
            )
        )
    for rule, m in out.get("study_10k", {}).get("measured_jobs", {}).items():
        rss_rows.append(
            (
                f"{rule} (10k)",
                m["job"],
                f"{m['max_rss_mb']:.0f}",
                fmt_seconds(m["seconds"]),
                _benchmark_mb(out["study_10k"]["benchmark_files"].get(rule, {})),
                _benchmark_mb(out["study_10k"]["benchmark_files"].get(rule, {}), "max_pss_mb"),
                f"<= {TARGETS['peak_rss_mb']:g}",
                status(m["max_rss_mb"] <= TARGETS["peak_rss_mb"]),
            )
        )
    print_table(
        ["rule", "job", "MB", "wall", "benchmark: max_rss", "max_pss", "target", ""], rss_rows
    )
    print(
        f"  largest process of the whole clean run (snakemake or a job): "
        f"{d['snakemake_tree_max_rss_mb']:.0f} MB"
    )
    print_benchmark_files("the clean run", out["benchmark_files"])
    job_seconds = sum(entry["total_s"] for entry in out["benchmark_files"].values())
    if job_seconds:
        d["sum_of_job_seconds"] = job_seconds
        print(
            f"  jobs ran {job_seconds:.1f} s in all (start-up included), i.e. "
            f"{job_seconds / 2:.1f} s on 2 cores, of the {d['clean_s']:.1f} s wall; the rest is "
            "Snakemake's parsing, scheduling and job launching"
        )
    if "study_10k" in out:
        print_benchmark_files("the replications=10000 run", out["study_10k"]["benchmark_files"])
    return out


def _benchmark_mb(entry: dict[str, Any], column: str = "max_rss_mb") -> str:
    return f"{entry[column]:.0f}" if entry.get(column) else "-"


def print_benchmark_files(run: str, files: dict[str, dict[str, Any]]) -> None:
    if not files:
        print(
            f"\n  no Snakemake benchmark: files under {BENCHMARK_DIR}/ after {run} "
            "(the rules have no benchmark: directive)"
        )
        return
    print(f"\n  Snakemake benchmark: files of {run}, per rule")
    print_table(
        ["rule", "jobs", "sum of job times", "longest job", "largest max_rss MB", "max_pss MB"],
        [
            (
                rule,
                entry["jobs"],
                fmt_seconds(entry["total_s"]),
                fmt_seconds(entry["max_s"]),
                _benchmark_mb(entry),
                _benchmark_mb(entry, "max_pss_mb"),
            )
            for rule, entry in sorted(files.items(), key=lambda item: -item[1]["total_s"])
        ],
    )


# ======================================================================================
# 7. Scaling
# ======================================================================================


def scaling_section(setup: Setup) -> dict[str, Any]:
    """Section 7: kernel time against n and against R; dry runs of large grids."""
    heading("7. Scaling")
    fixed_r = 250 if setup.quick else 1000
    ns = (10, 20, 50, 100, 200, 500, 1000)
    by_n = []
    for n in ns:
        cell = Cell(n=n, sigma=KERNEL_SIGMA, beta=setup.beta)
        kernel = kernel_function(cell, setup, fixed_r)
        kernel()
        t, _ = best_of(kernel, setup.repeats)
        t_floor, _ = best_of(lambda c=cell: draw_numbers(c, setup.seed, 0, fixed_r), setup.repeats)
        by_n.append({"n": n, "replicates": fixed_r, "seconds": t, "floor_s": t_floor})
    print(f"\n  kernel time against n (R = {fixed_r}, best of {setup.repeats})")
    base = by_n[0]["seconds"]
    print_table(
        ["n", "time", "µs/dataset", "ns/(dataset·obs)", "x n=10", "floor x n=10"],
        [
            (
                r["n"],
                fmt_seconds(r["seconds"]),
                f"{r['seconds'] / fixed_r * 1e6:.1f}",
                f"{r['seconds'] / fixed_r / r['n'] * 1e9:.0f}",
                f"{r['seconds'] / base:.2f}",
                f"{r['floor_s'] / by_n[0]['floor_s']:.1f}",
            )
            for r in by_n
        ],
    )

    rs = (250, 500, 1000, 2000) if setup.quick else (500, 1000, 2000, 4000)
    by_r = []
    cell = Cell(n=100, sigma=KERNEL_SIGMA, beta=setup.beta)
    for replicates in rs:
        kernel = kernel_function(cell, setup, replicates)
        kernel()
        t, _ = best_of(kernel, setup.repeats)
        by_r.append({"n": 100, "replicates": replicates, "seconds": t})
    print(f"\n  kernel time against R (n = 100, best of {setup.repeats})")
    print_table(
        ["R", "time", "µs/dataset", "per dataset x smallest R"],
        [
            (
                r["replicates"],
                fmt_seconds(r["seconds"]),
                f"{r['seconds'] / r['replicates'] * 1e6:.1f}",
                f"{(r['seconds'] / r['replicates']) / (by_r[0]['seconds'] / rs[0]):.2f}",
            )
            for r in by_r
        ],
    )

    dry = dry_runs(setup)
    return {"by_n": by_n, "by_r": by_r, "dry_runs": dry}


def dry_runs(setup: Setup) -> list[dict[str, Any]]:
    """``snakemake -n`` on grids of 10, 100 and 1000 cells (replications 10: one chunk)."""
    sizes = ((1, 10), (10, 10), (10, 100)) if not setup.quick else ((10, 100),)
    rows = []
    with tempfile.TemporaryDirectory(prefix="regsim-bench-dry-") as tmp:
        workdir = copy_workflow(Path(tmp) / "wf")
        for n_sigma, n_n in sizes:
            grid = {
                "replications": 10,
                "grid": {
                    "n": list(range(10, 10 * n_n + 1, 10)),
                    "sigma": [0.5 * (i + 1) for i in range(n_sigma)],
                },
            }
            path = workdir / f"grid{n_sigma * n_n}.yaml"
            path.write_text(yaml.safe_dump(grid))
            result = run_snakemake(workdir, "-n", "--configfile", path.name, what="dry run")
            counts = job_counts(result.stdout + result.stderr)
            rows.append(
                {
                    "cells": n_sigma * n_n,
                    "jobs": counts.get("total"),
                    "seconds": result.seconds,
                    "max_rss_mb": result.max_rss_mb,
                }
            )
    print("\n  dry run (snakemake -n) of large grids, replications 10 (one chunk per cell)")
    print_table(
        ["cells", "jobs", "wall", "peak RSS MB", "target", ""],
        [
            (
                r["cells"],
                r["jobs"],
                fmt_seconds(r["seconds"]),
                f"{r['max_rss_mb']:.0f}",
                *(
                    (
                        f"<= {TARGETS['dry_run_1000_cells_s']:g} s",
                        status(r["seconds"] <= TARGETS["dry_run_1000_cells_s"]),
                    )
                    if r["cells"] == 1000
                    else ("", "")
                ),
            )
            for r in rows
        ],
    )
    return rows


# ======================================================================================
# Summary and main
# ======================================================================================


def summary(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets, each with its measure and whether it is met (None: not measured)."""
    rows = []
    kernel = {r["n"]: r for r in report["kernel"]["rows"] if r["sigma"] == KERNEL_SIGMA}
    for n, key in ((1000, "floor_ratio_n1000"), (100, "floor_ratio_n100")):
        value = kernel[n]["ratio_to_draw_numbers"]
        rows.append(
            (
                f"kernel/floor at n = {n}",
                f"{value:.3f}",
                f">= {TARGETS[key]:g}",
                value >= TARGETS[key],
            )
        )
    nb = report.get("notebook")
    if nb:
        rows.append(
            (
                "kernel/notebook at n = 100",
                f"{nb['ratio']:,.0f}x",
                f">= {TARGETS['notebook_ratio']:,.0f}x",
                nb["ratio"] >= TARGETS["notebook_ratio"],
            )
        )
    e2e = report.get("e2e")
    if e2e:
        d = e2e["default"]
        rows.append(
            (
                "default study, clean",
                fmt_seconds(d["clean_s"]),
                f"<= {TARGETS['default_study_s']:g} s",
                d["clean_s"] <= TARGETS["default_study_s"],
            )
        )
        rows.append(
            (
                "no-op rerun",
                fmt_seconds(d["noop_s"]),
                f"<= {TARGETS['noop_s']:g} s",
                d["noop_s"] <= TARGETS["noop_s"],
            )
        )
        if "study_10k" in e2e:
            s = e2e["study_10k"]["clean_s"]
            rows.append(
                (
                    "replications=10000, clean",
                    fmt_seconds(s),
                    f"<= {TARGETS['study_10k_s']:g} s",
                    s <= TARGETS["study_10k_s"],
                )
            )
        else:
            rows.append(
                ("replications=10000, clean", "not run", f"<= {TARGETS['study_10k_s']:g} s", None)
            )
        jobs = dict(e2e["representative_jobs"])
        for rule, m in e2e.get("study_10k", {}).get("measured_jobs", {}).items():
            jobs[f"{rule} (10k)"] = m
        if jobs:
            rule, worst = max(jobs.items(), key=lambda item: item[1]["max_rss_mb"])
            rows.append(
                (
                    f"peak RSS of a job (largest: {rule})",
                    f"{worst['max_rss_mb']:.0f} MB",
                    f"<= {TARGETS['peak_rss_mb']:g} MB",
                    worst["max_rss_mb"] <= TARGETS["peak_rss_mb"],
                )
            )
    else:
        for name in (
            "default study, clean",
            "no-op rerun",
            "replications=10000, clean",
            "peak RSS of a job",
        ):
            rows.append((name, "not run (--skip-e2e)", "", None))
    for dry in report["scaling"]["dry_runs"]:
        if dry["cells"] == 1000:
            rows.append(
                (
                    "dry run, 1000 cells",
                    fmt_seconds(dry["seconds"]),
                    f"<= {TARGETS['dry_run_1000_cells_s']:g} s",
                    dry["seconds"] <= TARGETS["dry_run_1000_cells_s"],
                )
            )
    heading("Targets")
    print_table(["target", "measured", "goal", ""], [(a, b, c, status(d)) for a, b, c, d in rows])
    return [{"target": a, "measured": b, "goal": c, "met": d} for a, b, c, d in rows]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Verify, then benchmark regsim (kernel, RNG floor, notebook way, I/O, "
        "workflow end to end, scaling).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller batches, fewer repeats and datasets (a rough look)",
    )
    parser.add_argument(
        "--skip-e2e", action="store_true", help="do not run the workflow end to end (section 6)"
    )
    parser.add_argument(
        "--with-10k",
        action="store_true",
        help="also run the study with --config replications=10000 (long)",
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
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    setup = Setup(
        seed=int(config["seed"]),
        beta=tuple(float(b) for b in config["beta"]),
        alpha=float(config["alpha"]),
        priors=regsim.config.priors(config),
        repeats=args.repeats,
        quick=args.quick,
        per_job=profile_replications_per_job(),
    )
    started = time.perf_counter()
    report: dict[str, Any] = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "targets": TARGETS,
        "machine": machine_info(),
    }
    print_machine(report["machine"])

    report["verification"] = verify(setup, per_n=2 if args.quick else 5)
    if not report["verification"]["ok"]:
        print(
            "\nverification FAILED: the batched fits do not match the references; "
            "nothing was timed",
            file=sys.stderr,
        )
        if args.json:
            args.json.write_text(json.dumps(to_json(report), indent=2) + "\n")
        return 1

    report["kernel"] = kernel_section(setup, args.replications)
    report["notebook"] = notebook_section(setup, report["kernel"], args.notebook_datasets)
    report["io"] = io_section(setup)
    report["e2e"] = None if args.skip_e2e else e2e_section(setup, args.with_10k)
    report["scaling"] = scaling_section(setup)
    report["summary"] = summary(report)
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    report["seconds"] = time.perf_counter() - started
    print(
        f"\nbenchmark took {report['seconds']:.0f} s; load average now "
        f"{' '.join(f'{x:.2f}' for x in report['machine']['load_average_at_end'])}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(report), indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
