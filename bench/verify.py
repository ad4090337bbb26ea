"""Section 1: the correctness check made before anything is timed.

* The seeded datasets: ``draw()`` against the documented seeding scheme rebuilt one
  replicate at a time.
* The batched fits: ``fit_methods`` against the per-dataset references of the unit tests
  (``tests/unit/reference.py``: statsmodels OLS with the exact χ² interval for σ; the MLE
  by BFGS on the full Gaussian negative log-likelihood in (β, log σ), polished by a
  trust-region run; MAP as the better of the local searches from the MLE and from the
  prior mean; standard errors from the inverse of the analytic Hessian of f(β, σ)).
* What simulate jobs write: the tables of ``fit_batches`` over the job's batches carry
  exactly the ``fit_methods`` numbers.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.random import PCG64, Generator, SeedSequence
from scipy import stats

from bench.common import (
    BIMODAL_CELL,
    KERNEL_NS,
    KERNEL_SIGMA,
    METHODS,
    ROOT,
    Setup,
    heading,
    print_table,
    rel_error,
)
from regsim.design import Cell, Prior
from regsim.estimators import fit_map, fit_methods, parameter_names, sufficient_stats
from regsim.fits import fit_batches
from regsim.simulate import BLOCK_REPLICATES, batch_replicates, draw, draw_batches, draw_numbers

if str(ROOT / "tests" / "unit") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests" / "unit"))

import reference  # noqa: E402 - tests/unit/reference.py, the unit tests' references

#: Tolerances of the verification: relative error |a − b| / max(|b|, 1).
TOL_OLS = 1e-8  # closed form against statsmodels
TOL_ESTIMATE = 1e-5  # against an optimiser
TOL_SE = 1e-4  # standard errors and interval bounds from the Hessian at the optimiser's point


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


def _wald(estimate: np.ndarray, covariance: np.ndarray, z: float) -> tuple[np.ndarray, ...]:
    se = np.sqrt(np.diag(covariance))
    return estimate, se, estimate - z * se, estimate + z * se


def reference_fits(x: np.ndarray, y: np.ndarray, priors: Sequence[Prior], alpha: float):
    """OLS, MLE and MAP of one dataset by the unit tests' references, one dataset at a time.

    Returns ``{(method, prior): (estimate, se, lower, upper)}`` plus, per prior, the σ of
    the two local MAP searches (from the MLE and from the prior mean).
    """
    n, k = x.shape
    p = k + 1
    X = reference.design(x)
    ols = reference.ols_statsmodels(x, y, alpha)
    df = ols["df"]
    out: dict[tuple[str, str], tuple[np.ndarray, ...]] = {}
    out["ols", ""] = (
        np.append(ols["params"], ols["sigma"]),
        np.append(ols["bse"], ols["sigma"] / math.sqrt(2 * df)),
        *(
            np.append(ols["conf_int"][:, side], bound)
            for side, bound in enumerate(reference.sigma_chi2_interval(ols["rss"], df, alpha))
        ),
    )
    z = float(stats.norm.isf(alpha / 2))
    flat_mean, flat_sd = np.zeros(p), np.full(p, np.inf)
    beta, sigma = reference.mle_scipy(X, y)
    information = reference.hessian(beta, sigma, X, y, flat_mean, flat_sd)
    out["mle", ""] = _wald(np.append(beta, sigma), np.linalg.inv(information), z)
    searches: dict[str, list[float]] = {}
    for prior in priors:
        mean, sd = np.asarray(prior.mean), np.asarray(prior.sd)
        found = reference.map_scipy(X, y, mean, sd)
        hessian = reference.hessian(found["beta"], found["sigma"], X, y, mean, sd)
        estimate = np.append(found["beta"], found["sigma"])
        out["map", prior.name] = _wald(estimate, np.linalg.inv(hessian), z)
        searches[prior.name] = [found["from_mle"][2], found["from_prior"][2]]
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
    batch = sufficient_stats(datasets.x, datasets.y)
    fits = {(f.method, name): f for name, f in fit_methods(batch, priors, METHODS, alpha)}
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


def job_tables_match(cell: Cell, setup: Setup, replicates: int) -> bool:
    """Whether the tables a simulate job writes (``fit_batches`` over the job's batches,
    here several) hold exactly the ``fit_methods`` numbers of the same datasets."""
    size = max(1, min(batch_replicates(cell.n), replicates // 3))
    tables = list(fit_batches(draw_batches(cell, setup.seed, 0, replicates, size), setup.fit))
    table = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    data = draw(cell, setup.seed, 0, replicates)
    names = parameter_names(cell.p)
    same = True
    for prior_name, fit in fit_methods(
        sufficient_stats(data.x, data.y), setup.priors, METHODS, setup.alpha
    ):
        rows = table[(table["method"] == fit.method) & (table["prior"] == prior_name)]
        for column in ("estimate", "se", "lower", "upper"):
            wide = rows.pivot(index="replicate", columns="parameter", values=column)
            same &= bool(np.array_equal(wide[names].to_numpy(), getattr(fit, column)))
    return same


def verify(setup: Setup, per_n: int) -> dict[str, Any]:
    """Section 1: data and estimators against their references. Exit 1 on any mismatch."""
    heading("1. Verification (before any timing)")
    result: dict[str, Any] = {"ok": True}

    # Datasets: draw() against the seeding scheme, for a range across two seeding blocks.
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
    # What a simulate job writes carries exactly the fit_methods numbers.
    job_cell = Cell(n=KERNEL_NS[0], sigma=KERNEL_SIGMA, beta=setup.beta)
    result["job_tables_match_fit_methods"] = job_tables_match(job_cell, setup, 60)

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
        "\n  estimators: regsim.estimators.fit_methods against tests/unit/reference.py "
        "(statsmodels OLS; MLE by\n  BFGS then trust-region; MAP: best of the searches from "
        "the MLE and from the prior mean; SEs from\n  the analytic Hessian); relative error "
        f"|a - b| / max(|b|, 1); tolerances OLS {TOL_OLS:g},\n  MLE/MAP estimates "
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
    print(
        "  the tables of fits a simulate job writes (fit_batches) carry the fit_methods "
        f"numbers: {result['job_tables_match_fit_methods']}"
    )
    result["estimators"] = records
    result["ok"] = (
        all(r["ok"] for r in data_rows)
        and all(r["ok"] for r in records)
        and result["job_tables_match_fit_methods"]
        and b["checked_multimodal"] > 0
        and b["reference_searches_ending_in_different_modes"] > 0
    )
    print(f"\n  verification: {'PASSED' if result['ok'] else 'FAILED'}")
    return result
