"""Accuracy against condition number: a user's fit (QR) and the study kernel (normal
equations), each against 60-digit references on the same stored doubles.

* ``regsim fit`` (:mod:`regsim.estimators.single`) stays within about κ·√n·ε standard
  errors up to κ = TRUSTED_CONDITION, and refuses beyond ("nearly collinear").
* The kernel (:func:`regsim.estimators.sufficient_stats`) stays within 1e-7 standard
  errors up to Σ VIF = COLLINEARITY_LIMIT and fails the replicate beyond.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy import stats

from regsim.design import Prior
from regsim.estimators import (
    COLLINEARITY_LIMIT,
    fit_bayes,
    fit_map,
    fit_methods,
    fit_ols,
    fit_ols_hc3,
    sufficient_stats,
)
from regsim.estimators.single import TRUSTED_CONDITION, conditioning, fit_dataset

EPS = np.finfo(float).eps
FLAT = Prior("flat", (0.0, 0.0, 0.0), (math.inf,) * 3)


def collinear_data(n: int, delta: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """a ~ U(0, 1), b = a + delta·N(0, 1), y = 1000 + a + b + N(0, 0.5²)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(size=n)
    b = a + delta * rng.standard_normal(n)
    return np.column_stack([a, b]), 1000.0 + a + b + 0.5 * rng.standard_normal(n)


def reference(x: np.ndarray, y: np.ndarray, prior: Prior = FLAT, s0: float | None = None):
    """Estimates and SEs of OLS (and of the MAP mode near σ² = s0) in 60 digits."""
    with mpmath.workdps(60):
        design = mpmath.matrix([[1, *map(mpmath.mpf, map(float, row))] for row in x])
        response = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
        gram, cross = design.T * design, design.T * response
        n, p = design.rows, design.cols
        gram_inv = mpmath.inverse(gram)
        beta = gram_inv * cross
        rss = sum(r * r for r in response - design * beta)
        s2 = rss / (n - p)
        ols = (
            np.array([float(v) for v in beta]),
            np.array([float(mpmath.sqrt(s2 * gram_inv[j, j])) for j in range(p)]),
        )
        if s0 is None:
            return ols
        precision = [
            mpmath.mpf(0) if math.isinf(sd) else 1 / mpmath.mpf(sd) ** 2 for sd in prior.sd
        ]
        mean = [mpmath.mpf(m) for m in prior.mean]

        def mode(s):
            system = gram + mpmath.diag([s * d for d in precision])
            right = cross + mpmath.matrix([s * d * m for d, m in zip(precision, mean, strict=True)])
            return mpmath.lu_solve(system, right)

        def slope(s):
            b = mode(s)
            return n * s - sum(r * r for r in response - design * b)

        s = mpmath.findroot(slope, mpmath.mpf(s0))
        b = mode(s)
        sigma = mpmath.sqrt(s)
        rss_s = sum(r * r for r in response - design * b)
        hessian = mpmath.zeros(p + 1, p + 1)
        for i in range(p):
            for j in range(p):
                hessian[i, j] = gram[i, j] / s + (precision[i] if i == j else 0)
            hessian[i, p] = hessian[p, i] = 2 * precision[i] * (b[i] - mean[i]) / sigma
        hessian[p, p] = (3 * rss_s / s - n) / s
        inverse = mpmath.inverse(hessian)
        estimate = np.array([*(float(v) for v in b), float(sigma)])
        se = np.array([float(mpmath.sqrt(inverse[j, j])) for j in range(p + 1)])
        return ols, (estimate, se)


DELTAS = {1e-1: "1e1", 1e-3: "1e3", 1e-5: "1e5", 1e-7: "1e7", 1e-9: "1e9"}


@pytest.mark.parametrize("n", [20, 200])
@pytest.mark.parametrize("delta", list(DELTAS), ids=list(DELTAS.values()))
def test_user_fit_follows_the_condition_number_not_its_square(n: int, delta: float) -> None:
    x, y = collinear_data(n, delta, seed=n)
    check = conditioning(x)
    assert check.trusted
    beta, se = reference(x, y)
    fit = fit_dataset(x, y, FLAT).fits
    # Backward stability of QR: errors of κ·ε relative to |β| and κ·√n·ε standard errors.
    bound = 4.0 * check.condition * EPS * (np.abs(beta).max() + math.sqrt(n) * se)
    for method in ("ols", "mle", "map"):
        error = np.abs(fit[method].estimate[0, :3] - beta)
        assert np.all(error <= bound), (method, error / se, bound / se)
    np.testing.assert_allclose(fit["ols"].se[0, :3], se, rtol=(bound / se).max())


@pytest.mark.parametrize("delta", [1e-11, 1e-13], ids=["1e11", "1e13"])
def test_user_fit_refuses_beyond_the_trusted_condition(delta: float) -> None:
    x, _ = collinear_data(200, delta, seed=1)
    check = conditioning(x)
    assert check.condition > TRUSTED_CONDITION and not check.trusted


def test_exactly_collinear_columns_are_singular() -> None:
    x, _ = collinear_data(50, 0.0, seed=2)
    check = conditioning(x)
    assert check.singular and not check.trusted and check.condition == math.inf


def test_scaling_a_column_does_not_change_the_condition() -> None:
    x, _ = collinear_data(50, 1e-3, seed=3)
    scaled = x * np.array([1e20, 1e-20])
    assert conditioning(scaled).condition == pytest.approx(conditioning(x).condition, rel=1e-6)


@pytest.mark.parametrize("delta", [1e-1, 1e-4, 1e-6], ids=["1e1", "1e4", "1e6"])
def test_user_map_matches_the_60_digit_mode(delta: float) -> None:
    x, y = collinear_data(40, delta, seed=4)
    prior = Prior("mixed", (1000.0, 0.0, 0.0), (1.0, 0.5, math.inf))
    fit = fit_dataset(x, y, prior).fits["map"]
    assert fit.converged[0]
    _, (estimate, se) = reference(x, y, prior, s0=fit.estimate[0, -1] ** 2)
    np.testing.assert_allclose(fit.estimate[0], estimate, rtol=1e-9, atol=1e-9 * se.max())
    np.testing.assert_allclose(fit.se[0], se, rtol=1e-7)


@pytest.mark.parametrize("n", [10, 100, 1000])
@pytest.mark.parametrize(
    "delta", [1e-1, 1e-2, 1e-3, 3e-4, 1.5e-4], ids=["1e-1", "1e-2", "1e-3", "3e-4", "1.5e-4"]
)
def test_kernel_is_accurate_up_to_its_collinearity_limit(n: int, delta: float) -> None:
    x, y = collinear_data(n, delta, seed=n + 7)
    centred = x - x.mean(axis=0)
    sxx = centred.T @ centred
    vif_sum = float(np.sum(np.diag(sxx) * np.diag(np.linalg.inv(sxx))))
    assert vif_sum <= COLLINEARITY_LIMIT
    beta, se = reference(x, y)
    stats = sufficient_stats(x[None], y[None])
    fit = fit_ols(stats)
    assert stats.usable[0] and fit.converged[0]
    assert np.all(np.abs(fit.estimate[0, :3] - beta) <= 1e-7 * se)
    np.testing.assert_allclose(fit.se[0, :3], se, rtol=1e-7)


def hc3_reference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """HC3 standard errors of OLS, (XᵀX)⁻¹ Xᵀ diag(e_i²/(1 − h_ii)²) X (XᵀX)⁻¹, in 60 digits."""
    with mpmath.workdps(60):
        design = mpmath.matrix([[1, *map(mpmath.mpf, map(float, row))] for row in x])
        response = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
        gram_inv = mpmath.inverse(design.T * design)
        residuals = response - design * (gram_inv * (design.T * response))
        n, p = design.rows, design.cols
        meat = mpmath.zeros(p, p)
        for i in range(n):
            row = design[i, :]
            leverage = (row * gram_inv * row.T)[0, 0]
            meat += (residuals[i] / (1 - leverage)) ** 2 * (row.T * row)
        cov = gram_inv * meat * gram_inv
        return np.array([float(mpmath.sqrt(cov[j, j])) for j in range(p)])


@pytest.mark.parametrize(
    ("n", "delta"),
    [(6, 3e-4), (10, 1e-3), (10, 1.5e-4), (20, 2e-4), (100, 1.5e-4), (1000, 1.5e-4)],
)
def test_kernel_hc3_is_accurate_up_to_its_collinearity_limit(n: int, delta: float) -> None:
    """The sandwich's intercept is a sum of squares of the rows of (XᵀX)⁻¹Xᵀ, not the
    centred covariance mapped back through x̄, whose huge slope terms cancel (an error
    growing as the square of Σ VIF: 1.3e-6 relative at n = 6, Σ VIF = 9e6)."""
    x, y = collinear_data(n, delta, seed=n + 7)
    centred = x - x.mean(axis=0)
    sxx = centred.T @ centred
    assert float(np.sum(np.diag(sxx) * np.diag(np.linalg.inv(sxx)))) <= COLLINEARITY_LIMIT
    stats = sufficient_stats(x[None], y[None], sandwich=True)
    fit = fit_ols_hc3(stats)
    assert stats.usable[0] and fit.converged[0]
    np.testing.assert_allclose(fit.se[0, :3], hc3_reference(x, y), rtol=1e-7)


def test_hc3_fails_where_a_point_has_leverage_one() -> None:
    """A binary covariate with a single case in one level fits that point exactly
    (h_ii = 1): its residual and 1 − h_ii are both rounding, and the HC3 variance is
    undefined. Such a replicate's HC3 fit fails (it gave SEs of 4 or 2e-16, counted as
    converged); the others in the batch match 60-digit HC3."""
    rng = np.random.default_rng(21)
    n = 10
    x = rng.integers(0, 2, size=(4, n, 2)).astype(float)
    x[:, :, 0] = [0, 1, 0, 1, 0, 1, 0, 1, 1, 0]
    x[:, :, 1] = [1, 0, 1, 1, 0, 0, 1, 0, 1, 0]
    x[1, :, 1] = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]  # one case: leverage 1
    x[3, :, 0] = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0]  # one case in the other level
    y = 10.0 + x @ np.array([2.0, -1.0]) + rng.normal(size=(4, n))
    stats = sufficient_stats(x, y, sandwich=True)
    fit = fit_ols_hc3(stats)
    assert stats.usable.all()
    assert fit_ols(stats).converged.all()
    assert fit.converged.tolist() == [True, False, True, False]
    assert not np.isfinite(fit.se[[1, 3], :3]).any()
    for r in (0, 2):
        np.testing.assert_allclose(fit.se[r, :3], hc3_reference(x[r], y[r]), rtol=1e-9)


@pytest.mark.parametrize("delta", [1e-5, 1e-6, 1e-8], ids=["1e-5", "1e-6", "1e-8"])
def test_kernel_fails_replicates_beyond_its_collinearity_limit(delta: float) -> None:
    x, y = collinear_data(100, delta, seed=11)
    centred = x - x.mean(axis=0)
    sxx = centred.T @ centred
    assert float(np.sum(np.diag(sxx) * np.diag(np.linalg.inv(sxx)))) > COLLINEARITY_LIMIT
    stats = sufficient_stats(x[None], y[None])
    prior = Prior("weak", (0.0, 0.0, 0.0), (100.0, 100.0, 100.0))
    fits = fit_methods(stats, [prior], ["ols", "mle", "map"], 0.05)
    assert not stats.usable[0]
    assert [bool(fit.converged[0]) for _, fit in fits] == [False, False, False]


def test_user_fit_agrees_with_the_kernel_on_ordinary_data() -> None:
    """QR and the kernel give the same fits where both are accurate (a bimodal cell too)."""
    rng = np.random.default_rng(12)
    priors = [
        Prior("skeptical", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        Prior("mixed", (10.0, 0.0, 0.0), (1.0, math.inf, 2.0)),
    ]
    multimodal = 0
    for _ in range(40):
        x = rng.uniform(size=(20, 2))
        y = 10.0 + x @ np.array([3.9, 10.2]) + rng.standard_normal(20)
        fits = fit_dataset(x, y, priors[0]).fits
        stats = sufficient_stats(x[None], y[None])
        for prior in priors:
            single = fit_dataset(x, y, prior).fits["map"]
            kernel = fit_map(stats, prior)
            assert single.converged[0] == kernel.converged[0]
            assert single.multimodal[0] == kernel.multimodal[0]
            multimodal += int(kernel.multimodal[0])
            for field in ("estimate", "se", "lower", "upper"):
                np.testing.assert_allclose(
                    getattr(single, field), getattr(kernel, field), rtol=1e-8, atol=1e-10
                )
        np.testing.assert_allclose(fits["ols"].estimate, fit_ols(stats).estimate, rtol=1e-11)
    assert multimodal > 0  # the N(0, 1) priors against an intercept of 10 at n = 20


@pytest.mark.parametrize("delta", [1e-1, 1e-5, 1e-9], ids=["1e1", "1e5", "1e9"])
def test_user_bayes_follows_the_condition_number(delta: float) -> None:
    # Flat priors and p(σ) ∝ 1/σ: the posterior means are the least-squares fit and the
    # credible intervals OLS's t intervals, which the 60-digit reference gives.
    n = 40
    x, y = collinear_data(n, delta, seed=5)
    check = conditioning(x)
    beta, se = reference(x, y)
    fit = fit_dataset(x, y, FLAT, 0.05, ("bayes",), "jeffreys").fits["bayes"]
    assert fit.converged[0]
    bound = 4.0 * check.condition * EPS * (np.abs(beta).max() + math.sqrt(n) * se) + 1e-7 * se
    t = float(stats.t.ppf(0.975, n - 3))
    assert np.all(np.abs(fit.estimate[0, :3] - beta) <= bound)
    assert np.all(np.abs(fit.lower[0, :3] - (beta - t * se)) <= bound)
    assert np.all(np.abs(fit.upper[0, :3] - (beta + t * se)) <= bound)


def test_user_bayes_agrees_with_the_kernel_on_ordinary_data() -> None:
    """QR and the kernel give the same posterior where both are accurate (bimodal too)."""
    rng = np.random.default_rng(13)
    priors = [
        Prior("skeptical", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        Prior("mixed", (10.0, 0.0, 0.0), (1.0, math.inf, 2.0)),
    ]
    multimodal = 0
    for i in range(6):
        x = rng.uniform(size=(20, 2))
        y = 7.0 + x @ np.array([3.0, 7.0]) + rng.standard_normal(20)
        stats_ = sufficient_stats(x[None], y[None])
        for prior in priors:
            sigma_prior = ("flat", "jeffreys")[i % 2]
            single = fit_dataset(x, y, prior, 0.05, ("bayes",), sigma_prior).fits["bayes"]
            kernel = fit_bayes(stats_, prior, sigma_prior=sigma_prior)
            assert single.converged[0] and kernel.converged[0]
            assert single.multimodal[0] == kernel.multimodal[0]
            multimodal += int(kernel.multimodal[0])
            for field in ("estimate", "se", "lower", "upper"):
                error = np.abs(getattr(single, field) - getattr(kernel, field)) / kernel.se
                assert np.all(error <= 2e-6), (field, error)
    assert multimodal > 0


def test_user_map_with_jeffreys_prior_agrees_with_the_kernel() -> None:
    rng = np.random.default_rng(14)
    prior = Prior("mixed", (10.0, 0.0, 0.0), (1.0, math.inf, 2.0))
    for _ in range(10):
        x = rng.uniform(size=(15, 2))
        y = 10.0 + x @ np.array([3.9, 10.2]) + rng.standard_normal(15)
        single = fit_dataset(x, y, prior, 0.05, ("map",), "jeffreys").fits["map"]
        kernel = fit_map(sufficient_stats(x[None], y[None]), prior, sigma_prior="jeffreys")
        assert single.converged[0] and kernel.converged[0]
        for field in ("estimate", "se", "lower", "upper"):
            np.testing.assert_allclose(
                getattr(single, field), getattr(kernel, field), rtol=1e-8, atol=1e-10
            )
