"""Bayes: the exact marginal posterior of every β_j and of σ, by quadrature over log σ.

See :func:`fit_bayes` and docs/bayes.md. For fixed σ the posterior of β is normal, so
every marginal is a one-dimensional integral over t = log σ of quantities the MAP path
already computes (:mod:`regsim.estimators.map`): the conditional mean of β is MAP's
conditional mode β(s), s = σ², and the density of t follows from RSS(s), the prior's
quadratic form along that path and log det(XᵀX + sD).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import log_ndtr, ndtr, ndtri, sici

from regsim.design import Prior
from regsim.estimators.base import Fit, finite_rows, sigma_exponent
from regsim.estimators.linalg import cholesky, dot, lower_inverse, matvec, solve
from regsim.estimators.map import _Path, _prior_path, _scan_brackets, _Stationarity
from regsim.estimators.stats import SufficientStats
from regsim.limits import SMALL_ALPHA

#: Largest number of array elements one evaluation of the conditional posterior works
#: on at once (nodes × replicates): larger temporaries cost a page fault each.
_CHUNK = 12_000


# --------------------------------------------------------------------------------------
# The conditional posterior of β given σ, along the path
# --------------------------------------------------------------------------------------


@dataclass
class _Values:
    """The posterior along the path at s = σ², arrays of ``s``'s shape.

    ``logp`` is log p(t | y) up to a constant (t = log σ); ``m`` and ``v`` hold the
    conditional means m_j(s) and variances V_jj(s) of β, one array per coefficient;
    ``r`` is R(s) = RSS(s) + s·p_data(s) of the stationarity equation and ``r_slope`` its
    derivative in s (both only when asked for; else ``r`` is RSS(s)).
    """

    logp: Any
    m: list[np.ndarray]
    v: list[np.ndarray]
    r: np.ndarray
    r_slope: np.ndarray | None = None


class _Counts:
    """What the quadrature counts of a posterior with prior means ``mean`` and precisions
    ``precision`` (0: flat), ``n`` observations and p(σ) ∝ σ^{−a}: shared by the study's
    batched posterior (:class:`_Posterior`) and one dataset's
    (``regsim.estimators.single``)."""

    @property
    def p(self) -> int:
        return len(self.mean)  # type: ignore[attr-defined]

    @property
    def flat(self) -> int:
        """|F|, the number of coefficients with a flat prior."""
        return sum(1 for prec in self.precision if not prec)  # type: ignore[attr-defined]

    @property
    def level(self) -> int:
        """e = n − 1 + a: the stationarity equation is R(s) = e·s."""
        return self.n - 1 + self.a  # type: ignore[attr-defined]

    @property
    def nu(self) -> int:
        """ν = n − |F| − 1 + a: p(σ | y) falls as σ^{−(ν + 1)}."""
        return self.level - self.flat


@dataclass(frozen=True)
class _Posterior(_Counts):
    """The marginal posterior of log σ of R datasets and one prior, along the MAP path.

    Attributes
    ----------
    path : _Path
        MAP's conditional-mode path (:func:`regsim.estimators.map._prior_path`).
    beta_hat : list of ndarray
        β̂_j by component, shape (R,).
    mean : tuple of float
        Prior means.
    n, a : int
        Observations and the prior on σ, p(σ) ∝ σ^{−a}.
    gram_d : list of ndarray
        XᵀX d by component (d = μ − β̂).
    """

    path: _Path
    beta_hat: list[np.ndarray]
    mean: tuple[float, ...]
    n: int
    a: int
    gram_d: list[np.ndarray]

    @classmethod
    def build(
        cls, path: _Path, beta_hat: list[np.ndarray], mean: Sequence[float], n: int, a: int
    ) -> _Posterior:
        """The posterior of ``path``; XᵀX d is computed once here."""
        return cls(path, beta_hat, tuple(mean), n, a, matvec(path.gram, path.d))

    @property
    def precision(self) -> tuple[float, ...]:
        return self.path.precision

    @property
    def replicates(self) -> int:
        return len(self.path.rss0)

    def take(self, index: Any) -> _Posterior:
        """The posterior of the replicates ``index`` (an index array or a slice)."""
        return _Posterior(
            self.path.take(index),
            [b[index] for b in self.beta_hat],
            self.mean,
            self.n,
            self.a,
            [g[index] for g in self.gram_d],
        )

    def evaluate(
        self,
        s: np.ndarray,
        t: np.ndarray,
        *,
        slope: bool = False,
        moments: bool = True,
        density: bool = True,
    ) -> _Values:
        """The posterior along the path at s = σ² = e^{2t}; ``s`` and ``t`` broadcast
        with the replicates.

        With A = XᵀX + sD (D the prior precisions), δ = s A⁻¹ D d (d = μ − β̂) and
        μ − β(s) = A⁻¹ XᵀX d from two solves (each accurate where the other cancels):

        * m(s) = β̂ + δ or μ − A⁻¹XᵀXd, whichever correction is smaller;
        * RSS(s) = RSS₀ + δᵀXᵀXδ, prior(s) = Σ_j d_j (β_j − μ_j)²;
        * V_jj(s) = s (A⁻¹)_jj, log det A from the Cholesky pivots;
        * p_data(s) = p − Σ_j d_j V_jj(s), R(s) = RSS(s) + s p_data(s);
        * log p(t | y) = (p − e) t − ½ [RSS(s)/s + prior(s)] − ½ log det A,  e = n − 1 + a.

        With ``slope`` (for the modes): R(s) and R'(s) = RSS'(s) + p − 2s tr(A⁻¹D) +
        s² tr(A⁻¹DA⁻¹D), where RSS'(s) = 2 (XᵀXδ)ᵀ A⁻¹ D (μ − β). ``moments`` asks for m
        and V, ``density`` for log p(t | y); what is not asked for is left empty.
        """
        path, p = self.path, self.p
        precision = path.precision
        lower, inv_diag, pivots = cholesky(path.system(s))
        delta = [s * u for u in solve(lower, inv_diag, path.prior_d)]
        gram_delta = matvec(path.gram, delta)
        rss = path.rss0 + dot(delta, gram_delta)
        away: list[Any] = []
        if density or moments or slope:
            away = solve(lower, inv_diag, self.gram_d)
        logp: Any = None
        if density:
            prior_term = sum(prec * w * w for prec, w in zip(precision, away, strict=True) if prec)
            log_det = np.log(pivots[0])
            for pivot in pivots[1:]:
                log_det = log_det + np.log(pivot)
            logp = (p - self.level) * t - 0.5 * (rss / s + prior_term) - 0.5 * log_det
        # L⁻¹ only for V and R' (the density alone needs neither).
        inverse = lower_inverse(lower, inv_diag) if moments or slope else []
        diagonal: list[Any] = []
        for j in range(p):
            if moments or (slope and precision[j]):
                total = inverse[j][j] * inverse[j][j]
                for k in range(j + 1, p):
                    total = total + inverse[k][j] * inverse[k][j]
                diagonal.append(total)
            else:
                diagonal.append(None)
        m: list[np.ndarray] = []
        v: list[np.ndarray] = []
        if moments:
            v = [s * entry for entry in diagonal]
            m = [
                np.where(np.abs(dl) <= np.abs(w), b + dl, mu - w)
                for b, dl, w, mu in zip(self.beta_hat, delta, away, self.mean, strict=True)
            ]
        values = _Values(logp, m, v, rss)
        if slope:
            trace = sum(
                prec * entry for prec, entry in zip(precision, diagonal, strict=True) if prec
            )
            values.r = rss + s * (p - s * trace)
            rhs = [prec * w if prec else 0.0 for prec, w in zip(precision, away, strict=True)]
            rss_slope = 2.0 * dot(gram_delta, solve(lower, inv_diag, rhs))
            informative = [j for j in range(p) if precision[j]]
            square = 0.0
            for a, i in enumerate(informative):
                for j in informative[a:]:
                    # (A⁻¹)_ij = Σ_{k ≥ j} (L⁻¹)_ki (L⁻¹)_kj (j ≥ i); A⁻¹ is symmetric,
                    # so each pair off the diagonal counts twice.
                    entry = inverse[j][i] * inverse[j][j]
                    for k in range(j + 1, p):
                        entry = entry + inverse[k][i] * inverse[k][j]
                    weight = precision[i] * precision[j] * (1.0 if i == j else 2.0)
                    square = square + weight * entry * entry
            values.r_slope = rss_slope + p - 2.0 * s * trace + s * s * square
        return values

    def stationarity(self, path: _Path, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R(s) and RSS(s) of the replicates of ``path`` (for the mode scan)."""
        precision = path.precision
        lower, inv_diag, _ = cholesky(path.system(s))
        delta = [s * u for u in solve(lower, inv_diag, path.prior_d)]
        rss = path.rss0 + dot(delta, matvec(path.gram, delta))
        inverse = lower_inverse(lower, inv_diag)
        trace = 0.0
        for j in range(self.p):
            if precision[j]:
                total = inverse[j][j] * inverse[j][j]
                for k in range(j + 1, self.p):
                    total = total + inverse[k][j] * inverse[k][j]
                trace = trace + precision[j] * total
        return rss + s * (self.p - s * trace), rss


# --------------------------------------------------------------------------------------
# Modes of p(t | y)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Summaries from weighted nodes
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Rule A: Gauss–Hermite in a power of the precision about a single mode
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Rule B: the trapezoidal rule in a stretched t
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# σ's limits far in a tail
# --------------------------------------------------------------------------------------

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
#: the interval's centre) that ends them.
_BETA_TAIL_ITERATIONS = 40
_BETA_TAIL_STEP = 1e-11


def _log_node_sum(log_values: np.ndarray) -> np.ndarray:
    """log Σ over the nodes (axis 0) of exp(``log_values``), (nodes, R), in node order."""
    top = log_values.max(axis=0)
    return top + np.log(_node_sum(np.exp(log_values - top)))


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
                settled |= moving & (np.abs(move) <= _BETA_TAIL_STEP * distance)
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


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------

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


def _hermite_count(nu: np.ndarray) -> np.ndarray:
    """Gauss–Hermite nodes for each ν (0: none, use the trapezoidal rule)."""
    count = np.zeros(len(nu), dtype=int)
    for least, nodes in reversed(_HERMITE_NODES):
        count = np.where(nu >= least, nodes, count)
    return count


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
