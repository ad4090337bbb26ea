"""Interval limits far in a tail (α below 0.01), from the tails' own integrals.

There the rules' CDF, accurate to about 1e-9 of the whole mass, is not accurate relative
to α/2: σ's and every β_j's limits are found again by Newton's iteration on integrals of
the tail alone.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import log_ndtr

from regsim.estimators.bayes.posterior import _CHUNK, _Posterior
from regsim.estimators.bayes.summaries import _log_node_sum, _node_sum
from regsim.estimators.bayes.trapezoid import _LEFT, _RIGHT, _STEP, _STEP_T, _TRAPEZOID_MAX_NODES

#: Below this α, σ's limits are found again from the tails' own integrals.
_TAIL_ALPHA = 0.01

#: The tail integral: this many panels of Gauss–Legendre nodes, each as wide as this
#: many e-folds of the density at the limit (at most the narrowest mode's sd).
_TAIL_PANELS = 16
_TAIL_NODES = 8
_TAIL_EFOLDS = 3.0

#: Newton's iterations for a tail limit, and the step in t = log σ that ends them: the
#: error after a step is of the order of its square (at most 1e-12 in t then).
_TAIL_ITERATIONS = 12
_TAIL_STEP = 1e-6

#: The tail integral must reach where the density has fallen by e^{−40} of its largest.
_TAIL_DECAY = 40.0

#: Replicates whose tails are integrated at once (the nodes are panels × nodes of each).
_TAIL_CHUNK = 64

#: Panels are widened (doubled) up to this many times their first width to reach the
#: tail's end.
_TAIL_WIDENING = 8.0


@functools.cache
def _tail_table() -> tuple[np.ndarray, np.ndarray]:
    """Offsets of the tail nodes from the limit, in panels, and their weights."""
    x, w = np.polynomial.legendre.leggauss(_TAIL_NODES)
    offsets = (np.arange(_TAIL_PANELS)[:, None] + 0.5 * (x + 1.0)).ravel()
    return offsets, np.tile(0.5 * w, _TAIL_PANELS)


def _sigma_tail_limits(
    post: _Posterior,
    limits: np.ndarray,
    log_norm: np.ndarray,
    root_curvature: np.ndarray,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """σ's limits in t = log σ, (R, 2), from the tails' own integrals.

    A rule's σ-quantile comes from its CDF, accurate to about 1e-9 of the whole mass: far
    in a tail (small α) that is not accurate relative to α/2, and the limit drifted by up
    to several sds at α = 1e-9. Here, from the rule's limit t, Newton's iteration on

        log T(t) = log ∫_t^∞ p(u | y) du − log Z = log(α/2)

    (and ∫_{−∞}^t for the lower limit), d log T/dt = −p(t | y)/∫_t^∞ p, with Z the rule's
    integral of the whole density (accurate relative to itself). Each tail integral is
    its own Gauss–Legendre rule: ``_TAIL_PANELS`` panels, each three e-folds of the
    density at t wide (3/|ℓ'(t)|, at most the narrowest mode's sd 1/√κ), outwards from t,
    so accurate relative to the tail itself. The integral must reach where the density has
    fallen by e^{−40} of its largest; where it does not (the density flattens into a
    shoulder or another mode) the panels are widened, up to ``_TAIL_WIDENING`` times
    their width, and failing that, or where the iteration does not settle, the rule's
    limit is kept.

    Returns the limits and where both were solved for.

    Parameters
    ----------
    post : _Posterior
        The posterior of R replicates (or one dataset's, ``regsim.estimators.single``).
    limits : ndarray
        The rule's lower and upper limits of t, (R, 2).
    log_norm : ndarray
        log Z, (R,), in the units of ``post.evaluate``'s ``logp``.
    root_curvature : ndarray
        √κ of the narrowest mode, (R,): the panels are no wider than its sd.
    alpha : float
        The limits are the α/2 and 1 − α/2 quantiles of σ.
    """
    offsets, quad = _tail_table()
    found = limits.copy()
    replicates = len(limits)
    solved = np.ones(replicates, dtype=bool)
    target = math.log(alpha / 2.0)
    with np.errstate(all="ignore"):
        for start in range(0, replicates, _TAIL_CHUNK):
            part = slice(start, min(start + _TAIL_CHUNK, replicates))
            sub = post if (start, part.stop) == (0, replicates) else post.take(part)
            for column, side in ((0, -1.0), (1, 1.0)):
                t = limits[part, column].copy()
                settled = np.zeros(len(t), dtype=bool)
                good = np.isfinite(t) & np.isfinite(log_norm[part])
                widen = np.ones(len(t))
                for _ in range(_TAIL_ITERATIONS):
                    s = np.exp(2.0 * t)
                    here = sub.evaluate(s, t, slope=True, moments=False)
                    rate = np.maximum(
                        np.abs(here.r / s - sub.level) / _TAIL_EFOLDS, root_curvature[part]
                    )
                    while True:
                        width = widen / rate
                        nodes = t + side * width * offsets[:, None]
                        logp = sub.evaluate(np.exp(2.0 * nodes), nodes, moments=False).logp
                        top = logp.max(axis=0)
                        short = ~(logp[-1] - top < -_TAIL_DECAY) & (widen < _TAIL_WIDENING)
                        if not short.any():
                            break
                        widen = np.where(short, 2.0 * widen, widen)
                    total = _node_sum(np.exp(logp - top) * quad[:, None]) * width
                    log_tail = top + np.log(total)
                    good &= (logp[-1] - top < -_TAIL_DECAY) & np.isfinite(log_tail)
                    # Newton on log T: its slope is −side·p(t)/∫ of the tail.
                    step = (log_tail - log_norm[part] - target) / (
                        side * np.exp(here.logp - log_tail)
                    )
                    step = np.clip(step, -4.0 * width, 4.0 * width)
                    good &= np.isfinite(step)
                    moving = good & ~settled
                    t = np.where(moving, t + step, t)
                    settled |= moving & (np.abs(step) <= _TAIL_STEP)
                    if (settled | ~good).all():
                        break
                done = good & settled
                found[part, column] = np.where(done, t, limits[part, column])
                solved[part] &= done
    return found, solved


#: β's tail integrals: rounds of the grid (the first and retries, each extending a side
#: whose end still weighs or halving a step whose halves disagree), and the largest
#: relative disagreement of a tail probability with its two halves (step 2h): the rule's
#: error falls geometrically with the step, so the full step's is about its square.
_BETA_TAIL_ROUNDS = 8
_BETA_TAIL_TOL = 1e-6

#: Newton's iterations for a β limit, and the step (relative to the limit's distance from
#: the interval's centre) that ends them; so does a step of at most two units in the last
#: place of the limit (:data:`_BETA_TAIL_ULPS`), which no iteration can go below: a
#: coefficient whose sd is a small part of its size (a strong prior far from 0) has a
#: limit whose distance from the centre is below 1e-5 of the limit, and 1e-11 of that
#: distance is then less than the limit's rounding.
_BETA_TAIL_ITERATIONS = 40
_BETA_TAIL_STEP = 1e-11
_BETA_TAIL_ULPS = 2.0


def _beta_tail_limits(
    post: _Posterior,
    lower: np.ndarray,
    upper: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    width: np.ndarray,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """β's limits (R, p), each from its own tail integral, and where they were found.

    A rule's β-quantile solves the mixture's CDF over nodes placed for the body of
    p(t | y): far in a tail (small α) the mass that sets the limit sits where σ is many
    times its mode (with flat priors β_j's marginal is a Student t with ν degrees of
    freedom; its 1e-12 quantile is 1e4 sds out at ν = 3), beyond those nodes, and the
    limit erred by 1.6 sds at α = 1e-12. Here each limit b solves

        log ∫ p(t | y) Φ(−(b − m_j(s))/√V_jj(s)) dt − log Z = log(α/2)

    (Φ((b − m_j)/√V_jj) for the lower limit) by Newton's iteration, d/db of the left side
    being −∫ p φ/√V_jj dt / ∫ p Φ(−·) dt, from the rule's limit, the integrals by the
    trapezoidal rule in t, in logs throughout. Its grid runs from ``_LEFT`` sds of the
    narrowest mode below the first mode to ``_RIGHT`` above the last, with the step of
    the trapezoidal rule B. Every tail integrand and the density must have fallen by
    e^{−40} of their largest at both ends of the grid, else that side's reach doubles;
    the tail probabilities must agree with those of the grid's two halves (step 2h) to
    ``_BETA_TAIL_TOL``, else (where no end weighs) the step halves; a replicate that
    fails after
    ``_BETA_TAIL_ROUNDS`` rounds is not found (its fit fails, never a limit off).

    Parameters
    ----------
    post : _Posterior
        The posterior of R replicates (or one dataset's, ``regsim.estimators.single``).
    lower, upper : ndarray
        The rule's limits, (R, p): where the iteration starts.
    first, last : ndarray
        t at the first and last mode that matters, (R,).
    width : ndarray
        The sd in t of the narrowest mode that matters, (R,).
    alpha : float
        The limits are the α/2 and 1 − α/2 quantiles.
    """
    replicates, p = lower.shape
    found_lower, found_upper = lower.copy(), upper.copy()
    ok = np.zeros(replicates, dtype=bool)
    left, right = _LEFT * width, _RIGHT * width
    refine = np.ones(replicates)
    target = math.log(alpha / 2.0)
    pending = np.arange(replicates)
    with np.errstate(all="ignore"):
        for _ in range(_BETA_TAIL_ROUNDS):
            step = np.minimum(_STEP * width, _STEP_T) * refine
            start = first - left
            counts = 16 * np.ceil((np.ceil((last + right - start) / step) + 1.0) / 16.0)
            within = counts[pending] <= _TRAPEZOID_MAX_NODES
            pending = pending[within]
            retry = []
            for count in np.unique(counts[pending]).astype(int):
                group = pending[counts[pending] == count]
                chunk = max(1, _CHUNK // count)
                for begin in range(0, len(group), chunk):
                    rows = group[begin : begin + chunk]
                    result = _beta_tail_once(
                        post.take(rows),
                        lower[rows],
                        upper[rows],
                        start[rows],
                        (last[rows] + right[rows] - start[rows]) / (count - 1),
                        count,
                        target,
                    )
                    low, up, done, heavy_left, heavy_right, coarse = result
                    found_lower[rows[done]], found_upper[rows[done]] = low[done], up[done]
                    ok[rows[done]] = True
                    left[rows[heavy_left]] *= 2.0
                    right[rows[heavy_right]] *= 2.0
                    # The halves of a grid that cuts mass off say nothing of its step.
                    refine[rows[coarse & ~heavy_left & ~heavy_right]] *= 0.5
                    retry.append(rows[~done & (heavy_left | heavy_right | coarse)])
            pending = np.sort(np.concatenate(retry)) if retry else pending[:0]
            if not len(pending):
                break
    return found_lower, found_upper, ok


def _beta_tail_once(
    post: _Posterior,
    lower: np.ndarray,
    upper: np.ndarray,
    start: np.ndarray,
    step: np.ndarray,
    count: int,
    target: float,
) -> tuple[np.ndarray, ...]:
    """One round of :func:`_beta_tail_limits` on a grid of ``count`` nodes from ``start``.

    Returns the lower and upper limits, where all were found, and where the left end, the
    right end or the halves failed.
    """
    replicates, p = lower.shape
    t = start + np.arange(count)[:, None] * step
    values = post.evaluate(np.exp(2.0 * t), t)
    logp = values.logp
    log_norm = _log_node_sum(logp)
    norm_halves = [_log_node_sum(logp[k::2]) for k in (0, 1)]
    top = logp.max(axis=0)
    heavy_left = ~(logp[0] - top < -_TAIL_DECAY)
    heavy_right = ~(logp[-1] - top < -_TAIL_DECAY)
    coarse = np.zeros(replicates, dtype=bool)
    done = np.isfinite(log_norm)
    found = [lower.copy(), upper.copy()]
    centre = 0.5 * (lower + upper)
    log_root = 0.5 * math.log(2.0 * math.pi)
    for j in range(p):
        m, log_sd = values.m[j], 0.5 * np.log(values.v[j])
        inv_sd = np.exp(-log_sd)
        for column, side in ((0, -1.0), (1, 1.0)):
            b = found[column][:, j].copy()
            settled = np.zeros(replicates, dtype=bool)
            good = np.isfinite(b)
            for _ in range(_BETA_TAIL_ITERATIONS):
                x = side * (b - m) * inv_sd
                tail = logp + log_ndtr(-x)
                log_tail = _log_node_sum(tail)
                log_slope = _log_node_sum(logp - 0.5 * x * x - log_sd) - log_root
                move = (log_tail - log_norm - target) / (side * np.exp(log_slope - log_tail))
                # Never across the centre, never more than doubling the distance to it.
                distance = side * (b - centre[:, j])
                move = side * np.clip(side * move, -0.5 * distance, distance)
                good &= np.isfinite(move) & (distance > 0)
                moving = good & ~settled
                b = np.where(moving, b + move, b)
                least = np.maximum(
                    _BETA_TAIL_STEP * distance, _BETA_TAIL_ULPS * np.spacing(np.abs(b))
                )
                settled |= moving & (np.abs(move) <= least)
                if (settled | ~good).all():
                    break
            x = side * (b - m) * inv_sd
            tail = logp + log_ndtr(-x)
            peak = tail.max(axis=0)
            heavy_left |= ~(tail[0] - peak < -_TAIL_DECAY)
            heavy_right |= ~(tail[-1] - peak < -_TAIL_DECAY)
            log_tail = _log_node_sum(tail)
            for k in (0, 1):
                half = _log_node_sum(tail[k::2]) - norm_halves[k]
                coarse |= ~(np.abs(np.expm1(half - log_tail + log_norm)) <= _BETA_TAIL_TOL)
            done &= good & settled
            found[column][:, j] = b
    done &= ~(heavy_left | heavy_right | coarse)
    return found[0], found[1], done, heavy_left, heavy_right, coarse
