"""Performance measures of a simulation study, each with its Monte Carlo standard error.

:func:`summarize` turns a long table of replicate results (one row per replicate and
group: a point estimate, its standard error, optionally a confidence interval and flags)
into a long table of performance measures with Monte Carlo standard errors (MCSE), following
Morris, White & Crowther (2019), "Using simulation studies to evaluate statistical methods",
Statistics in Medicine 38:2074-2102, and the R package rsimsum (Gasparini 2018), whose
numbers it reproduces.

Notation, within one group: ``n`` replicates that did not fail, estimates ``b_i`` with mean
``b̄``, standard errors ``se_i``, true value ``θ``, ``z = Φ⁻¹(1 - α/2)``, confidence limits
``[l_i, u_i]`` (``b_i ∓ z se_i`` when no interval columns are given); ``mean``, ``sd`` and
``var`` are sample statistics over the ``n`` replicates, ``sd`` and ``var`` with denominator
``n - 1``.

============  ===========================================  ========================================
measure       estimate                                     MCSE
============  ===========================================  ========================================
bias          mean(b - θ)                                  sqrt(var(b) / n)
relbias       mean((b - θ) / θ)  (NaN when θ = 0)           sd((b - θ) / θ) / sqrt(n)
median_bias   median(b) - θ                                ŝ / (2 sqrt(n))  (asymptotic; ŝ below)
empse         EmpSE = sd(b)                                EmpSE / sqrt(2 (n - 1))
mad_empse     c median|b - median(b)|                      c ŝ_a / (2 sqrt(n)); NaN for n < 3
modelse       ModSE = sqrt(mean(se²))                      sqrt(var(se²) / (4 n ModSE²))
relerror      100 (ModSE / EmpSE - 1)                      100 (ModSE / EmpSE) sqrt(var(se²) /
                                                           (4 n ModSE⁴) + 1 / (2 (n - 1)))
mse           MSE = mean((b - θ)²)                         sqrt(var((b - θ)²) / n)
rmse          RMSE = sqrt(MSE)                             MCSE(MSE) / (2 RMSE)  (delta method)
coverage      p = mean(l ≤ θ ≤ u)                          sqrt(p (1 - p) / n)
becoverage    p = mean(l ≤ b̄ ≤ u)                          sqrt(p (1 - p) / n)
width         mean(u - l)                                  sd(u - l) / sqrt(n)
rejection     p = mean(|b| ≥ z se), or mean(0 ∉ [l, u])    sqrt(p (1 - p) / n)
relprec       100 ((EmpSE_ref / EmpSE)² - 1)               200 (EmpSE_ref / EmpSE)² sqrt((1 - ρ²) /
                                                           (n_pairs - 1)); NaN for n_pairs < 3
bias_diff     mean(b - b_ref)  (paired)                    sd(b - b_ref) / sqrt(n_pairs)
mse_diff      mean((b - θ)² - (b_ref - θ)²)  (paired)      sd((b - θ)² - (b_ref - θ)²) /
                                                           sqrt(n_pairs)
coverage_diff mean(1{l ≤ θ ≤ u} - 1{l_ref ≤ θ ≤ u_ref})    sd of those differences / sqrt(n_pairs)
n_reps        n, the replicates used                       (none)
n_failed      replicates excluded as failed                (none)
n_multimodal  replicates flagged multimodal                (none)
============  ===========================================  ========================================

``sqrt(var(b) / n)`` equals rsimsum's ``sqrt(Σ(b - b̄)² / (n (n - 1)))`` and
``sqrt(var((b - θ)²) / n)`` its ``sqrt(Σ((b - θ)² - MSE)² / (n (n - 1)))``.

The robust measures' MCSEs are asymptotic: a sample median of n values has standard error
``1 / (2 f(m) sqrt(n))``, with ``1 / f(m)`` (the *sparsity*) estimated from the order
statistics as the difference quotient of the sample quantile function over ``½ ± h``,
``ŝ = (b_(j) - b_(i)) / ((j - i) / n)`` with ``i = ⌈n(½ - h)⌉`` and ``j = ⌈n(½ + h)⌉``
clipped to ``1 … n`` (the levels the two order statistics stand for, rather than ``2h``),
Hall and Sheather's bandwidth ``h = 0.9716 n^(-1/3)`` (Koenker 2005, §3.4). ``ŝ_a`` is
the same estimate from the absolute deviations ``|b - median(b)|``, whose median is the
MAD; the effect of estimating the centre vanishes for a symmetric distribution of ``b``
(tests/unit/test_metrics.py checks both against repeated simulations).
``c = 1 / Φ⁻¹(3/4) = 1.482602218505602`` makes ``mad_empse`` the SD for normal estimates.

The paired contrasts (``bias_diff``, ``mse_diff``, ``coverage_diff``, with ``relprec``)
need a reference method: each method's replicate is paired with the reference's on the same
replicate, over the ``n_pairs`` replicates where both succeeded, so their MCSE is that of
a mean of paired differences and smaller than ``sqrt(MCSE_m² + MCSE_ref²)`` when the two
methods' errors are positively correlated (as on common datasets). The reference's own
rows are exactly 0 with MCSE 0; with a single successful replicate their MCSEs are NaN, as
every MCSE from a sample variance is, and its ``relprec`` is NaN, as its EmpSE is.

*Failure rules* (``failures``): ``own`` (default) leaves a failed replicate out of the
measures of that method (and prior) only; ``common`` leaves out, from every method of a
group of the other ``by`` columns, each replicate on which any method failed, or of which
a method has no row, so that every method is measured on the same replicates (Pawel, Kook
& Reeve 2024). ``n_failed`` counts the replicates a group left out, under the rule used.

A replicate *fails* when its convergence flag is false or missing, or when its estimate,
standard error or (when given) confidence limits are missing or not finite. Failed
replicates are left out of every measure and counted in ``n_failed``.

Every measure is computed with vectorised numpy and pandas group operations over all
groups at once; nothing loops over replicates in Python. This module depends on numpy and
pandas only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from regsim.errors import InputDataError
from regsim.fsum import group_sums
from regsim.limits import alpha_problem, normal_upper
from regsim.schema import FAILURE_RULES, MEASURES, REFERENCE_MEASURES

__all__ = ["MEASURES", "summarize"]


_OUTPUT_COLUMNS = ("measure", "estimate", "mcse")

#: 1 / Φ⁻¹(3/4): the MAD of a normal sample times this estimates its SD.
_MAD_SCALE = 1.482602218505602

#: Hall–Sheather bandwidth of the median's sparsity at a 95% level, times n^(1/3):
#: z_{0.975}^(2/3) (1.5 φ(0)²)^(1/3).
_HALL_SHEATHER = 1.959963984540054 ** (2 / 3) * (1.5 / (2 * math.pi)) ** (1 / 3)
_TRUE_STRINGS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
_FALSE_STRINGS = frozenset({"false", "f", "no", "n", "0", "0.0"})

Pair = tuple[np.ndarray, np.ndarray]
"""An (estimate, mcse) pair of float arrays, one entry per group."""


def _f(column: pd.Series) -> np.ndarray:
    """A statistics column as a float64 array (a copy, safe to modify)."""
    return column.to_numpy(dtype=np.float64, copy=True)


# --------------------------------------------------------------------------------------
# One function per measure. Each takes the per-group statistics table built by
# ``_group_statistics`` (one row per group, in output order) and returns (estimate, mcse).
# --------------------------------------------------------------------------------------


def _bias(s: pd.DataFrame) -> Pair:
    """Bias.

    Estimate ``mean(b - θ)``; MCSE ``sqrt(var(b) / n) = sqrt(Σ(b - b̄)² / (n (n - 1)))``.
    """
    return _f(s["mean_err"]), np.sqrt(_f(s["var_b"]) / _f(s["n"]))


def _relbias(s: pd.DataFrame) -> Pair:
    """Relative bias, as a fraction of the true value.

    Estimate ``mean((b - θ) / θ)``; MCSE ``sd((b - θ) / θ) / sqrt(n)``. Both are NaN when
    ``θ = 0``.
    """
    return _f(s["mean_rel"]), np.sqrt(_f(s["var_rel"]) / _f(s["n"]))


def _median_bias(s: pd.DataFrame) -> Pair:
    """Median bias, robust to a few wild estimates.

    Estimate ``median(b) - θ``; MCSE ``ŝ / (2 sqrt(n))``, the asymptotic standard error of
    a sample median with the sparsity ``ŝ = 1 / f(median)`` estimated from the order
    statistics (Hall–Sheather bandwidth; see the module docstring).
    """
    return _f(s["median_err"]), _f(s["sparsity"]) / (2.0 * np.sqrt(_f(s["n"])))


def _mad_empse(s: pd.DataFrame) -> Pair:
    """Robust empirical SE: the scaled median absolute deviation.

    Estimate ``c median|b - median(b)|`` with ``c = 1 / Φ⁻¹(3/4) = 1.482602218505602``
    (equal to the SD for normal estimates); MCSE ``c ŝ_a / (2 sqrt(n))``, with ``ŝ_a`` the
    sparsity of the absolute deviations at their median (asymptotic, exact in the limit
    for a symmetric distribution of ``b``).
    NaN for a single replicate, as EmpSE: its deviation from itself is no spread. The
    MCSE is NaN for two: their two absolute deviations from their median are equal, so
    ``ŝ_a`` is 0 but for rounding (a rounding error had given an MCSE near 1e-16).
    """
    n = _f(s["n"])
    estimate = _MAD_SCALE * _f(s["mad"])
    estimate[~(n >= 2)] = np.nan
    mcse = _MAD_SCALE * _f(s["mad_sparsity"]) / (2.0 * np.sqrt(n))
    mcse[~(n >= 3)] = np.nan
    return estimate, mcse


def _empse(s: pd.DataFrame) -> Pair:
    """Empirical standard error.

    Estimate ``EmpSE = sd(b)`` (denominator ``n - 1``); MCSE ``EmpSE / sqrt(2 (n - 1))``.
    """
    empse = _f(s["empse"])
    return empse, empse / np.sqrt(2.0 * (_f(s["n"]) - 1.0))


def _modelse(s: pd.DataFrame) -> Pair:
    """Model-based standard error, the root mean squared standard error.

    Estimate ``ModSE = sqrt(mean(se²))``; MCSE ``sqrt(var(se²) / (4 n ModSE²))``.
    """
    modelse = np.sqrt(_f(s["mean_se2"]))
    return modelse, np.sqrt(_f(s["var_se2"]) / (4.0 * _f(s["n"]) * modelse**2))


def _relerror(s: pd.DataFrame) -> Pair:
    """Relative error in the model-based standard error, in percent.

    Estimate ``100 (ModSE / EmpSE - 1)``; MCSE
    ``100 (ModSE / EmpSE) sqrt(var(se²) / (4 n ModSE⁴) + 1 / (2 (n - 1)))``.
    """
    n = _f(s["n"])
    modelse = np.sqrt(_f(s["mean_se2"]))
    ratio = modelse / _f(s["empse"])
    mcse = (
        100.0 * ratio * np.sqrt(_f(s["var_se2"]) / (4.0 * n * modelse**4) + 1.0 / (2.0 * (n - 1)))
    )
    return 100.0 * (ratio - 1.0), mcse


def _mse(s: pd.DataFrame) -> Pair:
    """Mean squared error.

    Estimate ``MSE = mean((b - θ)²)``; MCSE
    ``sqrt(var((b - θ)²) / n) = sqrt(Σ((b - θ)² - MSE)² / (n (n - 1)))``.
    """
    return _f(s["mse"]), np.sqrt(_f(s["var_sq"]) / _f(s["n"]))


def _rmse(s: pd.DataFrame) -> Pair:
    """Root mean squared error.

    Estimate ``RMSE = sqrt(MSE)``; MCSE by the delta method, ``MCSE(MSE) / (2 RMSE)``
    (NaN when ``RMSE = 0``).
    """
    mse, mse_mcse = _mse(s)
    rmse = np.sqrt(mse)
    with np.errstate(divide="ignore", invalid="ignore"):
        mcse = np.where(rmse > 0, mse_mcse / (2.0 * rmse), np.nan)
    return rmse, mcse


def _proportion(p: np.ndarray, n: np.ndarray) -> Pair:
    """A proportion ``p`` of ``n`` replicates with its binomial MCSE ``sqrt(p (1 - p) / n)``."""
    return p, np.sqrt(p * (1.0 - p) / n)


def _coverage(s: pd.DataFrame) -> Pair:
    """Coverage of the confidence interval, bounds inclusive.

    Estimate ``p = mean(l ≤ θ ≤ u)`` with ``[l, u] = b ∓ z se`` unless interval columns are
    given; MCSE ``sqrt(p (1 - p) / n)``.
    """
    return _proportion(_f(s["coverage"]), _f(s["n"]))


def _becoverage(s: pd.DataFrame) -> Pair:
    """Bias-eliminated coverage: coverage of the mean estimate instead of the true value.

    Estimate ``p = mean(l ≤ b̄ ≤ u)``; MCSE ``sqrt(p (1 - p) / n)``.
    """
    return _proportion(_f(s["becoverage"]), _f(s["n"]))


def _width(s: pd.DataFrame) -> Pair:
    """Mean width of the confidence interval.

    Estimate ``mean(u - l)`` (``mean(2 z se)`` without interval columns); MCSE
    ``sd(u - l) / sqrt(n)``.
    """
    return _f(s["width"]), np.sqrt(_f(s["var_width"]) / _f(s["n"]))


def _rejection(s: pd.DataFrame) -> Pair:
    """Rejection rate of the level-α test of ``parameter = 0``: the type I error rate
    where ``θ = 0``, the power elsewhere (rsimsum's ``power``).

    Estimate ``p = mean(|b| ≥ z se)`` (the Wald test, as rsimsum) without interval columns,
    ``p = mean(0 < l or u < 0)`` (the method's own interval) with them; MCSE
    ``sqrt(p (1 - p) / n)``.
    """
    return _proportion(_f(s["rejection"]), _f(s["n"]))


def _relprec(s: pd.DataFrame) -> Pair:
    """Percentage gain in precision relative to the reference method.

    Estimate ``100 ((EmpSE_ref / EmpSE)² - 1)``; MCSE
    ``200 (EmpSE_ref / EmpSE)² sqrt((1 - ρ²) / (n_pairs - 1))``, where ``ρ`` is the
    correlation between the method's and the reference's estimates over the ``n_pairs``
    replicates that neither failed. Each EmpSE is that method's own (over its own non-failed
    replicates, as rsimsum does). rsimsum's ``n - 1``; Stata's ``simsum`` uses ``n - 2``.
    The MCSE is NaN for fewer than three pairs: two pairs are perfectly correlated whatever
    the methods, so ``ρ² = 1`` would give a spurious 0. The reference method's own row is
    exactly 0 with MCSE 0 where its EmpSE exists (two or more successful replicates), NaN
    where it does not.
    """
    empse = _f(s["empse"])
    ratio2 = (_f(s["empse_ref"]) / empse) ** 2
    n_pairs = _f(s["n_pairs"])
    with np.errstate(invalid="ignore"):
        mcse = 200.0 * ratio2 * np.sqrt(_f(s["one_minus_rho2"]) / (n_pairs - 1))
    mcse[~(n_pairs >= 3)] = np.nan
    estimate = 100.0 * (ratio2 - 1.0)
    is_ref = s["is_ref"].to_numpy(bool)
    own = np.where(np.isfinite(empse[is_ref]), 0.0, np.nan)
    estimate[is_ref] = own
    mcse[is_ref] = own
    return estimate, mcse


def _paired(name: str) -> Callable[[pd.DataFrame], Pair]:
    """A paired contrast with the reference: mean of the differences, sd/sqrt(n_pairs)."""

    def measure(s: pd.DataFrame) -> Pair:
        return _f(s[name]), np.sqrt(_f(s[f"var_{name}"]) / _f(s["n_pairs"]))

    return measure


def _bias_diff(s: pd.DataFrame) -> Pair:
    """Difference in bias from the reference, paired on replicates.

    Estimate ``mean(b - b_ref)`` over the ``n_pairs`` replicates where both succeeded;
    MCSE ``sd(b - b_ref) / sqrt(n_pairs)``.
    """
    return _paired("bias_diff")(s)


def _mse_diff(s: pd.DataFrame) -> Pair:
    """Difference in MSE from the reference, paired on replicates.

    Estimate ``mean((b - θ)² - (b_ref - θ)²)`` over the ``n_pairs`` replicates where both
    succeeded; MCSE ``sd((b - θ)² - (b_ref - θ)²) / sqrt(n_pairs)``.
    """
    return _paired("mse_diff")(s)


def _coverage_diff(s: pd.DataFrame) -> Pair:
    """Difference in coverage from the reference, paired on replicates.

    Estimate ``mean(1{l ≤ θ ≤ u} - 1{l_ref ≤ θ ≤ u_ref})`` over the ``n_pairs`` replicates
    where both succeeded; MCSE the sd of those paired differences of indicators over
    ``sqrt(n_pairs)`` (McNemar's variance, not the independent binomial one).
    """
    return _paired("coverage_diff")(s)


def _count(column: str) -> Callable[[pd.DataFrame], Pair]:
    """A count measure: the estimate is the count, the MCSE is NaN."""

    def measure(s: pd.DataFrame) -> Pair:
        count = _f(s[column])
        return count, np.full_like(count, np.nan)

    measure.__doc__ = f"Count ``{column}``; no MCSE (NaN)."
    return measure


_MEASURE_FUNCTIONS: dict[str, Callable[[pd.DataFrame], Pair]] = {
    "bias": _bias,
    "relbias": _relbias,
    "median_bias": _median_bias,
    "empse": _empse,
    "mad_empse": _mad_empse,
    "modelse": _modelse,
    "relerror": _relerror,
    "mse": _mse,
    "rmse": _rmse,
    "coverage": _coverage,
    "becoverage": _becoverage,
    "width": _width,
    "rejection": _rejection,
    "relprec": _relprec,
    "bias_diff": _bias_diff,
    "mse_diff": _mse_diff,
    "coverage_diff": _coverage_diff,
    "n_reps": _count("n"),
    "n_failed": _count("n_failed"),
    "n_multimodal": _count("n_multimodal"),
}


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def _flag(option: str) -> str:
    """The command-line option of a keyword of :func:`summarize` (``true_col``:
    ``--true-col``), how errors name the columns a user gave."""
    return "--" + option.replace("_", "-")


def summarize(
    table: pd.DataFrame,
    *,
    estimate: str = "estimate",
    se: str = "se",
    true: float | None = None,
    true_col: str | None = None,
    by: Sequence[str] = (),
    lower: str | None = None,
    upper: str | None = None,
    alpha: float = 0.05,
    ref: str | None = None,
    method_col: str | None = None,
    replicate_col: str | None = None,
    converged_col: str | None = None,
    multimodal_col: str | None = None,
    failures: str = "own",
) -> pd.DataFrame:
    """Compute every performance measure and its Monte Carlo standard error, per group.

    The formulas are listed in the module docstring and in each measure's private function.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table of replicate results, one row per replicate and group.
    estimate : str, default "estimate"
        Column of point estimates ``b``.
    se : str, default "se"
        Column of standard errors of the estimates.
    true : float, optional
        The true value ``θ`` for every row. Give exactly one of ``true`` and ``true_col``.
    true_col : str, optional
        Column holding the true value of each row; it must be finite and constant within a
        group.
    by : sequence of str, default ()
        Columns whose combinations define the groups; measures are computed per group. Empty
        means one group of all rows.
    lower, upper : str, optional
        Columns of confidence limits, both or neither. Without them the interval is
        ``b ∓ z se`` with ``z = Φ⁻¹(1 - α/2)``.
    alpha : float, default 0.05
        Level of the Wald intervals and test, in (0, 1). Used only without interval columns
        (for coverage, bias-eliminated coverage, width and rejection).
    ref : str, optional
        Reference method of the paired measures (``relprec``, ``bias_diff``, ``mse_diff``,
        ``coverage_diff``); a value of ``method_col``, present in every group of the other
        ``by`` columns. When the column's values are not strings, ``ref`` is matched
        against their string form.
    method_col : str, optional
        Column naming the method; required with ``ref`` or ``failures="common"``, and must
        be one of ``by``.
    replicate_col : str, optional
        Column identifying the replicate, used to pair each method's replicates with the
        reference's (and, for ``failures="common"``, with every other method's); it must be
        unique within a group. Without it the k-th row of a method in a group is paired
        with the k-th row of the other methods (rows in table order, failed rows included).
    converged_col : str, optional
        Boolean column (or 0/1, or "true"/"false"); a false or missing value marks the
        replicate as failed.
    multimodal_col : str, optional
        Boolean column flagging replicates whose objective was multimodal; counted (over all
        rows of the group, failed or not) in ``n_multimodal``. Missing values count as false.
    failures : {"own", "common"}, default "own"
        The failure rule (module docstring): a failed replicate leaves its own method's
        measures only, or every method's of its group of the other ``by`` columns.

    Returns
    -------
    pandas.DataFrame
        Columns: the ``by`` columns, then ``measure``, ``estimate`` and ``mcse`` (floats).
        One row per group and measure: groups in sorted order of the ``by`` columns (missing
        values last), measures in :data:`MEASURES` order. The paired measures appear only
        when ``ref`` is given and ``n_multimodal`` only when ``multimodal_col`` is given. Count
        measures (``n_reps``, ``n_failed``, ``n_multimodal``) have a NaN ``mcse``. A group
        whose replicates all failed has NaN measures and ``n_reps`` 0.

    Raises
    ------
    regsim.errors.InputDataError
        If a named column is missing or not numeric, the table has no rows, ``true`` is given
        both ways or neither, ``alpha`` is outside (0, 1), ``ref`` is not a value of
        ``method_col`` (or ``method_col`` is not one of ``by``), only one of ``lower`` and
        ``upper`` is given, the true value is missing or varies within a group, a standard
        error is negative, a lower limit exceeds its upper limit, a flag column is not
        boolean, ``replicate_col`` is missing or repeats a replicate within a group,
        ``failures`` is not a rule, or ``ref`` is absent from a group. The message is one
        line naming the column or option.
    """
    by = _check_options(
        table,
        estimate=estimate,
        se=se,
        true=true,
        true_col=true_col,
        by=by,
        lower=lower,
        upper=upper,
        alpha=alpha,
        ref=ref,
        method_col=method_col,
        replicate_col=replicate_col,
        converged_col=converged_col,
        multimodal_col=multimodal_col,
        failures=failures,
    )
    z = normal_upper(alpha)
    work, keys = _prepare(
        table,
        estimate=estimate,
        se=se,
        true=true,
        true_col=true_col,
        by=by,
        lower=lower,
        upper=upper,
        z=z,
        converged_col=converged_col,
        multimodal_col=multimodal_col,
    )
    pairing = None
    if method_col is not None:
        pairing = _pairing(table, work, by=by, method_col=method_col, replicate_col=replicate_col)
        if failures == "common":
            work["ok"] = _common_successes(work, pairing)
    stats = _group_statistics(work, len(keys))
    if pairing is not None and failures == "common":
        stats["n_failed"] = _outer_replicates(work, pairing, len(keys)) - stats["n"].to_numpy()
    if ref is not None and pairing is not None:  # _check_options: ref needs method_col
        stats = _add_reference_inputs(stats, work, table, pairing, by=by, ref=ref)

    measures = [
        m
        for m in MEASURES
        if (m not in REFERENCE_MEASURES or ref is not None)
        and (m != "n_multimodal" or multimodal_col)
    ]
    n_groups = len(keys)
    estimates = np.empty((n_groups, len(measures)))
    mcses = np.empty((n_groups, len(measures)))
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, name in enumerate(measures):
            estimates[:, j], mcses[:, j] = _MEASURE_FUNCTIONS[name](stats)

    # Group-major, measure-minor: row i * len(measures) + j is group i, measure j.
    out = keys.loc[keys.index.repeat(len(measures))].reset_index(drop=True)
    out["measure"] = np.tile(np.array(measures, dtype=object), n_groups)
    out["estimate"] = estimates.ravel()
    out["mcse"] = mcses.ravel()
    return out


# --------------------------------------------------------------------------------------
# Validation and preparation
# --------------------------------------------------------------------------------------


def _check_options(
    table: pd.DataFrame,
    *,
    estimate: str,
    se: str,
    true: float | None,
    true_col: str | None,
    by: Sequence[str],
    lower: str | None,
    upper: str | None,
    alpha: float,
    ref: str | None,
    method_col: str | None,
    replicate_col: str | None,
    converged_col: str | None,
    multimodal_col: str | None,
    failures: str = "own",
) -> list[str]:
    """Check the options against the table; return ``by`` as a list."""
    if not isinstance(table, pd.DataFrame):
        raise InputDataError(f"expected a pandas DataFrame, got {type(table).__name__}")
    if isinstance(by, str):
        by = [by]
    by = list(by)
    named = {"estimate": estimate, "se": se, "true_col": true_col, "lower": lower}
    named |= {"upper": upper, "method_col": method_col, "replicate_col": replicate_col}
    named |= {"converged_col": converged_col, "multimodal_col": multimodal_col}
    columns = [(option, column) for option, column in named.items() if column is not None]
    columns += [("by", column) for column in by]
    for option, column in columns:
        if column not in table.columns:
            available = ", ".join(map(str, table.columns))
            raise InputDataError(
                f"column {column!r} ({_flag(option)}) not found in the input table; "
                f"available columns: {available}"
            )
    if len(table) == 0:
        raise InputDataError("the input table has no rows")
    if len(set(by)) != len(by):
        raise InputDataError(f"option by names a column twice: {by}")
    clash = [c for c in by if c in _OUTPUT_COLUMNS]
    if clash:
        raise InputDataError(
            f"by column {clash[0]!r} clashes with an output column (measure, estimate, mcse)"
        )
    if (true is None) == (true_col is None):
        raise InputDataError("give the true value either as true or as true_col, not both/neither")
    if true is not None:
        try:
            true = float(true)
        except (TypeError, ValueError):
            raise InputDataError(f"option true must be a number, got {true!r}") from None
        if not np.isfinite(true):
            raise InputDataError(f"option true must be finite, got {true!r}")
    if (lower is None) != (upper is None):
        raise InputDataError("options lower and upper must be given together")
    try:
        problem = alpha_problem(float(alpha))
    except (TypeError, ValueError):
        problem = f"must be a number strictly between 0 and 1, got {alpha!r}"
    if problem:
        raise InputDataError(f"option alpha {problem}")
    if failures not in FAILURE_RULES:
        raise InputDataError(
            f"option failures must be one of {', '.join(FAILURE_RULES)}, got {failures!r}"
        )
    if failures == "common" and method_col is None:
        raise InputDataError(
            "option failures='common' needs method_col (the methods whose replicates must "
            "all succeed)"
        )
    if method_col is not None and method_col not in by:
        raise InputDataError(f"method_col {method_col!r} must be one of the by columns")
    if ref is not None:
        if method_col is None:
            raise InputDataError("option ref needs method_col (the column naming the method)")
        if not _ref_mask(table[method_col], ref).any():
            values = ", ".join(map(str, pd.unique(table[method_col])))
            raise InputDataError(
                f"ref method {ref!r} not found in column {method_col!r}; values: {values}"
            )
    return by


def _ref_mask(methods: pd.Series, ref: str) -> np.ndarray:
    """Rows whose method is ``ref``, matching on string form when no value equals it."""
    mask = (methods == ref).to_numpy(bool)
    if not mask.any():
        mask = (methods.astype(str) == str(ref)).to_numpy(bool)
    return mask


def _numeric(table: pd.DataFrame, column: str, option: str) -> np.ndarray:
    """Column as float64; non-numeric text raises InputDataError naming the column."""
    try:
        values = pd.to_numeric(table[column], errors="raise")
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputDataError(f"column {column!r} ({_flag(option)}) must be numeric") from None


def _boolean(table: pd.DataFrame, column: str, option: str, missing: bool) -> np.ndarray:
    """Column as bool: accepts booleans, 0/1 and true/false text; missing becomes ``missing``."""
    series = table[column]
    if pd.api.types.is_bool_dtype(series) and not series.isna().any():
        return series.to_numpy(bool)
    text = series.astype("string").str.strip().str.lower()
    result = np.full(len(series), missing, dtype=bool)
    present = series.notna().to_numpy(bool)
    is_true = text.isin(_TRUE_STRINGS).fillna(False).to_numpy(bool)
    is_false = text.isin(_FALSE_STRINGS).fillna(False).to_numpy(bool)
    bad = present & ~is_true & ~is_false
    if bad.any():
        example = series[bad].iloc[0]
        raise InputDataError(
            f"column {column!r} ({_flag(option)}) must be boolean (true/false or 1/0), "
            f"got {example!r}"
        )
    result[present] = is_true[present]
    return result


def _group_ids(table: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, int]:
    """Integer id of each row's group (sorted by ``columns``, missing last) and group count.

    The ids of pandas' ``groupby(columns, sort=True, dropna=False).ngroup()``, from the
    same per-column ranks (``factorize``) but without building pandas' group index,
    which costs more than the rest of a summary of a few groups.
    """
    if not columns:
        return np.zeros(len(table), dtype=np.int64), 1
    if any(isinstance(table[c].dtype, pd.CategoricalDtype) for c in columns):
        # pandas ranks categories in their declared order, not by value
        grouped = table.groupby(columns, sort=True, dropna=False, observed=True)
        return grouped.ngroup().to_numpy(np.int64), grouped.ngroups
    ranks = [pd.factorize(table[c], sort=True, use_na_sentinel=False)[0] for c in columns]
    order = np.lexsort(ranks[::-1])  # the first column varies slowest
    ordered = np.stack(ranks)[:, order]
    starts = np.ones(len(order), dtype=bool)  # a row begins a group
    starts[1:] = (ordered[:, 1:] != ordered[:, :-1]).any(axis=0)
    gid = np.empty(len(order), dtype=np.int64)
    gid[order] = np.cumsum(starts) - 1
    return gid, int(starts.sum())


def _prepare(
    table: pd.DataFrame,
    *,
    estimate: str,
    se: str,
    true: float | None,
    true_col: str | None,
    by: list[str],
    lower: str | None,
    upper: str | None,
    z: float,
    converged_col: str | None,
    multimodal_col: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the per-row working table (internal column names) and the group keys.

    Returns ``work`` with columns ``gid, b, se, theta, lo, hi, ok, reject, multimodal`` in
    table order (``reject``: the test of ``parameter = 0`` rejects), and ``keys``: one row
    per group id (its index), holding the ``by`` values.
    """
    gid, _ = _group_ids(table, by)
    _, first_row = np.unique(gid, return_index=True)
    keys = table[by].iloc[first_row].reset_index(drop=True)

    b = _numeric(table, estimate, "estimate")
    s = _numeric(table, se, "se")
    negative = np.flatnonzero(s < 0)
    if len(negative):
        row = int(negative[0])
        raise InputDataError(
            f"column {se!r} (--se) has a negative standard error {float(s[row])!r} (data row "
            f"{row + 1}); a standard error is >= 0"
        )
    if true_col is not None:
        theta = _numeric(table, true_col, "true_col")
        if not np.isfinite(theta).all():
            raise InputDataError(f"column {true_col!r} (--true-col) has missing values")
        if (theta != theta[first_row][gid]).any():  # all finite: constant iff all equal
            if not by:
                raise InputDataError(
                    f"column {true_col!r} (--true-col) takes several values, and no --by "
                    "splits the rows into groups: give --by with the columns that tell the "
                    "scenarios apart"
                )
            raise InputDataError(
                f"column {true_col!r} (--true-col) is not constant within a group of {by}"
            )
    else:
        theta = np.full(len(table), np.nan if true is None else float(true))

    ok = np.isfinite(b) & np.isfinite(s)
    if lower is not None and upper is not None:
        lo = _numeric(table, lower, "lower")
        hi = _numeric(table, upper, "upper")
        ok &= np.isfinite(lo) & np.isfinite(hi)
        if (ok & (lo > hi)).any():
            raise InputDataError(f"column {lower!r} (--lower) exceeds {upper!r} in some rows")
        reject = (lo > 0) | (hi < 0)
    else:
        with np.errstate(invalid="ignore"):
            lo, hi = b - z * s, b + z * s
            reject = np.abs(b) >= z * s
    if converged_col is not None:
        ok &= _boolean(table, converged_col, "converged_col", missing=False)
    if multimodal_col is not None:
        multimodal = _boolean(table, multimodal_col, "multimodal_col", missing=False)
    else:
        multimodal = np.zeros(len(table), dtype=bool)

    _check_scale(gid, b - theta, s, hi - lo, ok, keys, by)
    work = pd.DataFrame({"gid": gid, "b": b, "se": s, "theta": theta, "lo": lo, "hi": hi, "ok": ok})
    work["reject"] = reject.astype(float)
    work["multimodal"] = multimodal
    return work, keys


#: Largest error (estimate − true value), SE or interval width of a replicate the
#: measures take, and the least that the largest of a group's may be (0 aside): the MCSEs
#: take their fourth powers, which overflow beyond about 1e77 and underflow (to 0, or to
#: fewer digits) below about 1e-77. The study's σ bounds (1e-60 to 1e60) keep within.
_MAX_SCALE, _MIN_SCALE = 1e75, 1e-70


def _check_scale(
    gid: np.ndarray,
    error: np.ndarray,
    se: np.ndarray,
    width: np.ndarray,
    ok: np.ndarray,
    keys: pd.DataFrame,
    by: list[str],
) -> None:
    """Refuse magnitudes whose fourth powers the measures' MCSEs could not hold
    (:data:`_MAX_SCALE`, :data:`_MIN_SCALE`), in one line naming the row or the group."""
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.fmax(np.fmax(np.abs(error), se), width)
    size = np.where(ok, size, 0.0)
    fix = "; rescale the estimates, standard errors, limits and true values"
    if len(size) and size.max() > _MAX_SCALE:
        row = int(np.argmax(size))
        raise InputDataError(
            f"data row {row + 1}: an error (estimate - true value), standard error or "
            f"interval width of {size[row]:.3g}: the fourth powers in the measures' MCSEs "
            f"would overflow (at most {_MAX_SCALE:g}){fix}"
        )
    largest = np.zeros(len(keys))
    np.maximum.at(largest, gid, size)
    small = np.flatnonzero((largest > 0) & (largest < _MIN_SCALE))
    if len(small):
        group = int(small[0])
        where = f"group {keys.iloc[group].to_dict()}" if by else "the table"
        raise InputDataError(
            f"{where}: its errors (estimate - true value), standard errors and interval "
            f"widths are at most {largest[group]:.3g}: the fourth powers in the measures' "
            f"MCSEs would underflow (at least {_MIN_SCALE:g} for the largest){fix}"
        )


def _group_means(
    gid: np.ndarray, columns: dict[str, np.ndarray], n_groups: int, *, sums: bool = False
) -> pd.DataFrame:
    """Per-group means of each column (missing values skipped; NaN for an empty group).

    Each sum is exactly rounded (``math.fsum``'s bits, :func:`regsim.fsum.group_sums`), so
    a group's mean depends on its values alone: not on their order, nor on the other
    groups in the table (a cell summarized whole or one fit at a time gives the same
    bits). With ``sums`` the sums themselves (0 for an empty group).
    """
    order = np.argsort(gid, kind="stable")
    ordered_gid = gid[order]
    out = {}
    for name, values in columns.items():
        ordered = values[order]
        present = ~np.isnan(ordered)
        bounds = np.searchsorted(ordered_gid[present], np.arange(n_groups + 1))
        totals = group_sums(ordered[present], bounds)
        if sums:
            out[name] = totals
            continue
        counts = np.diff(bounds)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(counts > 0, totals / counts, np.nan)
    return pd.DataFrame(out, index=pd.RangeIndex(n_groups, name="gid"))


def _group_shares(gid: np.ndarray, flags: dict[str, np.ndarray], n: np.ndarray) -> pd.DataFrame:
    """Per-group means of 0/1 columns, given the group sizes ``n`` (NaN for an empty group).

    Counts of ones are exact in floating point, so these are the bits of
    :func:`_group_means` without its exactly rounded sums.
    """
    out = {}
    with np.errstate(invalid="ignore"):
        for name, values in flags.items():
            out[name] = np.bincount(gid, weights=values, minlength=len(n)) / n
    return pd.DataFrame(out, index=pd.RangeIndex(len(n), name="gid"))


def _group_first(gid: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """The first value of each group (NaN for an empty group)."""
    out = np.full(n_groups, np.nan)
    out[gid[::-1]] = values[::-1]
    return out


def _sorted_by_group(
    gid: np.ndarray, values: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``values`` sorted within each group, the groups one after another in id order, with
    each group's start and count: the values ``np.lexsort((values, gid))`` orders.

    Groups of a summary are about equally large (a cell's replicates, less its failures):
    each group's values are then laid in a row of a (groups, largest group) array, padded
    with +inf, and the rows sorted at once, about a fifth of lexsort's time on a grid's
    cells. Groups far from equal (a table of the summarize command), or values with NaN
    (which sorts after the padding), take lexsort.
    """
    counts = np.bincount(gid, minlength=n_groups)
    starts = np.zeros(n_groups, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    width = int(counts.max()) if n_groups else 0
    if n_groups * width > 2 * len(values) + 1024 or np.isnan(values).any():
        order = np.lexsort((values, gid))
        return values[order], starts, counts
    # Rows in group order (numpy sorts 16-bit integers by radix, in linear time); each
    # row's place in its group's row of the array.
    key = gid.astype(np.uint16) if n_groups <= 1 << 16 else gid
    order = np.argsort(key, kind="stable")
    group = gid[order]
    place = np.arange(len(values)) - starts[group]
    padded = np.full((n_groups, width), np.inf)
    padded[group, place] = values[order]
    padded.sort(axis=1)
    return padded[group, place], starts, counts


def _medians(gid: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Each group's median and the sparsity 1/f at it, from the order statistics.

    The sparsity is the difference quotient of the sample quantile function over
    ``½ ± h``, ``h = 0.9716 n^(-1/3)`` (Hall and Sheather): ``(x_(j) - x_(i)) / ((j - i)/n)``
    with ``i = ⌈n(½ - h)⌉`` and ``j = ⌈n(½ + h)⌉`` clipped to ``1 … n``. NaN for groups of
    fewer than two values, or whose quantiles coincide.
    """
    ordered, starts, counts = _sorted_by_group(gid, values, n_groups)
    median = np.full(n_groups, np.nan)
    sparsity = np.full(n_groups, np.nan)
    has = counts > 0
    low = starts[has] + (counts[has] - 1) // 2
    high = starts[has] + counts[has] // 2
    median[has] = (ordered[low] + ordered[high]) / 2.0
    several = counts > 1
    size = counts[several].astype(float)
    h = _HALL_SHEATHER * size ** (-1.0 / 3.0)
    first = np.clip(np.ceil(size * (0.5 - h)), 1, size).astype(np.int64)
    last = np.clip(np.ceil(size * (0.5 + h)), 1, size).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        span = ordered[starts[several] + last - 1] - ordered[starts[several] + first - 1]
        quotient = np.where(last > first, span / ((last - first) / size), np.nan)
    sparsity[several] = np.where(quotient > 0, quotient, np.nan)
    return median, sparsity


def _group_statistics(work: pd.DataFrame, n_groups: int) -> pd.DataFrame:
    """Per-group sufficient statistics of the measures, one row per group id.

    Computed over the non-failed rows, vectorised over all groups at once; groups whose
    replicates all failed get ``n = 0`` and NaN statistics.
    """
    all_ids = pd.RangeIndex(n_groups, name="gid")
    every_gid = work["gid"].to_numpy()
    ok = work["ok"].to_numpy(bool)
    n_rows = np.bincount(every_gid, minlength=n_groups).astype(float)
    n = np.bincount(every_gid, weights=ok.astype(float), minlength=n_groups)
    multimodal = work["multimodal"].to_numpy(bool).astype(float)
    n_multimodal = np.bincount(every_gid, weights=multimodal, minlength=n_groups)
    theta_is_zero = (work["theta"].to_numpy() == 0).astype(float)
    # theta is constant within a group (checked by _prepare)
    zero_theta = np.bincount(every_gid, weights=theta_is_zero, minlength=n_groups) > 0

    gid = every_gid[ok]
    b, s, theta, lo, hi = (work[c].to_numpy()[ok] for c in ("b", "se", "theta", "lo", "hi"))
    err = b - theta
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(theta != 0, (b - theta) / theta, np.nan)
    sq = err**2
    se2 = s**2
    w = hi - lo
    b_mean = _group_means(gid, {"b": b}, n_groups)["b"].to_numpy()[gid]
    # pandas' grouped variance (Welford's algorithm, in row order): the bits the
    # study's metrics have always had
    variances = (
        pd.DataFrame({"var_b": b, "var_rel": rel, "var_sq": sq, "var_se2": se2, "var_width": w})
        .groupby(gid)
        .var()
        .reindex(all_ids)
    )
    averages = _group_means(
        gid, {"mean_err": err, "mean_rel": rel, "mse": sq, "mean_se2": se2, "width": w}, n_groups
    )
    shares = _group_shares(
        gid,
        {
            "coverage": ((lo <= theta) & (theta <= hi)).astype(float),
            "becoverage": ((lo <= b_mean) & (b_mean <= hi)).astype(float),
            "rejection": work["reject"].to_numpy()[ok],
        },
        n,
    )
    stats = pd.concat([variances, averages, shares], axis=1)[
        ["var_b", "mean_err", "mean_rel", "var_rel", "mse", "var_sq", "mean_se2", "var_se2"]
        + ["coverage", "becoverage", "width", "var_width", "rejection"]
    ]
    stats["empse"] = np.sqrt(stats["var_b"])
    median, sparsity = _medians(gid, b, n_groups)
    stats["median_err"] = median - _group_first(gid, theta, n_groups)
    stats["sparsity"] = sparsity
    stats["mad"], stats["mad_sparsity"] = _medians(gid, np.abs(b - median[gid]), n_groups)
    stats["n"] = n
    stats["n_failed"] = n_rows - n
    stats["n_multimodal"] = n_multimodal
    # Relative bias is undefined where the true value is 0.
    stats.loc[zero_theta, ["mean_rel", "var_rel"]] = np.nan
    return stats


class _Pairing(NamedTuple):
    """How rows pair across the methods of a group of the other ``by`` columns."""

    oid: np.ndarray  # per row: the group of the by columns other than the method
    pair: np.ndarray  # per row: the replicate it pairs on
    method_col: str


def _pairing(
    table: pd.DataFrame,
    work: pd.DataFrame,
    *,
    by: list[str],
    method_col: str,
    replicate_col: str | None,
) -> _Pairing:
    """Each row's outer group (``by`` without the method) and the replicate it pairs on."""
    gid = work["gid"].to_numpy()
    outer = [c for c in by if c != method_col]
    oid, _ = _group_ids(table, outer)
    if replicate_col is not None:
        replicate = table[replicate_col]
        if replicate.isna().any():
            raise InputDataError(f"column {replicate_col!r} (--replicate-col) has missing values")
        pair = replicate.to_numpy()
        if pd.DataFrame({"gid": gid, "pair": pair}).duplicated().any():
            raise InputDataError(
                f"column {replicate_col!r} (--replicate-col) repeats a replicate within a "
                f"group of {by}"
            )
    else:
        pair = pd.Series(gid).groupby(gid).cumcount().to_numpy()
    return _Pairing(oid, pair, method_col)


def _common_successes(work: pd.DataFrame, pairing: _Pairing) -> np.ndarray:
    """``ok`` under the common rule: a row stays only if every method of its outer group
    has a row of its replicate, and every such row (fit) succeeded.

    A method without a row of a replicate (a table of a user's own results may lack one)
    has not succeeded on it: the others leave it out too, so that every method is still
    measured on the same replicates. A replicate repeats no method's row (``_pairing``),
    so a replicate has every method's row where it has as many rows as its outer group
    has methods.
    """
    gid = work["gid"].to_numpy()
    frame = pd.DataFrame({"oid": pairing.oid, "pair": pairing.pair, "ok": work["ok"].to_numpy()})
    grouped = frame.groupby(["oid", "pair"], sort=False)["ok"]
    every_fit = grouped.transform("all").to_numpy(bool)
    methods = pd.Series(gid).groupby(pairing.oid).transform("nunique").to_numpy()
    return every_fit & (grouped.transform("size").to_numpy() == methods)


def _outer_replicates(work: pd.DataFrame, pairing: _Pairing, n_groups: int) -> np.ndarray:
    """Replicates of each group's outer group that any of its methods has a row of.

    Under the common rule a group leaves out every one of them it does not use, one of
    which it has no row included (:func:`_common_successes`): ``n_failed`` is this count
    minus the replicates used, not its own rows minus them.
    """
    frame = pd.DataFrame({"oid": pairing.oid, "pair": pairing.pair})
    per_outer = frame.groupby("oid", sort=False)["pair"].nunique()
    outer = np.zeros(n_groups, dtype=pairing.oid.dtype)
    outer[work["gid"].to_numpy()] = pairing.oid
    return per_outer.reindex(outer).to_numpy(dtype=np.int64)


def _add_reference_inputs(
    stats: pd.DataFrame,
    work: pd.DataFrame,
    table: pd.DataFrame,
    pairing: _Pairing,
    *,
    by: list[str],
    ref: str,
) -> pd.DataFrame:
    """Add what the measures against the reference method need to the group statistics.

    Adds ``empse_ref`` (the reference method's EmpSE in the same group of the other ``by``
    columns, over the reference's own non-failed replicates), ``rho`` and ``n_pairs`` (the
    correlation of the method's estimates with the reference's, and the number of replicates
    paired, over replicates that failed in neither), ``is_ref``, and the mean and variance
    of each paired difference (``bias_diff``, ``mse_diff``, ``coverage_diff``).

    Raises
    ------
    regsim.errors.InputDataError
        If a group of the other ``by`` columns has no row of the reference method.
    """
    n_groups = len(stats)
    gid = work["gid"].to_numpy()
    oid, pair = pairing.oid, pairing.pair
    is_ref_row = _ref_mask(table[pairing.method_col], ref)
    lacking = np.setdiff1d(np.unique(oid), np.unique(oid[is_ref_row]))
    if len(lacking):
        outer = [c for c in by if c != pairing.method_col]
        where = table.iloc[int(np.flatnonzero(oid == lacking[0])[0])][outer]
        shown = ", ".join(f"{c}={v}" for c, v in where.items()) or "the whole table"
        raise InputDataError(f"ref method {ref!r} is absent from the group {shown}")

    theta = work["theta"].to_numpy()
    b = work["b"].to_numpy()
    lo, hi = work["lo"].to_numpy(), work["hi"].to_numpy()
    with np.errstate(invalid="ignore"):
        rows = pd.DataFrame(
            {
                "gid": gid,
                "oid": oid,
                "pair": pair,
                "b": b,
                "sq": (b - theta) ** 2,
                "cover": ((lo <= theta) & (theta <= hi)).astype(float),
            }
        )
    ok = work["ok"].to_numpy(bool)
    reference = rows.loc[ok & is_ref_row, ["oid", "pair", "b", "sq", "cover"]].rename(
        columns={"b": "b_ref", "sq": "sq_ref", "cover": "cover_ref"}
    )
    paired = rows.loc[ok].merge(reference, on=["oid", "pair"], how="inner")
    pgid = paired["gid"].to_numpy()
    # Exactly rounded sums (fsum), as every mean here: a group's numbers depend on its
    # own values alone, not on the other groups summarized with it.
    b_pair, b_ref = paired["b"].to_numpy(), paired["b_ref"].to_numpy()
    centres = _group_means(pgid, {"b": b_pair, "b_ref": b_ref}, n_groups)
    dx = b_pair - centres["b"].to_numpy()[pgid]
    dy = b_ref - centres["b_ref"].to_numpy()[pgid]
    sums = _group_means(pgid, {"xy": dx * dy, "xx": dx * dx, "yy": dy * dy}, n_groups, sums=True)
    all_ids = pd.RangeIndex(n_groups, name="gid")
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])
        # 1 − ρ² as the residual share of a regression on the reference's estimates:
        # 1 − ρ² itself cancels to rounding noise of order √eps when ρ ≈ ±1.
        slope = (sums["xy"] / sums["yy"]).to_numpy()[pgid]
        residual = dx - slope * dy
        residual_ss = _group_means(pgid, {"r": residual * residual}, n_groups, sums=True)["r"]
        one_minus_rho2 = residual_ss / sums["xx"]
    differences = {
        "bias_diff": (paired["b"] - paired["b_ref"]).to_numpy(),
        "mse_diff": (paired["sq"] - paired["sq_ref"]).to_numpy(),
        "coverage_diff": (paired["cover"] - paired["cover_ref"]).to_numpy(),
    }
    means = _group_means(pgid, differences, n_groups)
    variances = pd.DataFrame(differences).groupby(pgid).var().reindex(all_ids)

    ref_gid_of_oid = pd.Series(gid[is_ref_row]).groupby(oid[is_ref_row]).first()
    oid_of_gid = pd.Series(oid).groupby(gid).first().reindex(all_ids)
    ref_gid = oid_of_gid.map(ref_gid_of_oid)
    empse = stats["empse"].to_numpy()
    empse_ref = np.full(n_groups, np.nan)
    has_ref = ref_gid.notna().to_numpy()
    empse_ref[has_ref] = empse[ref_gid[has_ref].to_numpy(np.int64)]

    stats = stats.copy()
    stats["empse_ref"] = empse_ref
    stats["rho"] = rho.to_numpy()
    stats["one_minus_rho2"] = one_minus_rho2.to_numpy()
    stats["n_pairs"] = np.bincount(pgid, minlength=n_groups).astype(float)
    stats["is_ref"] = np.isin(np.arange(n_groups), ref_gid_of_oid.to_numpy())
    for name in differences:
        stats[name] = means[name].to_numpy()
        stats[f"var_{name}"] = variances[name].to_numpy()
    return stats
