"""The estimator: :func:`fit_bayes`, from MAP's path to the summaries of every replicate.

It finds the modes (:mod:`.modes`), chooses per replicate rule A (:mod:`.hermite`) or
rule B (:mod:`.trapezoid`), takes the far tails' limits apart (:mod:`.tails`), and reports
what does not exist, or failed, as NaN (:func:`existing`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from regsim.design import Prior
from regsim.estimators.base import Fit, finite_rows, sigma_exponent
from regsim.estimators.bayes.hermite import (
    _HERMITE_FLAT,
    _HERMITE_NODES,
    _SHAPED,
    _hermite_count,
    _hermite_fit,
    _hermite_power,
    _shape,
)
from regsim.estimators.bayes.modes import _brackets, _Modes, _newton
from regsim.estimators.bayes.posterior import _Posterior
from regsim.estimators.bayes.tails import _TAIL_ALPHA, _beta_tail_limits, _sigma_tail_limits
from regsim.estimators.bayes.trapezoid import _LEFT, _RIGHT, _trapezoid_fit
from regsim.estimators.map import _prior_path
from regsim.estimators.stats import SufficientStats

#: Modes whose mass is below e^{−30} of the largest one's do not shape the quadrature.
_NEGLIGIBLE = 30.0

#: A mode's sd in t counts as at most this for the grids' reach and step. Vague proper
#: priors at n = p + 1 or p + 2 (η_j = 7e4 at n = 3) leave log σ's density a plateau
#: whose curvature at the mode is near 0: its sd of 82 sent the grid to σ = e^{578}.
_WIDEST = 1.0

#: The curvature a mode counts with at least (its Laplace mass then stays finite).
_FLATTEST = 1e-300

#: Below :data:`_TAIL_ALPHA` the rules run at α no smaller than this: the mixtures'
#: brackets hold the quantiles from 1e-9 to 1 − 1e-9 (:meth:`_Mixture.bracket`), and the
#: tail integrals take the limits the rest of the way.
_RULE_ALPHA = 1e-8


def fit_bayes(
    stats: SufficientStats,
    prior: Prior,
    alpha: float = 0.05,
    *,
    sigma_prior: str = "flat",
    scan_points: int = 64,
    tol: float = 1e-3,
) -> Fit:
    """Exact marginal posterior means, sds and equal-tailed intervals of β and σ.

    Model y ~ N(Xβ, σ²I) with independent priors β_j ~ N(μ_j, η_j²) (η_j = ∞: flat) and
    p(σ) ∝ σ^{−a} (``sigma_prior`` ``"flat"``: a = 0, ``"jeffreys"``: a = 1). For fixed
    s = σ² the posterior of β is normal, N(m(s), V(s)) with V = (XᵀX/s + D)⁻¹ and
    m = V(Xᵀy/s + Dμ) — MAP's conditional mode path β(s) — so with t = log σ,

        log p(t | y) = (p − e) t − ½ [RSS(s)/s + prior(s)] − ½ log det(XᵀX + sD) + c,

    e = n − 1 + a, RSS(s) and prior(s) = (m − μ)ᵀD(m − μ) along the path. Every summary is
    a one-dimensional integral over t: σ's marginal is this density, β_j's the mixture
    ∫ N(m_j(s), V_jj(s)) p(t | y) dt, whose quantiles are roots of its CDF.

    The local modes of p(t | y) are found as MAP's (:func:`_brackets`, :func:`_newton`):
    d/dt log p = R(s)/s − e with R(s) = RSS(s) + s p_data(s), p_data = p − Σ_j V_jj/η_j²
    the coefficients the data determine, so every mode has s in
    [RSS₀/ν, min((RSS∞ + C)/ν, RSS∞/(e − p))]; MAP's curvature bounds, or else an
    enclosure of the roots (:func:`_enclose`), prove most replicates unimodal. The
    integrals are then taken by Gauss–Hermite quadrature in the power of the precision
    that cancels the skewness about a single mode (:func:`_hermite_fit`, few nodes,
    checked by the decay of the Hermite series), or, for several modes that matter, few
    degrees of freedom, a shoulder, an uncertified mode or a failed check, by the
    trapezoidal rule in a
    stretched log σ over every mode (:func:`_trapezoid_fit`, checked by its halves and its
    end weights, extended or refined until both pass). See docs/bayes.md.

    What exists. With flat priors on the coefficients F, the density of σ falls as
    σ^{−(n − |F| + a)} as σ → ∞ (the other coefficients' conditional variances stay below
    η_j²), so with ν = n − |F| − 1 + a:

    * the posterior is proper for ν > 0 (and RSS₀ > 0);
    * the means of σ and of the flat β_j exist for ν > 1, their sds for ν > 2 (the flat
      β_j's marginal is a scale mixture of normals with sd ∝ σ, a Student-like tail with
      ν degrees of freedom);
    * the coefficients with proper priors have every moment, and every parameter its
      quantiles, whenever the posterior is proper.

    A replicate whose posterior is improper, whose computation failed, or any of whose
    summaries does not exist has ``converged`` False; a summary that does not exist, or
    any summary of a replicate that is improper or failed, is NaN (never a number that is
    not the posterior's). ``multimodal`` is True where p(t | y) has two or more local
    modes (of log σ's density, however small their mass).

    Parameters
    ----------
    stats : SufficientStats
        Statistics of R datasets.
    prior : Prior
        Prior means and sds of the coefficients (sd = inf: flat).
    alpha : float
        The intervals are the α/2 and 1 − α/2 quantiles of the marginals.
    sigma_prior : {"flat", "jeffreys"}
        p(σ) ∝ 1 or p(σ) ∝ 1/σ.
    scan_points : int
        Points of the mode scan over log σ (as MAP's).
    tol : float
        The modes are found to within about ``tol`` sds (Newton's iteration stops after a
        step below √tol sds, :func:`_newton`).

    Returns
    -------
    Fit
        ``estimate`` the posterior means, ``se`` the posterior sds, ``lower``/``upper``
        the equal-tailed (1 − α) credible intervals.

    Notes
    -----
    Vectorised over replicates: Python loops run over nodes, iterations, matrix indices
    and groups of replicates sharing a rule, never over replicates, and a replicate's
    numbers do not depend on the replicates fitted with it. With all-flat priors the
    marginals have closed forms (multivariate t, inverse chi; docs/bayes.md) that the
    tests check.
    """
    n, p = stats.n, stats.p
    if len(prior.mean) != p:
        raise ValueError(f"prior {prior.name!r} has {len(prior.mean)} means, expected {p}")
    a = sigma_exponent(sigma_prior)
    replicates = stats.replicates
    estimate = np.full((replicates, p + 1), np.nan)
    se, lower, upper = estimate.copy(), estimate.copy(), estimate.copy()
    converged = np.zeros(replicates, dtype=bool)
    multimodal = np.zeros(replicates, dtype=bool)
    path, bounds, rss_inf = _prior_path(stats, prior)
    post = _Posterior.build(path, [stats.beta_hat[:, j] for j in range(p)], prior.mean, n, a)
    nu = post.nu
    if nu <= 0 or replicates == 0:
        return _finish(estimate, se, lower, upper, converged, multimodal, path.precision, nu)
    with np.errstate(all="ignore"):
        proper = (stats.rss > 0) & np.isfinite(stats.rss) & np.isfinite(rss_inf)
        for j in range(p):
            proper &= np.isfinite(stats.beta_hat[:, j])
    rows = np.flatnonzero(proper)
    if len(rows):
        sub = post if len(rows) == replicates else post.take(rows)
        rep, lo, hi, start, certified = _brackets(
            sub, bounds.take(rows), rss_inf[rows], scan_points
        )
        modes = _newton(sub, rep, lo, hi, start, tol)
        result = _fit_modes(sub, modes, alpha, hermite=certified)
        if len(rows) == replicates:
            # Every replicate proper: the arrays as they are, no copies.
            estimate, se, lower, upper, converged, multimodal = result
        else:
            for out, value in zip((estimate, se, lower, upper), result[:4], strict=True):
                out[rows] = value
            converged[rows] = result[4]
            multimodal[rows] = result[5]
    return _finish(estimate, se, lower, upper, converged, multimodal, path.precision, nu)


def existing(precision: Sequence[float], nu: int) -> tuple[np.ndarray, np.ndarray]:
    """Which posterior means and sds exist, per parameter (β_0 … β_{p−1}, σ).

    With flat priors on F (precision 0) and ν = n − |F| − 1 + a, the means of σ and of
    the flat coefficients exist for ν > 1 and their sds for ν > 2; the coefficients with
    proper priors have both whenever the posterior is proper (ν > 0).
    """
    flat = np.array([not prec for prec in precision] + [True])
    return ~flat | (nu > 1), ~flat | (nu > 2)


def _finish(
    estimate: np.ndarray,
    se: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    converged: np.ndarray,
    multimodal: np.ndarray,
    precision: Sequence[float],
    nu: int,
) -> Fit:
    """The Fit, with what does not exist or failed as NaN and ``converged`` False."""
    has_mean, has_sd = existing(precision, nu)
    estimate[:, ~has_mean] = np.nan
    se[:, ~has_sd] = np.nan
    converged = converged & finite_rows(estimate[:, has_mean], se[:, has_sd], lower, upper)
    if not converged.all():
        for values in (estimate, se, lower, upper):
            values[~converged] = np.nan
    converged &= bool(has_sd.all())
    return Fit("bayes", estimate, se, lower, upper, converged, multimodal)


def _fit_modes(
    post: _Posterior,
    modes: _Modes,
    alpha: float,
    *,
    hermite: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Summaries of every replicate of ``post`` from the local modes of p(t | y).

    A mode whose Laplace mass p(t*) √(2π/κ) is below e^{−30} of the largest mode's does
    not shape the quadrature. Where one mode matters and ν_m (the smaller of ν and κ/2)
    is large enough, Gauss–Hermite quadrature (:func:`_hermite_fit`); elsewhere, and
    where its check fails, the trapezoidal rule over every mode that matters
    (:func:`_trapezoid_fit`).
    Gauss–Hermite quadrature is tried only where ``hermite`` (default: everywhere): on
    replicates whose single mode is proven (:func:`_brackets`). Elsewhere one mode found
    by the scan can hide a shoulder beyond the Gauss–Hermite nodes, where the trapezoidal
    grid looks. Nor is it tried where ℓ'' about the mode shows a shoulder
    (:func:`_shape`).

    Returns estimate, se, lower, upper, ok and multimodal.
    """
    replicates, p, nu = post.replicates, post.p, post.nu
    estimate = np.full((replicates, p + 1), np.nan)
    se, lower, upper = estimate.copy(), estimate.copy(), estimate.copy()
    ok = np.zeros(replicates, dtype=bool)
    log_norm = np.full(replicates, np.nan)
    per_replicate = np.bincount(modes.rep, minlength=replicates)
    multimodal = per_replicate >= 2
    # On a plateau the curvature is near 0, of either sign by rounding, and the sd says
    # nothing of where the mass is (the grids' end checks find that): for the grids'
    # reach and step it counts as at most _WIDEST.
    width = 1.0 / np.sqrt(np.maximum(modes.curvature, _FLATTEST))
    reach = np.minimum(width, _WIDEST)
    # Far in a tail the rules place no nodes where the limits' mass is: they give the
    # tail integrals a start, at an α whose quantiles their brackets hold.
    rule_alpha = max(alpha, _RULE_ALPHA)
    if (per_replicate == 1).all():
        # One mode each, in replicate order.
        newton_ok = modes.ok
        dominant = np.arange(replicates)
        significant = np.ones(replicates, dtype=bool)
        count = np.ones(replicates, dtype=int)
    else:
        newton_ok = np.ones(replicates, dtype=bool)
        np.logical_and.at(newton_ok, modes.rep, modes.ok)
        mass = modes.logp + np.log(width)
        top = np.full(replicates, -np.inf)
        np.maximum.at(top, modes.rep, mass)
        significant = mass >= top[modes.rep] - _NEGLIGIBLE
        count = np.bincount(modes.rep[significant], minlength=replicates)
        # The dominant mode of each replicate (the first with the largest mass).
        dominant = np.zeros(replicates, dtype=int)
        best = np.flatnonzero(mass == top[modes.rep])
        dominant[modes.rep[best[::-1]]] = best[::-1]
    # Rule A where one mode matters and the posterior is close enough to normal.
    t_mode = modes.t[dominant]
    curvature = modes.curvature[dominant]
    nu_m = np.minimum(nu, 0.5 * curvature)
    allowed = (count == 1) & newton_ok
    if hermite is not None:
        allowed &= hermite
    nodes = np.where(allowed, _hermite_count(nu_m), 0)
    # The gamma posterior's power, and where the rule needs many nodes, the one that
    # cancels the skewness.
    power = _hermite_power(np.where(nodes > 0, nu_m, 1.0), np.full(replicates, 1.0 / 3.0))
    shaped = np.flatnonzero((nodes > 0) & (nu_m < _SHAPED))
    if len(shaped):
        part = post if len(shaped) == replicates else post.take(shaped)
        skew, flatness = _shape(part, t_mode[shaped], curvature[shaped])
        power[shaped] = _hermite_power(nu_m[shaped], skew)
        # A shoulder: the Hermite series would not converge, so not worth trying.
        nodes[shaped[~(flatness <= _HERMITE_FLAT)]] = 0
    rule_b = [np.flatnonzero(newton_ok & (nodes == 0))]
    # From the fewest nodes up: a replicate whose check fails is tried with the next
    # number of nodes, and beyond the most with the trapezoidal rule.
    ladder = sorted(k for _, k in _HERMITE_NODES)
    for k in ladder:
        rows = np.flatnonzero(nodes == k)
        if not len(rows):
            continue
        # Usually every replicate takes the same rule and passes: no copies then.
        whole = len(rows) == replicates
        result = _hermite_fit(
            post if whole else post.take(rows),
            t_mode[rows],
            curvature[rows],
            int(k),
            power[rows],
            rule_alpha,
        )
        accepted = result[4]
        if whole and accepted.all():
            estimate, se, lower, upper = result[:4]
            ok[:] = True
            log_norm = result[5]
            continue
        for out, value in zip((estimate, se, lower, upper), result[:4], strict=True):
            out[rows[accepted]] = value[accepted]
        ok[rows[accepted]] = True
        log_norm[rows[accepted]] = result[5][accepted]
        if k == ladder[-1]:
            rule_b.append(rows[~accepted])
        else:
            nodes[rows[~accepted]] = ladder[ladder.index(k) + 1]
    pending = np.sort(np.concatenate(rule_b))
    sig_rep = modes.rep[significant]
    if len(pending) or alpha < _TAIL_ALPHA:
        # The sd of each replicate's narrowest significant mode: the trapezoidal rule's
        # step, and the widest panel of the tail integrals.
        narrow = np.full(replicates, np.inf)
        np.minimum.at(narrow, sig_rep, reach[significant])
    if len(pending):
        # The grid covers every significant mode: from _LEFT sds below the lowest to
        # _RIGHT sds above the highest, with the step of the narrowest.
        low = np.full(replicates, np.inf)
        high = np.full(replicates, -np.inf)
        np.minimum.at(low, sig_rep, modes.t[significant] - _LEFT * reach[significant])
        np.maximum.at(high, sig_rep, modes.t[significant] + _RIGHT * reach[significant])
        # The highest moment of σ that exists: the tail the grid must reach.
        power = 2 if nu > 2 else (1 if nu > 1 else 0)
        result = _trapezoid_fit(
            post.take(pending), low[pending], high[pending], narrow[pending], power, rule_alpha
        )
        for out, value in zip((estimate, se, lower, upper), result[:4], strict=True):
            out[pending] = value
        ok[pending] = result[4]
        log_norm[pending] = result[5]
    ok &= newton_ok
    if alpha < _TAIL_ALPHA:
        # Far in a tail the rules' CDF, accurate to about 1e-9 of the whole mass, is not
        # accurate relative to α/2, and their nodes do not reach where a coefficient's
        # limit takes its mass from: there every limit is found again from its tail
        # integrals. Where σ's cannot be and the rule ran at α itself, its limit stands.
        tails = np.flatnonzero(ok)
        if len(tails):
            part = post if len(tails) == replicates else post.take(tails)
            # The β tails' grids span the significant modes, from the first to the last.
            first = np.full(replicates, np.inf)
            last = np.full(replicates, -np.inf)
            np.minimum.at(first, sig_rep, modes.t[significant])
            np.maximum.at(last, sig_rep, modes.t[significant])
            beta_lower, beta_upper, found_beta = _beta_tail_limits(
                part,
                lower[tails, :p],
                upper[tails, :p],
                first[tails],
                last[tails],
                narrow[tails],
                alpha,
            )
            lower[tails, :p], upper[tails, :p] = beta_lower, beta_upper
            ok[tails] = found_beta
            sigma_limits = np.log(np.column_stack([lower[tails, p], upper[tails, p]]))
            found, solved = _sigma_tail_limits(
                part, sigma_limits, log_norm[tails], 1.0 / narrow[tails], alpha
            )
            lower[tails, p], upper[tails, p] = np.exp(found[:, 0]), np.exp(found[:, 1])
            if rule_alpha != alpha:
                ok[tails] &= solved
    return estimate, se, lower, upper, ok, multimodal
