"""Error models, the HC3 variant of OLS, and the exact-theory formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from regsim import theory
from regsim.design import Cell, Prior
from regsim.estimators import ESTIMATORS, fit_ols, fit_ols_hc3, sufficient_stats
from regsim.fits import fit_table
from regsim.schema import ERROR_MODELS, METHOD_NAMES
from regsim.simulate import ERROR_MODELS as SIMULATED_ERROR_MODELS
from regsim.simulate import draw
from regsim.specs import FitSpec

BETA = (10.0, 3.8987, 10.1777)


def test_error_model_names_agree():
    assert tuple(SIMULATED_ERROR_MODELS) == ERROR_MODELS
    assert tuple(ESTIMATORS) == METHOD_NAMES


def test_normal_cells_are_unchanged_by_the_error_factor():
    """A normal-error cell has the same key, hence the same datasets, as before."""
    plain, explicit = Cell(20, 5.0, BETA), Cell(20, 5.0, BETA, errors="normal")
    assert plain.key == explicit.key
    assert "errors" not in explicit.canonical()
    np.testing.assert_array_equal(draw(plain, 7, 0, 5).y, draw(explicit, 7, 0, 5).y)
    assert Cell(20, 5.0, BETA, errors="t3").key != plain.key


@pytest.mark.parametrize("errors", ERROR_MODELS)
def test_error_models_have_mean_zero_and_average_variance_sigma2(errors):
    cell = Cell(50, 2.0, BETA, errors=errors)
    data = draw(cell, 11, 0, 4000)
    noise = data.y - BETA[0] - data.x @ np.array(BETA[1:])
    m = noise.size
    # The sample variance of t3 errors converges slowly (infinite fourth moment): wide bound.
    assert abs(noise.mean()) < 5 * 2.0 / math.sqrt(m)
    assert noise.var() == pytest.approx(4.0, rel=0.1 if errors == "t3" else 0.02)


def test_t3_errors_have_the_t3_distribution():
    data = draw(Cell(40, 1.0, BETA, errors="t3"), 3, 0, 500)
    noise = (data.y - BETA[0] - data.x @ np.array(BETA[1:])).ravel() * math.sqrt(3.0)
    assert stats.kstest(noise, stats.t(df=3).cdf).pvalue > 1e-3


def test_hetero_errors_grow_with_the_first_covariate():
    data = draw(Cell(200, 1.0, BETA, errors="hetero"), 5, 0, 200)
    noise = data.y - BETA[0] - data.x @ np.array(BETA[1:])
    u1 = data.x[:, :, 0]
    low, high = noise[u1 < 0.2], noise[u1 > 0.8]
    # sd ∝ 0.5 + U1: about (0.6 / 1.4)² of the variance at the low end.
    assert low.var() / high.var() == pytest.approx((0.6 / 1.4) ** 2, rel=0.15)


def test_ols_hc3_matches_statsmodels():
    rng = np.random.default_rng(4)
    x = rng.random((4, 25, 2)) * 3 + 50
    y = 1e4 + x @ np.array([2.0, -1.0]) + rng.standard_normal((4, 25)) * (x[:, :, 0] - 49)
    stats_ = sufficient_stats(x, y, sandwich=True)
    fit = fit_ols_hc3(stats_, alpha=0.1)
    ols = fit_ols(stats_, alpha=0.1)
    for r in range(4):
        reference = sm.OLS(y[r], sm.add_constant(x[r])).fit(cov_type="HC3", use_t=True)
        np.testing.assert_allclose(fit.estimate[r, :3], reference.params, rtol=1e-10)
        np.testing.assert_allclose(fit.se[r, :3], reference.bse, rtol=1e-10)
        np.testing.assert_allclose(fit.lower[r, :3], reference.conf_int(0.1)[:, 0], rtol=1e-10)
        np.testing.assert_allclose(fit.upper[r, :3], reference.conf_int(0.1)[:, 1], rtol=1e-10)
    # σ is estimated as by OLS.
    np.testing.assert_array_equal(fit.estimate[:, -1], ols.estimate[:, -1])
    np.testing.assert_array_equal(fit.lower[:, -1], ols.lower[:, -1])


def test_ols_hc3_needs_the_sandwich_statistics():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="sandwich=True"):
        fit_ols_hc3(sufficient_stats(rng.random((1, 5, 1)), rng.random((1, 5))))


def test_fit_table_with_hc3_shares_the_ols_estimates():
    data = draw(Cell(30, 5.0, BETA, errors="hetero"), 1, 0, 20)
    weak = Prior("weak", (0, 0, 0), (100,) * 3)
    table = fit_table(data, FitSpec(("ols", "ols_hc3"), (weak,), 0.05))
    ols, hc3 = (table[table["method"] == m].reset_index(drop=True) for m in ("ols", "ols_hc3"))
    np.testing.assert_array_equal(ols["estimate"], hc3["estimate"])
    assert not np.array_equal(ols["se"], hc3["se"])


def test_mle_wald_coverage_formula_against_a_direct_t_probability():
    n, p, alpha = 12, 3, 0.05
    z = stats.norm.ppf(0.975)
    direct = stats.t.cdf(z * math.sqrt((n - p) / n), n - p) - stats.t.cdf(
        -z * math.sqrt((n - p) / n), n - p
    )
    assert theory.mle_wald_coverage(n, p, alpha) == pytest.approx(direct, rel=1e-12)
    assert theory.mle_wald_coverage(10**6, p, alpha) == pytest.approx(0.95, abs=1e-5)
    assert theory.ols_coverage(alpha) == 0.95


def test_expected_s_against_the_chi_distribution():
    n, p, sigma = 15, 3, 2.5
    chi_mean = stats.chi(n - p).mean()
    assert theory.expected_s(n, p, sigma) == pytest.approx(sigma * chi_mean / math.sqrt(n - p))
    assert theory.expected_sigma_mle(n, p, sigma) == pytest.approx(
        sigma * chi_mean / math.sqrt(n), rel=1e-12
    )


def test_simulation_agrees_with_exact_theory_for_normal_errors():
    """MLE Wald coverage and E[s] from 4000 replicates within 4 Monte Carlo SEs of theory."""
    n, p, alpha, replications = 10, 3, 0.05, 4000
    data = draw(Cell(n, 2.0, BETA), 2023, 0, replications)
    stats_ = sufficient_stats(data.x, data.y)
    mle = ESTIMATORS["mle"](stats_, alpha)
    covered = (mle.lower[:, 1] <= BETA[1]) & (BETA[1] <= mle.upper[:, 1])
    exact = theory.mle_wald_coverage(n, p, alpha)
    assert abs(covered.mean() - exact) < 4 * math.sqrt(exact * (1 - exact) / replications)
    s = fit_ols(stats_, alpha).estimate[:, -1]
    assert abs(s.mean() - theory.expected_s(n, p, 2.0)) < 4 * s.std(ddof=1) / math.sqrt(
        replications
    )
