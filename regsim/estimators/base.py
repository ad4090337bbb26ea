"""The result of an estimator on a batch of replicates, and what every estimator shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammainccinv, gammaincinv, stdtrit

from regsim.limits import SMALL_ALPHA
from regsim.schema import SIGMA_PRIORS, parameter_names


@dataclass(frozen=True)
class Fit:
    """Results of one estimator on R datasets, in the spirit of statsmodels' Results.

    Columns of the (R, p + 1) arrays follow :func:`parameter_names`.

    Attributes
    ----------
    method : str
        Registry name of the estimator.
    estimate, se, lower, upper : ndarray, shape (R, p + 1)
        Point estimates, standard errors and interval bounds.
    converged : ndarray of bool, shape (R,)
        False where the fit failed (iteration cap, non-positive-definite Hessian,
        non-finite result); such rows must not be used as numbers.
    multimodal : ndarray of bool, shape (R,)
        True where the objective had more than one local optimum (MAP: the profile
        over σ; Bayes: the posterior density of log σ).
    """

    method: str
    estimate: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    converged: np.ndarray
    multimodal: np.ndarray

    @property
    def parameters(self) -> list[str]:
        """Parameter names, one per column."""
        return parameter_names(self.estimate.shape[1] - 1)


def sigma_exponent(sigma_prior: str) -> int:
    """a of the prior p(σ) ∝ σ^{−a} called ``sigma_prior``: 0 for ``"flat"``, 1 for
    ``"jeffreys"``."""
    if sigma_prior not in SIGMA_PRIORS:
        known = ", ".join(SIGMA_PRIORS)
        raise ValueError(f"unknown sigma_prior {sigma_prior!r}; known: {known}")
    return SIGMA_PRIORS.index(sigma_prior)


# Quantiles from scipy.special (and the normal one, regsim.limits.normal_upper, from the
# standard library) rather than scipy.stats, whose import alone costs about a second in
# every job.
def t_upper(df: int | float, alpha: float) -> float:
    """t_{df, 1−α/2}, the upper quantile of a two-sided (1 − α) t interval."""
    if alpha < SMALL_ALPHA:
        return -float(stdtrit(df, alpha / 2.0))
    return float(stdtrit(df, 1 - alpha / 2))


def chi2_upper(alpha: float, df: int) -> float:
    """χ²_{df, 1−α/2}, the upper quantile of a two-sided (1 − α) chi-square interval."""
    if alpha < SMALL_ALPHA:
        return 2.0 * float(gammainccinv(df / 2.0, alpha / 2.0))
    return chi2_quantile(1 - alpha / 2, df)


def chi2_quantile(q: float, df: int) -> float:
    """The q quantile of χ² with ``df`` degrees of freedom: 2 P⁻¹(df/2, q), P the
    regularized lower incomplete gamma function."""
    return 2.0 * float(gammaincinv(df / 2.0, q))


def finite_rows(*arrays: np.ndarray) -> np.ndarray:
    """Rows (replicates) where every entry of every (R, k) array is finite, shape (R,)."""
    # Column by column: numpy's reductions along a short axis are far slower.
    finite = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        for j in range(a.shape[1]):
            finite &= np.isfinite(a[:, j])
    return finite


def wald_fit(method: str, estimate: np.ndarray, se: np.ndarray, quantile: float) -> Fit:
    """The :class:`Fit` of Wald intervals estimate ± ``quantile`` · se, arrays (R, p + 1);
    a replicate converged where all of them are finite, and none is multimodal."""
    lower, upper = estimate - quantile * se, estimate + quantile * se
    converged = finite_rows(estimate, se, lower, upper)
    return Fit(method, estimate, se, lower, upper, converged, np.zeros(len(estimate), dtype=bool))
