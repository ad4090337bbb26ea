"""The result of an estimator on a batch of replicates, and what every estimator shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

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
# every job. scipy.special itself is imported only where a quantile is first computed:
# its import was half of a simulate job's time, and a job is given the quantiles of its
# OLS fits, which the workflow computes once (remember_quantiles).

#: Quantiles computed or given so far, by (function, its two arguments).
_QUANTILES: dict[tuple[str, float, float], float] = {}


def _quantile(name: str, first: float, second: float, compute: Callable[[], float]) -> float:
    key = (name, float(first), float(second))
    value = _QUANTILES.get(key)
    if value is None:
        value = _QUANTILES[key] = float(compute())
    return value


def t_upper(df: int | float, alpha: float) -> float:
    """t_{df, 1−α/2}, the upper quantile of a two-sided (1 − α) t interval."""

    def compute() -> float:
        from scipy.special import stdtrit

        if alpha < SMALL_ALPHA:
            return -float(stdtrit(df, alpha / 2.0))
        return float(stdtrit(df, 1 - alpha / 2))

    return _quantile("t_upper", df, alpha, compute)


def chi2_upper(alpha: float, df: int) -> float:
    """χ²_{df, 1−α/2}, the upper quantile of a two-sided (1 − α) chi-square interval."""

    def compute() -> float:
        from scipy.special import gammainccinv

        if alpha < SMALL_ALPHA:
            return 2.0 * float(gammainccinv(df / 2.0, alpha / 2.0))
        return chi2_quantile(1 - alpha / 2, df)

    return _quantile("chi2_upper", alpha, df, compute)


def chi2_quantile(q: float, df: int) -> float:
    """The q quantile of χ² with ``df`` degrees of freedom: 2 P⁻¹(df/2, q), P the
    regularized lower incomplete gamma function."""

    def compute() -> float:
        from scipy.special import gammaincinv

        return 2.0 * float(gammaincinv(df / 2.0, q))

    return _quantile("chi2_quantile", q, df, compute)


def ols_quantile_keys(df: int, alpha: float) -> list[tuple[str, float, float]]:
    """The quantiles OLS's intervals take at ``df`` = n − p degrees of freedom and level
    ``alpha`` (:func:`regsim.estimators.linear.fit_ols`): (function, its two arguments)."""
    return [
        ("t_upper", float(df), float(alpha)),
        ("chi2_upper", float(alpha), float(df)),
        ("chi2_quantile", float(alpha / 2), float(df)),
    ]


def ols_quantiles(df: int, alpha: float) -> list[float]:
    """The values of :func:`ols_quantile_keys`, in its order."""
    return [t_upper(df, alpha), chi2_upper(alpha, df), chi2_quantile(alpha / 2, df)]


def remember_quantiles(keys: Sequence[tuple[str, float, float]], values: Sequence[float]) -> None:
    """Take ``values`` (of :func:`ols_quantiles`, computed in another process) as those of
    :func:`t_upper`, :func:`chi2_upper` and :func:`chi2_quantile` at ``keys`` (of
    :func:`ols_quantile_keys`), so that fitting OLS does not import scipy.special.

    Raises
    ------
    ValueError
        If there are not as many values as keys, a key names another function, or a
        value is not a finite number.
    """
    if len(keys) != len(values):
        raise ValueError(f"{len(values)} quantiles given for {len(keys)}")
    for (name, first, second), value in zip(keys, values, strict=True):
        if name not in ("t_upper", "chi2_upper", "chi2_quantile") or not np.isfinite(value):
            raise ValueError(
                f"not a quantile of regsim.estimators.base: {name}({first}, {second}) = {value!r}"
            )
        _QUANTILES[(name, float(first), float(second))] = float(value)


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
