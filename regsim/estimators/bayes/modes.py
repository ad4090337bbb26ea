"""The local modes of p(t | y): brackets from MAP's profile scan, then Newton's iteration.

The σ-posterior can be bimodal; the rules (:mod:`.hermite`, :mod:`.trapezoid`) place
their nodes about every mode that matters, so every mode is found first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from regsim.estimators.bayes.posterior import _Posterior
from regsim.estimators.linalg import cholesky
from regsim.estimators.map import _Path, _scan_brackets, _Stationarity


@dataclass
class _Modes:
    """The local modes of p(t | y), one entry per mode, sorted by replicate then t.

    ``curvature`` is −d²/dt² log p(t | y) at the mode and ``logp`` log p(t | y) there (up
    to the replicate's constant; computed only where a replicate has several modes, else
    0); ``ok`` is False where Newton's iteration did not converge.
    """

    rep: np.ndarray
    t: np.ndarray
    curvature: np.ndarray
    logp: np.ndarray
    ok: np.ndarray


def _schur_trace(path: _Path) -> np.ndarray:
    """C = Σ_{j∈P} η_j² S_jj = Σ_k 1/λ_k, S the Schur complement of the flat block of XᵀX.

    The λ_k > 0 are the eigenvalues of (XᵀX)⁻¹D, the same as those of D_P^{1/2} S⁻¹
    D_P^{1/2} (D_P the informative precisions), so Σ_k 1/λ_k = tr(D_P⁻¹ S). A Cholesky
    factorisation of XᵀX with the flat coefficients first gives S = L_PP L_PPᵀ.
    """
    p = len(path.d)
    flat = [j for j in range(p) if not path.precision[j]]
    order = flat + [j for j in range(p) if path.precision[j]]
    lower, inv_diag, _ = cholesky([[path.gram[i][j] for j in order] for i in order])
    total = np.zeros_like(path.rss0)
    for a in range(len(flat), p):
        entry = 1.0 / (inv_diag[a] * inv_diag[a])
        for b in range(len(flat), a):
            entry = entry + lower[a][b] * lower[a][b]
        total = total + entry / path.precision[order[a]]
    return total


def _find_modes(
    post: _Posterior, bounds: Any, rss_inf: np.ndarray, scan_points: int, tol: float
) -> _Modes:
    """Every local mode of p(t | y), per replicate (:func:`_brackets`, :func:`_newton`)."""
    rep, lo, hi, start, _ = _brackets(post, bounds, rss_inf, scan_points)
    return _newton(post, rep, lo, hi, start, tol)


def _brackets(
    post: _Posterior, bounds: Any, rss_inf: np.ndarray, scan_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A bracket of every local mode of p(t | y), per replicate.

    With R(s) = RSS(s) + s p_data(s), d/dt log p(t | y) = R(s)/s − e (e = n − 1 + a). RSS
    and s p_data(s) = |F| s + Σ_k s/(1 + sλ_k) both increase with s, RSS from RSS₀ to
    RSS∞ and s p_data between |F| s and min(p s, |F| s + C) (:func:`_schur_trace`), so every
    stationary point has s in [RSS₀/ν, min((RSS∞ + C)/ν, RSS∞/(e − p))] (the second only
    when e > p). Compared with MAP's profile h, d²/dt² log p(t | y) = −h''(t) −
    2 Σ_k x_k/(1 + x_k)² (x_k = sλ_k), so MAP's curvature bounds (:class:`_Bounds`) that
    prove h'' > 0 also prove log p(t | y) concave; its third condition, on
    (e − p) s − RSS(s), proves e s − R(s) increasing. Where they fail over the whole
    bracket, :func:`_enclose` narrows it to where a local bound proves concavity.
    Elsewhere MAP's scan finds every sign change of e s − R(s) on the grid
    (:func:`regsim.estimators.map._scan_brackets`).

    Returns
    -------
    rep, lo, hi, start : ndarray
        Replicate, bracket in s and a starting point, one entry per mode, sorted by
        replicate and s. The start is s₀ = RSS₀/(e − p), the mode for flat priors (and
        close to it for weak ones), clipped to the bracket; the bracket's geometric mean
        when e ≤ p.
    certified : ndarray of bool, shape (R,)
        Where the bounds or the enclosure prove a single mode.
    """
    path, e, p, nu = post.path, post.level, post.p, post.nu
    rss0 = path.rss0
    flat = post.flat
    extra = _schur_trace(path)
    s_low = rss0 / nu
    s_high = (rss_inf + extra) / nu
    if e > p:
        s_high = np.minimum(s_high, rss_inf / (e - p))
    s_high = np.maximum(s_high, s_low)
    certified = bounds.unimodal(e - p, rss0, rss0, s_low, s_high)
    lo, hi = s_low, s_high
    if not certified.all():
        # The bounds fail over the whole bracket; enclosing the roots first narrows it to
        # where a local bound suffices.
        rows = np.flatnonzero(~certified)
        proven, enclosed_lo, enclosed_hi = _enclose(
            post.take(rows), bounds.take(rows), lo[rows], hi[rows]
        )
        lo, hi = lo.copy(), hi.copy()
        lo[rows[proven]], hi[rows[proven]] = enclosed_lo[proven], enclosed_hi[proven]
        certified[rows[proven]] = True
    if certified.all():
        rep = np.arange(len(rss0))
    else:
        uncertified = np.flatnonzero(~certified)
        r_high = rss_inf + np.minimum(p * s_high, flat * s_high + extra)
        scan_rep, scan_lo, scan_hi = _scan_brackets(
            path,
            bounds,
            uncertified,
            _Stationarity(e, e - p, post.stationarity),
            s_low,
            s_high,
            rss0 + flat * s_low,
            r_high,
            scan_points,
        )
        single = np.flatnonzero(certified)
        rep = np.concatenate([single, scan_rep])
        lo = np.concatenate([lo[single], scan_lo])
        hi = np.concatenate([hi[single], scan_hi])
        order = np.lexsort((lo, rep))
        rep, lo, hi = rep[order], lo[order], hi[order]
    # Start where p_data = p (a weak prior), else in the middle of the bracket.
    start = np.sqrt(lo * hi)
    if e > p:
        start = np.clip(rss0[rep] / (e - p), lo, hi)
    return rep, lo, hi, start, certified


#: Rounds of the iteration that encloses the roots (:func:`_enclose`).
_ENCLOSE_ITER = 30

#: Relative margin of the enclosure's steps and of its concavity test, far above the
#: rounding of R and R'.
_ENCLOSE_MARGIN = 1e-9


def _enclose(
    post: _Posterior, bounds: Any, s_low: np.ndarray, s_high: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where iterating s ← R(s)/e from both ends of the bracket proves a single mode.

    Every stationary point solves e s = R(s) with R increasing, and lies in [s_low,
    s_high]. If L ≤ every root then R(L) ≤ R(root) = e·root, so R(L)/e is again below
    every root; likewise U ≥ every root gives R(U)/e ≥ every root. From L = s_low and
    U = s_high the two iterations close in on the smallest and the largest root (at the
    rate R'/e = 1 − κ/(2e) near a mode of curvature κ), and every root stays in [L, U].
    There d²/dt² log p(t | y) = 2 (R'(s) − R(s)/s) is negative if

        R'(L) + K (U − L) < R(L)/U,

    since R(s)/s ≥ R(L)/U, s p_data(s) has a decreasing derivative and |RSS''| ≤ K over
    [L, ∞) (:meth:`regsim.estimators.map._Bounds.curvature`): a concave log density has
    one mode, in [L, U]. Where the iteration stalls (several modes) or does not get
    there in ``_ENCLOSE_ITER`` rounds, nothing is proven.

    Returns
    -------
    proven : ndarray of bool
        Where a single mode is proven.
    lo, hi : ndarray
        [L, U] (where proven, the bracket of the mode).
    """
    e = post.level
    lo, hi = s_low.copy(), s_high.copy()
    proven = np.zeros(len(lo), dtype=bool)
    active = np.arange(len(lo))
    shrink, grow = 1.0 - _ENCLOSE_MARGIN, 1.0 + _ENCLOSE_MARGIN
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(_ENCLOSE_ITER):
            if not len(active):
                break
            low, high = lo[active], hi[active]
            part = post.take(active)
            # R' only at L, where the test needs it.
            values = part.evaluate(low, 0.5 * np.log(low), slope=True, moments=False, density=False)
            assert values.r_slope is not None
            r_low, r_high = values.r, part.stationarity(part.path, high)[0]
            bend = bounds.take(active).curvature(low)
            top = r_low / high
            concave = values.r_slope + bend * (high - low) < top * shrink
            proven[active] = concave
            # Rounding may only move L down and U up, never past a root.
            new_low = np.maximum(low, r_low / e * shrink)
            new_high = np.minimum(high, r_high / e * grow)
            moved = (new_low > low * grow) | (new_high < high * shrink)
            lo[active], hi[active] = new_low, new_high
            keep = ~concave & moved & (new_low <= new_high)
            active = active[keep]
    return proven, lo, hi


def _newton(
    post: _Posterior,
    rep: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    start: np.ndarray,
    tol: float,
    max_iter: int = 60,
) -> _Modes:
    """Newton's iteration on d/dt log p(t | y) = R(s)/s − e in t = ½ log s, per bracket.

    The bracket [lo, hi] (in s) holds one mode; the derivative is ≥ 0 at its lower end and
    ≤ 0 at its upper end. A step that leaves the shrinking bracket, or where the second
    derivative 2 (R'(s) − R(s)/s) is not negative, is replaced by bisection in t. The
    quadrature only needs the mode roughly: within ``tol`` sds of the mode, 1/√(−ℓ''(t)).
    After a Newton step of δ sds the error left is about γδ²/2, γ = ℓ'''/(−ℓ'')^{3/2} the
    standardised third derivative (1.41/√ν for the all-flat posterior, whose log σ is a
    log chi), so an iteration is done once it has taken a step of at most √tol sds (or
    its bracket is narrower than ``tol`` sds): one evaluation fewer than waiting for a
    step of ``tol``, and the rules' own checks (:func:`_hermite_fit`,
    :func:`_trapezoid_fit`) do not depend on where in that range the centre is.
    """
    e = post.level
    root_tol = math.sqrt(tol)
    t = 0.5 * np.log(start)
    t_lo, t_hi = 0.5 * np.log(lo), 0.5 * np.log(hi)
    count = len(rep)
    identity = count == post.replicates and bool((rep == np.arange(count)).all())
    curvature = np.full(count, np.nan)
    done = np.zeros(count, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(max_iter):
            active = np.flatnonzero(~done)
            if not len(active):
                break
            ta = t[active]
            s = np.exp(2.0 * ta)
            # A mode per replicate, all still iterating (the first step): no copy.
            part = post if identity and len(active) == count else post.take(rep[active])
            values = part.evaluate(s, ta, slope=True, moments=False, density=False)
            assert values.r_slope is not None
            first = values.r / s - e
            second = 2.0 * (values.r_slope - values.r / s)
            curvature[active] = -second
            lower = np.where(first >= 0, ta, t_lo[active])
            upper = np.where(first >= 0, t_hi[active], ta)
            t_lo[active], t_hi[active] = lower, upper
            step = -first / second
            newton = ta + step
            taken = (second < 0) & (newton >= lower) & (newton <= upper)
            t_next = np.where(taken, newton, 0.5 * (lower + upper))
            t_next = np.where(first == 0, ta, t_next)
            sd = 1.0 / np.sqrt(np.abs(second))
            finished = (taken & (np.abs(step) <= root_tol * sd)) | (upper - lower <= tol * sd)
            t[active] = t_next
            done[active] = finished
    # The height of each mode where a replicate has several, to compare them.
    several = np.flatnonzero(np.bincount(rep)[rep] >= 2)
    logp = np.zeros(count)
    if len(several):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            at = t[several]
            logp[several] = (
                post.take(rep[several]).evaluate(np.exp(2.0 * at), at, moments=False).logp
            )
    # On a plateau (vague priors at n = p + 1) ℓ'' is 0 to rounding, of either sign: the
    # bracket closed on it all the same, and the rules' grids take it as flat.
    flat = curvature >= -_ROUNDING * e
    ok = done & np.isfinite(curvature) & flat & np.isfinite(logp)
    return _Modes(rep, t, curvature, logp, ok)


#: The size of ℓ'' = 2 (R'(s) − R(s)/s) that rounding leaves where it is 0, relative to
#: R(s)/s = e at a mode.
_ROUNDING = 1e-10
