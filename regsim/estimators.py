"""OLS, maximum likelihood and MAP fits, batched over replicate datasets.

Every estimator takes the :class:`SufficientStats` of a batch of R datasets (computed once
and shared by every method and prior) and returns a :class:`Fit`: arrays of shape
(R, p + 1) holding, for β_0 … β_k and σ, the estimate, its standard error and a (1 − α)
interval, plus per-replicate flags. No estimator loops over replicates in Python.

Model: y = X β + ε, ε ~ N(0, σ² I), X = [1, x_1, …, x_k], p = k + 1 coefficients.

* OLS: β̂ = (XᵀX)⁻¹Xᵀy, s² = RSS/(n − p), se(β̂_j) = s √[(XᵀX)⁻¹]_jj with t_{n−p}
  intervals; σ̂ = s with se s/√(2(n − p)) and the exact interval
  [√(RSS/χ²_{1−α/2, n−p}), √(RSS/χ²_{α/2, n−p})].
* OLS with HC3 (``ols_hc3``): the OLS fit with heteroskedasticity-consistent sandwich
  standard errors, se² = [(XᵀX)⁻¹ Xᵀ diag(e_i²/(1 − h_ii)²) X (XᵀX)⁻¹]_jj, t_{n−p}
  intervals; σ as for OLS.
* MLE: maximiser of the Gaussian log-likelihood in (β, σ): β̂ as OLS, σ̂ = √(RSS/n);
  Wald intervals from the inverse observed information, se(β̂_j) = σ̂ √[(XᵀX)⁻¹]_jj,
  se(σ̂) = σ̂/√(2n).
* MAP: global mode in (β, σ) of likelihood × ∏_j N(β_j; μ_j, η_j²) (no prior on σ; η_j = ∞
  is a flat prior), with Laplace (inverse Hessian) intervals. See :func:`fit_map`.

Numerics: the statistics are built from centred data, and the residual sum of squares of
the OLS fit is summed from the residuals themselves, so nothing cancels when |β_0| ≫ σ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaincinv, stdtrit

from regsim.design import FIT_COLUMNS, PRIOR_METHODS, Prior
from regsim.simulate import Datasets


def parameter_names(p: int) -> list[str]:
    """Names of the fitted parameters: ``beta0 … beta{p-1}`` then ``sigma``."""
    return [f"beta{j}" for j in range(p)] + ["sigma"]


@dataclass(frozen=True)
class SufficientStats:
    """Sufficient statistics of R datasets, shared by every estimator and prior.

    Attributes
    ----------
    n : int
        Observations per dataset.
    beta_hat : ndarray, shape (R, p)
        Least-squares coefficients (intercept first).
    rss : ndarray, shape (R,)
        Residual sum of squares at ``beta_hat``.
    gram : ndarray, shape (R, p, p)
        XᵀX.
    gram_inv : ndarray, shape (R, p, p)
        (XᵀX)⁻¹, from the centred covariates.
    hc3_cov : ndarray, shape (R, p, p), or None
        HC3 sandwich covariance of β̂ (only when asked for: it needs a pass over the data).
    """

    n: int
    beta_hat: np.ndarray
    rss: np.ndarray
    gram: np.ndarray
    gram_inv: np.ndarray
    hc3_cov: np.ndarray | None = None

    @property
    def p(self) -> int:
        """Number of coefficients."""
        return int(self.beta_hat.shape[1])

    @property
    def replicates(self) -> int:
        """Number of datasets R."""
        return int(self.beta_hat.shape[0])


def sufficient_stats(x: np.ndarray, y: np.ndarray, *, sandwich: bool = False) -> SufficientStats:
    """Compute the statistics of R datasets with covariates ``x`` and responses ``y``.

    Parameters
    ----------
    x : ndarray, shape (R, n, k)
        Covariates, without the intercept column.
    y : ndarray, shape (R, n)
        Responses.
    sandwich : bool
        Also compute the HC3 covariance (for ``ols_hc3``).

    Returns
    -------
    SufficientStats
    """
    # Covariates as contiguous (R, k, n) rows: every reduction below is then a BLAS
    # call or a contiguous pass, not a strided one.
    # (A fresh copy: it is centred in place below and must never alias the caller's x.)
    x_rows = np.array(np.swapaxes(x, 1, 2), dtype=float, order="C", copy=True)
    y = np.asarray(y, dtype=float)
    n = x_rows.shape[2]
    x_mean = x_rows.mean(axis=2)
    y_mean = y.mean(axis=1)
    x_rows -= x_mean[:, :, None]
    y_centred = y - y_mean[:, None]
    sxx = np.matmul(x_rows, np.swapaxes(x_rows, 1, 2))
    sxy = np.matmul(x_rows, y_centred[:, :, None])[:, :, 0]
    sxx_inv = np.linalg.inv(sxx)
    slopes = np.einsum("rij,rj->ri", sxx_inv, sxy)
    residuals = y_centred - np.matmul(slopes[:, None, :], x_rows)[:, 0, :]
    rss = np.einsum("rn,rn->r", residuals, residuals)
    intercept = y_mean - np.einsum("ri,ri->r", x_mean, slopes)
    beta_hat = np.concatenate([intercept[:, None], slopes], axis=1)

    replicates, k = x_mean.shape
    gram = np.empty((replicates, k + 1, k + 1))
    gram[:, 0, 0] = n
    gram[:, 0, 1:] = gram[:, 1:, 0] = n * x_mean
    gram[:, 1:, 1:] = sxx + n * x_mean[:, :, None] * x_mean[:, None, :]
    # (XᵀX)⁻¹ by blocks of the centred problem: exact and well conditioned.
    sxx_inv_mean = np.einsum("rij,rj->ri", sxx_inv, x_mean)
    gram_inv = np.empty_like(gram)
    gram_inv[:, 0, 0] = 1.0 / n + np.einsum("ri,ri->r", x_mean, sxx_inv_mean)
    gram_inv[:, 0, 1:] = gram_inv[:, 1:, 0] = -sxx_inv_mean
    gram_inv[:, 1:, 1:] = sxx_inv
    hc3_cov = _hc3_covariance(x_rows, residuals, sxx_inv, x_mean) if sandwich else None
    return SufficientStats(
        n=n, beta_hat=beta_hat, rss=rss, gram=gram, gram_inv=gram_inv, hc3_cov=hc3_cov
    )


def _hc3_covariance(
    x_rows: np.ndarray, residuals: np.ndarray, sxx_inv: np.ndarray, x_mean: np.ndarray
) -> np.ndarray:
    """HC3 covariance (XᵀX)⁻¹ Xᵀ diag(e_i²/(1 − h_ii)²) X (XᵀX)⁻¹ of β̂, shape (R, p, p).

    Computed in the centred parametrisation (α, b) with α = β₀ + x̄ᵀb, where XᵀX is
    block diagonal diag(n, Sxx), then mapped back to (β₀, b); ``x_rows`` holds the centred
    covariates as (R, k, n). A leverage of 1 (possible when n = p + 1) gives inf.
    """
    n = x_rows.shape[2]
    projected = np.matmul(sxx_inv, x_rows)  # Sxx⁻¹ x_ci, (R, k, n)
    leverage = 1.0 / n + np.einsum("rkn,rkn->rn", x_rows, projected)
    with np.errstate(divide="ignore"):
        weights = np.square(residuals / (1.0 - leverage))
    weighted = x_rows * weights[:, None, :]
    replicates, k = x_mean.shape
    bread_meat = np.empty((replicates, k + 1, k + 1))
    # G_c⁻¹ M_c G_c⁻¹ with G_c = diag(n, Sxx) and M_c the weighted centred Gram matrix.
    bread_meat[:, 0, 0] = weights.sum(axis=1) / n**2
    cross = np.einsum("rij,rj->ri", sxx_inv, weighted.sum(axis=2)) / n
    bread_meat[:, 0, 1:] = bread_meat[:, 1:, 0] = cross
    bread_meat[:, 1:, 1:] = sxx_inv @ np.matmul(weighted, np.swapaxes(x_rows, 1, 2)) @ sxx_inv
    # β₀ = α − x̄ᵀb: β = A (α, b) with A = [[1, −x̄ᵀ], [0, I]].
    transform = np.zeros((replicates, k + 1, k + 1))
    transform[:, 0, 0] = 1.0
    transform[:, 0, 1:] = -x_mean
    transform[:, 1:, 1:] = np.eye(k)
    return transform @ bread_meat @ np.swapaxes(transform, 1, 2)


@dataclass(frozen=True)
class Fit:
    """Results of one estimator on R datasets, in the spirit of statsmodels' Results.

    Columns of the (R, p + 1) arrays follow :func:`parameter_names`.

    Attributes
    ----------
    method : str
        Registry name of the estimator.
    estimate, se, lower, upper : ndarray, shape (R, p + 1)
        Point estimates, standard errors and interval bounds.
    converged : ndarray of bool, shape (R,)
        False where the fit failed (iteration cap, non-positive-definite Hessian,
        non-finite result); such rows must not be used as numbers.
    multimodal : ndarray of bool, shape (R,)
        True where the objective had more than one local optimum (MAP only).
    """

    method: str
    estimate: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    converged: np.ndarray
    multimodal: np.ndarray

    @property
    def parameters(self) -> list[str]:
        """Parameter names, one per column."""
        return parameter_names(self.estimate.shape[1] - 1)


# Quantiles from scipy.special and the standard library rather than scipy.stats, whose
# import alone costs about a second in every job.
def _normal_quantile(q: float) -> float:
    return NormalDist().inv_cdf(q)


def _chi2_quantile(q: float, df: int) -> float:
    return 2.0 * float(gammaincinv(df / 2.0, q))


def _finite_rows(*arrays: np.ndarray) -> np.ndarray:
    return np.logical_and.reduce([np.isfinite(a).all(axis=1) for a in arrays])


def _wald_fit(method: str, estimate: np.ndarray, se: np.ndarray, quantile: float) -> Fit:
    lower, upper = estimate - quantile * se, estimate + quantile * se
    converged = _finite_rows(estimate, se, lower, upper)
    return Fit(method, estimate, se, lower, upper, converged, np.zeros(len(estimate), dtype=bool))


def fit_ols(stats: SufficientStats, alpha: float = 0.05) -> Fit:
    """Ordinary least squares with t intervals and the exact chi-square interval for σ.

    Parameters
    ----------
    stats : SufficientStats
        Statistics of R datasets.
    alpha : float
        Intervals have coverage 1 − α.

    Returns
    -------
    Fit
        σ is estimated by s = √(RSS/(n − p)) with se s/√(2(n − p)).
    """
    df = stats.n - stats.p
    s = np.sqrt(stats.rss / df)
    coef_se = s[:, None] * np.sqrt(np.diagonal(stats.gram_inv, axis1=1, axis2=2))
    t_quantile = stdtrit(df, 1 - alpha / 2)
    estimate = np.column_stack([stats.beta_hat, s])
    se = np.column_stack([coef_se, s / np.sqrt(2 * df)])
    lower = estimate - t_quantile * se
    upper = estimate + t_quantile * se
    lower[:, -1] = np.sqrt(stats.rss / _chi2_quantile(1 - alpha / 2, df))
    upper[:, -1] = np.sqrt(stats.rss / _chi2_quantile(alpha / 2, df))
    converged = _finite_rows(estimate, se, lower, upper)
    return Fit("ols", estimate, se, lower, upper, converged, np.zeros(len(s), dtype=bool))


def fit_ols_hc3(stats: SufficientStats, alpha: float = 0.05) -> Fit:
    """OLS with HC3 heteroskedasticity-consistent standard errors (MacKinnon & White 1985).

    Parameters
    ----------
    stats : SufficientStats
        Statistics computed with ``sandwich=True``.
    alpha : float
        Intervals have coverage 1 − α: β̂_j ± t_{1−α/2, n−p}·se_HC3; σ as for OLS.

    Returns
    -------
    Fit
        se(β̂_j) = √[(XᵀX)⁻¹ Xᵀ diag(e_i²/(1 − h_ii)²) X (XᵀX)⁻¹]_jj.
    """
    if stats.hc3_cov is None:
        raise ValueError("ols_hc3 needs sufficient_stats(..., sandwich=True)")
    ols = fit_ols(stats, alpha)
    se = ols.se.copy()
    se[:, :-1] = np.sqrt(np.diagonal(stats.hc3_cov, axis1=1, axis2=2))
    t_quantile = stdtrit(stats.n - stats.p, 1 - alpha / 2)
    lower, upper = ols.lower.copy(), ols.upper.copy()
    lower[:, :-1] = ols.estimate[:, :-1] - t_quantile * se[:, :-1]
    upper[:, :-1] = ols.estimate[:, :-1] + t_quantile * se[:, :-1]
    converged = _finite_rows(ols.estimate, se, lower, upper)
    return Fit("ols_hc3", ols.estimate, se, lower, upper, converged, ols.multimodal)


def fit_mle(stats: SufficientStats, alpha: float = 0.05) -> Fit:
    """Gaussian maximum likelihood in (β, σ) with Wald intervals.

    Parameters
    ----------
    stats : SufficientStats
        Statistics of R datasets.
    alpha : float
        Intervals have coverage 1 − α (normal quantiles).

    Returns
    -------
    Fit
        σ̂ = √(RSS/n); the inverse observed information gives se(β̂_j) = σ̂ √[(XᵀX)⁻¹]_jj
        and se(σ̂) = σ̂/√(2n).
    """
    n = stats.n
    sigma_hat = np.sqrt(stats.rss / n)
    coef_se = sigma_hat[:, None] * np.sqrt(np.diagonal(stats.gram_inv, axis1=1, axis2=2))
    estimate = np.column_stack([stats.beta_hat, sigma_hat])
    se = np.column_stack([coef_se, sigma_hat / np.sqrt(2 * n)])
    return _wald_fit("mle", estimate, se, _normal_quantile(1 - alpha / 2))


# The MAP profile in closed form, per replicate. With L Lᵀ = XᵀX, M = L⁻¹ D L⁻ᵀ = Q Λ Qᵀ
# (D = diag of prior precisions) and V = L⁻ᵀ Q, the conditional mode for fixed s = σ² is
# β(s) = β̂ + V diag(a) w with a_j = s/(1 + sλ_j) and w = Qᵀ L⁻¹ D (μ − β̂) = Λ ω. Along
# that path
#
#     RSS(s)   = RSS₀ + Σ_j (ω_j λ_j s / (1 + sλ_j))²
#     prior(s) = Σ_j λ_j ω_j² / (1 + sλ_j)²        [(β − μ)ᵀ D (β − μ)]
#
# both O(p) per point, which makes scanning and Newton on the profile cheap.


def _profile_terms(
    lam: np.ndarray,
    omega: np.ndarray,
    s: np.ndarray,
    *,
    prior: bool = False,
    curvature: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Profile terms at s = σ² for eigenvalues ``lam`` and coordinates ``omega`` (R, p).

    Returns RSS(s) − RSS₀ and, when asked for, the prior term (β − μ)ᵀD(β − μ) and
    Σ_j ω_j² λ_j² (1 − sλ_j)/(1 + sλ_j)³ (from which d²h/dt² follows); ``s`` has shape
    (R,) or (R, m) and the results have its shape.
    """
    expand = (slice(None),) + (None,) * (s.ndim - 1)
    rss_extra = np.zeros_like(s)
    prior_term = np.zeros_like(s) if prior else None
    curv = np.zeros_like(s) if curvature else None
    # A loop over the p coefficients (not the replicates) keeps every operation on
    # contiguous arrays of the shape of s.
    for j in range(lam.shape[1]):
        lam_j = lam[:, j][expand]
        w_j = (omega[:, j] * lam[:, j])[expand]
        one_plus = 1.0 + s * lam_j
        shift = w_j * s / one_plus
        rss_extra += shift * shift
        if prior_term is not None:
            ratio = omega[:, j][expand] / one_plus
            prior_term += lam_j * ratio * ratio
        if curv is not None:
            curv += w_j * w_j * (1.0 - s * lam_j) / (one_plus * one_plus * one_plus)
    return rss_extra, prior_term, curv


def fit_map(
    stats: SufficientStats,
    prior: Prior,
    alpha: float = 0.05,
    *,
    scan_points: int = 64,
    max_iter: int = 60,
    tol: float = 1e-12,
) -> Fit:
    """Global joint mode in (β, σ) of the posterior under normal priors on β.

    The negative log posterior (up to a constant) is

        f(β, σ) = n log σ + RSS(β)/(2σ²) + ½ Σ_j (β_j − μ_j)²/η_j².

    For fixed σ its minimiser in β is closed form, so the mode is found on the
    one-dimensional profile h(t) = min_β f(β, e^t), whose derivative is
    h'(t) = n − RSS(β(σ))/σ². RSS grows monotonically along the path from the OLS fit
    (σ → 0) to the prior mean (σ → ∞), so every stationary point has σ² in
    [RSS₀/n, RSS∞/n]. The profile is scanned on ``scan_points`` points of log σ over that
    bracket; every sign change of h' from − to + brackets a local mode, which a
    safeguarded Newton iteration polishes to ``tol``; the lowest is returned.
    The Laplace covariance is the inverse Hessian of f in (β, σ) at the mode (its
    σ-block by the Schur complement, which is the profile's curvature); a replicate whose
    Newton iteration did not converge within ``max_iter`` steps, whose Hessian is not
    positive definite, or whose result is not finite, has ``converged`` False.

    Parameters
    ----------
    stats : SufficientStats
        Statistics of R datasets.
    prior : Prior
        Prior means and sds (sd = inf for a flat prior; all flat gives the MLE).
    alpha : float
        Intervals are mode ± z_{1−α/2} · se.
    scan_points : int
        Points of the profile scan (≥ 2).
    max_iter : int
        Newton iteration cap per mode.
    tol : float
        Convergence tolerance on the step in log σ.

    Returns
    -------
    Fit
        ``multimodal`` is True where the profile had more than one local mode.
    """
    n, p = stats.n, stats.p
    if len(prior.mean) != p:
        raise ValueError(f"prior {prior.name!r} has {len(prior.mean)} means, expected {p}")
    precision = np.asarray(prior.precision)
    mean = np.asarray(prior.mean)
    replicates = stats.replicates

    # Whitened eigen-basis of the prior precision (see the comment above _profile_terms).
    chol = np.linalg.cholesky(stats.gram)
    chol_inv = np.linalg.inv(chol)
    scaled = chol_inv * precision[None, None, :]
    eigenvalues, q = np.linalg.eigh(scaled @ np.swapaxes(chol_inv, 1, 2))
    # Flat priors give exact zero eigenvalues (eigh sorts ascending); rounding must not
    # turn them into tiny positive ones, whose ω would be garbage.
    n_flat = int(np.count_nonzero(precision == 0))
    eigenvalues[:, :n_flat] = 0.0
    eigenvalues = np.maximum(eigenvalues, 0.0)
    w = np.einsum("rji,rjk,rk->ri", q, scaled, mean[None, :] - stats.beta_hat)
    with np.errstate(divide="ignore", invalid="ignore"):
        omega = np.where(eigenvalues > 0, w / eigenvalues, 0.0)
    rss0 = stats.rss

    # Every stationary point lies in [t_low, t_high] (t = log σ).
    rss_inf = rss0 + np.sum(omega * omega, axis=1)
    t_low = 0.5 * np.log(rss0 / n)
    t_high = 0.5 * np.log(rss_inf / n)
    # Unimodality certificate: each term of d²h/dt² is bounded below, since
    # x(1 − x)/(1 + x)³ ≤ 1/(6√3) for x = sλ ≥ 0 and RSS₀/s ≥ RSS₀/s_high, so
    # d²h/dt² ≥ 2 RSS₀/s_high − Σ_j ω_j² λ_j/(3√3) on the whole bracket. Where that is
    # positive, h' is increasing there and has exactly one root: no scan is needed.
    curvature_bound = 2.0 * n * rss0 / rss_inf - np.sum(omega**2 * eigenvalues, axis=1) / (
        3.0 * np.sqrt(3.0)
    )
    certified = curvature_bound > 0
    rep, lo, hi = _scan_brackets(
        np.flatnonzero(~certified), eigenvalues, omega, rss0, n, t_low, t_high, scan_points
    )
    single = np.flatnonzero(certified)
    rep = np.concatenate([single, rep])
    lo = np.concatenate([t_low[single], lo])
    hi = np.concatenate([t_high[single], hi])
    modes_per_replicate = np.bincount(rep, minlength=replicates)

    # Safeguarded Newton on h'(t) = 0 inside every bracket at once.
    lam_b, omega_b = eigenvalues[rep], omega[rep]
    rss0_b = rss0[rep]
    t = 0.5 * (lo + hi)
    done = hi - lo <= tol * (1.0 + np.abs(t))
    for _ in range(max_iter):
        if done.all():
            break
        s = np.exp(2.0 * t)
        extra, _, curv = _profile_terms(lam_b, omega_b, s, curvature=True)
        g = n - (rss0_b + extra) / s
        dg = 2.0 * rss0_b / s - 2.0 * s * curv
        lo = np.where(g <= 0, t, lo)
        hi = np.where(g <= 0, hi, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = t - g / dg
        bisect = ~((dg > 0) & (newton >= lo) & (newton <= hi))
        t_next = np.where(bisect, 0.5 * (lo + hi), newton)
        # A root hit exactly stays put: a bisection from it would leave the root.
        t_next = np.where(g == 0, t, t_next)
        step_small = np.abs(t_next - t) <= tol * (1.0 + np.abs(t))
        t = np.where(done, t, t_next)
        done |= step_small

    # The global mode: the lowest profile value among each replicate's local modes.
    s = np.exp(2.0 * t)
    extra, prior_term, _ = _profile_terms(lam_b, omega_b, s, prior=True)
    profile = n * t + (rss0_b + extra) / (2.0 * s) + 0.5 * prior_term
    order = np.lexsort((profile, rep))
    first = np.ones(len(order), dtype=bool)
    first[1:] = rep[order][1:] != rep[order][:-1]
    best = order[first]
    best_rep = rep[best]

    t_mode = np.full(replicates, np.nan)
    t_mode[best_rep] = t[best]
    newton_ok = np.zeros(replicates, dtype=bool)
    newton_ok[best_rep] = done[best]
    return _map_result(stats, precision, mean, t_mode, newton_ok, modes_per_replicate >= 2, alpha)


def _scan_brackets(
    rows: np.ndarray,
    eigenvalues: np.ndarray,
    omega: np.ndarray,
    rss0: np.ndarray,
    n: int,
    t_low: np.ndarray,
    t_high: np.ndarray,
    scan_points: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brackets of every local mode of the profile for the replicates ``rows``.

    h'(t) = n − RSS(s)/s is evaluated on ``scan_points`` uniform points of
    [t_low, t_high]; each sign change from − to + brackets a local mode.

    Returns
    -------
    rep, lo, hi : ndarray
        Replicate index and bracket ends, one entry per local mode.
    """
    fractions = np.linspace(0.0, 1.0, max(int(scan_points), 2))
    grid = t_low[rows, None] + (t_high - t_low)[rows, None] * fractions[None, :]
    s_grid = np.exp(2.0 * grid)
    rss_extra, _, _ = _profile_terms(eigenvalues[rows], omega[rows], s_grid)
    slope = n - (rss0[rows, None] + rss_extra) / s_grid
    # h' ≤ 0 at the lower end and ≥ 0 at the upper end in exact arithmetic.
    slope[:, 0] = np.minimum(slope[:, 0], 0.0)
    slope[:, -1] = np.where(slope[:, -1] > 0, slope[:, -1], np.inf)
    row, point = np.nonzero((slope[:, :-1] <= 0) & (slope[:, 1:] > 0))
    return rows[row], grid[row, point], grid[row, point + 1]


def _conditional_mode(
    stats: SufficientStats, precision: np.ndarray, mean: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """β(s) = (XᵀX + sD)⁻¹(XᵀX β̂ + sDμ) by a direct solve, and A = XᵀX + sD.

    Solved directly rather than as β̂ + shift so that nothing cancels when the prior pulls
    β far from β̂ (|β| ≪ |β̂|) or when prior precisions differ by many orders of magnitude.
    """
    system = stats.gram + s[:, None, None] * np.diag(precision)[None, :, :]
    rhs = np.einsum("rij,rj->ri", stats.gram, stats.beta_hat) + s[:, None] * (precision * mean)
    return np.linalg.solve(system, rhs[:, :, None])[:, :, 0], system


def _map_result(
    stats: SufficientStats,
    precision: np.ndarray,
    mean: np.ndarray,
    t_mode: np.ndarray,
    newton_ok: np.ndarray,
    multimodal: np.ndarray,
    alpha: float,
    polish_steps: int = 4,
) -> Fit:
    """Polish the mode at ``σ = exp(t_mode)``; Laplace standard errors and Wald intervals.

    A few Newton steps on h'(t) = n − RSS(β(σ))/σ² with β(σ) from direct solves correct
    the last digits the eigen-basis profile may lose. The mode is then checked to be
    stationary (|h'| ≤ 1e-6·n) and its Hessian in (β, σ) positive definite; the Hessian
    is inverted after scaling it to unit diagonal, which keeps the inverse accurate when
    prior precisions span many orders of magnitude.
    """
    n = stats.n
    valid = np.isfinite(t_mode)
    t = np.where(valid, t_mode, 0.0)
    for _ in range(polish_steps):
        s = np.exp(2.0 * t)
        beta, system = _conditional_mode(stats, precision, mean, s)
        shift = beta - stats.beta_hat
        gram_shift = np.einsum("rij,rj->ri", stats.gram, shift)
        rss = stats.rss + np.einsum("ri,ri->r", shift, gram_shift)
        slope = n - rss / s
        # dβ/ds = (XᵀX + sD)⁻¹ D (μ − β), so dRSS/ds = 2 (β − β̂)ᵀ XᵀX dβ/ds.
        dbeta = np.linalg.solve(system, (precision * (mean - beta))[:, :, None])[:, :, 0]
        drss = 2.0 * np.einsum("ri,ri->r", gram_shift, dbeta)
        dslope = -2.0 * (drss - rss / s)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(dslope > 0, slope / dslope, 0.0)
        # Only a small correction of a converged mode: never jump to another one.
        t = t - np.clip(np.nan_to_num(step), -0.05, 0.05)

    s = np.exp(2.0 * t)
    sigma = np.sqrt(s)
    beta, _ = _conditional_mode(stats, precision, mean, s)
    shift = beta - stats.beta_hat
    gram_shift = np.einsum("rij,rj->ri", stats.gram, shift)
    rss = stats.rss + np.einsum("ri,ri->r", shift, gram_shift)
    stationary = np.abs(n - rss / s) <= 1e-6 * n

    # Hessian of f in (β, σ): H_ββ = XᵀX/s + D, H_βσ = −2 XᵀX (β − β̂)/σ³,
    # H_σσ = −n/s + 3 RSS/s².
    p = stats.p
    hessian = np.empty((len(s), p + 1, p + 1))
    hessian[:, :p, :p] = stats.gram / s[:, None, None] + np.diag(precision)[None, :, :]
    hessian[:, :p, p] = hessian[:, p, :p] = -2.0 * gram_shift / (sigma**3)[:, None]
    hessian[:, p, p] = -n / s + 3.0 * rss / s**2
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / np.sqrt(np.diagonal(hessian, axis1=1, axis2=2))
        scaled = hessian * scale[:, :, None] * scale[:, None, :]
        finite = np.isfinite(scaled).all(axis=(1, 2))
        scaled[~finite] = np.eye(p + 1)
        positive = finite & (np.linalg.eigvalsh(scaled)[:, 0] > 0)
        covariance_diagonal = np.diagonal(np.linalg.inv(scaled), axis1=1, axis2=2) * scale**2
        se = np.sqrt(np.where(positive[:, None], covariance_diagonal, np.nan))
    estimate = np.column_stack([beta, sigma])
    estimate[~valid] = np.nan
    fit = _wald_fit("map", estimate, se, _normal_quantile(1 - alpha / 2))
    converged = fit.converged & newton_ok & valid & stationary & positive
    return Fit("map", fit.estimate, fit.se, fit.lower, fit.upper, converged, multimodal)


#: The estimator registry: name -> batched fit function.
ESTIMATORS: dict[str, Callable[..., Fit]] = {
    "ols": fit_ols,
    "ols_hc3": fit_ols_hc3,
    "mle": fit_mle,
    "map": fit_map,
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
    ``{"map": {"max_iter": 5}}``.

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
    return fits


def fit_table(
    datasets: Datasets,
    priors: Sequence[Prior] | Mapping[str, Prior],
    methods: Sequence[str],
    alpha: float,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Fit every method and prior on a batch of datasets; return the long table.

    Parameters
    ----------
    datasets : Datasets
        Replicate datasets of one cell.
    priors : sequence or mapping of Prior
        Priors for the MAP fits.
    methods : sequence of str
        Keys of :data:`ESTIMATORS`.
    alpha : float
        Intervals have coverage 1 − α.
    options : mapping, optional
        Keyword arguments per method, as for :func:`fit_methods`.

    Returns
    -------
    pandas.DataFrame
        One row per method × prior × replicate × parameter with the columns of
        :data:`FIT_COLUMNS`: cell columns ``n, sigma``; ``prior`` (empty for methods
        without a prior); ``method``; ``parameter`` (``beta0`` … ``sigma``);
        ``replicate``; ``estimate, se, lower, upper``; ``true`` (the data-generating
        value); ``converged`` and ``multimodal`` (bool).
    """
    if isinstance(priors, Mapping):
        priors = list(priors.values())
    cell = datasets.cell
    stats = sufficient_stats(datasets.x, datasets.y, sandwich="ols_hc3" in methods)
    names = parameter_names(cell.p)
    truth = np.array([*cell.beta, cell.sigma])
    replicates = len(datasets)
    parts = []
    for prior_name, fit in fit_methods(stats, priors, methods, alpha, options):
        size = fit.estimate.size
        parts.append(
            pd.DataFrame(
                {
                    "n": np.full(size, cell.n, dtype=np.int64),
                    "sigma": np.full(size, cell.sigma),
                    "prior": prior_name,
                    "method": fit.method,
                    "parameter": np.tile(names, replicates),
                    "replicate": np.repeat(datasets.replicates, len(names)),
                    "estimate": fit.estimate.ravel(),
                    "se": fit.se.ravel(),
                    "lower": fit.lower.ravel(),
                    "upper": fit.upper.ravel(),
                    "true": np.tile(truth, replicates),
                    "converged": np.repeat(fit.converged, len(names)),
                    "multimodal": np.repeat(fit.multimodal, len(names)),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[list(FIT_COLUMNS)]
