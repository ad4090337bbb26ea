"""Summaries from weighted nodes: moments, and quantiles of normal mixtures.

Given nodes of t = log σ with normalised weights, β_j's marginal is the mixture
Σ_i w_i N(m_ij, v_ij): its mean and sd are sums over the nodes, its quantiles roots of the
mixture's CDF (Halley's iteration from a Cornish–Fisher start). Both rules share these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from regsim.limits import SMALL_ALPHA


def _node_sum(values: np.ndarray) -> np.ndarray:
    """Σ over the nodes (axis 0) of (nodes, R) values, in node order.

    numpy sums axis 0 of a C-ordered 2-d array with two or more columns row after row,
    but a single column, or a column stored contiguously (F order), pairwise. Here every
    column is summed row after row, so that a replicate's numbers do not depend on the
    batch it is fitted in (the study's tables do not depend on how replicates are chunked
    into jobs).
    """
    values = np.ascontiguousarray(values)
    if values.shape[1] != 1:
        return values.sum(axis=0)
    total = values[0].copy()
    for row in values[1:]:
        total += row
    return total


def _weights(log_density: np.ndarray) -> np.ndarray:
    """Normalised weights exp(log_density), shape (nodes, R)."""
    return _weights_and_total(log_density)[0]


def _weights_and_total(log_density: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised weights exp(log_density), shape (nodes, R), and the log of their sum
    before normalising, shape (R,)."""
    top = log_density.max(axis=0)
    weight = np.exp(log_density - top)
    total = _node_sum(weight)
    return weight / total, top + np.log(total)


def _log_node_sum(log_values: np.ndarray) -> np.ndarray:
    """log Σ over the nodes (axis 0) of exp(``log_values``), (nodes, R), in node order."""
    top = log_values.max(axis=0)
    return top + np.log(_node_sum(np.exp(log_values - top)))


#: Coefficients (constant term first) of P(y)/Q(y) ≈ G(y) = e^{y²/2} Φ(−y) on [0,
#: _MILLS_REACH], degrees 7 and 8: fitted to G's relative error (a linearised least-squares
#: fit with Lawson's weights on Chebyshev points, at 30 digits), within 1.6e-16 of it in
#: exact arithmetic and 6e-16 evaluated in doubles (tests/unit/test_bayes.py holds it to
#: 1e-15 against 30-digit values); all positive, so Horner's rule adds only rounding.
_MILLS_P = (
    0.49999999999999994,
    0.5896050199553913,
    0.3475261280306616,
    0.12628762097877952,
    0.030118115790692193,
    0.004686721948596281,
    0.0004411032609215239,
    1.95135911588743e-05,
)
_MILLS_Q = (
    1.0,
    1.9770946007136276,
    1.772545513218088,
    0.9442761601771934,
    0.3282179300855868,
    0.07659976098196492,
    0.011796826516484315,
    0.0011056804649742658,
    4.891334236084727e-05,
)
_MILLS_REACH = 6.0


def _horner(y: np.ndarray, coefficients: Sequence[float], out: np.ndarray | None = None) -> Any:
    """Σ_k c_k y^k by Horner's rule (``coefficients`` constant term first), into ``out``."""
    value = np.multiply(y, coefficients[-1], out=out)
    value += coefficients[-2]
    for c in coefficients[-3::-1]:
        value *= y
        value += c
    return value


def _weighted_ndtr(
    x: np.ndarray,
    weight: Any,
    gauss: np.ndarray,
    *,
    upper: bool = False,
    overwrite_x: bool = False,
) -> np.ndarray:
    """weight · Φ(x), elementwise (with ``upper``, weight · Φ(−x)), from ``gauss`` = weight ·
    e^{−x²/2}, which the callers have already for the density.

    Φ(−y) = e^{−y²/2} G(y) for y ≥ 0, G by its rational approximation (:data:`_MILLS_P`,
    :data:`_MILLS_Q`), and Φ(y) = 1 − Φ(−y): as accurate as scipy's ``ndtr`` (the rounding
    of e^{−y²/2} dominates both), at half its cost once the Gaussian factor is
    shared. Beyond |x| = ``_MILLS_REACH`` (and where x is infinite) ``ndtr`` itself.
    ``gauss`` is overwritten, and ``x`` with ``overwrite_x``: fewer temporaries of the
    arrays' size, each of which can cost page faults.
    """
    side = x < 0 if upper else x > 0  # where Φ's argument is positive
    y = np.abs(x, out=x if overwrite_x else None)
    far = y > _MILLS_REACH
    beyond = None
    if far.any():
        beyond = y[far]
        beyond = ndtr(np.where(side[far], beyond, -beyond))
        if np.ndim(weight):
            beyond *= weight[far]
        # Clipped, the polynomials stay finite where ndtr's values replace theirs.
        np.minimum(y, _MILLS_REACH, out=y)
    value = _horner(y, _MILLS_Q)
    gauss /= value
    _horner(y, _MILLS_P, out=value)
    value *= gauss
    np.subtract(weight, value, out=value, where=side)
    if beyond is not None:
        value[far] = beyond
    return value


@dataclass(frozen=True)
class _Mixture:
    """The mixture Σ_i w_i N(m_i, sd_i²) of one coefficient, arrays (nodes, R).

    ``spread`` is the sd of the heaviest component, a scale that exists even where the
    mixture's sd does not.
    """

    weight: np.ndarray
    m: np.ndarray
    inv_sd: np.ndarray
    spread: np.ndarray

    @classmethod
    def of(cls, weight: np.ndarray, m: np.ndarray, v: np.ndarray, spread: np.ndarray) -> _Mixture:
        """The mixture of weights, means and variances (nodes, R); ``spread`` as above."""
        inv_sd = np.sqrt(v)
        return cls(weight, m, np.divide(1.0, inv_sd, out=inv_sd), spread)

    def bracket(self, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on every quantile between 1e-9 and 1 − 1e-9 of the mixtures ``columns``:
        eight and a half component sds beyond the mean of every component weighing more
        than 1e-12 (each component's tail there is below 1e-16, and the lighter ones weigh
        less than 1e-10 together)."""
        weight, m = self.weight[:, columns], self.m[:, columns]
        reach = 8.5 / self.inv_sd[:, columns]
        heavy = weight > 1e-12
        lo = np.where(heavy, m - reach, np.inf).min(axis=0)
        hi = np.where(heavy, m + reach, -np.inf).max(axis=0)
        return lo, hi

    def quantile(
        self,
        level: float,
        start: np.ndarray,
        scale: np.ndarray,
        max_iter: int = 60,
        *,
        upper: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """q with F(q) = Σ_i w_i Φ((q − m_i)/sd_i) = ``level``, per replicate; with
        ``upper``, q with 1 − F(q) = Σ_i w_i Φ(−(q − m_i)/sd_i) = ``level`` (an upper
        tail's own probability: 1 − level would be rounded to a multiple of 2⁻⁵³).

        Halley's iteration (F'' = −Σ_i w_i x_i φ(x_i)/sd_i², x_i = (q − m_i)/sd_i) from
        ``start``, safeguarded by bisection on a bracket. Its convergence is cubic, the
        error after a step δ about δ³/2 (in sds) for a distribution near normal: a step
        below 1e-3 ``scale`` leaves an error below 1e-9 ``scale``, so the iteration stops
        after taking it. ``scale`` is at most the heaviest component's sd.

        The start is usually that close, so the first step is taken unguarded (only in
        the direction F's sign gives) and ends most iterations; the bracket of the
        components (:meth:`bracket`) is built only for the others, narrowed by that sign.
        """
        scale = np.minimum(scale, self.spread)
        value, slope, bend = self._cdf(start, level, slice(None), upper)
        unbounded = np.full(start.shape, np.inf)
        q, lo, hi, step, taken = _halley_step(start, value, slope, bend, -unbounded, unbounded)
        done = taken & (np.abs(step) <= 1e-3 * scale)
        if done.all():
            return q, done
        active = np.flatnonzero(~done)
        low, high = self.bracket(active)
        lo[active] = np.maximum(lo[active], low)
        hi[active] = np.minimum(hi[active], high)
        q[active] = np.clip(
            np.where(taken[active], q[active], start[active]), lo[active], hi[active]
        )
        for _ in range(max_iter - 1):
            qa = q[active]
            value, slope, bend = self._cdf(qa, level, active, upper)
            q[active], low, high, step, taken = _halley_step(
                qa, value, slope, bend, lo[active], hi[active]
            )
            lo[active], hi[active] = low, high
            small = scale[active]
            done[active] = (taken & (np.abs(step) <= 1e-3 * small)) | (high - low <= 1e-12 * small)
            if done.all():
                break
            active = np.flatnonzero(~done)
        return q, done

    def _cdf(
        self, q: np.ndarray, level: float, columns: Any, upper: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F(q) − ``level``, F'(q) and F''(q) of the mixtures ``columns``; with ``upper``,
        ``level`` − (1 − F(q)), the same function of q for an upper tail's level."""
        weight, m, inv_sd = self.weight[:, columns], self.m[:, columns], self.inv_sd[:, columns]
        norm = 1.0 / math.sqrt(2.0 * math.pi)
        # In place where the arrays allow: each temporary of their size can cost page
        # faults.
        x = q - m
        x *= inv_sd
        # w e^{−x²/2}: the density's and, through _weighted_ndtr, the CDF's.
        gauss = np.multiply(x, x)
        gauss *= -0.5
        np.exp(gauss, out=gauss)
        gauss *= weight
        density = gauss * inv_sd
        slope = norm * _node_sum(density)
        density *= x
        density *= inv_sd
        bend = -norm * _node_sum(density)
        cdf = _node_sum(_weighted_ndtr(x, weight, gauss, upper=upper, overwrite_x=True))
        return (level - cdf if upper else cdf - level), slope, bend


def _halley_step(
    x: np.ndarray,
    value: np.ndarray,
    slope: np.ndarray,
    bend: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One safeguarded Halley step towards a root of an increasing F, a CDF minus its level.

    ``value``, ``slope`` and ``bend`` are F(x), F'(x) and F''(x). The bracket [lo, hi]
    closes on x from the side of F(x)'s sign; the step x − δ, δ = N/(1 − ½ N F''/F'),
    N = F/F' (Newton's where that is not finite), is taken where F' > 0 and it lands in
    the bracket, else the bracket is bisected (the quantile iterations of the mixture
    and of the Hermite series share it).

    Returns the next x, the bracket (low, high), δ and where the step was taken.
    """
    below = value < 0
    low = np.where(below, x, lo)
    high = np.where(below, hi, x)
    newton = value / slope
    step = newton / (1.0 - 0.5 * newton * bend / slope)
    step = np.where(np.isfinite(step), step, newton)
    trial = x - step
    taken = (slope > 0) & (trial >= low) & (trial <= high)
    return np.where(taken, trial, 0.5 * (low + high)), low, high, step, taken


def _t_quantile(z: float | np.ndarray, kurtosis: np.ndarray) -> np.ndarray:
    """The quantile of the unit-variance Student t with excess kurtosis ``kurtosis`` (ν =
    4 + 6/kurtosis) at the normal quantile z, by Fisher's expansion in 1/ν (five terms).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = 4.0 + 6.0 / kurtosis
        inv = 1.0 / nu
        z2 = z * z
        series = z + inv * (
            (z2 + 1.0) * z / 4.0
            + inv
            * (
                ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
                + inv
                * (
                    (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
                    + inv
                    * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0)
                    * z
                    / 92160.0
                )
            )
        )
        return series * np.sqrt((nu - 2.0) / nu)


def _sigma_moments(weight: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """σ's posterior mean and sd from weighted nodes, arrays (nodes, R)."""
    mean = _node_sum(weight * sigma)
    d = sigma - mean
    return mean, np.sqrt(_node_sum(weight * d * d))


def _summaries(
    weight: np.ndarray,
    m: list[np.ndarray],
    v: list[np.ndarray],
    alpha: float,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """β's means, sds and equal-tailed intervals from weighted nodes, of the replicates
    ``keep`` (a mask; default all): the others, whose rule has already failed its check,
    do not pay for the quantiles, and are NaN and not done.

    Arrays are (nodes, R). The marginal of β_j is the mixture Σ_i w_i N(m_ij, v_ij), a
    scale mixture close to Student's t. From its central moments μ₃ = Σ w (d³ + 3dv),
    μ₄ = Σ w (d⁴ + 6d²v + 3v²) (d = m − mean), with skewness γ₁ = μ₃/sd³ and excess
    kurtosis γ₂ = μ₄/sd⁴ − 3, its quantiles start from those of a t with ν' = 4 + 6/γ₂
    degrees of freedom (the same kurtosis; Fisher's expansion of t quantiles in 1/ν',
    to 1e-6 sds for ν' ≥ 16), scaled to the mixture's sd, plus the skewness terms of the
    Cornish–Fisher expansion, (z² − 1)γ₁/6 − (2z³ − 5z)γ₁²/36; where γ₂ ≤ 0, from the
    Cornish–Fisher expansion to the same order. Halley's iteration on the mixture's CDF
    then solves to rounding (:meth:`_Mixture.quantile`), usually in one step.

    Returns estimate, se, lower, upper (R, p) and whether every quantile iteration
    converged.
    """
    if keep is not None and not keep.all():
        rows = np.flatnonzero(keep)
        out = [np.full((len(keep), len(m)), np.nan) for _ in range(4)]
        done = np.zeros(len(keep), dtype=bool)
        if len(rows):
            part = _summaries(
                weight[:, rows], [x[:, rows] for x in m], [x[:, rows] for x in v], alpha
            )
            for whole, value in zip(out, part[:4], strict=True):
                whole[rows] = value
            done[rows] = part[4]
        return out[0], out[1], out[2], out[3], done
    count, replicates = weight.shape
    p = len(m)
    z = float(ndtri(1.0 - alpha / 2.0))
    zs = np.array([[-z], [z]])
    # Every coefficient at once, side by side along the replicate axis (column j·R + r):
    # one numpy call per step instead of p. The node sums still run down each column, so
    # a replicate's numbers do not depend on its batch.
    wide = np.tile(weight, p)
    mm = np.stack(m, axis=1).reshape(count, p * replicates)
    vv = np.stack(v, axis=1).reshape(count, p * replicates)
    # The central moments in place, in one work array (each temporary of the arrays' size
    # can cost page faults), rounded as Σ w·m, Σ w·(v + d²), Σ (w·d)·(d² + 3v) and
    # Σ w·(d²·(d² + 6v) + 3v·v).
    work = wide * mm
    mean = _node_sum(work)
    d = mm - mean
    d2 = d * d
    np.add(vv, d2, out=work)
    work *= wide
    var = _node_sum(work)
    sd = np.sqrt(var)
    np.multiply(vv, 3.0, out=work)
    work += d2
    d *= wide
    work *= d
    skew = _node_sum(work) / (var * sd)
    np.multiply(vv, 6.0, out=work)
    work += d2
    work *= d2
    np.multiply(vv, 3.0, out=d)
    d *= vv
    work += d
    work *= wide
    kurt = _node_sum(work) / (var * var) - 3.0
    # The lower limit's start from the upper one's terms: all but the skewness's first
    # are odd in z, exactly so in floating point too.
    even = (z * z - 1.0) * skew / 6.0
    odd = (2.0 * z * z - 5.0) * z * skew * skew / 36.0
    start = np.where(kurt > 1e-8, _t_quantile(z, kurt), z + (z * z - 3.0) * z * kurt / 24.0)
    guess = np.stack([mean + sd * (-start + (even + odd)), mean + sd * (start + (even - odd))])
    # The heaviest node, the same for every coefficient.
    heaviest = np.tile(np.argmax(weight, axis=0), p)
    columns = np.arange(p * replicates)
    spread = np.sqrt(vv[heaviest, columns])
    # Where the tails are too heavy for the moments to mean much (or the moments do not
    # exist and the nodes' are finite only by truncation), start from the heaviest
    # component's quantiles instead.
    centre = mm[heaviest, columns] + zs * spread
    guess = np.where(np.isfinite(kurt) & (kurt < 12.0), guess, centre)
    mixture = _Mixture.of(wide, mm, vv, spread)
    ok = np.ones(replicates, dtype=bool)
    limits = []
    # Below SMALL_ALPHA the upper limit solves for its own tail, α/2 (regsim.limits).
    small = alpha < SMALL_ALPHA
    sides = ((alpha / 2.0, False), (alpha / 2.0 if small else 1.0 - alpha / 2.0, small))
    for (level, upper), first in zip(sides, guess, strict=True):
        q, done = mixture.quantile(level, first, sd, upper=upper)
        limits.append(q.reshape(p, replicates).T)
        ok &= done.reshape(p, replicates).all(axis=0)
    return mean.reshape(p, replicates).T, sd.reshape(p, replicates).T, limits[0], limits[1], ok
