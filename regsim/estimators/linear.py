"""OLS (with classical or HC3 standard errors) and Gaussian maximum likelihood.

* OLS: β̂ = (XᵀX)⁻¹Xᵀy, s² = RSS/(n − p), se(β̂_j) = s √[(XᵀX)⁻¹]_jj with t_{n−p}
  intervals; σ̂ = s with se s/√(2(n − p)) and the exact interval
  [√(RSS/χ²_{1−α/2, n−p}), √(RSS/χ²_{α/2, n−p})].
* OLS with HC3 (``ols_hc3``): the OLS fit with heteroskedasticity-consistent sandwich
  standard errors, se² = [(XᵀX)⁻¹ Xᵀ diag(e_i²/(1 − h_ii)²) X (XᵀX)⁻¹]_jj, t_{n−p}
  intervals; σ as for OLS.
* MLE: maximiser of the Gaussian log-likelihood in (β, σ): β̂ as OLS, σ̂ = √(RSS/n);
  Wald intervals from the inverse observed information, se(β̂_j) = σ̂ √[(XᵀX)⁻¹]_jj,
  se(σ̂) = σ̂/√(2n).
"""

from __future__ import annotations

import numpy as np

from regsim.estimators.base import (
    Fit,
    chi2_quantile,
    chi2_upper,
    finite_rows,
    t_upper,
    wald_fit,
)
from regsim.estimators.stats import SufficientStats
from regsim.limits import normal_upper


def fit_ols(stats: SufficientStats, alpha: float = 0.05) -> Fit:
    """Ordinary least squares with t intervals and the exact chi-square interval for σ.

    Parameters
    ----------
    stats : SufficientStats
        Statistics of R datasets.
    alpha : float
        Intervals have coverage 1 − α.

    Returns
    -------
    Fit
        σ is estimated by s = √(RSS/(n − p)) with se s/√(2(n − p)).
    """
    df = stats.n - stats.p
    s = np.sqrt(stats.rss / df)
    coef_se = s[:, None] * np.sqrt(np.diagonal(stats.gram_inv, axis1=1, axis2=2))
    t_quantile = t_upper(df, alpha)
    estimate = np.column_stack([stats.beta_hat, s])
    se = np.column_stack([coef_se, s / np.sqrt(2 * df)])
    lower = estimate - t_quantile * se
    upper = estimate + t_quantile * se
    lower[:, -1] = np.sqrt(stats.rss / chi2_upper(alpha, df))
    upper[:, -1] = np.sqrt(stats.rss / chi2_quantile(alpha / 2, df))
    converged = finite_rows(estimate, se, lower, upper)
    return Fit("ols", estimate, se, lower, upper, converged, np.zeros(len(s), dtype=bool))


def fit_ols_hc3(stats: SufficientStats, alpha: float = 0.05) -> Fit:
    """OLS with HC3 heteroskedasticity-consistent standard errors (MacKinnon & White 1985).

    Parameters
    ----------
    stats : SufficientStats
        Statistics computed with ``sandwich=True``.
    alpha : float
        Intervals have coverage 1 − α: β̂_j ± t_{1−α/2, n−p}·se_HC3; σ as for OLS.

    Returns
    -------
    Fit
        se(β̂_j) = √[(XᵀX)⁻¹ Xᵀ diag(e_i²/(1 − h_ii)²) X (XᵀX)⁻¹]_jj.
    """
    if stats.hc3_cov is None:
        raise ValueError("ols_hc3 needs sufficient_stats(..., sandwich=True)")
    return ols_with_coefficient_se(
        stats, np.sqrt(np.diagonal(stats.hc3_cov, axis1=1, axis2=2)), alpha
    )


def ols_with_coefficient_se(stats: SufficientStats, coef_se: np.ndarray, alpha: float) -> Fit:
    """The ``ols_hc3`` fit of given standard errors of the coefficients: OLS's estimates
    and σ, the coefficients' SEs ``coef_se`` (R, p) and their t_{n−p} intervals.

    A replicate any of whose numbers is not finite has ``converged`` False (its numbers
    are left as they are, for a caller that reports the finite ones).
    """
    ols = fit_ols(stats, alpha)
    se = ols.se.copy()
    se[:, :-1] = coef_se
    t_quantile = t_upper(stats.n - stats.p, alpha)
    lower, upper = ols.lower.copy(), ols.upper.copy()
    lower[:, :-1] = ols.estimate[:, :-1] - t_quantile * se[:, :-1]
    upper[:, :-1] = ols.estimate[:, :-1] + t_quantile * se[:, :-1]
    converged = finite_rows(ols.estimate, se, lower, upper)
    return Fit("ols_hc3", ols.estimate, se, lower, upper, converged, ols.multimodal)


def fit_mle(stats: SufficientStats, alpha: float = 0.05) -> Fit:
    """Gaussian maximum likelihood in (β, σ) with Wald intervals.

    Parameters
    ----------
    stats : SufficientStats
        Statistics of R datasets.
    alpha : float
        Intervals have coverage 1 − α (normal quantiles).

    Returns
    -------
    Fit
        σ̂ = √(RSS/n); the inverse observed information gives se(β̂_j) = σ̂ √[(XᵀX)⁻¹]_jj
        and se(σ̂) = σ̂/√(2n).
    """
    n = stats.n
    sigma_hat = np.sqrt(stats.rss / n)
    coef_se = sigma_hat[:, None] * np.sqrt(np.diagonal(stats.gram_inv, axis1=1, axis2=2))
    estimate = np.column_stack([stats.beta_hat, sigma_hat])
    se = np.column_stack([coef_se, sigma_hat / np.sqrt(2 * n)])
    return wald_fit("mle", estimate, se, normal_upper(alpha))
