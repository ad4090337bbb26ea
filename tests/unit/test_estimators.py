"""OLS, MLE and MAP against per-dataset references (statsmodels, scipy, exact arithmetic)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from regsim.design import Cell, Prior
from regsim.estimators import (
    FIT_COLUMNS,
    fit_map,
    fit_methods,
    fit_mle,
    fit_ols,
    fit_table,
    parameter_names,
    sufficient_stats,
)
from regsim.simulate import draw

INF = np.inf
BETA = (10.0, 3.8987, 10.1777)
BIMODAL_CELL = Cell(20, 1.0, BETA)
SKEPTICAL = Prior("skeptical", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
PRIORS = [
    Prior("weak", (0.0, 0.0, 0.0), (10.0, 10.0, 10.0)),
    SKEPTICAL,
    Prior("mixed", (5.0, 0.0, 0.0), (INF, 2.0, 0.5)),
    Prior("near_truth", (10.0, 4.0, 10.0), (0.5, INF, 1.0)),
]


def random_batch(seed: int, replicates: int, n: int, p: int):
    """Datasets from the model with random β and σ, independent of regsim.simulate."""
    rng = np.random.default_rng(seed)
    x = rng.random((replicates, n, p - 1))
    beta = rng.normal(0.0, 5.0, size=p)
    sigma = rng.uniform(0.2, 5.0)
    y = beta[0] + x @ beta[1:] + sigma * rng.standard_normal((replicates, n))
    return x, y


def close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def prior_for(p: int, mean, sd) -> Prior:
    return Prior("h", tuple(mean[:p]), tuple(sd[:p]))


# ------------------------------------------------------------------------------- OLS


@pytest.mark.parametrize(
    "n, p, alpha",
    [
        (2, 1, 0.05),
        (4, 3, 0.05),
        (5, 4, 0.1),
        (3, 2, 0.01),
        (7, 2, 0.05),
        (20, 3, 0.05),
        (50, 4, 0.01),
        (200, 3, 0.2),
        (30, 6, 0.32),
    ],
)
def test_ols_matches_statsmodels(n, p, alpha):
    x, y = random_batch(n * 100 + p, 4, n, p)
    fit = fit_ols(sufficient_stats(x, y), alpha)
    assert fit.method == "ols"
    assert fit.parameters == parameter_names(p)
    assert fit.converged.all() and not fit.multimodal.any()
    for r in range(len(y)):
        res = ref.ols_statsmodels(x[r], y[r], alpha)
        close(fit.estimate[r, :p], res["params"], 1e-10)
        close(fit.se[r, :p], res["bse"], 1e-10)
        close(fit.lower[r, :p], res["conf_int"][:, 0], 1e-10)
        close(fit.upper[r, :p], res["conf_int"][:, 1], 1e-10)
        close(fit.estimate[r, p], res["sigma"], 1e-10)
        close(fit.se[r, p], res["sigma"] / np.sqrt(2 * res["df"]), 1e-10)
        lower, upper = ref.sigma_chi2_interval(res["rss"], res["df"], alpha)
        close([fit.lower[r, p], fit.upper[r, p]], [lower, upper], 1e-10)


def test_ols_sigma_interval_has_nominal_coverage_on_simulated_data():
    # The σ interval is exact: its coverage over 4000 datasets is 1 − α within MC error.
    cell = Cell(8, 2.0, (1.0, -1.0, 0.5))
    d = draw(cell, 11, 0, 4000)
    fit = fit_ols(sufficient_stats(d.x, d.y), 0.1)
    covered = (fit.lower[:, -1] <= cell.sigma) & (cell.sigma <= fit.upper[:, -1])
    assert abs(covered.mean() - 0.9) < 4 * np.sqrt(0.9 * 0.1 / 4000)


def notebook_dataset():
    """The seed notebook's data, regenerated exactly as the notebook does."""
    np.random.seed(123)
    x = np.random.rand(2, 200)
    e = np.random.normal(10, 5, 200)
    y = np.dot(x.T, np.random.uniform(1.0, 15.0, size=2)) + e
    return x.T[None, :, :], y[None, :]


def test_notebook_dataset_ols_and_mle():
    x, y = notebook_dataset()
    stats_ = sufficient_stats(x, y)
    ols = fit_ols(stats_)
    np.testing.assert_array_equal(np.round(ols.estimate[0, :3], 4), [9.0629, 4.3478, 11.0557])
    np.testing.assert_array_equal(np.round(ols.se[0, :3], 3), [0.953, 1.311, 1.182])
    # The notebook's 95% intervals [0.025, 0.975].
    np.testing.assert_array_equal(np.round(ols.lower[0, :3], 3), [7.183, 1.762, 8.724])
    np.testing.assert_array_equal(np.round(ols.upper[0, :3], 3), [10.943, 6.933, 13.388])
    mle = fit_mle(stats_)
    close(mle.estimate[0, :3], ols.estimate[0, :3], 1e-12)
    # np.std of the OLS residuals in the notebook: √(RSS/n), the MLE of σ.
    close(mle.estimate[0, 3], 4.888384545924403, 1e-12)


def test_notebook_dataset_mle_is_not_the_notebooks_no_intercept_fit():
    # The notebook's MLE left the intercept out and landed near (16.66, 18.78, 7.66);
    # the likelihood with the intercept is much higher at our MLE.
    x, y = notebook_dataset()
    mle = fit_mle(sufficient_stats(x, y))
    X = ref.design(x[0])
    ours = np.append(mle.estimate[0, :3], np.log(mle.estimate[0, 3]))
    notebook = np.array([0.0, 16.66478861, 18.78203099, np.log(7.66490432)])
    assert ref.gaussian_nll(ours, X, y[0]) < ref.gaussian_nll(notebook, X, y[0]) - 10


# ------------------------------------------------------------------------------- MLE


@pytest.mark.parametrize("n, p", [(4, 3), (3, 2), (10, 2), (20, 3), (60, 4)])
def test_mle_matches_scipy_minimisation(n, p):
    x, y = random_batch(7 * n + p, 4, n, p)
    fit = fit_mle(sufficient_stats(x, y), 0.1)
    z = stats.norm.ppf(0.95)
    for r in range(len(y)):
        X = ref.design(x[r])
        beta, sigma = ref.mle_scipy(X, y[r])
        close(fit.estimate[r], np.append(beta, sigma), 1e-9, 1e-9)
        # se: inverse observed information in (β, σ) at the optimum.
        info = ref.hessian(beta, sigma, X, y[r], np.zeros(p), np.full(p, INF))
        close(fit.se[r], np.sqrt(np.diag(np.linalg.inv(info))), 1e-8)
        close(fit.lower[r], fit.estimate[r] - z * fit.se[r], 1e-12, 1e-12)
        close(fit.upper[r], fit.estimate[r] + z * fit.se[r], 1e-12, 1e-12)
    assert fit.converged.all()


def test_reference_hessian_matches_finite_differences():
    x, y = random_batch(5, 1, 15, 3)
    X = ref.design(x[0])
    for mean, sd in [((0, 0, 0), (INF, INF, INF)), ((1, -2, 0.5), (0.7, INF, 3.0))]:
        point = np.array([1.0, 2.0, -1.0, 1.7])

        def f(v, mean=mean, sd=sd):
            return ref.objective(v[:3], v[3], X, y[0], mean, sd)

        close(
            ref.hessian(point[:3], point[3], X, y[0], mean, sd),
            ref.numerical_hessian(f, point),
            1e-5,
            1e-5,
        )


def test_reference_objective_is_negative_log_posterior():
    # f(β, σ) + constants = −log[likelihood × prior densities]: guards the sign of exp{}.
    x, y = random_batch(6, 1, 12, 3)
    X = ref.design(x[0])
    mean, sd = np.array([1.0, -1.0, 2.0]), np.array([0.5, 2.0, 3.0])
    for beta, sigma in [((0.3, 1.0, 2.0), 0.8), ((5.0, -3.0, 0.0), 4.0)]:
        beta = np.asarray(beta)
        log_post = (
            stats.norm.logpdf(y[0], X @ beta, sigma).sum() + stats.norm.logpdf(beta, mean, sd).sum()
        )
        constant = (len(y[0]) + 3) / 2 * np.log(2 * np.pi) + np.log(sd).sum()
        close(ref.objective(beta, sigma, X, y[0], mean, sd) + constant, -log_post, 1e-12)


# ------------------------------------------------------------------------------- MAP


def check_map_against_scipy(fit, x, y, prior, rtol=1e-9, replicates=None):
    """Mode, Laplace se and intervals of every replicate against the scipy reference."""
    z = stats.norm.ppf(0.975)
    for r in range(len(y)) if replicates is None else replicates:
        X = ref.design(x[r])
        best = ref.map_scipy(X, y[r], prior.mean, prior.sd)
        expected = np.append(best["beta"], best["sigma"])
        scale = np.maximum(np.abs(expected), 1.0)
        assert np.all(np.abs(fit.estimate[r] - expected) <= rtol * scale), (r, prior.name)
        beta, sigma = fit.estimate[r, :-1], fit.estimate[r, -1]
        hess = ref.hessian(beta, sigma, X, y[r], prior.mean, prior.sd)
        close(fit.se[r], np.sqrt(np.diag(np.linalg.inv(hess))), 1e-7)
        close(fit.lower[r], fit.estimate[r] - z * fit.se[r], 1e-12, 1e-12)
        close(fit.upper[r], fit.estimate[r] + z * fit.se[r], 1e-12, 1e-12)


@pytest.mark.parametrize("prior", PRIORS, ids=lambda prior: prior.name)
@pytest.mark.parametrize(
    "cell",
    [
        Cell(20, 5.0, BETA),
        BIMODAL_CELL,
        Cell(4, 2.0, (1.0, 2.0, 3.0)),
        Cell(100, 3.0, (-2.0, 0.0, 25.0)),
    ],
    ids=["n20s5", "n20s1", "n4", "n100"],
)
def test_map_matches_scipy(cell, prior):
    d = draw(cell, 99, 0, 8)
    fit = fit_map(sufficient_stats(d.x, d.y), prior)
    assert fit.method == "map"
    assert fit.converged.all()
    check_map_against_scipy(fit, d.x, d.y, prior)


@pytest.mark.parametrize("p", [2, 4])
def test_map_matches_scipy_other_dimensions(p):
    x, y = random_batch(31 + p, 6, 12, p)
    for prior in [
        prior_for(p, (0, 1, -1, 2), (1.0, INF, 0.3, 2.0)),
        prior_for(p, (3, 0, 0, 0), (0.2, 0.2, 0.2, 0.2)),
    ]:
        fit = fit_map(sufficient_stats(x, y), prior)
        assert fit.converged.all()
        check_map_against_scipy(fit, x, y, prior)


def test_map_prior_length_mismatch_rejected():
    x, y = random_batch(1, 2, 10, 3)
    with pytest.raises(ValueError):
        fit_map(sufficient_stats(x, y), Prior("short", (0, 0), (1, 1)))


def test_map_is_global_mode_on_bimodal_cell():
    d = draw(BIMODAL_CELL, 1, 0, 600)
    fit = fit_map(sufficient_stats(d.x, d.y), SKEPTICAL)
    assert fit.converged.all()
    fraction = fit.multimodal.mean()
    assert 0.05 <= fraction <= 0.10, fraction
    newton_found_worse_mode = 0
    for r in np.flatnonzero(fit.multimodal):
        X, y = ref.design(d.x[r]), d.y[r]
        beta, sigma = fit.estimate[r, :-1], fit.estimate[r, -1]
        value = ref.objective(beta, sigma, X, y, SKEPTICAL.mean, SKEPTICAL.sd)
        slack = 1e-9 * abs(value)
        brute_value, brute_t, step = ref.profile_brute_force(X, y, SKEPTICAL.mean, SKEPTICAL.sd)
        assert value <= brute_value + slack, r
        assert abs(brute_t - np.log(sigma)) <= 2 * step, r
        best = ref.map_scipy(X, y, SKEPTICAL.mean, SKEPTICAL.sd)
        assert value <= best["from_mle"][0] + slack, r
        assert value <= best["from_prior"][0] + slack, r
        # A local Newton search from the MLE stops at another, worse, stationary point.
        b_mle, s_mle = ref.ols_start(X, y)
        b_loc, s_loc = ref.newton_local(b_mle, s_mle, X, y, SKEPTICAL.mean, SKEPTICAL.sd)
        local_value = ref.objective(b_loc, s_loc, X, y, SKEPTICAL.mean, SKEPTICAL.sd)
        grad = ref.gradient(b_loc, s_loc, X, y, SKEPTICAL.mean, SKEPTICAL.sd)
        if local_value > value + 1e-6 * abs(value) and np.max(np.abs(grad)) < 1e-6:
            newton_found_worse_mode += 1
    assert newton_found_worse_mode >= 1
    # Unimodal replicates of the same cell agree with scipy too.
    check_map_against_scipy(
        fit, d.x, d.y, SKEPTICAL, replicates=np.flatnonzero(~fit.multimodal)[:15]
    )


@pytest.mark.parametrize("prior", PRIORS, ids=lambda prior: prior.name)
def test_map_hessian_positive_definite_where_converged(prior):
    for cell in (BIMODAL_CELL, Cell(20, 5.0, BETA), Cell(4, 2.0, (1.0, 2.0, 3.0))):
        d = draw(cell, 5, 0, 150)
        fit = fit_map(sufficient_stats(d.x, d.y), prior)
        assert fit.converged.mean() > 0.95
        for r in np.flatnonzero(fit.converged):
            hess = ref.hessian(
                fit.estimate[r, :-1],
                fit.estimate[r, -1],
                ref.design(d.x[r]),
                d.y[r],
                prior.mean,
                prior.sd,
            )
            assert np.linalg.eigvalsh(hess).min() > 0, (cell, r)


@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_flat_prior_map_equals_mle(alpha):
    d = draw(Cell(20, 5.0, BETA), 3, 0, 50)
    stats_ = sufficient_stats(d.x, d.y)
    flat = Prior("flat", (1.0, 2.0, 3.0), (INF, INF, INF))
    map_fit, mle = fit_map(stats_, flat, alpha), fit_mle(stats_, alpha)
    assert map_fit.converged.all()
    for name in ("estimate", "se", "lower", "upper"):
        close(getattr(map_fit, name), getattr(mle, name), 1e-10)


def test_map_iteration_cap_flags_non_convergence():
    d = draw(BIMODAL_CELL, 8, 0, 50)
    stats_ = sufficient_stats(d.x, d.y)
    assert fit_map(stats_, SKEPTICAL).converged.all()
    capped = fit_map(stats_, SKEPTICAL, max_iter=1)
    assert not capped.converged.all()


LARGE_INTERCEPT = Cell(30, 1.0, (1e6, 2.5, -1.5))


def test_large_intercept_ols_and_mle_accurate():
    d = draw(LARGE_INTERCEPT, 3, 0, 5)
    stats_ = sufficient_stats(d.x, d.y)
    ols, mle = fit_ols(stats_), fit_mle(stats_)
    for r in range(len(d)):
        beta_exact, s_exact = ref.ols_exact(d.x[r], d.y[r])
        close(ols.estimate[r, :3], beta_exact, 1e-11)
        close(ols.estimate[r, 3], s_exact, 1e-11)
        close(mle.estimate[r, 3], s_exact * np.sqrt(27 / 30), 1e-11)
        res = ref.ols_statsmodels(d.x[r], d.y[r], 0.05)
        close(ols.estimate[r, :3], res["params"], 1e-8)
        close(ols.estimate[r, 3], res["sigma"], 1e-8)
        close(ols.se[r, :3], res["bse"], 1e-8)


@pytest.mark.parametrize(
    "prior",
    [
        Prior("centred", (1e6, 0.0, 0.0), (100.0, 1.0, 1.0)),
        Prior("flat_intercept", (0.0, 0.0, 0.0), (INF, 1.0, 1.0)),
        Prior("skeptical", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        Prior("wide", (0.0, 0.0, 0.0), (1e3, 10.0, 10.0)),
    ],
    ids=lambda prior: prior.name,
)
def test_large_intercept_map_finite_and_matches_scipy(prior):
    d = draw(LARGE_INTERCEPT, 3, 0, 5)
    fit = fit_map(sufficient_stats(d.x, d.y), prior)
    assert np.isfinite(fit.estimate).all() and np.isfinite(fit.se).all()
    assert fit.converged.all()
    check_map_against_scipy(fit, d.x, d.y, prior, rtol=1e-8)


# ------------------------------------------------------------------- properties


@st.composite
def batches(draw_, min_extra=2):
    seed = draw_(st.integers(0, 2**32 - 1))
    p = draw_(st.integers(2, 4))
    n = draw_(st.integers(p + min_extra, 40))
    return random_batch(seed, 3, n, p)


@settings(max_examples=25, deadline=None)
@given(batch=batches(), mean=st.lists(st.floats(-20, 20), min_size=4, max_size=4))
def test_map_tends_to_mle_as_prior_sd_grows(batch, mean):
    x, y = batch
    p = x.shape[2] + 1
    stats_ = sufficient_stats(x, y)
    fit = fit_map(stats_, prior_for(p, mean, [1e8] * 4))
    mle = fit_mle(stats_)
    assert fit.converged.all()
    scale = np.maximum(np.abs(mle.estimate), np.abs(mle.estimate[:, -1:]))
    assert np.all(np.abs(fit.estimate - mle.estimate) <= 1e-6 * scale)
    close(fit.se, mle.se, 1e-6)


@settings(max_examples=25, deadline=None)
@given(batch=batches(), mean=st.lists(st.floats(-20, 20), min_size=4, max_size=4))
def test_map_tends_to_prior_mean_as_prior_sd_shrinks(batch, mean):
    x, y = batch
    p = x.shape[2] + 1
    prior = prior_for(p, mean, [1e-6] * 4)
    fit = fit_map(sufficient_stats(x, y), prior)
    assert fit.converged.all()
    assert np.all(np.abs(fit.estimate[:, :p] - np.asarray(prior.mean)) <= 1e-5)
    # σ then maximises the likelihood with β = μ: √(RSS(μ)/n).
    for r in range(len(y)):
        resid = y[r] - ref.design(x[r]) @ np.asarray(prior.mean)
        close(fit.estimate[r, -1], np.sqrt(resid @ resid / len(resid)), 1e-6)


@settings(max_examples=40, deadline=None)
@given(
    batch=batches(min_extra=1),
    a=st.floats(0.01, 100.0).flatmap(lambda v: st.sampled_from([v, -v])),
    c=st.lists(st.floats(-100, 100), min_size=4, max_size=4),
)
def test_ols_equivariance(batch, a, c):
    x, y = batch
    p = x.shape[2] + 1
    c = np.asarray(c[:p])
    y2 = a * y + c[0] + x @ c[1:]
    fit, fit2 = fit_ols(sufficient_stats(x, y)), fit_ols(sufficient_stats(x, y2))
    beta, beta2 = fit.estimate[:, :p], fit2.estimate[:, :p]
    # Rounding of y2 itself is relative to |a·y| + |Xc|; scale tolerances accordingly.
    size = np.abs(a * beta) + np.abs(c) + np.abs(a) * fit.se[:, :p] + 1.0
    cond = np.array([np.linalg.cond(ref.design(xr)) for xr in x])[:, None]
    assert np.all(np.abs(beta2 - (a * beta + c)) <= 1e-9 * cond * size)
    close(fit2.se[:, :p], abs(a) * fit.se[:, :p], 1e-6)
    close(fit2.estimate[:, p], abs(a) * fit.estimate[:, p], 1e-6)


# -------------------------------------------------------------------- fit_table


def test_fit_table_layout_and_values():
    cell = Cell(20, 5.0, BETA)
    d = draw(cell, 4, 10, 16)
    priors = [SKEPTICAL, PRIORS[0], PRIORS[2]]
    table = fit_table(d, priors, ["ols", "mle", "map"], 0.1)
    assert tuple(table.columns) == FIT_COLUMNS
    names = parameter_names(3)
    assert len(table) == (2 + len(priors)) * len(d) * len(names)
    # One row per method × prior × replicate × parameter.
    assert not table.duplicated(["method", "prior", "replicate", "parameter"]).any()
    assert set(table.loc[table.method.isin(["ols", "mle"]), "prior"]) == {""}
    assert set(table.loc[table.method == "map", "prior"]) == {p.name for p in priors}
    assert set(table.replicate) == set(range(10, 16))
    assert (table.n == 20).all() and (table.sigma == 5.0).all()
    truth = dict(zip(names, [*BETA, 5.0], strict=True))
    assert (table.true == table.parameter.map(truth)).all()
    assert table.converged.dtype == bool and table.multimodal.dtype == bool

    stats_ = sufficient_stats(d.x, d.y)
    expected = {("ols", ""): fit_ols(stats_, 0.1), ("mle", ""): fit_mle(stats_, 0.1)}
    expected.update({("map", p.name): fit_map(stats_, p, 0.1) for p in priors})
    for (method, prior), fit in expected.items():
        rows = table[(table.method == method) & (table.prior == prior)]
        wide = rows.pivot(index="replicate", columns="parameter", values="estimate")
        np.testing.assert_array_equal(wide.loc[d.replicates, names].to_numpy(), fit.estimate)
        se = rows.pivot(index="replicate", columns="parameter", values="se")
        np.testing.assert_array_equal(se.loc[d.replicates, names].to_numpy(), fit.se)


def test_fit_table_same_datasets_for_every_prior():
    d = draw(BIMODAL_CELL, 2, 0, 12)
    one = fit_table(d, [SKEPTICAL], ["ols", "mle", "map"], 0.05)
    three = fit_table(d, {p.name: p for p in PRIORS[:3]}, ["ols", "mle", "map"], 0.05)

    def rows(table, method, prior):
        part = table[(table.method == method) & (table.prior == prior)]
        return part.reset_index(drop=True)

    for method in ("ols", "mle"):
        pd.testing.assert_frame_equal(rows(one, method, ""), rows(three, method, ""))
    pd.testing.assert_frame_equal(
        rows(one, "map", SKEPTICAL.name), rows(three, "map", SKEPTICAL.name)
    )


def test_fit_methods_rejects_unknown_method():
    x, y = random_batch(2, 2, 10, 3)
    with pytest.raises(ValueError, match="unknown method"):
        fit_methods(sufficient_stats(x, y), [SKEPTICAL], ["ols", "bayes"], 0.05)


def test_registry_matches_the_method_names_the_workflow_validates():
    from regsim.design import METHODS, PRIOR_METHODS
    from regsim.estimators import ESTIMATORS

    assert tuple(ESTIMATORS) == METHODS
    assert PRIOR_METHODS <= set(METHODS)
