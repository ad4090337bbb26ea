"""The simulation against exact finite-sample theory, for the normal-error cells.

Under normal errors :mod:`regsim.theory` gives, for each cell with p coefficients and any
covariate design, fixed or random (the results hold given X, so for every X):

* the coverage of the OLS t interval of every β_j, 1 − α, and the size of its test of
  β_j = 0, α, where β_j is truly 0;
* the coverage of the MLE Wald interval (:func:`~regsim.theory.mle_wald_coverage`) and
  the size of its test, one minus that;
* E[s] of the OLS σ estimate and E[σ̂] of the MLE.

For a normal random design (N(0, R) covariates, equicorrelation ρ) the variance of each
OLS coefficient is known too (:func:`~regsim.theory.ols_variance_normal_design`, the
inverse-Wishart mean), and for a fixed design it is σ²·[(XᵀX)⁻¹]_jj with the design's own
X (:func:`regsim.simulate.fixed_covariates`); OLS is unbiased, so it is compared with the
simulated MSE, whose MCSE needs no normality. :func:`theory_table` sets the simulated
value (from ``metrics.csv``, each method over the replicates it fitted itself, whatever
the study's failure rule; with its Monte Carlo SE) beside each exact one, with
z = (simulated − exact)/SE (for a proportion, SE = √(p(1 − p)/R) at the exact p): |z|
well beyond 3 in many rows would point to a bug in the simulation or in the estimators,
not to chance.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from regsim.atomic import write_text_atomic
from regsim.errors import InputDataError
from regsim.schema import (
    DEFAULT_ERRORS,
    OPTIONAL_FACTORS,
    beta_index,
    format_number,
    method_name,
)
from regsim.tableio import write_csv_atomic
from regsim.theory import (
    expected_s,
    expected_sigma_mle,
    mle_wald_coverage,
    ols_coverage,
    ols_variance_normal_design,
)

#: Columns of the theory table, in file order.
THEORY_COLUMNS: tuple[str, ...] = (
    "n",
    "sigma",
    *(item.name for item in OPTIONAL_FACTORS),
    "method",
    "parameter",
    "quantity",
    "simulated",
    "mcse",
    "exact",
    "z",
)

_NEEDED = ("n", "sigma", "prior", "method", "parameter", "measure", "estimate", "mcse")

#: The methods compared with exact theory.
THEORY_METHODS: tuple[str, ...] = ("ols", "mle")

#: Order of the quantities within a cell and method.
_QUANTITIES = ("coverage", "size", "variance", "mean")

Designs = Mapping[str, Mapping[str, Any]]
"""Design name -> its settings (``covariates``, ``rho``, ``fixed``), as in the config."""


def _beta_key(parameter: str) -> int:
    j = beta_index(parameter)
    return 10**9 if j is None else j


def _fixed_inverse_gram(design: Mapping[str, Any], name: str, n: int, p: int, seed: int) -> Any:
    """(XᵀX)⁻¹ of a fixed design's X at ``n`` (with the intercept column)."""
    from regsim.design import Design
    from regsim.simulate import fixed_covariates

    covariates = fixed_covariates(Design(name=name, **design), n, p - 1, seed)
    x = np.column_stack([np.ones(n), covariates])
    return np.linalg.inv(x.T @ x)


def theory_table(
    metrics: pd.DataFrame,
    alpha: float,
    p: int,
    designs: Designs | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Simulated against exact values for the normal-error cells of a metrics table.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The long metrics table (``metrics.csv``); rows of non-normal error models (an
        ``errors`` column other than ``normal``) are left out. Exact theory describes a
        method over every dataset it fits: under the ``common`` failure rule, pass the
        methods' own-rule measures (``regsim.sensitivity.own_rule_metrics``), not those
        left on the replicates every other method fitted too.
    alpha : float
        Nominal level of the intervals.
    p : int
        Number of coefficients.
    designs : mapping, optional
        The study's designs by name (``covariates``, ``rho``, ``fixed``), for the exact
        variance of the OLS coefficients under a normal random or a fixed design; without
        it (or for a design it does not name) no variance rows.
    seed : int, optional
        The study's base seed, which a fixed design's X is drawn from; without it a fixed
        design has no variance rows.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`THEORY_COLUMNS`, one row per cell and:

        * ``ols``, each ``beta<j>``, ``coverage``: exact 1 − α;
        * ``ols``, each ``beta<j>`` whose true value is 0, ``size``: exact α;
        * ``ols``, each ``beta<j>``, ``variance`` (normal random or fixed designs): the
          simulated MSE against the exact variance;
        * ``ols``, ``sigma``, ``mean``: mean of s = σ + bias, exact ``expected_s``;
        * the same for ``mle`` (coverage, size, σ̂ mean: ``mle_wald_coverage``, one minus
          it, ``expected_sigma_mle``).

        ``mcse`` is that of the simulated value; ``z`` = (simulated − exact)/SE with SE
        the MCSE, except for a coverage or size p̂ from R replicates (the ``n_reps`` row of
        its group; without one, the MCSE), whose SE is √(p(1 − p)/R) at the exact p: its
        sampling SE if the simulation is right (the MCSE at p̂ would overstate |z| when p̂
        is far from p). z is NaN when the SE is 0 or unknown. Methods absent from the
        table give no rows.
        Sorted by the cell's factors, method (ols, mle), parameter, quantity.
    """
    if not isinstance(metrics, pd.DataFrame):
        raise InputDataError(f"expected a pandas DataFrame, got {type(metrics).__name__}")
    missing = [c for c in _NEEDED if c not in metrics.columns]
    if missing:
        raise InputDataError(f"metrics table: missing column(s) {', '.join(missing)}")
    designs = designs or {}
    table = metrics.copy()
    for item in OPTIONAL_FACTORS:
        if item.name not in table.columns:
            table[item.name] = item.default
        table[item.name] = table[item.name].fillna(item.default).astype(str)
    if "true" not in table.columns:
        table["true"] = np.nan
    table = table.loc[table["errors"] == DEFAULT_ERRORS]  # the exact results assume it
    prior = table["prior"].astype(object).where(table["prior"].notna(), "")
    table = table.loc[(prior == "") & table["method"].isin(list(THEORY_METHODS))]
    factors = [item.name for item in OPTIONAL_FACTORS]
    group = ["n", "sigma", *factors, "method", "parameter"]
    counts = table.loc[table["measure"] == "n_reps"]
    replicates = dict(
        zip(map(tuple, counts[group].astype(str).to_numpy()), counts["estimate"], strict=True)
    )
    rows = []
    inverse_grams: dict[tuple[str, int], Any] = {}
    for r in table.itertuples(index=False):
        n, sigma, method, parameter = int(r.n), float(r.sigma), str(r.method), str(r.parameter)
        j = beta_index(parameter)
        simulated, quantity, exact = float(r.estimate), None, math.nan
        if j is not None and r.measure == "coverage":
            exact = ols_coverage(alpha) if method == "ols" else mle_wald_coverage(n, p, alpha)
            quantity = "coverage"
        elif j is not None and r.measure == "rejection" and float(r.true) == 0.0:
            cover = ols_coverage(alpha) if method == "ols" else mle_wald_coverage(n, p, alpha)
            quantity, exact = "size", 1.0 - cover
        elif j is not None and r.measure == "mse" and method == "ols":
            design = designs.get(str(r.design))
            if design is None:
                continue
            if design.get("fixed"):
                if seed is None:
                    continue
                key = (str(r.design), n)
                if key not in inverse_grams:
                    inverse_grams[key] = _fixed_inverse_gram(design, key[0], n, p, seed)
                quantity, exact = "variance", sigma**2 * float(inverse_grams[key][j, j])
            elif design.get("covariates") == "normal" and n > p + 1:
                rho = float(design.get("rho", 0.0))
                quantity, exact = "variance", ols_variance_normal_design(n, p, rho, sigma, j)
        elif parameter == "sigma" and r.measure == "bias":
            exact = (expected_s if method == "ols" else expected_sigma_mle)(n, p, sigma)
            quantity, simulated = "mean", sigma + float(r.estimate)
        if quantity is None:
            continue
        mcse = float(r.mcse)
        scale = mcse
        count = replicates.get(tuple(str(getattr(r, c)) for c in group), math.nan)
        if quantity in ("coverage", "size") and count > 0:
            # A proportion's SE where the simulation is right: √(p(1 − p)/R) at the exact p
            # (the MCSE at the estimate overstates |z| for an estimate far from p).
            scale = math.sqrt(exact * (1.0 - exact) / count)
        z = (simulated - exact) / scale if math.isfinite(scale) and scale > 0 else math.nan
        levels = [getattr(r, name) for name in factors]
        rows.append((n, sigma, *levels, method, parameter, quantity, simulated, mcse, exact, z))
    out = pd.DataFrame(rows, columns=list(THEORY_COLUMNS))
    ranks = {item.name: item.rank for item in OPTIONAL_FACTORS}
    order = {"ols": 0, "mle": 1}
    keys = [
        (
            row.n,
            row.sigma,
            *(ranks[name](getattr(row, name)) for name in factors),
            order[row.method],
            row.parameter == "sigma",
            _beta_key(row.parameter),
            _QUANTITIES.index(row.quantity),
        )
        for row in out.itertuples(index=False)
    ]
    out = out.iloc[sorted(range(len(out)), key=keys.__getitem__)].reset_index(drop=True)
    return out


def theory_markdown(table: pd.DataFrame) -> str:
    """The theory table as Markdown, with a heading and how to read it."""
    lines = [
        "# Simulation against exact theory (normal errors)",
        "",
        "Coverage of the OLS t and MLE Wald intervals of each β_j and the size of their tests",
        "where β_j = 0 (any design, fixed or random), the variance of the OLS coefficients",
        "(normal random and fixed designs, against the simulated MSE), and the means of s",
        "(OLS) and σ̂ (MLE), against their exact finite-sample values;",
        "z = (simulated − exact) / SE, with SE the MCSE, or √(p(1 − p)/R) at the exact p for",
        "a coverage or size. With no bug, z is roughly standard normal: |z| > 3 should be rare.",
        "",
    ]
    if table.empty:
        return "\n".join([*lines, "No normal-error OLS or MLE rows to compare.", ""])
    factors = [
        item.name
        for item in OPTIONAL_FACTORS
        if item.name != "errors" and (table[item.name] != item.default).any()
    ]
    header = ["n", "σ", *factors, "method", "parameter", "quantity"]
    header += ["simulated", "MCSE", "exact", "z"]
    align = ["---:", "---:", *(["---"] * (len(factors) + 3)), "---:", "---:", "---:", "---:"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for r in table.itertuples(index=False):
        z = "" if not math.isfinite(r.z) else f"{r.z:.2f}"
        levels = [str(getattr(r, name)) for name in factors]
        cells = [str(r.n), format_number(r.sigma), *levels, method_name(r.method), r.parameter]
        cells += [r.quantity, _shown(r.simulated), _shown(r.mcse), _shown(r.exact), z]
        lines.append("| " + " | ".join(cells) + " |")
    finite = np.abs(table["z"].to_numpy(dtype=float))
    finite = finite[np.isfinite(finite)]
    if finite.size:
        lines += ["", f"Largest |z|: {finite.max():.2f} over {finite.size} rows.", ""]
    return "\n".join(lines)


def _shown(value: float) -> str:
    """Four decimals, or four significant digits for values below 0.01 (variances)."""
    return f"{value:.4f}" if abs(value) >= 0.01 or value == 0 else f"{value:.4g}"


def write_theory(
    metrics: pd.DataFrame,
    *,
    alpha: float,
    p: int,
    csv: str | os.PathLike[str],
    markdown: str | os.PathLike[str],
    designs: Designs | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Write :func:`theory_table` as CSV (``%.17g``) and Markdown, atomically; return it."""
    table = theory_table(metrics, alpha, p, designs, seed)
    shown = table.assign(sigma=[format_number(s) for s in table["sigma"]])
    write_csv_atomic(shown, csv)
    text = theory_markdown(table)
    write_text_atomic(markdown, text)
    return table


__all__ = ["THEORY_COLUMNS", "THEORY_METHODS", "theory_table", "theory_markdown", "write_theory"]
