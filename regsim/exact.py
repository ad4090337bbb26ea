"""The simulation against exact finite-sample theory, for the normal-error cells.

Under normal errors :mod:`regsim.theory` gives, for each cell (n, σ) with p coefficients:
the coverage of the OLS t interval of every β_j (1 − α), that of the MLE Wald interval
(:func:`~regsim.theory.mle_wald_coverage`), E[s] of the OLS σ estimate and E[σ̂] of the
MLE. :func:`theory_table` sets the simulated value (from ``metrics.csv``, with its Monte
Carlo SE) beside each, with z = (simulated − exact)/MCSE: |z| well beyond 2–3 in many rows
would point to a bug in the simulation or in the estimators, not to chance.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd

from regsim.atomic import write_atomic, write_text_atomic
from regsim.errors import InputDataError
from regsim.schema import DEFAULT_ERRORS, beta_index, format_number
from regsim.theory import expected_s, expected_sigma_mle, mle_wald_coverage, ols_coverage

#: Columns of the theory table, in file order.
THEORY_COLUMNS: tuple[str, ...] = (
    "n",
    "sigma",
    "method",
    "parameter",
    "quantity",
    "simulated",
    "mcse",
    "exact",
    "z",
)

_NEEDED = ("n", "sigma", "prior", "method", "parameter", "measure", "estimate", "mcse")


def _beta_key(parameter: str) -> int:
    j = beta_index(parameter)
    return 10**9 if j is None else j


def theory_table(metrics: pd.DataFrame, alpha: float, p: int) -> pd.DataFrame:
    """Simulated against exact values for the normal-error cells of a metrics table.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The long metrics table (``metrics.csv``); rows of non-normal error models (an
        ``errors`` column other than ``normal``) are left out.
    alpha : float
        Nominal level of the intervals.
    p : int
        Number of coefficients, len(beta).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`THEORY_COLUMNS`, one row per cell and:

        * ``ols``, each ``beta<j>``, ``coverage``: exact 1 − α;
        * ``mle``, each ``beta<j>``, ``coverage``: exact ``mle_wald_coverage(n, p, alpha)``;
        * ``ols``, ``sigma``, ``mean``: mean of s = σ + bias, exact ``expected_s``;
        * ``mle``, ``sigma``, ``mean``: mean of σ̂ = σ + bias, exact ``expected_sigma_mle``.

        ``mcse`` is that of the coverage or bias; ``z`` = (simulated − exact)/mcse (NaN
        when the MCSE is 0 or missing). Methods absent from the table give no rows.
        Sorted by n, sigma, method (ols, mle), parameter.
    """
    if not isinstance(metrics, pd.DataFrame):
        raise InputDataError(f"expected a pandas DataFrame, got {type(metrics).__name__}")
    missing = [c for c in _NEEDED if c not in metrics.columns]
    if missing:
        raise InputDataError(f"metrics table: missing column(s) {', '.join(missing)}")
    table = metrics
    if "errors" in table.columns:  # the exact results assume normal errors
        table = table.loc[table["errors"].fillna(DEFAULT_ERRORS) == DEFAULT_ERRORS]
    prior = table["prior"].astype(object).where(table["prior"].notna(), "")
    table = table.loc[(prior == "") & table["method"].isin(["ols", "mle"])]
    rows = []
    for r in table.itertuples(index=False):
        n, sigma, method, parameter = int(r.n), float(r.sigma), str(r.method), str(r.parameter)
        if parameter.startswith("beta") and r.measure == "coverage":
            exact = ols_coverage(alpha) if method == "ols" else mle_wald_coverage(n, p, alpha)
            quantity, simulated = "coverage", float(r.estimate)
        elif parameter == "sigma" and r.measure == "bias":
            exact = (expected_s if method == "ols" else expected_sigma_mle)(n, p, sigma)
            quantity, simulated = "mean", sigma + float(r.estimate)
        else:
            continue
        mcse = float(r.mcse)
        z = (simulated - exact) / mcse if math.isfinite(mcse) and mcse > 0 else math.nan
        rows.append((n, sigma, method, parameter, quantity, simulated, mcse, exact, z))
    out = pd.DataFrame(rows, columns=list(THEORY_COLUMNS))
    order = {"ols": 0, "mle": 1}
    keys = [
        (row.n, row.sigma, order[row.method], row.parameter == "sigma", _beta_key(row.parameter))
        for row in out.itertuples(index=False)
    ]
    out = out.iloc[sorted(range(len(out)), key=keys.__getitem__)].reset_index(drop=True)
    return out


def theory_markdown(table: pd.DataFrame) -> str:
    """The theory table as Markdown, with a heading and how to read it."""
    lines = [
        "# Simulation against exact theory (normal errors)",
        "",
        "Coverage of the OLS t and MLE Wald intervals of each β_j, and the means of s (OLS)",
        "and σ̂ (MLE), against their exact finite-sample values; z = (simulated − exact) / MCSE.",
        "With no bug, z is roughly standard normal: |z| > 3 should be rare.",
        "",
    ]
    if table.empty:
        return "\n".join([*lines, "No normal-error OLS or MLE rows to compare.", ""])
    lines += [
        "| n | σ | method | parameter | quantity | simulated | MCSE | exact | z |",
        "|---:|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in table.itertuples(index=False):
        z = "" if not math.isfinite(r.z) else f"{r.z:.2f}"
        lines.append(
            f"| {r.n} | {format_number(r.sigma)} | {r.method.upper()} | {r.parameter} | "
            f"{r.quantity} | {r.simulated:.4f} | {r.mcse:.4f} | {r.exact:.4f} | {z} |"
        )
    finite = np.abs(table["z"].to_numpy(dtype=float))
    finite = finite[np.isfinite(finite)]
    if finite.size:
        lines += ["", f"Largest |z|: {finite.max():.2f} over {finite.size} rows.", ""]
    return "\n".join(lines)


def write_theory(
    metrics: pd.DataFrame,
    alpha: float,
    p: int,
    csv: str | os.PathLike[str],
    markdown: str | os.PathLike[str],
) -> pd.DataFrame:
    """Write :func:`theory_table` as CSV (``%.17g``) and Markdown, atomically; return it."""
    table = theory_table(metrics, alpha, p)
    shown = table.assign(sigma=[format_number(s) for s in table["sigma"]])
    write_atomic(
        csv,
        lambda tmp: shown.to_csv(
            tmp, index=False, float_format="%.17g", na_rep="", lineterminator="\n"
        ),
    )
    text = theory_markdown(table)
    write_text_atomic(markdown, text)
    return table
