"""Rule B: the trapezoidal rule in a stretched t, over every mode that matters.

For bimodal, skewed or flat posteriors, and where rule A (:mod:`.hermite`) failed its
check: a grid from below the lowest mode to past the highest, with a stretched right
tail, checked against its two halves.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import sici

from regsim.estimators.bayes.posterior import _CHUNK, _Posterior
from regsim.estimators.bayes.summaries import (
    _log_node_sum,
    _node_sum,
    _sigma_moments,
    _summaries,
    _weights_and_total,
)

#: Step of the trapezoidal rule, in sds of the narrowest mode, and at most this in t.
_STEP, _STEP_T = 0.5, 0.1

#: The grid runs from this many sds below the lowest mode ...
_LEFT = 9.0

#: ... to this many above the highest, then stretches (:func:`_trapezoid_fit`).
_RIGHT = 7.0

#: Scale (in steps of ξ) and initial growth of the stretch of the right tail.
_RHO, _GROWTH = 2.0, 0.5

#: The stretched tail reaches where the slowest-falling integrand has fallen by e^{−40}.
_TAIL = 40.0

#: Largest disagreement between the rule and each of its two halves (step 2h) accepted.
_TRAPEZOID_TOL = 1e-4

#: Chebyshev points per grid interval for σ's quantiles.
_CELL_POINTS = 8


@functools.cache
def _sinc_tables(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tables of the sinc interpolant on ``count`` grid points (unit spacing).

    * ``si[count − 1 + d]`` = Si(πd) for the lags d = −(count − 1) … count − 1, so that
      ½ + Si(π(j − i))/π = ∫_{−∞}^{j} sinc(u − i) du (the lags, not a count × count
      table: a grid of many thousand points would need gigabytes);
    * ``theta``: Chebyshev points of [0, 1];
    * ``to_monomial``: values at θ_l -> coefficients of 1, θ, θ², … of their interpolant.
    """
    k = np.arange(-(count - 1), count)
    si = sici(np.pi * k)[0]
    q = _CELL_POINTS
    theta = 0.5 - 0.5 * np.cos(np.pi * (2 * np.arange(q) + 1) / (2 * q))
    to_monomial = np.linalg.inv(theta[:, None] ** np.arange(q)[None, :])
    return si, theta, to_monomial


def _sinc_quantile(
    weight: np.ndarray, level: float, tables: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """u (in grid steps) where the integral of the sinc interpolant of the trapezoidal
    weights (nodes, R) reaches ``level``.

    The integral up to grid point j is Σ_i w_i (½ + Si(π(j − i))/π) (``cumulative``);
    the trapezoidal partial sums locate the grid interval [j, j + 1] that holds the
    quantile, and those integrals at its neighbours settle it. There the interpolant
    Σ_i w_i sinc(u − i) = sin(πθ)/π Σ_i w_i (−1)^{j−i}/(j − i + θ) (u = j + θ) at
    ``_CELL_POINTS`` Chebyshev points of θ gives a polynomial, whose integral from j is
    solved for by Newton's iteration. Returns u and whether the iteration converged and
    the polynomial's integral over the interval matches the interpolant's (to 1e-9).
    """
    si, theta, to_monomial = tables
    count, replicates = weight.shape
    columns = np.arange(replicates)
    partial = np.cumsum(weight, axis=0) - 0.5 * weight
    guess = np.clip((partial <= level).sum(axis=0) - 1, 1, count - 3)
    # The sinc integral at grid points guess − 1 … guess + 2: pick the interval.
    lags = count - 1 - np.arange(count)[:, None]  # index of Si(π(j − i)) is j + lags[i]
    near = np.stack(
        [_node_sum(weight * (0.5 + si[guess + k + lags] / np.pi)) for k in (-1, 0, 1, 2)]
    )
    offset = np.clip((near <= level).sum(axis=0) - 1, 0, 2)
    j = guess - 1 + offset
    base, end = near[offset, columns], near[offset + 1, columns]
    lag = j[None, :] - np.arange(count)[:, None]
    signed = weight * np.where(lag % 2 == 0, 1.0, -1.0)
    values = np.stack(
        [_node_sum(signed / (lag + th)) * (np.sin(np.pi * th) / np.pi) for th in theta]
    )
    # F(j + θ) ≈ Σ_m coef_m θ^m, and its integral from j, Σ_m coef_m θ^{m+1}/(m+1).
    coef = np.stack([_node_sum(values * row[:, None]) for row in to_monomial])
    integral = coef / np.arange(1, len(coef) + 1)[:, None]
    consistent = np.abs(base + _node_sum(integral) - end) <= 1e-9
    span = end - base
    th = np.clip(np.where(span > 0, (level - base) / np.where(span > 0, span, 1.0), 0.5), 0, 1)
    done = np.zeros(replicates, dtype=bool)
    for _ in range(12):
        value = integral[-1] * th
        slope = coef[-1]
        for m in range(len(coef) - 2, -1, -1):
            value = (value + integral[m]) * th
            slope = slope * th + coef[m]
        step = (base + value - level) / slope
        th = np.where(done, th, np.clip(th - step, 0.0, 1.0))
        done |= np.abs(step) <= 1e-12
        if done.all():
            break
    return j + th, consistent & done


def _trapezoid_fit(
    post: _Posterior,
    t_low: np.ndarray,
    t_high: np.ndarray,
    width: np.ndarray,
    power: int,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rule B: the trapezoidal rule in ξ, t = t_low + w ξ + w ρ β e^{(ξ − L)/ρ}.

    w is the sd of the narrowest mode and L = (t_high − t_low)/w, so the grid is uniform,
    with step ``_STEP`` sds (at most ``_STEP_T`` in t), over [t_low, t_high] (every mode
    and its flanks) and then stretches geometrically into the right tail, where the
    density falls only as σ^{−(ν+1)} (e^{−ν t}): up to where the slowest integrand,
    e^{−κ t} with κ = ν − 2 for the second moments, has fallen by e^{−40}. The integrand
    is analytic and decays at both ends, so the trapezoidal rule converges geometrically
    in the step; it is checked against its two halves (step 2h).

    Beyond the first and the last mode the density falls monotonically (there is no other
    mode), so a grid whose end weights are negligible (``_END``; at the right end times
    σ^k) has lost nothing; where an end weighs more (a shoulder, a tail heavier
    than the modes' curvature shows) that side is extended to twice its reach from the
    modes, and where the halves disagree the step is halved, a few times.

    σ's quantiles come from the sinc interpolant of the weights, the trapezoidal rule's
    own interpolant (:func:`_sinc_quantile`).

    Returns estimate, se, lower, upper (R, p + 1), whether the rule is accepted and
    log ∫ p(t | y) dt (R,), as :func:`_hermite_fit`.
    """
    replicates, p = len(t_low), post.p
    estimate = np.full((replicates, p + 1), np.nan)
    se, lower, upper = estimate.copy(), estimate.copy(), estimate.copy()
    ok = np.zeros(replicates, dtype=bool)
    log_norm = np.full(replicates, np.nan)
    t_low, t_high = t_low.copy(), t_high.copy()
    first, last = t_low + _LEFT * width, t_high - _RIGHT * width  # the outer modes
    refine = np.ones(replicates)
    pending = np.arange(replicates)
    for _ in range(_RETRIES):
        result = _trapezoid_once(
            post.take(pending),
            t_low[pending],
            t_high[pending],
            width[pending],
            refine[pending],
            power,
            alpha,
        )
        accepted, heavy_left, heavy_right, coarse, norm = result[4:]
        done = pending[accepted]
        for out, value in zip((estimate, se, lower, upper), result[:4], strict=True):
            out[done] = value[accepted]
        ok[done] = True
        log_norm[done] = norm[accepted]
        retry = ~accepted & (heavy_left | heavy_right | coarse)
        if not retry.any():
            break
        again = pending[retry]
        left, right = again[heavy_left[retry]], again[heavy_right[retry]]
        t_low[left] = first[left] - 2.0 * (first[left] - t_low[left])
        t_high[right] = last[right] + 2.0 * (t_high[right] - last[right])
        refine[again[coarse[retry]]] *= 0.5
        pending = again
    return estimate, se, lower, upper, ok, log_norm


#: Rounds of the trapezoidal rule (the first and up to this many minus one retries):
#: six doublings of a side's reach cover the longest plateau the priors allow (about
#: 115 in t at η = 1e50).
_RETRIES = 7

#: Largest weight of an end node of the trapezoidal grid.
_END = 1e-13

#: Most nodes of a trapezoidal grid: a replicate whose grid would need more fails (its
#: fit is flagged, as an improper one's). Vague priors at n = p + 1 under the flat prior
#: on σ spread log σ's posterior over a plateau up to about σ = η: with a mode's sd
#: counted as at most ``_WIDEST``, N(0, 100²) priors there took up to 240 nodes,
#: N(0, 10¹²²) 656 and N(0, 10⁵⁰²) 13,232 (p = 3, 50 replicates); elsewhere a few
#: hundred at most.
_TRAPEZOID_MAX_NODES = 1 << 14


def _trapezoid_once(
    post: _Posterior,
    t_low: np.ndarray,
    t_high: np.ndarray,
    width: np.ndarray,
    refine: np.ndarray,
    power: int,
    alpha: float,
) -> tuple[np.ndarray, ...]:
    """One round of :func:`_trapezoid_fit`, the step scaled by ``refine``.

    Returns estimate, se, lower, upper, whether accepted, where the left end, the
    right end or the halves failed, and log ∫ p(t | y) dt.
    """
    replicates, p = len(t_low), post.p
    estimate = np.full((replicates, p + 1), np.nan)
    se, lower, upper = estimate.copy(), estimate.copy(), estimate.copy()
    ok = np.zeros(replicates, dtype=bool)
    heavy_left = np.zeros(replicates, dtype=bool)
    heavy_right = np.zeros(replicates, dtype=bool)
    coarse = np.zeros(replicates, dtype=bool)
    log_norm = np.full(replicates, np.nan)
    span = (t_high - t_low) / width
    kappa = post.nu - power
    stretch = _RHO * np.log(np.maximum(_TAIL / (kappa * width * _RHO * _GROWTH), 1.0))
    xi_end = span + stretch
    longest = np.minimum(_STEP, _STEP_T / width) * refine
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        nodes = 8.0 * np.ceil((np.ceil(xi_end / longest) + 1.0) / 8.0)
        # A grid beyond the largest is not integrated: the replicate fails (not retried).
        within = nodes <= _TRAPEZOID_MAX_NODES
        counts = np.where(within, nodes, 0).astype(int)
        for count in np.unique(counts[within]):
            group = np.flatnonzero(counts == count)
            tables = _sinc_tables(int(count))
            chunk = max(1, _CHUNK // int(count))
            for start in range(0, len(group), chunk):
                rows = group[start : start + chunk]
                step = xi_end[rows] / (count - 1)
                xi = np.arange(count)[:, None] * step
                growth = _GROWTH * np.exp((xi - span[rows]) / _RHO)
                t = t_low[rows] + width[rows] * (xi + _RHO * growth)
                values = post.take(rows).evaluate(np.exp(2.0 * t), t)
                weight, total = _weights_and_total(
                    values.logp + np.log(width[rows] * (1.0 + growth))
                )
                log_norm[rows] = total + np.log(step)  # node i stands for step·dt/dξ
                halves = np.maximum(
                    np.abs(2.0 * _node_sum(weight[0::2]) - 1.0),
                    np.abs(2.0 * _node_sum(weight[1::2]) - 1.0),
                )
                sigma = np.exp(t)
                sigma_mean, sigma_sd = _sigma_moments(weight, sigma)
                sigma_limits = []
                converged = np.ones(len(rows), dtype=bool)
                for level in (alpha / 2.0, 1.0 - alpha / 2.0):
                    u, found = _sinc_quantile(weight, level, tables)
                    xi_q = u * step
                    t_q = t_low[rows] + width[rows] * (
                        xi_q + _RHO * _GROWTH * np.exp((xi_q - span[rows]) / _RHO)
                    )
                    sigma_limits.append(np.exp(t_q))
                    converged &= found
                heavy_left[rows] = ~(weight[0] <= _END)
                # At the right end, weighted by σ^k (k = ν − κ, the highest moment of σ
                # that exists, up to 2) relative to that moment, in logs: on a vague
                # prior's plateau the moment sits e^{88} in σ from the heaviest node, and
                # relative to that node's σ^k (or in σ^k itself) the end never passed.
                log_moment = np.log(weight) + power * t
                heavy_right[rows] = ~(log_moment[-1] - _log_node_sum(log_moment) <= math.log(_END))
                coarse[rows] = ~(halves <= _TRAPEZOID_TOL)
                passed = converged & ~heavy_left[rows] & ~heavy_right[rows] & ~coarse[rows]
                # β's quantiles only where the grid passed (as in the Hermite rule).
                mean, sd, low, up, done = _summaries(weight, values.m, values.v, alpha, passed)
                estimate[rows] = np.column_stack([mean, sigma_mean])
                se[rows] = np.column_stack([sd, sigma_sd])
                lower[rows] = np.column_stack([low, sigma_limits[0]])
                upper[rows] = np.column_stack([up, sigma_limits[1]])
                ok[rows] = passed & done
    return estimate, se, lower, upper, ok, heavy_left, heavy_right, coarse, log_norm
