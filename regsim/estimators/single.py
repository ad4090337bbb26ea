"""Fits of one dataset by orthogonal decomposition, for a user's own data.

The study's batched kernel (:mod:`regsim.estimators`) works on sufficient statistics, the
normal equations of centred data: fast, and accurate while the covariates are far from
collinear (its scaled condition number is checked per replicate). A user's file can be
anything, so :func:`fit_dataset` fits it the way a careful single fit should:

* y is fitted less its middle value c (:func:`response_centre`), which moves only the
  intercept, by c: a fit perturbs y by rounding of its own size, which beside a spread
  many times smaller than its level would swamp the residuals;
* every column of X = [1, x_1, …, x_k] is scaled to unit length, and X_s = Q R is its
  Householder QR decomposition, so the coefficients β̂ = N⁻¹ R⁻¹ Qᵀy (N the column norms)
  and (XᵀX)⁻¹ = N⁻¹ R⁻¹ R⁻ᵀ N⁻¹ have errors of order κ·ε, κ = cond(X_s), not κ²·ε as from
  the normal equations; the residual sum of squares is summed from the residuals;
* HC3 takes the leverages h_i = ‖Q_i‖² (Q's rows) and the coefficient map
  (XᵀX)⁻¹Xᵀ = N⁻¹ R⁻¹ Qᵀ from the same factors, and gives the SEs that exist where a row
  is fitted exactly (leverage 1): those of the coefficients the row does not determine;
* MAP solves, for each σ² = s, the penalised least-squares problem
  min_b ‖Qᵀy − R b‖² + s Σ_j d_j (b_j − μ_j)² as the small stacked problem [R; √(s D)],
  again by QR, so a prior never multiplies the conditioning; its global mode is found on
  the profile over log σ as in the kernel (every local mode lies in
  [RSS₀/(n + a), RSS∞/(n + a)], p(σ) ∝ σ^{−a}), by a dense scan, root polishing and the
  lowest profile value;
* Bayes integrates over log σ as the kernel (:mod:`regsim.estimators.bayes`), with
  every quantity at σ² = s from that stacked QR: the conditional mean b(s)/N, RSS and
  the prior term from its residuals, log det(XᵀX + sD) from the diagonal of its R, the
  conditional variances from R⁻¹; its modes from a dense scan, polished by Newton's
  iteration, and its integrals by the trapezoidal rule;
* the scaled condition number κ is measured (from the singular values of R). Beyond
  :data:`TRUSTED_CONDITION` a fit is refused as "nearly collinear": the rounding error of
  the estimates, about κ·√n·ε standard errors, could then be visible in the printed digits.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import brentq

from regsim.design import Prior
from regsim.estimators import Fit, SufficientStats, fit_mle, fit_ols
from regsim.estimators.base import sigma_exponent
from regsim.estimators.bayes.estimator import _finish, _fit_modes
from regsim.estimators.bayes.modes import _newton
from regsim.estimators.bayes.posterior import _Counts, _Values
from regsim.estimators.linear import ols_with_coefficient_se
from regsim.estimators.stats import LEVERAGE_ONE
from regsim.limits import normal_upper

__all__ = [
    "TRUSTED_CONDITION",
    "Conditioning",
    "DatasetFit",
    "conditioning",
    "covariate_exponents",
    "fit_dataset",
    "least_squares",
    "response_centre",
    "response_exponent",
]

#: Largest scaled condition number cond(X_s) of a fit that is reported. Rounding moves
#: the QR estimates by about κ·√n·ε of their standard errors (Higham 2002, ch. 20): at
#: κ = 1e10 and n = 10⁴ that is 2e-4 standard errors, beyond which a user's digits could
#: be rounding noise.
TRUSTED_CONDITION = 1e10

_EPS = float(np.finfo(float).eps)

#: Responses whose largest |y| lies beyond 2^±64 are fitted in units of a power of two
#: (:func:`response_exponent`): σ² and its square along the posterior's path over σ
#: under- or overflow first (at |y| near 1e-100 Bayes did not converge).
_SAFE_EXPONENT = 64

#: Points of the profile scan over log σ (the kernel uses 64 with certified brackets).
_SCAN_POINTS = 2048


@dataclass(frozen=True)
class Conditioning:
    """How well the columns of X = [1, x_1, …, x_k] determine the coefficients.

    Attributes
    ----------
    condition : float
        cond(X_s), the ratio of the largest to the smallest singular value of X with
        every column scaled to unit length (``inf`` when a column is a combination of
        others to rounding accuracy).
    singular : bool
        The columns are linearly dependent to rounding accuracy.
    """

    condition: float
    singular: bool

    @property
    def trusted(self) -> bool:
        """Whether estimates from these columns can be reported to their printed digits."""
        return not self.singular and self.condition <= TRUSTED_CONDITION


def _design(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X = [1, x] scaled to unit columns, and the column norms."""
    n = x.shape[0]
    design = np.column_stack([np.ones(n), x])
    # Each norm from its column scaled by a power of two near its largest |value|: the
    # squares of values beyond about 1e±154 would overflow or underflow. Within, the
    # scaling is exact and so are the norms' bits.
    exponent = np.frexp(np.max(np.abs(design), axis=0))[1] if n else np.zeros(1, dtype=int)
    unit = np.ldexp(design, -exponent)
    norms = np.ldexp(np.sqrt(np.einsum("ij,ij->j", unit, unit)), exponent)
    return design / norms, norms


def conditioning(x: np.ndarray) -> Conditioning:
    """The scaled condition number of the design [1, x] (see :class:`Conditioning`).

    Parameters
    ----------
    x : ndarray, shape (n, k)
        Covariates, without the intercept column.
    """
    scaled, _ = _design(np.asarray(x, dtype=float))
    singular_values = np.linalg.svd(scaled, compute_uv=False)
    largest, smallest = float(singular_values[0]), float(singular_values[-1])
    # A rank test as LAPACK's: singular values below n·ε·σ_max are rounding noise.
    singular = not smallest > max(scaled.shape) * _EPS * largest
    condition = math.inf if singular else largest / smallest
    return Conditioning(condition, singular)


@dataclass(frozen=True)
class _Decomposition:
    """QR of the scaled design and what every fit of the dataset shares."""

    n: int
    norms: np.ndarray  # column norms N of X
    q: np.ndarray  # Q of X_s = Q R, (n, p)
    r: np.ndarray  # R of X_s = Q R
    qty: np.ndarray  # Qᵀ y
    beta_scaled: np.ndarray  # R⁻¹ Qᵀ y (coefficients of X_s)
    residuals: np.ndarray  # e = y − X_s b
    rss: float  # Σ e_i², from the residuals


def _decompose(x: np.ndarray, y: np.ndarray) -> _Decomposition:
    scaled, norms = _design(x)
    q, r = np.linalg.qr(scaled)
    qty = q.T @ y
    beta_scaled = solve_triangular(r, qty)
    residuals = y - scaled @ beta_scaled
    return _Decomposition(
        len(y), norms, q, r, qty, beta_scaled, residuals, float(residuals @ residuals)
    )


def least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The OLS coefficients (intercept first) and residual sum of squares of ``y`` on an
    intercept and ``x`` (shape (n, k)), from the decomposition :func:`fit_dataset` fits
    by: the same numbers as its OLS estimates and ``rss``.

    Checked before fitting: where the sum is 0 the covariates fit ``y`` exactly, σ's
    estimates are 0 and MAP's and Bayes's posteriors in σ degenerate; and the
    coefficients' size bounds the prior sds the fits resolve.
    """
    y = np.asarray(y, dtype=float)
    centre = response_centre(y)
    d = _decompose(np.asarray(x, dtype=float), y - centre if centre else y)
    beta = d.beta_scaled / d.norms
    if centre:
        beta[0] += centre
    return beta, d.rss


def _statistics(decomposition: _Decomposition) -> SufficientStats:
    """The sufficient statistics of the dataset, every one from the QR factors."""
    d = decomposition
    p = len(d.norms)
    r_inverse = solve_triangular(d.r, np.eye(p))
    gram_inv = (r_inverse @ r_inverse.T) / np.outer(d.norms, d.norms)
    gram = (d.r.T @ d.r) * np.outer(d.norms, d.norms)
    return SufficientStats(
        n=d.n,
        beta_hat=(d.beta_scaled / d.norms)[None, :],
        rss=np.array([d.rss]),
        gram=gram[None],
        gram_inv=gram_inv[None],
    )


#: An entry of the coefficient map (XᵀX)⁻¹Xᵀ at most this fraction of the largest in its
#: coefficient's row is a 0 to rounding: a row fitted exactly (a one-case dummy's) enters
#: no coefficient but its own, whose map entries there are about 1e-17 of the largest.
_NOT_ENTERED = 1e-8


def _exactly_fitted(d: _Decomposition) -> tuple[np.ndarray, np.ndarray]:
    """The leverages h_i = ‖Q_i‖² of the rows of X (the hat matrix's diagonal), and where
    a row is fitted exactly: h_i within :data:`~regsim.estimators.stats.LEVERAGE_ONE` of 1,
    the study's rule (:func:`regsim.estimators.stats._hc3_covariance`)."""
    leverage = np.einsum("ij,ij->i", d.q, d.q)
    return leverage, 1.0 - leverage <= LEVERAGE_ONE


def _hc3_se(d: _Decomposition, leverage: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """HC3 standard errors of β̂, shape (1, p): se_j = √[C diag(e_i²/(1 − h_i)²) Cᵀ]_jj
    with the coefficient map C = (XᵀX)⁻¹Xᵀ = N⁻¹ R⁻¹ Qᵀ and h_i = ‖Q_i‖².

    Summed in scaled units (the map of X_s's coefficients, the residuals over their
    largest), so that neither the squares nor the sum under- or overflows whatever the
    columns' and the response's scales. A row whose leverage is within
    :data:`~regsim.estimators.stats.LEVERAGE_ONE` of 1 is fitted exactly: its residual and
    1 − h_i are both rounding, and their ratio could be any number. Such a row enters only
    the coefficients it determines (a one-case dummy's own): their SEs do not exist and are
    NaN; the other coefficients' map is 0 there (to :data:`_NOT_ENTERED`), so the row adds
    nothing to theirs. ``leverage`` and ``exact`` are :func:`_exactly_fitted`'s.
    """
    coefficients = solve_triangular(d.r, d.q.T)  # R⁻¹Qᵀ, the map of X_s's coefficients
    top = float(np.max(np.abs(d.residuals)))
    if not top > 0:
        return np.full((1, len(d.norms)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(exact, 0.0, (d.residuals / top) / (1.0 - leverage))
    reach = np.max(np.abs(coefficients), axis=1, keepdims=True)
    entered = (exact[None, :] & (np.abs(coefficients) > _NOT_ENTERED * reach)).any(axis=1)
    se = top * np.sqrt(np.square(coefficients) @ np.square(ratio)) / d.norms
    se[entered] = np.nan
    return se[None]


@dataclass(frozen=True)
class DatasetFit:
    """The fits of one dataset (:func:`fit_dataset`).

    Attributes
    ----------
    fits : dict
        Method name -> :class:`~regsim.estimators.Fit` of one replicate (arrays of shape
        (1, p + 1)), in the order asked for.
    rss : float
        Residual sum of squares of the least-squares fit, summed from the residuals.
    exact_rows : tuple of int
        The rows (0-based) the fit passes through: leverage 1, within
        :data:`~regsim.estimators.stats.LEVERAGE_ONE`. HC3's SEs of the coefficients they
        determine do not exist (NaN in the ``ols_hc3`` fit).
    """

    fits: dict[str, Fit]
    rss: float
    exact_rows: tuple[int, ...] = ()


def fit_dataset(
    x: np.ndarray,
    y: np.ndarray,
    prior: Prior,
    alpha: float = 0.05,
    methods: Sequence[str] = ("ols", "mle", "map"),
    sigma_prior: str = "flat",
) -> DatasetFit:
    """OLS, OLS with HC3, MLE, MAP and Bayes of one dataset by orthogonal decomposition.

    The estimates, standard errors and intervals are those of the study's estimators
    (:func:`regsim.estimators.fit_ols`, :func:`~regsim.estimators.fit_ols_hc3`,
    :func:`~regsim.estimators.fit_mle`,
    :func:`~regsim.estimators.fit_map`, :func:`~regsim.estimators.fit_bayes`); only the
    linear algebra differs (see the module docstring), so they stay accurate whatever the
    scaling of the columns and up to :data:`TRUSTED_CONDITION`. The caller checks
    :func:`conditioning` first.

    Parameters
    ----------
    x : ndarray, shape (n, k)
        Covariates, without the intercept column.
    y : ndarray, shape (n,)
        Responses.
    prior : Prior
        Normal priors on β_0 … β_k for MAP and Bayes (sd ``inf``: flat).
    alpha : float
        Intervals have coverage 1 − α.
    methods : sequence of str
        Among ``ols``, ``ols_hc3``, ``mle``, ``map`` and ``bayes``.
    sigma_prior : {"flat", "jeffreys"}
        The prior on σ of MAP and Bayes.

    Returns
    -------
    DatasetFit
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    shift = response_exponent(y)
    if shift:
        # Every estimator is equivariant under y -> c y with the priors' means and sds
        # times c (β and σ scale by c), and a power of two scales without rounding.
        inner = fit_dataset(
            x, np.ldexp(y, -shift), _scaled_prior(prior, -shift), alpha, methods, sigma_prior
        )
        return dataclasses.replace(
            inner,
            fits={method: _scaled_fit(fit, shift) for method, fit in inner.fits.items()},
            # In y's units RSS can pass the largest double (y near 1e154): inf then.
            rss=float(np.ldexp(inner.rss, 2 * shift, dtype=float)),
        )
    columns = covariate_exponents(x)
    if columns.any():
        # Every estimator is equivariant under x_j -> x_j·c_j with β_j's prior mean and
        # sd divided by c_j (β_j divides by c_j, all else stays): as for y, a power of two
        # scales without rounding, and the fits' products of columns stay in range.
        inner = fit_dataset(
            np.ldexp(x, -columns),
            y,
            _scaled_prior(prior, [0, *columns.tolist()]),
            alpha,
            methods,
            sigma_prior,
        )
        back = np.concatenate([[0], -columns, [0]])  # β_0 … β_{p−1}, σ
        return dataclasses.replace(
            inner, fits={method: _scaled_fit(fit, back) for method, fit in inner.fits.items()}
        )
    centre = response_centre(y)
    if centre:
        # Every estimator is equivariant under y -> y − c with the intercept's prior mean
        # moved by −c (β_0 moves by −c, all else stays): fitted as it is, y's residuals
        # would carry rounding of y's size, not of its spread's (:func:`response_centre`).
        inner = fit_dataset(
            x, y - centre, _moved_prior(prior, -centre), alpha, methods, sigma_prior
        )
        return dataclasses.replace(
            inner, fits={method: _moved_fit(fit, centre) for method, fit in inner.fits.items()}
        )
    decomposition = _decompose(x, y)
    stats = _statistics(decomposition)
    leverage, exact = _exactly_fitted(decomposition)
    makers = {
        "ols": lambda: fit_ols(stats, alpha),
        "ols_hc3": lambda: ols_with_coefficient_se(
            stats, _hc3_se(decomposition, leverage, exact), alpha
        ),
        "mle": lambda: fit_mle(stats, alpha),
        "map": lambda: _fit_map(decomposition, prior, alpha, sigma_prior),
        "bayes": lambda: _fit_bayes(decomposition, prior, alpha, sigma_prior),
    }
    unknown = [m for m in methods if m not in makers]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; known: {', '.join(makers)}")
    exact_rows = tuple(int(i) for i in np.flatnonzero(exact))
    return DatasetFit(
        {method: makers[method]() for method in methods}, decomposition.rss, exact_rows
    )


def response_exponent(y: np.ndarray) -> int:
    """The power of two k in which :func:`fit_dataset` fits the responses, y·2^−k.

    0 (y as it is) while the largest |y| lies within 2^±64; beyond, the exponent of the
    largest |y| (so that y·2^−k has its largest |y| in [½, 1)). Scaling by a power of two
    is exact, so the fits are those of y, rounded once more only where a result falls
    outside the range of doubles.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Responses (finite).

    Returns
    -------
    int
    """
    top = float(np.max(np.abs(y))) if len(y) else 0.0
    if not (top > 0 and math.isfinite(top)):
        return 0
    exponent = math.frexp(top)[1]
    return exponent if abs(exponent) > _SAFE_EXPONENT else 0


def covariate_exponents(x: np.ndarray) -> np.ndarray:
    """The powers of two k_j in which :func:`fit_dataset` fits the covariates, x_j·2^−k_j.

    As :func:`response_exponent`, per column: 0 while a column's largest |value| lies
    within 2^±64, else its exponent. Beyond, products of two columns (XᵀX, the
    coefficients' variances) under- or overflow first: a column near 1e160 read as
    collinear, one near 1e-160 failed OLS, MLE, MAP and Bayes.

    Parameters
    ----------
    x : ndarray, shape (n, k)
        Covariates (finite), without the intercept column.

    Returns
    -------
    ndarray of int, shape (k,)
    """
    if not x.size:
        return np.zeros(x.shape[1], dtype=int)
    top = np.max(np.abs(x), axis=0)
    exponent = np.frexp(top)[1]
    return np.where((top > 0) & (np.abs(exponent) > _SAFE_EXPONENT), exponent, 0)


def response_centre(y: np.ndarray) -> float:
    """The response c that :func:`fit_dataset` subtracts from y before it fits y − c.

    A backward-stable least-squares fit perturbs y by about ε‖y‖: where |ȳ| is many times
    the spread of y (y near 1e15 with an sd near 1), that perturbation is of the size of
    the residuals themselves, and RSS and σ's estimates lose their digits (a relative
    error of 5e-3 in σ̂ at 1e14, 3e-5 at 1e12). With the intercept in the model, fitting
    y − c moves only β_0, by c, and the perturbation is then of the spread's size. c is
    the middle response (the lower of the two middle ones for even n), a value of y, so
    that y_i − c is exact wherever y_i lies within a factor 2 of c, as when the spread is
    small beside the level.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Responses (finite).

    Returns
    -------
    float
        0.0 for an empty y or where the middle response is 0.
    """
    if not len(y):
        return 0.0
    middle = (len(y) - 1) // 2
    return float(np.partition(y, middle)[middle])


def _moved_prior(prior: Prior, offset: float) -> Prior:
    """The prior of the coefficients of y + ``offset``: the intercept's mean moves by it."""
    return Prior(prior.name, (prior.mean[0] + offset, *prior.mean[1:]), prior.sd)


def _moved_fit(fit: Fit, offset: float) -> Fit:
    """A fit's intercept (estimate and limits) moved by ``offset``; its SE stays."""
    moved = {}
    for name in ("estimate", "lower", "upper"):
        values = getattr(fit, name).copy()
        values[:, 0] += offset
        moved[name] = values
    return dataclasses.replace(fit, **moved)


def _scaled_prior(prior: Prior, shifts: int | Sequence[int]) -> Prior:
    """The prior of the coefficients times 2^shift: their means and sds times it (one
    shift for every coefficient, or one each, intercept first)."""
    each = np.broadcast_to(shifts, len(prior.mean)).tolist()
    return Prior(
        prior.name,
        tuple(math.ldexp(mean, k) for mean, k in zip(prior.mean, each, strict=True)),
        tuple(math.ldexp(sd, k) for sd, k in zip(prior.sd, each, strict=True)),
    )


def _scaled_fit(fit: Fit, shifts: int | np.ndarray) -> Fit:
    """A fit's estimates, standard errors and limits times 2^shift (one shift for every
    column, or one each: β_0 … β_{p−1}, σ)."""
    return dataclasses.replace(
        fit,
        estimate=np.ldexp(fit.estimate, shifts),
        se=np.ldexp(fit.se, shifts),
        lower=np.ldexp(fit.lower, shifts),
        upper=np.ldexp(fit.upper, shifts),
    )


class _Profile:
    """The MAP profile of one dataset and prior, in the scaled coefficients b = N β.

    ``level`` is the power of σ in the posterior, n + a for p(σ) ∝ σ^{−a}.
    """

    def __init__(self, d: _Decomposition, prior: Prior, level: int | None = None) -> None:
        if len(prior.mean) != len(d.norms):
            raise ValueError(
                f"prior {prior.name!r} has {len(prior.mean)} means, expected {len(d.norms)}"
            )
        self.d = d
        precision = np.array(prior.precision, dtype=float)
        self.informative = precision > 0
        # β_j = b_j / N_j, so d_j (β_j − μ_j)² = (d_j / N_j²)(b_j − N_j μ_j)².
        self.precision = precision / d.norms**2
        self.mean = np.asarray(prior.mean, dtype=float) * d.norms
        self.level = d.n if level is None else level

    def solve(self, s: float) -> tuple[np.ndarray, np.ndarray]:
        """The mode b(s) of the penalised problem at σ² = s, and R of its stacked system."""
        rows = np.sqrt(s * self.precision[self.informative])
        stacked = np.vstack([self.d.r, np.diag(np.sqrt(s * self.precision))[self.informative]])
        right = np.concatenate([self.d.qty, rows * self.mean[self.informative]])
        q, r = np.linalg.qr(stacked)
        return solve_triangular(r, q.T @ right), r

    def terms(self, b: np.ndarray) -> tuple[float, float]:
        """RSS(b) and the prior's quadratic form Σ_j d_j (b_j − μ_j)² at ``b``."""
        misfit = self.d.qty - self.d.r @ b
        away = b - self.mean
        return self.d.rss + float(misfit @ misfit), float(self.precision @ (away * away))

    def slope(self, t: float) -> float:
        """h'(t) = n + a − RSS(b(s))/s at t = log σ (s = e^{2t})."""
        s = math.exp(2.0 * t)
        rss, _ = self.terms(self.solve(s)[0])
        return self.level - rss / s

    def value(self, t: float) -> float:
        """h(t) = (n + a) t + RSS/(2s) + ½ prior, the negative log posterior profiled over
        β."""
        s = math.exp(2.0 * t)
        rss, prior_term = self.terms(self.solve(s)[0])
        return self.level * t + rss / (2.0 * s) + 0.5 * prior_term

    def rss_at_infinity(self) -> float:
        """RSS with the informative coefficients at their prior means, the flat ones fitted."""
        fixed = self.informative
        base = self.d.qty - self.d.r[:, fixed] @ self.mean[fixed]
        if fixed.all():
            return self.d.rss + float(base @ base)
        free = self.d.r[:, ~fixed]
        coef, *_ = np.linalg.lstsq(free, base, rcond=None)
        misfit = base - free @ coef
        return self.d.rss + float(misfit @ misfit)


def _fit_map(d: _Decomposition, prior: Prior, alpha: float, sigma_prior: str = "flat") -> Fit:
    """Global posterior mode and Laplace intervals of one dataset (see :func:`fit_dataset`)."""
    # n: the power of σ in the posterior, n + a.
    n, p = d.n + sigma_exponent(sigma_prior), len(d.norms)
    profile = _Profile(d, prior, n)
    t_low = 0.5 * math.log(d.rss / n)
    t_high = 0.5 * math.log(profile.rss_at_infinity() / n)
    if not t_high > t_low:  # flat priors: the mode is the MLE
        modes = [t_low]
    else:
        grid = np.linspace(t_low, t_high, _SCAN_POINTS)
        slopes = np.array([profile.slope(t) for t in grid])
        # h' ≤ 0 at the lower end and ≥ 0 at the upper end in exact arithmetic.
        slopes[0], slopes[-1] = min(slopes[0], 0.0), max(slopes[-1], 0.0)
        modes = []
        for i in np.flatnonzero((slopes[:-1] < 0) & (slopes[1:] >= 0)):
            a, b = float(grid[i]), float(grid[i + 1])
            if profile.slope(b) == 0.0:
                modes.append(b)
            else:
                modes.append(brentq(profile.slope, a, b, xtol=1e-15, rtol=4 * _EPS))
        if not modes:  # h' ≥ 0 throughout up to rounding: the lower end
            modes = [t_low]
    t_mode = min(modes, key=profile.value)
    s = math.exp(2.0 * t_mode)
    b, r_stacked = profile.solve(s)
    rss, _ = profile.terms(b)
    sigma = math.sqrt(s)
    beta = b / d.norms

    # Hessian of the negative log posterior in (β, σ): H_ββ = (XᵀX + sD)/s,
    # H_βσ = 2 D (β − μ)/σ at the mode, H_σσ = (3 RSS/s − n)/s; its inverse's diagonal
    # by the Schur complement of H_ββ, whose inverse s N⁻¹ R⁻¹R⁻ᵀ N⁻¹ comes from the
    # stacked system's R.
    r_inverse = solve_triangular(r_stacked, np.eye(p))
    h_bb_inverse = s * (r_inverse @ r_inverse.T) / np.outer(d.norms, d.norms)
    precision = np.array(prior.precision, dtype=float)
    coupling = 2.0 * precision * (beta - np.asarray(prior.mean, dtype=float)) / sigma
    h_ss = (3.0 * rss / s - n) / s
    solved = h_bb_inverse @ coupling
    schur = h_ss - float(coupling @ solved)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.append(np.diagonal(h_bb_inverse) + solved**2 / schur, 1.0 / schur)
        se = np.sqrt(np.where(schur > 0, variance, np.nan))
    estimate = np.append(beta, sigma)
    z = normal_upper(alpha)
    stationary = abs(n - rss / s) <= 1e-6 * n
    finite = bool(np.isfinite(estimate).all() and np.isfinite(se).all())
    return Fit(
        "map",
        estimate[None, :],
        se[None, :],
        (estimate - z * se)[None, :],
        (estimate + z * se)[None, :],
        np.array([bool(stationary and schur > 0 and finite)]),
        np.array([len(modes) > 1]),
    )


class _QRPosterior(_Counts):
    """The posterior of log σ of one dataset, with every quantity from the stacked QR.

    It offers what the kernel's quadrature asks of :class:`regsim.estimators.bayes.
    posterior._Posterior` (one replicate): at σ² = s, with b(s) and the R of [R; √(s D_s)]
    (:meth:`_Profile.solve`, scaled coefficients b = Nβ, D_s = D/N²):

    * m(s) = b(s)/N; RSS(s) and the prior term from :meth:`_Profile.terms`;
    * log det(XᵀX + sD) = 2 Σ_j log N_j + 2 Σ_j log |R_st,jj|;
    * V(s) = s N⁻¹ (R_stᵀ R_st)⁻¹ N⁻¹ from R_st⁻¹;
    * R(s) = RSS(s) + s p_data(s), p_data = p − Σ_j d_j V_jj, and R'(s) = RSS'(s) + p −
      2s tr(A⁻¹D) + s² tr(A⁻¹DA⁻¹D), where RSS'(s) = −2 (Qᵀy − R b)ᵀ R b'(s) with
      b'(s) = (R_stᵀR_st)⁻¹ D_s (Nμ − b).
    """

    replicates = 1

    def __init__(self, d: _Decomposition, prior: Prior, a: int) -> None:
        self.d = d
        self.profile = _Profile(d, prior)
        self.precision = tuple(float(v) for v in prior.precision)
        self.mean = tuple(prior.mean)
        self.n, self.a = d.n, a
        self.log_norms = 2.0 * float(np.sum(np.log(d.norms)))

    def take(self, index: object) -> _QRPosterior:
        """Itself: it is one replicate."""
        return self

    def evaluate(
        self,
        s: np.ndarray,
        t: np.ndarray,
        *,
        slope: bool = False,
        moments: bool = True,
        density: bool = True,
    ) -> _Values:
        """The posterior at s = σ² = e^{2t} (arrays of one shape; see the class)."""
        s, t = np.broadcast_arrays(np.asarray(s, dtype=float), np.asarray(t, dtype=float))
        p, d, profile = self.p, self.d, self.profile
        logp, r, r_slope = np.empty(s.shape), np.empty(s.shape), np.empty(s.shape)
        m = [np.empty(s.shape) for _ in range(p)]
        v = [np.empty(s.shape) for _ in range(p)]
        precision = np.asarray(self.precision)
        scaled = profile.precision
        for index in np.ndindex(s.shape):
            # numpy scalars: where σ² underflows to 0 far left on a grid, RSS/σ² is inf
            # (no density there), not Python's ZeroDivisionError.
            si, ti = np.float64(s[index]), np.float64(t[index])
            if not np.isfinite(si):
                # σ² beyond the largest double (t > 354): nothing to evaluate, as the
                # batched posterior's arithmetic gives NaN there.
                logp[index] = r[index] = r_slope[index] = np.nan
                for j in range(p):
                    m[j][index] = v[j][index] = np.nan
                continue
            b, r_st = profile.solve(si)
            rss, prior_term = profile.terms(b)
            inverse = solve_triangular(r_st, np.eye(p))
            a_inverse = inverse @ inverse.T  # (XᵀX + sD)⁻¹ in the scaled coefficients
            variance = si * np.diagonal(a_inverse) / d.norms**2
            p_data = p - float(precision @ variance)
            r[index] = rss + si * p_data
            log_det = self.log_norms + 2.0 * float(np.sum(np.log(np.abs(np.diagonal(r_st)))))
            logp[index] = (p - self.level) * ti - 0.5 * (rss / si + prior_term) - 0.5 * log_det
            for j in range(p):
                m[j][index] = b[j] / d.norms[j]
                v[j][index] = variance[j]
            if slope:
                db = a_inverse @ (scaled * (profile.mean - b))
                misfit = d.qty - d.r @ b
                rss_slope = -2.0 * float(misfit @ (d.r @ db))
                a_d = a_inverse * scaled  # A⁻¹D in the scaled coefficients
                trace, square = float(np.trace(a_d)), float(np.sum(a_d * a_d.T))
                r_slope[index] = rss_slope + p - 2.0 * si * trace + si * si * square
        values = _Values(logp, m if moments else [], v if moments else [], r)
        if slope:
            values.r_slope = r_slope
        return values


#: Points of the dense scan for the modes of log σ's posterior density.
_BAYES_SCAN_POINTS = 2048


def _fit_bayes(d: _Decomposition, prior: Prior, alpha: float, sigma_prior: str) -> Fit:
    """The exact marginal posterior of one dataset (see :func:`fit_dataset`).

    As :func:`regsim.estimators.fit_bayes`, with the posterior from the stacked QR
    (:class:`_QRPosterior`): the modes of log σ's density from the sign of
    d/dt log p(t | y) = R(s)/s − e on ``_BAYES_SCAN_POINTS`` points of t over the bracket
    [RSS₀/ν, (RSS∞ + C)/ν] of its stationary points, each polished by Newton's iteration,
    and the integrals by the trapezoidal rule over them (whatever the modes, the kernel's
    robust rule).
    """
    if len(prior.mean) != len(d.norms):
        raise ValueError(
            f"prior {prior.name!r} has {len(prior.mean)} means, expected {len(d.norms)}"
        )
    post = _QRPosterior(d, prior, sigma_exponent(sigma_prior))
    p, nu, e = post.p, post.nu, post.level
    estimate = np.full((1, p + 1), np.nan)
    se, lower, upper = estimate.copy(), estimate.copy(), estimate.copy()
    converged, multimodal = np.zeros(1, dtype=bool), np.zeros(1, dtype=bool)
    if nu > 0 and d.rss > 0:
        # C = Σ_{j∈P} η_j² S_jj, S = ((XᵀX)⁻¹_PP)⁻¹ the Schur complement of the flat block.
        informative = np.flatnonzero(np.asarray(post.precision) > 0)
        extra = 0.0
        if len(informative):
            gram_inv = _statistics(d).gram_inv[0]
            schur = np.linalg.inv(gram_inv[np.ix_(informative, informative)])
            eta2 = 1.0 / np.asarray(post.precision)[informative]
            extra = float(eta2 @ np.diagonal(schur))
        rss_inf = post.profile.rss_at_infinity()
        s_low, s_high = d.rss / nu, (rss_inf + extra) / nu
        if e > p:
            s_high = min(s_high, rss_inf / (e - p))
        s_high = max(s_high, s_low)
        t = np.linspace(0.5 * math.log(s_low), 0.5 * math.log(s_high), _BAYES_SCAN_POINTS)
        with np.errstate(all="ignore"):
            values = post.evaluate(np.exp(2.0 * t), t, moments=False, density=False)
            positive = e * np.exp(2.0 * t) > values.r
        # The sign of e s − R(s) is − at the lower end and + at the upper one.
        positive[0], positive[-1] = False, True
        cells = np.flatnonzero(~positive[:-1] & positive[1:])
        lo, hi = np.exp(2.0 * t[cells]), np.exp(2.0 * t[cells + 1])
        modes = _newton(post, np.zeros(len(cells), dtype=int), lo, hi, np.sqrt(lo * hi), 1e-9)
        with np.errstate(all="ignore"):
            result = _fit_modes(post, modes, alpha, hermite=np.zeros(1, dtype=bool))
        estimate, se, lower, upper, converged, multimodal = result
    return _finish(estimate, se, lower, upper, converged, multimodal, post.precision, nu)
