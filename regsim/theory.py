"""Exact finite-sample results for normal errors, to check the simulation against.

With y = Xβ + ε, ε ~ N(0, σ² I), p coefficients and RSS/σ² ~ χ²_{n−p}:

* OLS t intervals have coverage exactly 1 − α for every β_j, and so has the chi-square
  interval for σ.
* MLE Wald intervals for β_j use se_MLE = se_OLS·√((n − p)/n) and normal quantiles; with
  the OLS t statistic T ~ t_{n−p} they cover iff |T| ≤ z·√((n − p)/n), so their coverage
  is 2·F_t(z·√((n − p)/n); n − p) − 1 (:func:`mle_wald_coverage`).
* E[s] = σ·√(2/(n − p))·Γ((n − p + 1)/2)/Γ((n − p)/2) (s = √(RSS/(n − p)), chi
  distribution), and E[σ̂_MLE] = E[s]·√((n − p)/n).

These hold given X, so for any design, fixed or random. For k = p − 1 covariates drawn
N(0, R) i.i.d. over rows, with R the equicorrelation matrix of ρ, the variance of the OLS
coefficients is known as well (:func:`ols_variance_normal_design`).
"""

from __future__ import annotations

import math

from scipy.special import gammaln, stdtr

from regsim.limits import normal_upper


def ols_coverage(alpha: float) -> float:
    """Exact coverage of the OLS t interval for β_j (and the χ² interval for σ): 1 − α."""
    return 1.0 - alpha


def mle_wald_coverage(n: int, p: int, alpha: float) -> float:
    """Exact coverage of the MLE Wald interval β̂_j ± z_{1−α/2}·se_MLE under normal errors.

    se_MLE = σ̂·√[(XᵀX)⁻¹]_jj with σ̂² = RSS/n, so (β̂_j − β_j)/se_MLE = T·√(n/(n − p)) with
    T ~ t_{n−p}; the interval covers iff |T| ≤ z·√((n − p)/n), whence

        coverage = 2·F_t(z·√((n − p)/n); n − p) − 1.

    Parameters
    ----------
    n, p : int
        Observations and coefficients (n > p).
    alpha : float
        Nominal level: z = z_{1−α/2}.
    """
    df = n - p
    z = normal_upper(alpha)
    return 2.0 * float(stdtr(df, z * math.sqrt(df / n))) - 1.0


def expected_s(n: int, p: int, sigma: float) -> float:
    """E[s] for s = √(RSS/(n − p)): σ·√(2/(n − p))·Γ((n − p + 1)/2)/Γ((n − p)/2)."""
    df = n - p
    return sigma * math.sqrt(2.0 / df) * math.exp(gammaln((df + 1) / 2.0) - gammaln(df / 2.0))


def expected_sigma_mle(n: int, p: int, sigma: float) -> float:
    """E[σ̂_MLE] for σ̂ = √(RSS/n): E[s]·√((n − p)/n)."""
    return expected_s(n, p, sigma) * math.sqrt((n - p) / n)


def equicorrelation_inverse_diagonal(k: int, rho: float) -> float:
    """[R⁻¹]_jj of the k × k equicorrelation matrix R (1 on the diagonal, ρ off it).

    R = (1 − ρ)I + ρ11ᵀ, so R⁻¹ = (I − ρ/(1 + (k − 1)ρ)·11ᵀ)/(1 − ρ) and
    [R⁻¹]_jj = (1 + (k − 2)ρ)/((1 − ρ)(1 + (k − 1)ρ)); 1/(1 − ρ²) for k = 2.
    """
    return (1.0 + (k - 2) * rho) / ((1.0 - rho) * (1.0 + (k - 1) * rho))


def ols_variance_normal_design(n: int, p: int, rho: float, sigma: float, j: int) -> float:
    """Var(β̂_j) of OLS when the k = p − 1 covariates are N(0, R) rows, R equicorrelated.

    Unconditionally Var(β̂) = σ²·E[(XᵀX)⁻¹]. The slopes' block of (XᵀX)⁻¹ is (X_cᵀX_c)⁻¹
    with X_c the centred covariates, and X_cᵀX_c ~ Wishart_k(R, n − 1), whose inverse has
    mean R⁻¹/(n − k − 2); the intercept's entry is 1/n + x̄ᵀ(X_cᵀX_c)⁻¹x̄ with
    x̄ ~ N(0, R/n) independent of X_c, of mean 1/n + k/(n(n − k − 2)). Hence

    * slope j ≥ 1: σ²·[R⁻¹]_jj/(n − k − 2), e.g. σ²/((1 − ρ²)(n − 4)) for k = 2;
    * intercept j = 0: σ²·(n − 2)/(n(n − k − 2)).

    Parameters
    ----------
    n, p : int
        Observations and coefficients (n > p + 1, so that the mean is finite).
    rho : float
        Equicorrelation of the covariates.
    sigma : float
        Error standard deviation.
    j : int
        The coefficient, 0 for the intercept.
    """
    k = p - 1
    df = n - k - 2
    if df <= 0:
        raise ValueError(f"the variance is infinite unless n > p + 1 (n = {n}, p = {p})")
    if j == 0:
        return sigma**2 * (n - 2) / (n * df)
    return sigma**2 * equicorrelation_inverse_diagonal(k, rho) / df
