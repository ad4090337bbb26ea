"""Sections 2-6: the per-dataset work of a simulate job, timed in this process.

2. kernel throughput per n (draw + statistics + OLS + MLE + MAP for every default prior),
   the cost of each part, and the job's tables of fits on top;
3. the random-number floor: the same random numbers alone, and numpy's own generator;
4. the notebook way: statsmodels OLS and scipy L-BFGS-B fits, one dataset at a time;
5. I/O: a simulate job of the default study with and without its files, reading them
   back, and the collect work for its cells;
6. scaling of the kernel with n and with the number of replicates.

All timings are best of ``Setup.repeats`` after a warm-up call.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.random import PCG64, Generator

from bench.common import (
    BIMODAL_CELL,
    KERNEL_NS,
    KERNEL_SIGMA,
    METHODS,
    TARGETS,
    Setup,
    best_of,
    fmt_rate,
    fmt_seconds,
    heading,
    print_table,
    rel_error,
    status,
)
from regsim.cells import CellFiles, cell_sources, read_source, write_cells
from regsim.design import Cell, Prior, Unit
from regsim.estimators import (
    concat_stats,
    fit_bayes,
    fit_map,
    fit_methods,
    fit_mle,
    fit_ols,
    sufficient_stats,
)
from regsim.fits import fit_batches
from regsim.jobs import run_simulate
from regsim.simulate import batch_replicates, draw, draw_batches, draw_numbers, load_datasets
from regsim.specs import SimulateJob


def batch_size(n: int, replications: int) -> int:
    """Datasets per timed batch: ``replications``, halved at n ≥ 1000 to bound memory."""
    return max(replications // 2, 1) if n >= 1000 else replications


def kernel_function(cell: Cell, setup: Setup, replicates: int) -> Callable[[], Any]:
    """The numbers of a simulate job's work on ``replicates`` datasets, minus tables and files.

    The datasets are drawn in the job's batches (``batch_replicates(n)``: 50 at
    n = 1000), each batch's statistics computed while it is in cache, and every method and
    prior fitted once on the statistics of all ``replicates``.
    """

    def kernel() -> Any:
        batches = draw_batches(cell, setup.seed, 0, replicates, batch_replicates(cell.n))
        stats = concat_stats([sufficient_stats(b.x, b.y) for b in batches])
        return fit_methods(stats, setup.priors, METHODS, setup.alpha, setup.fit.options)

    return kernel


def job_function(cell: Cell, setup: Setup, replicates: int) -> Callable[[], Any]:
    """A simulate job's work on one unit, minus the files: ``fit_batches`` over the job's
    batches, which also builds the tables of fits (as ``regsim.jobs.run_simulate``)."""

    def job() -> Any:
        batches = draw_batches(cell, setup.seed, 0, replicates, batch_replicates(cell.n))
        return list(fit_batches(batches, setup.fit))

    return job


def numpy_floor(cell: Cell, seed: int, replicates: int) -> Callable[[], Any]:
    def floor() -> Any:
        generator = Generator(PCG64(seed))
        return (
            generator.random((replicates, cell.n, cell.p - 1)),
            generator.standard_normal((replicates, cell.n)),
        )

    return floor


# --------------------------------------------------------------------------------------
# 2-3. Kernel throughput and the random-number floor
# --------------------------------------------------------------------------------------


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
        t_ols_mle, _ = best_of(
            lambda s=stats: (fit_ols(s, setup.alpha), fit_mle(s, setup.alpha)), setup.repeats
        )
        t_map, multimodal, converged = {}, {}, {}
        for prior in setup.priors:
            t, fit = best_of(lambda s=stats, pr=prior: fit_map(s, pr, setup.alpha), setup.repeats)
            t_map[prior.name] = t
            multimodal[prior.name] = float(fit.multimodal.mean())
            converged[prior.name] = float(fit.converged.mean())
        job = job_function(cell, setup, replicates)
        job()
        t_job, _ = best_of(job, setup.repeats)
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
                "job_s": t_job,
                "job_per_s": replicates / t_job,
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
        "has two modes (MAP scans its profile there);\n"
        "  with tables: fit_batches, the kernel plus the tables of fits a simulate job writes"
    )
    print_table(
        ["cell", "R", "datasets/s", "µs/dataset", "with tables: datasets/s", "tables' share"],
        [
            (
                r["cell"],
                r["replicates"],
                fmt_rate(r["kernel_per_s"]),
                f"{r['kernel_s'] / r['replicates'] * 1e6:.1f}",
                fmt_rate(r["job_per_s"]),
                f"{100 * max(r['job_s'] - r['kernel_s'], 0.0) / r['job_s']:.0f}%",
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


#: Cells of the Bayes-against-MAP timing: the sizes the target names, and the bimodal cell.
BAYES_CELLS = ((20, KERNEL_SIGMA), (1000, KERNEL_SIGMA), BIMODAL_CELL)


def bayes_section(setup: Setup, replications: int) -> dict[str, Any]:
    """Section 2b: the exact posterior (``fit_bayes``) against MAP, per prior, same statistics.

    Both fit the same sufficient statistics of the job's batches; each fit is timed alone
    (best of ``Setup.repeats`` after a warm-up). The target compares the sums over the
    default priors: Bayes for 4 priors at most 4 times MAP for 4 priors, per dataset.
    """
    heading("2b. Exact posterior (bayes) against MAP: 4 priors, the same statistics")
    rows = []
    for n, sigma in BAYES_CELLS:
        cell = Cell(n=n, sigma=sigma, beta=setup.beta)
        replicates = batch_size(n, replications)
        batches = draw_batches(cell, setup.seed, 0, replicates, batch_replicates(n))
        stats = concat_stats([sufficient_stats(b.x, b.y) for b in batches])
        t_map, t_bayes, bimodal = {}, {}, {}
        for prior in setup.priors:
            fit_map(stats, prior, setup.alpha)
            t_map[prior.name], _ = best_of(
                lambda pr=prior, s=stats: fit_map(s, pr, setup.alpha), setup.repeats
            )
            fit_bayes(stats, prior, setup.alpha)
            t_bayes[prior.name], fit = best_of(
                lambda pr=prior, s=stats: fit_bayes(s, pr, setup.alpha), setup.repeats
            )
            bimodal[prior.name] = float(fit.multimodal.mean())
        map_s, bayes_s = sum(t_map.values()), sum(t_bayes.values())
        rows.append(
            {
                "n": n,
                "sigma": sigma,
                "cell": f"n={n}, sigma={sigma:g}",
                "replicates": replicates,
                "map_s": t_map,
                "bayes_s": t_bayes,
                "bayes_bimodal_fraction": bimodal,
                "map_us_per_dataset": map_s / replicates * 1e6,
                "bayes_us_per_dataset": bayes_s / replicates * 1e6,
                "ratio": bayes_s / map_s,
            }
        )
    print(
        f"  µs per dataset for the {len(setup.priors)} priors together; per prior, "
        "bayes/MAP and the share of sigma-posteriors with two modes"
    )
    print_table(
        [
            "cell",
            "R",
            "MAP µs",
            "bayes µs",
            "bayes/MAP",
            *(f"{p.name}: ratio, bimodal" for p in setup.priors),
        ],
        [
            (
                r["cell"],
                r["replicates"],
                f"{r['map_us_per_dataset']:.1f}",
                f"{r['bayes_us_per_dataset']:.1f}",
                f"{r['ratio']:.1f}",
                *(
                    f"{r['bayes_s'][p.name] / r['map_s'][p.name]:.1f}, "
                    f"{100 * r['bayes_bimodal_fraction'][p.name]:.0f}%"
                    for p in setup.priors
                ),
            )
            for r in rows
        ],
    )
    return {"rows": rows}


def floor_target(row: dict[str, Any]) -> tuple[str, str]:
    target = {1000: TARGETS["floor_ratio_n1000"], 100: TARGETS["floor_ratio_n100"]}.get(row["n"])
    if target is None:
        return "-", ""
    return f">= {target:g}", status(row["ratio_to_draw_numbers"] >= target)


# --------------------------------------------------------------------------------------
# 4. The notebook way
# --------------------------------------------------------------------------------------


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


def _one(cell: Cell, seed: int, replicate: int) -> tuple[np.ndarray, np.ndarray]:
    data = draw(cell, seed, replicate, replicate + 1)
    return data.x[0], data.y[0]


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
        f"\n  n = {n}, {count} datasets (timed once): per dataset 1 statsmodels OLS + 1 L-BFGS-B "
        f"MLE + {len(setup.priors)} L-BFGS-B MAP fits (and its draw)"
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


# --------------------------------------------------------------------------------------
# 5. I/O
# --------------------------------------------------------------------------------------


def io_job(setup: Setup, n: int, replicates: int | None) -> SimulateJob:
    """The default study's simulate job of sample size ``n`` (its first one), perhaps with
    only ``replicates`` replicates per unit."""
    name = next(name for name, job in setup.study.plan.items() if job.units[0].cell.n == n)
    job = setup.study.simulate_job(name)
    if replicates is None:
        return job
    units = tuple(Unit(u.cell, u.start, min(u.stop, u.start + replicates)) for u in job.units)
    return dataclasses.replace(job, units=units)


def io_section(setup: Setup, replicates: int | None) -> dict[str, Any]:
    """Section 5: a simulate job with and without its files, and reading them back."""
    heading("5. I/O: a simulate job of the default study, its files, warm page cache")
    rows = []
    with tempfile.TemporaryDirectory(prefix="regsim-bench-io-") as tmp:
        for n in KERNEL_NS:
            job = io_job(setup, n, replicates)
            npz, chunk = Path(tmp) / f"n{n}.npz", Path(tmp) / f"n{n}.parquet"

            def in_memory(job: SimulateJob = job) -> None:
                for unit in job.units:
                    cell = unit.cell
                    size = batch_replicates(cell.n)
                    batches = draw_batches(cell, job.seed, unit.start, unit.stop, size)
                    for _ in fit_batches(batches, job.fit):
                        pass

            in_memory()
            t_memory, _ = best_of(in_memory, setup.repeats)
            t_fits, _ = best_of(lambda j=job, c=chunk: run_simulate(j, c), setup.repeats)
            t_full, _ = best_of(lambda j=job, c=chunk, d=npz: run_simulate(j, c, d), setup.repeats)
            t_load, _ = best_of(lambda d=npz: load_datasets(d), setup.repeats)
            sources = cell_sources([chunk])
            t_read, _ = best_of(
                lambda s=sources: [read_source(x) for parts in s.values() for x in parts],
                setup.repeats,
            )
            out = Path(tmp) / f"cells{n}"

            def collect(sources=sources, out=out) -> None:
                cells = [
                    CellFiles(parts, out / f"{label}.fits", out / f"{label}.metrics")
                    for label, parts in sources.items()
                ]
                write_cells(cells, setup.alpha)

            t_collect, _ = best_of(collect, setup.repeats)
            rows.append(
                {
                    "job": job.name,
                    "n": n,
                    "units": len(job.units),
                    "replicates": sum(u.replicates for u in job.units),
                    "npz_mb": npz.stat().st_size / 1e6,
                    "chunk_mb": chunk.stat().st_size / 1e6,
                    "in_memory_s": t_memory,
                    "simulate_fits_s": t_fits,
                    "simulate_fits_datasets_s": t_full,
                    "load_datasets_s": t_load,
                    "read_chunk_s": t_read,
                    "write_cell_s": t_collect,
                    "file_share": max(t_full - t_memory, 0.0) / t_full,
                }
            )
    print(
        f"  best of {setup.repeats}; in memory: draws, fits and tables of fits alone; "
        "run_simulate: the rule's body\n  writing its chunk of fits, then also its dataset file"
    )
    print_table(
        [
            "job",
            "replicates",
            "in memory",
            "run_simulate",
            "+ datasets",
            "files' share",
            "npz MB",
            "chunk MB",
        ],
        [
            (
                f"{r['job']} ({r['units']} cells)",
                f"{r['replicates']:,}",
                fmt_seconds(r["in_memory_s"]),
                fmt_seconds(r["simulate_fits_s"]),
                fmt_seconds(r["simulate_fits_datasets_s"]),
                f"{100 * r['file_share']:.0f}%",
                f"{r['npz_mb']:.1f}",
                f"{r['chunk_mb']:.2f}",
            )
            for r in rows
        ],
    )
    print()
    print_table(
        ["job", "load_datasets", "MB/s", "read chunk", "write_cells, its cells"],
        [
            (
                r["job"],
                fmt_seconds(r["load_datasets_s"]),
                fmt_rate(r["npz_mb"] / r["load_datasets_s"]),
                fmt_seconds(r["read_chunk_s"]),
                fmt_seconds(r["write_cell_s"]),
            )
            for r in rows
        ],
    )
    print(
        "  files' share = (run_simulate with both files - in memory) / run_simulate with both;"
        "\n  outputs are fsynced, so the writes depend on the disk; write_cells is what the"
        "\n  collect job does for them (read the chunks, sort, metrics, two parquet files a cell)"
    )
    return {"rows": rows}


# --------------------------------------------------------------------------------------
# 6. Scaling of the kernel
# --------------------------------------------------------------------------------------


def scaling_section(setup: Setup) -> dict[str, Any]:
    """Section 6: kernel time against n and against R."""
    heading("6. Scaling of the kernel")
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
    return {"by_n": by_n, "by_r": by_r}
