"""OLS, maximum likelihood, MAP and Bayes fits, batched over replicate datasets.

Every estimator takes the :class:`SufficientStats` of a batch of R datasets (computed once
and shared by every method and prior, :mod:`regsim.estimators.stats`) and returns a
:class:`Fit`: arrays of shape (R, p + 1) holding, for β_0 … β_k and σ, the estimate, its
standard error and a (1 − α) interval, plus per-replicate flags. No estimator loops over
replicates in Python. The registry :data:`ESTIMATORS` maps each method of
:data:`regsim.schema.METHODS` to its function.

Model: y = X β + ε, ε ~ N(0, σ² I), X = [1, x_1, …, x_k], p = k + 1 coefficients.

* OLS, OLS with HC3 standard errors, MLE: :mod:`regsim.estimators.linear`.
* MAP: global mode in (β, σ) of likelihood × ∏_j N(β_j; μ_j, η_j²) × p(σ) (p(σ) ∝ 1 or
  1/σ; η_j = ∞ is a flat prior), with Laplace (inverse Hessian) intervals:
  :mod:`regsim.estimators.map`.
* Bayes: the exact marginal posterior of every β_j and of σ under the same priors, its
  means, sds and equal-tailed credible intervals, by quadrature over log σ:
  :mod:`regsim.estimators.bayes`.
* One dataset of a user's, by QR rather than the normal equations:
  :mod:`regsim.estimators.single`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from regsim.design import Prior
from regsim.estimators.base import Fit
from regsim.estimators.linear import fit_mle, fit_ols, fit_ols_hc3
from regsim.estimators.map import fit_map
from regsim.estimators.stats import (
    COLLINEARITY_LIMIT,
    EXACT_FIT,
    SufficientStats,
    concat_stats,
    sufficient_stats,
)
from regsim.schema import PRIOR_METHODS, parameter_names

__all__ = [
    "COLLINEARITY_LIMIT",
    "ESTIMATORS",
    "EXACT_FIT",
    "Fit",
    "SufficientStats",
    "concat_stats",
    "fit_bayes",
    "fit_map",
    "fit_methods",
    "fit_mle",
    "fit_ols",
    "fit_ols_hc3",
    "parameter_names",
    "sufficient_stats",
]


def __getattr__(name: str) -> Any:
    # regsim.estimators.bayes, and with it scipy.special, is imported on first use: a
    # simulate job that fits no Bayes does without scipy's import (half of its time).
    if name == "fit_bayes":
        from regsim.estimators.bayes import fit_bayes

        return fit_bayes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fit_bayes(*args: Any, **kwargs: Any) -> Fit:
    """:func:`regsim.estimators.bayes.fit_bayes`, imported when first called."""
    from regsim.estimators.bayes import fit_bayes

    return fit_bayes(*args, **kwargs)


#: The estimator registry: name -> batched fit function.
ESTIMATORS: dict[str, Callable[..., Fit]] = {
    "ols": fit_ols,
    "ols_hc3": fit_ols_hc3,
    "mle": fit_mle,
    "map": fit_map,
    "bayes": _fit_bayes,
}


def fit_methods(
    stats: SufficientStats,
    priors: Sequence[Prior],
    methods: Sequence[str],
    alpha: float,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[tuple[str, Fit]]:
    """Fit every method (and, for prior methods, every prior) on the same statistics.

    ``options`` maps a method to keyword arguments of its fit function, e.g.
    ``{"map": {"max_iter": 5, "sigma_prior": "jeffreys"}}``.

    Returns
    -------
    list of (prior name, Fit)
        Prior name is ``""`` for methods that take no prior.
    """
    fits: list[tuple[str, Fit]] = []
    for method in methods:
        if method not in ESTIMATORS:
            raise ValueError(f"unknown method {method!r}; known: {', '.join(ESTIMATORS)}")
        fit = ESTIMATORS[method]
        extra = dict((options or {}).get(method, {}))
        if method in PRIOR_METHODS:
            fits.extend((prior.name, fit(stats, prior, alpha, **extra)) for prior in priors)
        else:
            fits.append(("", fit(stats, alpha, **extra)))
    if stats.usable is not None and not stats.usable.all():
        fits = [
            (prior, replace(fit, converged=fit.converged & stats.usable)) for prior, fit in fits
        ]
    return fits
