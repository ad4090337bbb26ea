"""Bayes: the exact marginal posterior of every β_j and of σ, by quadrature over log σ.

See :func:`fit_bayes` and docs/bayes.md. For fixed σ the posterior of β is normal, so
every marginal is a one-dimensional integral over t = log σ of quantities the MAP path
already computes (:mod:`regsim.estimators.map`): the conditional mean of β is MAP's
conditional mode β(s), s = σ², and the density of t follows from RSS(s), the prior's
quadratic form along that path and log det(XᵀX + sD).

Modules, in the order a fit uses them
-------------------------------------
* :mod:`~regsim.estimators.bayes.posterior`: β given σ and the density of t, at nodes.
* :mod:`~regsim.estimators.bayes.modes`: the local modes of p(t | y).
* :mod:`~regsim.estimators.bayes.hermite`: rule A, Gauss–Hermite about a single mode.
* :mod:`~regsim.estimators.bayes.trapezoid`: rule B, the trapezoidal rule over all modes.
* :mod:`~regsim.estimators.bayes.summaries`: means, sds and quantiles from weighted
  nodes, which both rules share.
* :mod:`~regsim.estimators.bayes.tails`: interval limits far in a tail (small α).
* :mod:`~regsim.estimators.bayes.estimator`: :func:`fit_bayes`, which chooses the rule
  per replicate, and :func:`existing`.
"""

from regsim.estimators.bayes.estimator import existing, fit_bayes

__all__ = ["existing", "fit_bayes"]
