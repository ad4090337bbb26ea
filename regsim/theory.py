"""Exact finite-sample results for normal errors, to check the simulation against.

With y = Xβ + ε, ε ~ N(0, σ² I), p coefficients and RSS/σ² ~ χ²_{n−p}:

* OLS t intervals have coverage exactly 1 − α for every β_j, and so has the chi-square
  interval for σ.
* MLE Wald intervals for β_j use se_MLE = se_OLS·√((n − p)/n) and normal quantiles; with
  the OLS t statistic T ~ t_{n−p} they cover iff |T| ≤ z·√((n − p)/n), so their coverage
  is 2·F_t(z·√((n − p)/n); n − p) − 1 (:func:`mle_wald_coverage`).
* E[s] = σ·√(2/(n − p))·Γ((n − p + 1)/2)/Γ((n − p)/2) (s = √(RSS/(n − p)), chi
  distribution), and E[σ̂_MLE] = E[s]·√((n − p)/n).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from scipy.special import gammaln, stdtr


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
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    return 2.0 * float(stdtr(df, z * math.sqrt(df / n))) - 1.0


def expected_s(n: int, p: int, sigma: float) -> float:
    """E[s] for s = √(RSS/(n − p)): σ·√(2/(n − p))·Γ((n − p + 1)/2)/Γ((n − p)/2)."""
    df = n - p
    return sigma * math.sqrt(2.0 / df) * math.exp(gammaln((df + 1) / 2.0) - gammaln(df / 2.0))


def expected_sigma_mle(n: int, p: int, sigma: float) -> float:
    """E[σ̂_MLE] for σ̂ = √(RSS/n): E[s]·√((n − p)/n)."""
    return expected_s(n, p, sigma) * math.sqrt((n - p) / n)
