"""Rule A: Gauss–Hermite quadrature in a power of the precision about a single mode.

Where p(t | y) has one mode and is close enough to normal in a power of the precision
1/σ², a Gauss–Hermite rule of 7 to 20 nodes, whose Hermite series checks itself; a
replicate that fails the check is tried with more nodes, then with rule B
(:mod:`.trapezoid`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import ndtr, ndtri

from regsim.estimators.bayes.posterior import _CHUNK, _Posterior
from regsim.estimators.bayes.summaries import (
    _halley_step,
    _node_sum,
    _sigma_moments,
    _summaries,
    _weights_and_total,
)

#: Gauss–Hermite nodes by ν_m, the smaller of ν and −ℓ''/2 at the mode (the degrees of
#: freedom the tail and the curvature show): (at least, nodes). Where the rule's own
#: check fails the next number of nodes is tried; below the last ν, or where the check
#: fails with the most nodes, the trapezoidal rule is used. From 8 to 12 nodes, each
#: count starts where it passed both checks on nearly every replicate of weak priors
#: (n = 20 to 200, 300 replicates each: 12 nodes on none at ν_m ≈ 27 and on all at 37,
#: 10 on none at 47 and all at 67, 8 on none at 97 and all at 127), so that a replicate
#: seldom pays for a count that fails; 16 nodes, which passed on half of the weak
#: prior's replicates and on all of the informative prior's at ν_m ≈ 17, still start at
#: 16 (starting at 22 cost as much over the four priors). (With 20 nodes at ν_m near
#: 12, σ's limits erred by up to 3.5e-6 posterior sds against adaptive quadrature; from
#: 13 on, by at most 2e-6. Sixteen nodes below ν_m = 16 erred by up to 1e-5. Seven
#: nodes pass the check on the coefficients from ν_m ≈ 250 on, where the series' sixth
#: and fifth terms fall below its tolerance as ν_m^{−3/2}, but the check at σ's limits
#: (:func:`_hermite_tail_shift`) only from about 700 (priors in conflict) or 800 (weak
#: priors) on: below that they would be tried and fail. Six nodes never pass below ν_m
#: of several thousand: their fourth term, the kurtosis, falls only as 1/ν_m.)
_HERMITE_NODES: tuple[tuple[float, int], ...] = (
    (800, 7),
    (120, 8),
    (60, 10),
    (35, 12),
    (16, 16),
    (13, 20),
)


def _hermite_count(nu: np.ndarray) -> np.ndarray:
    """Gauss–Hermite nodes for each ν (0: none, use the trapezoidal rule)."""
    count = np.zeros(len(nu), dtype=int)
    for least, nodes in reversed(_HERMITE_NODES):
        count = np.where(nu >= least, nodes, count)
    return count


#: Largest ‖c_{K−1} He_{K−1}‖ and ‖c_{K−2} He_{K−2}‖ of the Hermite coefficients of the
#: density's ratio to the Gaussian the Gauss–Hermite rule accepts: a bound on the series
#: over the whole line, which a shoulder or a second mode (σ's limits near 1e-3 off)
#: fails; the limits themselves are checked apart (:data:`_HERMITE_LIMIT_TOL`). Both
#: count, since a series can alternate between small odd and large even terms.
_HERMITE_TOL = 2e-5

#: Largest shift of σ's interval limits, in posterior sds of σ, that the two highest
#: terms of the series make (:func:`_hermite_tail_shift`): the coefficients' check
#: above bounds the series over the whole line, and passed two replicates whose upper
#: limit erred by 1.1e-5 and 1.2e-5 sds (n = 100, σ = 5, a prior in conflict, 12 nodes):
#: at the limits a term can weigh more than its norm.
_HERMITE_LIMIT_TOL = 2e-6

#: Below this ν_m the power of the precision follows the posterior's skewness
#: (:func:`_shape`); above it (ten nodes or fewer) the posterior is close to normal in
#: any power near the gamma's, which the Hermite check confirms, and the two evaluations
#: that measure the skewness would cost a fifth of the rule.
_SHAPED = 32

#: Largest flatness ℓ''''/κ² about the mode (:func:`_shape`) at which the rule is tried:
#: the gamma-like posteriors it suits have negative values (about −0.13 at ν ≈ 15, −0.06
#: at ν = 32); beyond 0.015 the Hermite series of priors in strong conflict with the data
#: failed its check nearly always.
_HERMITE_FLAT = 0.015


def _hermite_power(nu: np.ndarray, skew: np.ndarray) -> np.ndarray:
    """The power q of the precision, v = σ^{−2q}, in which the rule integrates.

    In u = log v = −2q t the log density of v is ℓ(t) − u (ℓ = log p(t | y)), and its
    third derivative in v vanishes at the mode for q = −ℓ'''/(6ℓ'') (``skew``, from
    :func:`_shape`): the power that makes the density of v most nearly symmetric.
    For the all-flat posterior, whose precision is a gamma variable, that is Wilson and
    Hilferty's cube root, q = 1/3; there a slightly smaller power, q − 0.13/√ν for ν of
    a few tens, leaves a smaller remainder for the Hermite series of σ's CDF, and the
    same shift serves priors in conflict with the data (both measured against adaptive
    quadrature). The clip keeps the power away from 0, where v loses t's scale.
    """
    return np.clip(skew - 0.13 / np.sqrt(nu), 0.05, 0.5)


def _shape(
    post: _Posterior, t_mode: np.ndarray, curvature: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The skewness and the flatness of p(t | y) about its mode, from ℓ'' one sd either
    side (ℓ'' = 2 (R'(s) − R(s)/s), ℓ = log p(t | y), κ = −ℓ'' at the mode).

    The skewness is −ℓ'''/(6ℓ'') = ℓ'''/(6κ), ℓ''' from the central difference over
    ±1/√κ: an average over the body of the posterior, where the nodes lie, rather than
    the value at the mode alone (where it fails, the gamma posterior's 1/3). The
    flatness is ℓ''''/κ² from the second difference, (ℓ''₋ + ℓ''₊ + 2κ)/κ: negative for
    the gamma-like posteriors the rule suits, positive where the density flattens on
    both sides of the mode, a shoulder the Hermite series resolves only slowly.
    """
    step = 1.0 / np.sqrt(curvature)
    t = np.stack([t_mode - step, t_mode + step])
    s = np.exp(2.0 * t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        values = post.evaluate(s, t, slope=True, moments=False, density=False)
        assert values.r_slope is not None
        second = 2.0 * (values.r_slope - values.r / s)
        skew = (second[1] - second[0]) / (12.0 * step * curvature)
        flatness = (second[0] + second[1] + 2.0 * curvature) / curvature
    return np.where(np.isfinite(skew), skew, 1.0 / 3.0), flatness


def _hermite_polynomials(z: np.ndarray, top: int) -> np.ndarray:
    """He_0(z) … He_top(z), stacked along a new first axis: the probabilists' Hermite
    polynomials, by He_{m+1} = z He_m − m He_{m−1}."""
    basis = np.empty((top + 1, *np.shape(z)))
    basis[0] = 1.0
    if top >= 1:
        basis[1] = z
    for m in range(1, top):
        np.multiply(z, basis[m], out=basis[m + 1])
        basis[m + 1] -= m * basis[m - 1]
    return basis


@functools.cache
def _hermite_table(count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nodes z, weights (sum 1), the matrix He_m(z_i)/m! and the norms √(m!)."""
    z, w = hermegauss(count)
    basis = _hermite_polynomials(z, count - 1)
    factorial = np.array([math.factorial(m) for m in range(count)], dtype=float)
    return z, w / w.sum(), basis / factorial[:, None], np.sqrt(factorial)


def _hermite_cdf(
    coef: np.ndarray, z: np.ndarray, basis: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F(z) = Φ(z) − φ(z) Σ_{m≥1} c_m He_{m−1}(z) and its first two derivatives,
    F'(z) = φ(z) Σ_m c_m He_m(z) and F''(z) = −φ(z) Σ_m c_m He_{m+1}(z).

    The polynomials He_0 … He_K come first (``basis``, if the caller has them already),
    then the three sums over them: each numpy call then works on all the terms at once
    (z holds only two values per replicate, so the calls, not the arithmetic, cost). The
    sums run over the terms in order, as :func:`_node_sum` does over nodes, so that the
    result does not depend on the batch.
    """
    count = coef.shape[0]
    phi = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    if basis is None:
        basis = _hermite_polynomials(z, count)
    tail = _node_sum((coef[1:] * basis[: count - 1]).reshape(count - 1, -1))
    density = _node_sum((coef * basis[:count]).reshape(count, -1))
    bend = _node_sum((coef * basis[1:]).reshape(count, -1))
    shape = z.shape
    return (
        ndtr(z) - phi * tail.reshape(shape),
        phi * density.reshape(shape),
        -phi * bend.reshape(shape),
    )


def _hermite_tail_shift(coef: np.ndarray, z: np.ndarray) -> np.ndarray:
    """How far the two highest terms of the series move its quantiles at ``z``, in z.

    F(z) = Φ(z) − φ(z) Σ_m c_m He_{m−1}(z): the terms m = K−1 and K−2 move F at z by
    φ(z) |c_m He_{m−1}(z)|, and its quantile by that over the density F'(z). The larger
    of the two bounds the error of a converging series' quantile (the terms left out are
    smaller still), as the coefficients' own check does over the whole line, but where
    the limits are: in a tail a term can matter more than its norm says. ``z`` has shape
    (levels, R).
    """
    count = coef.shape[0]
    # He_0 … He_K once: the two terms' polynomials and the density's sum share them.
    polynomials = _hermite_polynomials(z, count)
    phi = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    moved = np.maximum(
        np.abs(coef[count - 1] * polynomials[count - 2]),
        np.abs(coef[count - 2] * polynomials[count - 3]),
    )
    # F'(z) as :func:`_hermite_cdf` has it (F and F'' are not needed here).
    density = _node_sum((coef[:, None, :] * polynomials[:count]).reshape(count, -1))
    return phi * moved / (phi * density.reshape(z.shape))


def _hermite_quantile(
    coef: np.ndarray, levels: np.ndarray, max_iter: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """z with F(z) = level for the Hermite series ``coef`` (shape (K, R)), per level.

    Halley's iteration from the Cornish–Fisher approximation with the series' moments
    (E z = c₁, E z² = 1 + 2c₂, E z³ = 6c₃ + 3c₁, E z⁴ = 24c₄ + 12c₂ + 3), safeguarded by
    bisection; a step below 1e-3 ends it after it is taken (the error left is of the
    order of its cube). Returns arrays of shape (levels, R).
    """
    mean = coef[1]
    raw2, raw3, raw4 = 1.0 + 2.0 * coef[2], 6.0 * coef[3] + 3.0 * mean, 24.0 * coef[4]
    raw4 = raw4 + 12.0 * coef[2] + 3.0
    var = np.maximum(raw2 - mean * mean, 0.0625)
    # (Array powers other than squares are slow: products instead.)
    square = mean * mean
    third = raw3 - mean * (3.0 * raw2 - 2.0 * square)
    fourth = raw4 - mean * (4.0 * raw3 - mean * (6.0 * raw2 - 3.0 * square))
    skew = np.clip(third / (var * np.sqrt(var)), -1.0, 1.0)
    kurt = np.clip(fourth / (var * var) - 3.0, -1.0, 2.0)
    level = np.asarray(levels, dtype=float)[:, None]
    zn = ndtri(level)
    z = mean + np.sqrt(var) * (
        zn
        + (zn * zn - 1.0) * skew / 6.0
        + (zn * zn - 3.0) * zn * kurt / 24.0
        - (2.0 * zn * zn - 5.0) * zn * skew * skew / 36.0
    )
    lo, hi = np.full(z.shape, -40.0), np.full(z.shape, 40.0)
    done = np.zeros(z.shape, dtype=bool)
    active: Any = slice(None)
    coef_a, level_a = coef[:, None, :], level
    for _ in range(max_iter):
        za = z[active]
        value, slope, bend = _hermite_cdf(coef_a, za)
        value = value - level_a
        z[active], low, high, step, taken = _halley_step(
            za, value, slope, bend, lo[active], hi[active]
        )
        lo[active], hi[active] = low, high
        done[active] = (taken & (np.abs(step) <= 1e-3)) | (high - low <= 1e-13)
        if done.all():
            break
        active = np.nonzero(~done)
        coef_a = coef[:, active[1]]
        level_a = level[active[0], 0]
    return z, done


def _hermite_fit(
    post: _Posterior,
    t_mode: np.ndarray,
    curvature: np.ndarray,
    count: int,
    power: np.ndarray,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rule A: Gauss–Hermite quadrature in v = σ^{−2q} about the mode.

    In a power of the precision 1/σ² the posterior is close to normal
    (:func:`_hermite_power`). With t = −log(v)/(2q) the density of v is
    p(t | y)/(2qv), whose mode has d/dt log p(t | y) = −2q: one Newton step from the mode
    t* of t gives its centre t_c = t* + 2q/κ (κ = −ℓ''(t*)) and its sd w = 2q v_c/√κ. The
    nodes are v_i = v_c + w z_i (probabilists' Gauss–Hermite z_i); node i's weight is its
    Gauss–Hermite weight times g_i = p(t_i | y)/(2q v_i)/φ(z_i), normalised. The Hermite
    coefficients c_m = Σ_i w_i g_i He_m(z_i)/m! of g (c_0 = 1) give σ's CDF,
    P(σ ≤ x) = 1 − F(z_x) with F(z) = Φ(z) − φ(z) Σ_{m≥1} c_m He_{m−1}(z), and check the
    rule: where the two highest are not small (``_HERMITE_TOL``) the series has not
    converged and the replicate is tried with more nodes, or left to the trapezoidal
    rule.

    Returns estimate, se, lower, upper (R, p + 1), whether the rule is accepted and
    log ∫ p(t | y) dt (R,) in the units of ``_Posterior.evaluate``'s ``logp``.
    """
    z, gh, basis, norms = _hermite_table(count)
    replicates = len(t_mode)
    p = post.p
    estimate = np.full((replicates, p + 1), np.nan)
    se, lower, upper = estimate.copy(), estimate.copy(), estimate.copy()
    ok = np.zeros(replicates, dtype=bool)
    log_norm = np.full(replicates, np.nan)
    chunk = max(1, _CHUNK // count)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for start in range(0, replicates, chunk):
            part = slice(start, min(start + chunk, replicates))
            kappa, q = curvature[part], power[part]
            t_c = t_mode[part] + 2.0 * q / kappa
            # v_i = v_c (1 + ratio z_i), so t_i = t_c − log(1 + ratio z_i)/(2q).
            ratio = 2.0 * q / np.sqrt(kappa)
            u = 1.0 + ratio * z[:, None]
            valid = (u > 0).all(axis=0)
            log_u = np.log(np.where(u > 0, u, 1.0))
            t = t_c - log_u / (2.0 * q)
            values = post.take(part).evaluate(np.exp(2.0 * t), t, density=True)
            # log g_i up to a constant: log p(t_i | y) − log v_i + z_i²/2.
            weight, total = _weights_and_total(
                values.logp - log_u + (0.5 * z * z + np.log(gh))[:, None]
            )
            # Node i stands for gh_i/φ(z_i)·|dt/dz| of t, |dt/dz| = ratio/(2q u_i).
            log_norm[part] = total + 0.5 * math.log(2.0 * math.pi) + np.log(ratio / (2.0 * q))
            coef = np.stack([_node_sum(weight * row[:, None]) for row in basis])
            check = (np.abs(coef[-2:]) * norms[-2:, None]).max(axis=0)
            sigma_mean, sigma_sd = _sigma_moments(weight, np.exp(t))
            # σ ≤ x ⇔ v ≥ x^{−2q}: σ's lower limit is v's upper quantile, and back.
            z_q, ok_q = _hermite_quantile(coef, np.array([1.0 - alpha / 2.0, alpha / 2.0]))
            sigma_low, sigma_up = np.exp(t_c - np.log(1.0 + ratio * z_q) / (2.0 * q))
            # The limits themselves: what the two highest terms move σ's CDF by at each
            # limit, as a shift of the limit in posterior sds of σ.
            shift = _hermite_tail_shift(coef, z_q) * np.abs(
                np.stack([sigma_low, sigma_up]) * ratio / (2.0 * q * (1.0 + ratio * z_q))
            )
            close = (shift <= _HERMITE_LIMIT_TOL * sigma_sd).all(axis=0)
            passed = valid & (check <= _HERMITE_TOL) & close & ok_q.all(axis=0)
            # β's quantiles, the costliest part, only where σ's checks passed: a
            # replicate that fails goes on to more nodes without paying for them.
            mean, sd, low, up, done = _summaries(weight, values.m, values.v, alpha, passed)
            estimate[part] = np.column_stack([mean, sigma_mean])
            se[part] = np.column_stack([sd, sigma_sd])
            lower[part] = np.column_stack([low, sigma_low])
            upper[part] = np.column_stack([up, sigma_up])
            ok[part] = passed & done
    return estimate, se, lower, upper, ok, log_norm
