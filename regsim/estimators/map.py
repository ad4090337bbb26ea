"""MAP: the global joint posterior mode in (β, σ) under normal priors on β.

See :func:`fit_map`. The comment below derives the profile the search works on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from regsim.design import Prior
from regsim.estimators.base import Fit, sigma_exponent, wald_fit
from regsim.estimators.linalg import (
    cholesky,
    dot,
    entries,
    inverse_diagonal,
    matvec,
    solve,
)
from regsim.estimators.stats import SufficientStats
from regsim.limits import normal_upper

# The MAP profile, per replicate. For fixed s = σ² the mode in β is
# β(s) = A⁻¹(XᵀX β̂ + sDμ) with A(s) = XᵀX + sD (D = diag of prior precisions). With
# d = μ − β̂, its shift from the OLS fit and its distance from the prior mean are
#
#     δ(s) = β(s) − β̂ = s A⁻¹ D d,      β(s) − μ = −A⁻¹ XᵀX d,
#
# and along that path
#
#     RSS(s) = RSS₀ + δᵀ XᵀX δ,    dδ/ds = A⁻¹ D (d − δ),    prior(s) = (β − μ)ᵀ D (β − μ).
#
# Each form is a solve whose right-hand side does not cancel: δ stays accurate when the
# prior is weak (β ≈ β̂), β − μ when it is strong (β ≈ μ), and β itself is solved for
# directly, so nothing cancels when the prior pulls β far from β̂ (|β| ≪ |β̂|).
#
# In the eigen-basis of the prior precision whitened by XᵀX (L Lᵀ = XᵀX,
# L⁻¹ D L⁻ᵀ = Q Λ Qᵀ, ω = Λ⁻¹ Qᵀ L⁻¹ D d on λ_j > 0) the same path reads
#
#     RSS(s)   = RSS₀ + Σ_j (ω_j λ_j s / (1 + sλ_j))²
#     prior(s) = Σ_j λ_j ω_j² / (1 + sλ_j)²,
#
# which is what the unimodality certificate in fit_map is derived from. It needs only
#
#     Σ_j ω_j² = RSS(∞) − RSS₀ = d_Pᵀ S d_P     (S: Schur complement of the flat block
#                                                F of XᵀX, P the other coefficients),
#     Σ_j λ_j ω_j² = prior(0) = dᵀ D d,
#
# both quadratic forms, so no eigendecomposition is ever computed.
#


@dataclass(frozen=True)
class _Path:
    """What the conditional-mode path of one prior needs, per replicate.

    ``gram`` holds the entries of XᵀX, ``d`` = μ − β̂ and ``prior_d`` = D d by component
    (``prior_d[j]`` is 0.0 for a flat coordinate, whose precision is 0); all arrays share
    one shape, (R,).
    """

    gram: list[list[np.ndarray]]
    precision: tuple[float, ...]
    d: list[np.ndarray]
    prior_d: list[Any]
    rss0: np.ndarray

    def take(self, index: np.ndarray) -> _Path:
        """The path of the replicates ``index``."""
        p = len(self.d)
        gram: list[list[Any]] = [[None] * p for _ in range(p)]
        for i in range(p):
            for j in range(i + 1):
                gram[i][j] = gram[j][i] = self.gram[i][j][index]
        return _Path(
            gram,
            self.precision,
            [d[index] for d in self.d],
            [v[index] if isinstance(v, np.ndarray) else v for v in self.prior_d],
            self.rss0[index],
        )

    def system(self, s: np.ndarray) -> list[list[Any]]:
        """Entries of A(s) = XᵀX + sD."""
        a = [list(row) for row in self.gram]
        for j, prec in enumerate(self.precision):
            if prec:
                a[j][j] = self.gram[j][j] + s * prec
        return a

    def terms(
        self, s: np.ndarray, *, slope: bool = False, prior: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """RSS(s) − RSS₀ and, when asked for, its derivative in s and prior(s).

        ``s`` and the results have the shape of the path's arrays.
        """
        lower, inv_diag, _ = cholesky(self.system(s))
        delta = [s * u for u in solve(lower, inv_diag, self.prior_d)]
        gram_delta = matvec(self.gram, delta)
        extra = dot(delta, gram_delta)
        drss = prior_term = None
        if slope:
            # dRSS/ds = 2 δᵀ XᵀX dδ/ds with dδ/ds = A⁻¹ D (d − δ). (d − δ = μ − β may
            # cancel under a strong prior; it only sets Newton's step, not the root.)
            rhs = [
                prec * (d - dl) if prec else 0.0
                for prec, d, dl in zip(self.precision, self.d, delta, strict=True)
            ]
            drss = 2.0 * dot(gram_delta, solve(lower, inv_diag, rhs))
        if prior:
            # β − μ = −A⁻¹ XᵀX d: accurate however close β is to μ.
            away = solve(lower, inv_diag, matvec(self.gram, self.d))
            prior_term = sum(
                prec * v * v for prec, v in zip(self.precision, away, strict=True) if prec
            )
            prior_term = prior_term + np.zeros_like(s)
        return extra, drss, prior_term


def _path_moments(path: _Path) -> tuple[np.ndarray, np.ndarray]:
    """Σ_j ω_j² = RSS(∞) − RSS₀ and Σ_j λ_j² ω_j² = (Dd)ᵀ (XᵀX)⁻¹ (Dd), per replicate.

    RSS(∞) holds the coefficients with a finite prior (P) at μ_P and fits the flat ones
    (F), so RSS(∞) − RSS₀ = d_Pᵀ S d_P with S the Schur complement of XᵀX's F block. A
    Cholesky factorisation L Lᵀ of XᵀX with F ordered first gives S = L_PP L_PPᵀ: the
    form is ‖L_PPᵀ d_P‖², a sum of squares. The same factor gives ‖L⁻¹ Dd‖², where Dd
    vanishes on F.
    """
    p = len(path.d)
    flat = [j for j in range(p) if not path.precision[j]]
    order = flat + [j for j in range(p) if path.precision[j]]
    lower, inv_diag, _ = cholesky([[path.gram[i][j] for j in order] for i in order])
    at_infinity = np.zeros_like(path.rss0)
    second = np.zeros_like(path.rss0)
    z: list[Any] = [0.0] * p
    for a in range(len(flat), p):
        # (Lᵀ d)_a over the P block: L_aa d_a + Σ_{b > a} L_ba d_b.
        acc = path.d[order[a]] / inv_diag[a]
        for b in range(a + 1, p):
            acc = acc + lower[b][a] * path.d[order[b]]
        at_infinity = at_infinity + acc * acc
        # Forward substitution L z = Dd (z = 0 on F, where Dd = 0).
        acc = path.prior_d[order[a]]
        for k in range(len(flat), a):
            acc = acc - lower[a][k] * z[k]
        z[a] = acc * inv_diag[a]
        second = second + z[a] * z[a]
    return at_infinity, second


def _prior_path(stats: SufficientStats, prior: Prior) -> tuple[_Path, _Bounds, np.ndarray]:
    """The conditional-mode path of ``prior``, its curvature bounds and RSS(∞), per replicate."""
    precision = tuple(float(v) for v in prior.precision)
    mean = np.asarray(prior.mean, dtype=float)
    d = [mean[j] - stats.beta_hat[:, j] for j in range(stats.p)]
    path = _Path(
        entries(stats.gram),
        precision,
        d,
        [prec * d_j if prec else 0.0 for prec, d_j in zip(precision, d, strict=True)],
        stats.rss,
    )
    moment0, moment2 = _path_moments(path)
    moment1 = sum(prec * d_j * d_j for prec, d_j in zip(precision, d, strict=True) if prec)
    bounds = _Bounds.from_moments(moment0, moment1 + np.zeros_like(stats.rss), moment2)
    return path, bounds, stats.rss + moment0


def fit_map(
    stats: SufficientStats,
    prior: Prior,
    alpha: float = 0.05,
    *,
    sigma_prior: str = "flat",
    scan_points: int = 64,
    max_iter: int = 60,
    tol: float = 1e-12,
) -> Fit:
    """Global joint mode in (β, σ) of the posterior under normal priors on β.

    With p(σ) ∝ σ^{−a} (``sigma_prior`` ``"flat"``: a = 0, ``"jeffreys"``: a = 1) the
    negative log posterior (up to a constant) is

        f(β, σ) = (n + a) log σ + RSS(β)/(2σ²) + ½ Σ_j (β_j − μ_j)²/η_j².

    For fixed σ its minimiser in β is closed form, so the mode is found on the
    one-dimensional profile h(t) = min_β f(β, e^t), whose derivative is
    h'(t) = n + a − RSS(β(σ))/σ². RSS grows monotonically along the path from the OLS
    fit (σ → 0) to the prior mean (σ → ∞), so every stationary point has s = σ² in
    [RSS₀/(n + a), RSS∞/(n + a)]. Where lower bounds on the curvature prove h'
    increasing over that bracket (:class:`_Bounds`; most replicates) the profile has
    exactly one mode; elsewhere the sign of h' is found on ``scan_points`` points of
    log σ over the bracket (evaluating only the points near its roots,
    :func:`_scan_brackets`), and every sign change from − to + brackets a local mode. A
    safeguarded Newton iteration on (n + a) s − RSS(s) = 0 (bisection in log σ when a
    step leaves the bracket) polishes each to ``tol``, with every RSS(s) from direct
    solves; the lowest mode is returned. The Jeffreys prior thus only replaces n by
    n + 1 wherever it counts the powers of σ: the bracket, the certificate's condition
    on F(s) = (n + a) s − RSS(s), the profile and the Hessian (h'' and the curvature
    bounds do not involve n). The Laplace covariance is the inverse Hessian of f in
    (β, σ) at the mode; a replicate whose Newton iteration did not converge within
    ``max_iter`` steps, whose Hessian is not positive definite, or whose result is not
    finite, has ``converged`` False.

    Parameters
    ----------
    stats : SufficientStats
        Statistics of R datasets.
    prior : Prior
        Prior means and sds (sd = inf for a flat prior; all flat gives the MLE).
    alpha : float
        Intervals are mode ± z_{1−α/2} · se.
    sigma_prior : {"flat", "jeffreys"}
        The prior on σ: p(σ) ∝ 1 or p(σ) ∝ 1/σ.
    scan_points : int
        Points of the profile scan (≥ 2).
    max_iter : int
        Newton iteration cap per mode.
    tol : float
        Convergence tolerance in log σ, on the Newton step or on a bound of the error
        left after it.

    Returns
    -------
    Fit
        ``multimodal`` is True where the profile had more than one local mode.
    """
    p = stats.p
    # The power of σ in the posterior: n from the likelihood, a from the prior on σ.
    n = stats.n + sigma_exponent(sigma_prior)
    if len(prior.mean) != p:
        raise ValueError(f"prior {prior.name!r} has {len(prior.mean)} means, expected {p}")
    mean = np.asarray(prior.mean, dtype=float)
    replicates = stats.replicates
    rss0 = stats.rss
    path, bounds, rss_inf = _prior_path(stats, prior)
    # Every stationary point has s in [s_low, s_high]. Where h' provably increases over
    # the whole bracket it has exactly one root there: no scan is needed.
    s_low, s_high = rss0 / n, rss_inf / n
    certified = bounds.unimodal(n, rss0, rss0, s_low, s_high)
    if certified.all():
        rep, lo, hi = np.arange(replicates), s_low, s_high
        path_b, bounds_b = path, bounds
    else:
        uncertified = np.flatnonzero(~certified)
        scan_rep, scan_lo, scan_hi = _scan_brackets(
            path,
            bounds,
            uncertified,
            _Stationarity(n, n, _rss),
            s_low,
            s_high,
            rss0,
            rss_inf,
            scan_points,
        )
        single = np.flatnonzero(certified)
        rep = np.concatenate([single, scan_rep])
        lo = np.concatenate([s_low[single], scan_lo])
        hi = np.concatenate([s_high[single], scan_hi])
        path_b, bounds_b = path.take(rep), bounds.take(rep)
    modes_per_replicate = np.bincount(rep, minlength=replicates)

    s, done = _newton(path_b, bounds_b, n, lo, hi, max_iter, tol)

    # The global mode: the lowest profile value among each replicate's local modes.
    s_mode = np.full(replicates, np.nan)
    newton_ok = np.zeros(replicates, dtype=bool)
    several = modes_per_replicate[rep] >= 2
    if several.any():
        # h(t) = n t + RSS/(2s) + ½ prior(s), t = ½ log s.
        at = np.flatnonzero(several)
        s_at = s[at]
        extra, _, prior_term = path_b.take(at).terms(s_at, prior=True)
        profile = 0.5 * n * np.log(s_at) + (rss0[rep[at]] + extra) / (2.0 * s_at)
        profile = profile + 0.5 * prior_term
        order = np.lexsort((profile, rep[at]))
        first = np.ones(len(order), dtype=bool)
        first[1:] = rep[at][order][1:] != rep[at][order][:-1]
        best = at[order[first]]
        keep = np.concatenate([np.flatnonzero(~several), best])
    else:
        keep = slice(None)
    s_mode[rep[keep]] = s[keep]
    newton_ok[rep[keep]] = done[keep]
    return _map_result(stats, n, path, mean, s_mode, newton_ok, modes_per_replicate >= 2, alpha)


def _newton(
    path: _Path,
    bounds: _Bounds,
    n: int,
    lo: np.ndarray,
    hi: np.ndarray,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Safeguarded Newton on F(s) = n s − RSS(s) = 0 in every bracket [lo, hi] at once.

    F ≤ 0 at ``lo`` and ≥ 0 at ``hi``. The iteration starts at ``lo``: in s, F is nearly
    linear when the prior is weak (RSS changes little), so the first step usually lands
    close to the root. A step that leaves the shrinking bracket, or a non-positive F',
    is replaced by bisection in log σ (the geometric mean).

    An iteration is converged when its step, or a bound on the error left after it, is
    at most ``tol`` in log σ (|Δs| ≤ 2 tol s). A Newton step δ from s leaves an error
    e' = F''(η) e²/(2F'(s)) with e = e' − δ the error before it and η between s and the
    root; so with K = max|F''|/(2F'(s)) over [s − 2|δ|, ∞) (:meth:`_Bounds.curvature`),
    4K|δ| ≤ 1 gives |e| ≤ 2|δ| and |e'| ≤ 4Kδ². The iteration thus usually stops one
    step earlier than a test on the next step would, with the same accuracy.

    Returns
    -------
    s, done : ndarray
        Last iterate, and whether it converged within ``max_iter`` iterations.
    """
    s = lo.copy()
    done = hi - lo <= 2.0 * tol * lo
    # An error bound that overflows (a large σ, a sharp bend) is inf: it then proves
    # nothing, and the test on the step decides.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(max_iter):
            if done.all():
                break
            extra, drss, _ = path.terms(s, slope=True)
            f = n * s - path.rss0 - extra
            df = n - drss
            below = f <= 0
            lo = np.where(below, s, lo)
            hi = np.where(below, hi, s)
            step = -f / df
            newton = s + step
            taken = (df > 0) & (newton >= lo) & (newton <= hi)
            s_next = np.where(taken, newton, np.sqrt(lo * hi))
            # A root hit exactly stays put: a bisection from it would leave the root.
            s_next = np.where(f == 0, s, s_next)
            # Error bound after the step: 4Kδ² with 4K = 2 max|F''|/F'.
            k4 = 2.0 * bounds.curvature(np.maximum(s - 2.0 * np.abs(step), 0.0)) / df
            left = taken & (k4 * np.abs(step) <= 1.0) & (k4 * step * step <= 2.0 * tol * s)
            converged = left | (np.abs(s_next - s) <= 2.0 * tol * s)
            s = np.where(done, s, s_next)
            done |= converged
    return s, done


@dataclass(frozen=True)
class _Bounds:
    """Bounds on the profile's curvature terms from m_k = Σ_j λ_j^k ω_j², k = 0, 1, 2.

    With x = sλ_j ≥ 0:

    * d²h/dt² = 2 RSS₀/s − 2 Σ_j λ_j ω_j² ψ(x), ψ(x) = x(1 − x)/(1 + x)³, and
      ψ ≤ min(1/(6√3), x, 1/(27x)) gives Σ_j λ_j ω_j² ψ ≤ min(m₁/(6√3), s m₂, m₀/(27 s));
    * RSS'(s) = Σ_j λ_j ω_j² φ(x), φ(x) = 2x/(1 + x)³, and φ ≤ min(8/27, 2x, 8/(27x))
      gives RSS' ≤ min(8m₁/27, 2m₂ s, 8m₀/(27 s)), largest at s* = √(4m₀/(27 m₂));
    * RSS''(s) = Σ_j λ_j² ω_j² φ'(x) with |φ'(x)| = |2 − 4x|/(1 + x)⁴ and
      |φ'| ≤ min(2, 0.155/x, 0.36/x²) (the maxima of x|φ'| and x²|φ'| are 0.15406 at
      x = (7 + √33)/8 and 0.35912 at x = 2 + √3), so
      |RSS''| ≤ min(2m₂, 0.155 m₁/s, 0.36 m₀/s²).
    """

    m0: np.ndarray
    m1: np.ndarray
    m2: np.ndarray
    peak: np.ndarray  # s*

    @classmethod
    def from_moments(cls, m0: np.ndarray, m1: np.ndarray, m2: np.ndarray) -> _Bounds:
        """The bounds of moments ``m0``, ``m1``, ``m2``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            peak = np.sqrt((4.0 / 27.0) * m0 / m2)
        return cls(m0, m1, m2, peak)

    def take(self, index: np.ndarray) -> _Bounds:
        """The bounds of the replicates ``index``."""
        return _Bounds(self.m0[index], self.m1[index], self.m2[index], self.peak[index])

    def unimodal(
        self, n: int, rss0: np.ndarray, rss_a: np.ndarray, s_a: np.ndarray, s_b: np.ndarray
    ) -> np.ndarray:
        """Where h' provably increases on [s_a, s_b] (so has at most one root there).

        ``rss_a`` is a lower bound of RSS(s_a). Sufficient: d²h/dt² > 0 on the interval,
        from d²h/dt² ≥ 2 RSS₀/s_b − 2 min(m₁/(6√3), s_b m₂, m₀/(27 s_a)) or from
        d²h/dt² = 2 RSS/s − 2 RSS' ≥ 2 RSS(s_a)/s_b − 2 max RSS'; or F(s) = n s − RSS(s)
        increasing, n > max RSS'. Over [s_a, s_b], max RSS' ≤ the bound at s* clipped to
        the interval (the bound increases below s* and decreases above it).
        """
        m0, m1, m2 = self.m0, self.m1, self.m2
        with np.errstate(divide="ignore", invalid="ignore"):
            psi = np.minimum(np.minimum(m1 / (6.0 * np.sqrt(3.0)), s_b * m2), m0 / (27.0 * s_a))
            s_c = np.clip(self.peak, s_a, s_b)
            slope = np.minimum(
                (8.0 / 27.0) * m1, np.minimum(2.0 * m2 * s_c, (8.0 / 27.0) * m0 / s_c)
            )
            return (rss0 > psi * s_b) | (rss_a > slope * s_b) | (n > slope)

    def curvature(self, s: np.ndarray) -> np.ndarray:
        """Bound on |RSS''| = |d²F/ds²| over [s, ∞) (``s`` > 0)."""
        inv = 1.0 / s
        return np.minimum(
            2.0 * self.m2, np.minimum(0.155 * self.m1 * inv, 0.36 * self.m0 * inv * inv)
        )


#: Largest replicates × scan points for which the profile scan evaluates every point.
_DENSE_SCAN = 16384

#: Cells per replicate the profile scan's bisection starts from.
_SCAN_CELLS = 8


@dataclass(frozen=True)
class _Stationarity:
    """A profile's stationarity equation in s = σ², level · s = R(s), with R increasing.

    For the MAP profile level = n + a and R = RSS: h'(t) = level − RSS/s. The posterior
    of log σ (:mod:`regsim.estimators.bayes`) adds the increasing P(s) of the integrated
    coefficients to R. The scan's shortcuts rest only on R increasing.

    Attributes
    ----------
    level : float
        The coefficient of s.
    certify : float
        The level of the third condition of :meth:`_Bounds.unimodal` (level · s − R(s)
        increasing).
    values : callable
        ``values(path, s)`` -> (R(s), a lower bound of RSS(s)), arrays of ``s``'s shape.
    """

    level: float
    certify: float
    values: Callable[[_Path, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _rss(path: _Path, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RSS(s) along the path, twice: the R of the MAP profile and its own lower bound."""
    rss = path.rss0 + path.terms(s)[0]
    return rss, rss


def _scan_brackets(
    path: _Path,
    bounds: _Bounds,
    rows: np.ndarray,
    equation: _Stationarity,
    s_low: np.ndarray,
    s_high: np.ndarray,
    r_low: np.ndarray,
    r_high: np.ndarray,
    scan_points: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brackets of every local mode of a profile for the replicates ``rows``.

    The sign of level · s − R(s) (the sign of h'(t) for MAP, see :class:`_Stationarity`)
    is found on ``scan_points`` uniform points of t = log σ ∈ [t_low, t_high]; each sign
    change from − to + brackets a local mode. ``r_low`` and ``r_high`` bound R below at
    s_low and above at s_high, and the sign is − at s_low and + at s_high in exact
    arithmetic.

    Not every point needs an R. The grid is cut into cells, at first a few per
    replicate. R increases with s, so between the ends a < b of a cell, where R is
    known (or bounded), every inner point i has R(s_a) ≤ R(s_i) ≤ R(s_b): the sign is
    known at all of them when level·s_{a+1} > R(s_b) (all +) or level·s_{b−1} ≤ R(s_a)
    (all −). Other cells are split at their middle point, whose R is computed. Where the
    sign provably changes at most once on a cell, from − to + (:meth:`_Bounds.unimodal`,
    with a lower bound of RSS at the cell's left end), it changes only if it does so
    between the ends: such a cell is dropped, or only its half with the change is kept.
    This bisection evaluates a few points near each root instead of all of them, and
    finds exactly the brackets of evaluating every point (so a replicate's fit does not
    depend on the batch it is in). All arrays are per cell (no loop over replicates),
    and small.

    Returns
    -------
    rep, lo, hi : ndarray
        Replicate index and bracket ends in s = σ², one entry per local mode.
    """
    level, values = equation.level, equation.values
    last = max(int(scan_points), 2) - 1
    fractions = np.linspace(0.0, 1.0, last + 1)
    path, bounds = path.take(rows), bounds.take(rows)
    low, high = s_low[rows], s_high[rows]
    t_low = 0.5 * np.log(low)
    t_span = 0.5 * np.log(high) - t_low

    def grid(row: np.ndarray, point: np.ndarray) -> np.ndarray:
        s = np.exp(2.0 * (t_low[row] + t_span[row] * fractions[point]))
        # The ends exactly: the bracket is [s_low, s_high].
        s = np.where(point == 0, low[row], s)
        return np.where(point == last, high[row], s)

    if len(rows) * (last + 1) <= _DENSE_SCAN:
        # Few replicates: one pass over every point costs less than the bisection's
        # rounds (a few hundred small-array operations each).
        point = np.arange(last + 1)[:, None]
        row = np.arange(len(rows))[None, :]
        s_grid = grid(row, point)
        positive = level * s_grid > values(path, s_grid)[0]
        positive[0], positive[-1] = False, True
        point, row = np.nonzero(~positive[:-1] & positive[1:])
        return rows[row], s_grid[point, row], s_grid[point + 1, row]

    # Cells: replicate, grid ends a < b, s and R (or its bound) at the ends, a lower bound
    # of RSS at the left end, the sign at the ends, and whether the sign provably changes
    # at most once on the cell. To start with, _SCAN_CELLS cells per replicate between
    # evenly spaced grid points, whose R is computed in one pass (fewer bisection rounds);
    # at the ends of the grid r_low and r_high bound R, and the sign is − at the lower end
    # and + at the upper end in exact arithmetic.
    coarse = np.unique(np.linspace(0, last, min(_SCAN_CELLS, last) + 1).round().astype(np.intp))
    count, inner = len(rows), coarse[1:-1, None]
    replicate = np.broadcast_to(np.arange(count), (len(coarse), count))
    s_coarse = np.empty((len(coarse), count))
    s_coarse[0], s_coarse[-1] = low, high
    r_coarse = np.empty_like(s_coarse)
    r_coarse[0], r_coarse[-1] = r_low[rows], r_high[rows]
    rss_coarse = np.empty_like(s_coarse)
    rss_coarse[0], rss_coarse[-1] = path.rss0, path.rss0
    s_coarse[1:-1] = grid(replicate[1:-1], inner)
    r_coarse[1:-1], rss_coarse[1:-1] = values(path, s_coarse[1:-1])
    positive = level * s_coarse > r_coarse
    positive[0], positive[-1] = False, True
    point = np.broadcast_to(coarse[:, None], s_coarse.shape)

    def starts(v: np.ndarray) -> np.ndarray:
        return v[:-1].ravel()

    def ends(v: np.ndarray) -> np.ndarray:
        return v[1:].ravel()

    cells = (
        starts(replicate),
        starts(point),
        ends(point),
        starts(s_coarse),
        ends(s_coarse),
        starts(r_coarse),
        ends(r_coarse),
        starts(rss_coarse),
        starts(positive),
        ends(positive),
        np.zeros((len(coarse) - 1) * count, dtype=bool),
    )
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    while len(cells[0]):
        row, a, b, s_a, s_b, r_a, r_b, rss_a, pos_a, pos_b, _ = cells
        wide = b - a >= 2
        s_first = grid(row, np.minimum(a + 1, last))
        s_last = grid(row, np.maximum(b - 1, 0))
        all_pos = wide & (level * s_first > r_b)
        all_neg = wide & (level * s_last <= r_a)
        # A − to + change: at the left end of an all-+ cell, at the right end of an
        # all-− one, or across a cell without inner points.
        for keep, lo, hi in (
            (all_pos & ~pos_a, s_a, s_first),
            (all_neg & pos_b, s_last, s_b),
            (~wide & ~pos_a & pos_b, s_a, s_b),
        ):
            found.append((row[keep], lo[keep], hi[keep]))
        # Where the sign provably changes at most once, from − to +, a cell without that
        # change between its ends has none inside.
        monotone = cells[-1] | bounds.take(row).unimodal(
            equation.certify, path.rss0[row], rss_a, s_a, s_b
        )
        live = wide & ~all_pos & ~all_neg & (~monotone | (~pos_a & pos_b))
        cells = (*(v[live] for v in cells[:-1]), monotone[live])
        row, a, b, s_a, s_b, r_a, r_b, rss_a, pos_a, pos_b, monotone = cells
        mid = (a + b) // 2
        s_mid = grid(row, mid)
        r_mid, rss_mid = values(path.take(row), s_mid)
        pos_mid = level * s_mid > r_mid
        # Both halves of a cell; of a monotone one only the half with the sign change,
        # so that it ends as a grid interval, as when every point is evaluated.
        left = ~monotone | pos_mid
        right = ~monotone | ~pos_mid
        halves = zip(
            (row, a, mid, s_a, s_mid, r_a, r_mid, rss_a, pos_a, pos_mid, monotone),
            (row, mid, b, s_mid, s_b, r_mid, r_b, rss_mid, pos_mid, pos_b, monotone),
            strict=True,
        )
        cells = tuple(np.concatenate([first[left], second[right]]) for first, second in halves)
    row, lo, hi = (np.concatenate(part) for part in zip(*found, strict=True))
    return rows[row], lo, hi


def _map_result(
    stats: SufficientStats,
    n: int,
    path: _Path,
    mean: np.ndarray,
    s_mode: np.ndarray,
    newton_ok: np.ndarray,
    multimodal: np.ndarray,
    alpha: float,
) -> Fit:
    """Mode at ``σ² = s_mode``; Laplace standard errors and Wald intervals.

    β is solved for directly, A β = XᵀX β̂ + sDμ (see above). The mode is checked to be
    stationary (|h'| ≤ 1e-6·n) and its Hessian in (β, σ) positive definite; the Hessian
    is scaled to unit diagonal before it is factored, which keeps the inverse accurate
    when prior precisions span many orders of magnitude. Its Cholesky factorisation
    both certifies positive definiteness (every pivot > 0) and gives the diagonal of the
    inverse. ``n`` is the power of σ in the posterior (n + a).
    """
    p = stats.p
    precision = path.precision
    valid = np.isfinite(s_mode)
    s = np.where(valid, s_mode, 1.0)
    lower, inv_diag, _ = cholesky(path.system(s))
    gram_beta = matvec(path.gram, [stats.beta_hat[:, j] for j in range(p)])
    rhs = [
        g + s * (prec * m) if prec else g
        for g, prec, m in zip(gram_beta, precision, mean, strict=True)
    ]
    beta = solve(lower, inv_diag, rhs)
    delta = [s * u for u in solve(lower, inv_diag, path.prior_d)]
    gram_delta = matvec(path.gram, delta)
    rss = stats.rss + dot(delta, gram_delta)
    sigma = np.sqrt(s)
    stationary = np.abs(n - rss / s) <= 1e-6 * n

    # Hessian of f in (β, σ): H_ββ = XᵀX/s + D, H_βσ = −2 XᵀX (β − β̂)/σ³,
    # H_σσ = −n/s + 3 RSS/s².
    inv_s = 1.0 / s
    hessian: list[list[Any]] = [[None] * (p + 1) for _ in range(p + 1)]
    for i in range(p):
        for j in range(i + 1):
            hessian[i][j] = hessian[j][i] = path.gram[i][j] * inv_s
        if precision[i]:
            hessian[i][i] = hessian[i][i] + precision[i]
    coupling = -2.0 * inv_s / sigma
    for j in range(p):
        hessian[p][j] = hessian[j][p] = gram_delta[j] * coupling
    hessian[p][p] = (3.0 * rss * inv_s - n) * inv_s
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = [1.0 / np.sqrt(hessian[i][i]) for i in range(p + 1)]
        scaled: list[list[Any]] = [[None] * (p + 1) for _ in range(p + 1)]
        for i in range(p + 1):
            for j in range(i + 1):
                scaled[i][j] = scaled[j][i] = hessian[i][j] * (scale[i] * scale[j])
        lower, inv_diag, pivots = cholesky(scaled)
        positive = np.logical_and.reduce([pivot > 0 for pivot in pivots])
        variances = inverse_diagonal(lower, inv_diag)
        se = np.sqrt(
            np.where(
                positive[:, None],
                np.column_stack([v * (c * c) for v, c in zip(variances, scale, strict=True)]),
                np.nan,
            )
        )
    estimate = np.column_stack([*beta, sigma])
    estimate[~valid] = np.nan
    fit = wald_fit("map", estimate, se, normal_upper(alpha))
    converged = fit.converged & newton_ok & valid & stationary & positive
    return Fit("map", fit.estimate, fit.se, fit.lower, fit.upper, converged, multimodal)
