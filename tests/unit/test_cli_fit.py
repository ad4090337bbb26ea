"""``python -m regsim fit`` on good and bad CSV files."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from regsim.cli import main
from regsim.cli.fit import _scaled_text
from regsim.estimators import fit_ols_hc3, sufficient_stats
from regsim.estimators.single import response_exponent


@pytest.fixture
def run_fit(capsys):
    """Run ``regsim fit`` in-process; return (exit status, stdout, stderr)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        status = main(["fit", *args])
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, status, captured.out, captured.err)

    return run


@pytest.fixture
def notebook_csv(tmp_path):
    """The seed notebook's dataset, regenerated exactly as the notebook does."""
    np.random.seed(123)
    x = np.random.rand(2, 200)
    e = np.random.normal(10, 5, 200)
    y = np.dot(x.T, np.random.uniform(1.0, 15.0, size=2)) + e
    path = tmp_path / "notebook.csv"
    pd.DataFrame({"x1": x[0], "x2": x[1], "y": y}).to_csv(path, index=False)
    return path


def assert_coefficients_match(block: dict, reference) -> None:
    """The first coefficients of a method's block (as many as ``reference`` has) have the
    estimates, SEs and 95% intervals of a statsmodels fit, to 1e-10."""
    conf = reference.conf_int(0.05).to_numpy()
    for j in range(len(reference.params)):
        row = block[f"beta{j}"]
        np.testing.assert_allclose(row["estimate"], reference.params.iloc[j], rtol=1e-10)
        np.testing.assert_allclose(row["se"], reference.bse.iloc[j], rtol=1e-10)
        np.testing.assert_allclose([row["lower"], row["upper"]], conf[j], rtol=1e-10)


def test_json_matches_statsmodels_and_notebook(run_fit, notebook_csv):
    result = run_fit(str(notebook_csv), "--y", "y", "--json")
    assert result.returncode == 0, result.stderr
    fitted = json.loads(result.stdout)
    assert list(fitted) == ["ols", "ols_hc3", "mle", "map", "bayes"]
    frame = pd.read_csv(notebook_csv)
    model = sm.OLS(frame["y"], sm.add_constant(frame[["x1", "x2"]]))
    reference = model.fit()
    assert_coefficients_match(fitted["ols"], reference)
    # HC3: statsmodels' sandwich SEs, with the t intervals on n - p degrees of freedom
    # the study's ols_hc3 gives; sigma as OLS.
    assert_coefficients_match(fitted["ols_hc3"], model.fit(cov_type="HC3", use_t=True))
    assert fitted["ols_hc3"]["sigma"] == fitted["ols"]["sigma"]
    # The notebook's np.std of the OLS residuals is the MLE of sigma.
    np.testing.assert_allclose(fitted["mle"]["sigma"]["estimate"], 4.888384545924403, rtol=1e-12)
    # No prior given: flat priors, so MAP is the MLE.
    for name, row in fitted["mle"].items():
        for key, value in row.items():
            np.testing.assert_allclose(fitted["map"][name][key], value, rtol=1e-9)
    # ... and the posterior of β is Student's t with n − p − 1 degrees of freedom, centred
    # at the least-squares fit, with scale RSS/(n − p − 1)·(XᵀX)⁻¹ (p(σ) ∝ 1).
    df = reference.df_resid - 1
    scale = reference.bse.to_numpy() * np.sqrt(reference.df_resid / df)
    t = stats.t.ppf(0.975, df)
    for j in range(3):
        row = fitted["bayes"][f"beta{j}"]
        beta = reference.params.iloc[j]
        np.testing.assert_allclose(row["estimate"], beta, rtol=1e-10)
        np.testing.assert_allclose(row["se"], scale[j] * np.sqrt(df / (df - 2)), rtol=1e-9)
        expected = beta + t * scale[j] * np.array([-1.0, 1.0])
        np.testing.assert_allclose([row["lower"], row["upper"]], expected, rtol=1e-9)


def test_prior_options_and_column_selection(run_fit, notebook_csv):
    result = run_fit(
        str(notebook_csv),
        "--y",
        "y",
        "--x",
        "x2",
        "--prior-mean",
        "0",
        "0",
        "--prior-sd",
        "1",
        "inf",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    fitted = json.loads(result.stdout)
    assert list(fitted["map"]) == ["beta0", "beta1", "sigma"]
    # A N(0, 1) prior on the intercept pulls it towards 0.
    assert abs(fitted["map"]["beta0"]["estimate"]) < abs(fitted["ols"]["beta0"]["estimate"])


def test_prior_means_without_sds_are_refused(run_fit, notebook_csv):
    """Without --prior-sd every prior is flat: the means would change nothing."""
    result = run_fit(str(notebook_csv), "--y", "y", "--prior-mean", "5", "5", "5")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "--prior-mean needs --prior-sd" in result.stderr
    # sds alone are proper priors about 0, as the help says
    alone = run_fit(str(notebook_csv), "--y", "y", "--prior-sd", "1", "1", "1", "--json")
    zero = run_fit(
        str(notebook_csv),
        "--y",
        "y",
        "--prior-mean",
        "0",
        "0",
        "0",
        "--prior-sd",
        "1",
        "1",
        "1",
        "--json",
    )
    assert alone.returncode == 0 and json.loads(alone.stdout) == json.loads(zero.stdout)


def test_table_output_names_columns(run_fit, notebook_csv):
    result = run_fit(str(notebook_csv), "--y", "y")
    assert result.returncode == 0, result.stderr
    assert "beta1 (x1)" in result.stdout and "beta2 (x2)" in result.stdout
    assert result.stdout.count("sigma") == 5  # one row per method
    assert "\nBayes\n" in result.stdout


def test_jeffreys_prior_on_sigma(run_fit, notebook_csv):
    # p(σ) ∝ 1/σ: MAP's σ is √(RSS/(n + 1)) with flat priors on β, and the credible
    # intervals are OLS's t intervals and its exact interval for σ.
    result = run_fit(str(notebook_csv), "--y", "y", "--sigma-prior", "jeffreys", "--json")
    assert result.returncode == 0, result.stderr
    fitted = json.loads(result.stdout)
    rss = fitted["mle"]["sigma"]["estimate"] ** 2 * 200
    np.testing.assert_allclose(fitted["map"]["sigma"]["estimate"], np.sqrt(rss / 201), rtol=1e-9)
    for name, row in fitted["ols"].items():
        np.testing.assert_allclose(fitted["bayes"][name]["lower"], row["lower"], rtol=1e-7)
        np.testing.assert_allclose(fitted["bayes"][name]["upper"], row["upper"], rtol=1e-7)


def small_csv(tmp_path, rows: int):
    rng = np.random.default_rng(rows)
    x = rng.uniform(size=(rows, 2))
    y = 1.0 + x @ np.array([2.0, -1.0]) + rng.standard_normal(rows)
    path = tmp_path / f"rows{rows}.csv"
    pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y}).to_csv(path, index=False)
    return path


def test_hc3_is_the_study_kernels_on_the_same_data(run_fit, tmp_path):
    # The user path (QR of the scaled design) and the study's batched kernel (centred
    # normal equations) give the same HC3 fit of one dataset, to rounding.
    path = small_csv(tmp_path, 30)
    frame = pd.read_csv(path)
    result = run_fit(str(path), "--y", "y", "--alpha", "0.1", "--json")
    assert result.returncode == 0, result.stderr
    fitted = json.loads(result.stdout)["ols_hc3"]
    x = frame[["x1", "x2"]].to_numpy()[None]
    kernel = fit_ols_hc3(sufficient_stats(x, frame["y"].to_numpy()[None], sandwich=True), 0.1)
    for j, name in enumerate(["beta0", "beta1", "beta2", "sigma"]):
        for key in ("estimate", "se", "lower", "upper"):
            expected = getattr(kernel, key)[0, j]
            assert fitted[name][key] == pytest.approx(expected, rel=1e-12), (name, key)


def _dummy_data(tmp_path, ones=(7,), rows: int = 12, name: str = "dummy.csv"):
    """x, one-case dummies g1, g2, … (row ``ones[k]`` alone in g{k+1}'s level) and y."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.uniform(size=rows)})
    for k, row in enumerate(ones):
        frame[f"g{k + 1}"] = (np.arange(rows) == row).astype(float)
    frame["y"] = 1.0 + 2.0 * frame["x"] + 3.0 * frame.get("g1", 0.0) + rng.standard_normal(rows)
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path, frame


def test_hc3_note_names_the_file_s_lines_past_blank_ones(run_fit, tmp_path):
    """The leverage note names the row's line in the file: blank lines before it count."""
    path, _ = _dummy_data(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "", *lines[1:4], "  ", *lines[4:]]) + "\n")
    result = run_fit(str(path), "--y", "y")
    assert result.returncode == 0, result.stderr
    assert f"ols_hc3: line 11 of {path} has leverage 1" in result.stderr


def test_hc3_at_a_row_of_leverage_one(run_fit, tmp_path):
    # A dummy covariate with one case in its level: the fit passes through that row, whose
    # residual and 1 - h_ii are both rounding, so the dummy's HC3 variance does not exist.
    # The other coefficients' do: the row enters none of them, and they are the HC3 fit of
    # the regression without that row and the dummy (same n - p degrees of freedom).
    path, frame = _dummy_data(tmp_path)
    result = run_fit(str(path), "--y", "y", "--json")
    assert result.returncode == 0, result.stderr
    fitted = json.loads(result.stdout)
    row = fitted["ols_hc3"]["beta2"]
    assert row["estimate"] == fitted["ols"]["beta2"]["estimate"]
    assert (row["se"], row["lower"], row["upper"]) == (None, None, None)
    rest = frame.drop(index=7)
    reduced = sm.OLS(rest["y"], sm.add_constant(rest[["x"]])).fit(cov_type="HC3", use_t=True)
    assert_coefficients_match(fitted["ols_hc3"], reduced)
    assert fitted["ols_hc3"]["sigma"] == fitted["ols"]["sigma"]
    assert all(value is not None for value in fitted["ols"]["beta2"].values())
    note = (
        f"regsim fit: ols_hc3: line 9 of {path} has leverage 1 (to within 1e-8: the fit passes "
        "through it), so the HC3 standard errors and intervals of beta2, the coefficients it "
        "determines, do not exist (n/a)"
    )
    assert result.stderr.strip().splitlines() == [note]
    table = run_fit(str(path), "--y", "y")
    assert table.returncode == 0 and table.stderr.strip().splitlines() == [note]
    hc3 = table.stdout.split("OLS (HC3)\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[-3:] for line in hc3[1:4]][2] == ["n/a"] * 3
    assert "n/a" not in " ".join(hc3[1:3] + hc3[4:])
    # Leaving the dummy out (--x) leaves no such row.
    plain = run_fit(str(path), "--y", "y", "--x", "x", "--json")
    assert plain.returncode == 0 and plain.stderr == ""
    assert all(
        v is not None for r in json.loads(plain.stdout)["ols_hc3"].values() for v in r.values()
    )


def test_hc3_names_every_row_of_leverage_one(run_fit, tmp_path):
    path, _ = _dummy_data(tmp_path, ones=(2, 9))
    result = run_fit(str(path), "--y", "y", "--json")
    assert result.returncode == 0, result.stderr
    fitted = json.loads(result.stdout)["ols_hc3"]
    assert [fitted[f"beta{j}"]["se"] is None for j in range(4)] == [False, False, True, True]
    assert result.stderr.strip().splitlines() == [
        f"regsim fit: ols_hc3: lines 4, 11 of {path} have leverage 1 (to within 1e-8: the fit "
        "passes through them), so the HC3 standard errors and intervals of beta2 and beta3, "
        "the coefficients they determine, do not exist (n/a)"
    ]


@pytest.mark.parametrize("power", [-300, 0, 300])
def test_hc3_scales_exactly_with_the_columns_and_the_response(run_fit, tmp_path, power):
    # Scaling a column by a power of two leaves the scaled design X_s as it is, so its
    # coefficient and SE scale exactly, also where their squares would underflow
    # (x * 2^465 with y near 2^-63: SEs near 1e-159), with or without a row of leverage 1.
    path, frame = _dummy_data(tmp_path)
    scaled = frame.assign(x=np.ldexp(frame["x"], 465), y=np.ldexp(frame["y"], power - 63))
    far = tmp_path / "far.csv"
    scaled.to_csv(far, index=False, float_format="%.17g")
    want = json.loads(run_fit(str(path), "--y", "y", "--json").stdout)["ols_hc3"]
    got = json.loads(run_fit(str(far), "--y", "y", "--json").stdout)["ols_hc3"]
    for name, shift in (("beta0", power - 63), ("beta1", power - 63 - 465), ("sigma", power - 63)):
        for key in ("estimate", "se", "lower", "upper"):
            expected = math.ldexp(want[name][key], shift)
            assert got[name][key] == pytest.approx(expected, rel=1e-13), (name, key)
    assert got["beta2"]["se"] is None


def test_hc3_with_one_residual_degree_of_freedom(run_fit, tmp_path):
    # n = p + 1 gives no row leverage 1 by itself (the leverages sum to p): the SEs exist.
    path = small_csv(tmp_path, 4)
    result = run_fit(str(path), "--y", "y", "--sigma-prior", "jeffreys", "--json")
    assert result.returncode == 0 and result.stderr == ""
    frame = pd.read_csv(path)
    robust = sm.OLS(frame["y"], sm.add_constant(frame[["x1", "x2"]])).fit(cov_type="HC3")
    se = [json.loads(result.stdout)["ols_hc3"][f"beta{j}"]["se"] for j in range(3)]
    np.testing.assert_allclose(se, robust.bse.to_numpy(), rtol=1e-9)


def test_improper_posterior_is_one_line(run_fit, tmp_path):
    # Flat priors on all three coefficients, p(σ) ∝ 1 and n = 4 = p + 1 rows.
    result = run_fit(str(small_csv(tmp_path, 4)), "--y", "y")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: bayes: the posterior is improper with flat priors on 3 coefficients, a flat "
        "prior on sigma and 4 rows (it needs more than 4 rows); add rows or give proper "
        "priors (--prior-sd), or use --sigma-prior jeffreys"
    ]
    # Proper with Jeffreys' prior on σ or a proper prior on one coefficient.
    for extra in (["--sigma-prior", "jeffreys"], ["--prior-sd", "inf", "inf", "1"]):
        assert run_fit(str(small_csv(tmp_path, 4)), "--y", "y", *extra).returncode == 0


def _exact_csv(path: Path, x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> list[str]:
    """Write x1, x2 and y to a CSV to the last bit (repr); the arguments that fit it."""
    rows = zip(x1.tolist(), x2.tolist(), y.tolist(), strict=True)
    lines = ["x1,x2,y"] + [f"{a!r},{b!r},{c!r}" for a, b, c in rows]
    path.write_text("\n".join(lines) + "\n")
    return [str(path), "--y", "y", "--json"]


@pytest.mark.parametrize("power", [-660, -400, -300, 300, 510])
@pytest.mark.parametrize("prior_sd", [None, (float("inf"), 2.0, 0.5)])
def test_responses_far_from_unit_scale_give_the_fits_of_unit_scale(
    run_fit, tmp_path, power, prior_sd
):
    # Every estimator is equivariant under y -> c y (priors' means and sds times c). At
    # |y| near 1e-100 Bayes did not converge (σ² squared underflowed); beyond 2^±64 the
    # fits now run on y scaled by a power of two, so y·2^power gives exactly 2^power
    # times the numbers of y, where y's largest |y| lies in [½, 1).
    rng = np.random.default_rng(8)
    x = rng.normal(size=(40, 2))
    y = 1.0 + x @ np.array([2.0, -1.0]) + rng.normal(size=40)
    y = np.ldexp(y, -np.frexp(np.max(np.abs(y)))[1])

    def fit(values: np.ndarray, scale: int) -> dict:
        args = _exact_csv(tmp_path / f"y{scale}.csv", x[:, 0], x[:, 1], values)
        if prior_sd is not None:
            args += ["--prior-mean", *(repr(math.ldexp(m, scale)) for m in (0.0, 1.5, -1.0))]
            args += ["--prior-sd", *(repr(math.ldexp(sd, scale)) for sd in prior_sd)]
        result = run_fit(*args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    unit = fit(y, 0)
    far = fit(np.ldexp(y, power), power)
    assert list(far) == ["ols", "ols_hc3", "mle", "map", "bayes"]
    for method, parameters in unit.items():
        for name, numbers in parameters.items():
            for key, value in numbers.items():
                expected = None if value is None else math.ldexp(value, power)
                assert far[method][name][key] == expected, (method, name, key)


@pytest.mark.parametrize("power", [-700, -540, -300, 300, 540, 700])
@pytest.mark.parametrize("prior_sd", [None, (float("inf"), 2.0, 0.5)])
def test_covariates_far_from_unit_scale_give_the_fits_of_unit_scale(
    run_fit, tmp_path, power, prior_sd
):
    # Every estimator is equivariant under x_1 -> c x_1 (β_1's prior mean and sd over c).
    # A column near 1e160 read as collinear and one near 1e-160 failed all but HC3 (the
    # squares of its values over- or underflowed); beyond 2^±64 a column is now fitted
    # scaled by a power of two, so x_1·2^power gives exactly 2^−power times β_1's numbers
    # and the same others, where x_1's largest |value| lies in [½, 1).
    rng = np.random.default_rng(10)
    x = rng.normal(size=(30, 2))
    y = 1.0 + x @ np.array([2.0, -1.0]) + rng.normal(size=30)
    x[:, 0] = np.ldexp(x[:, 0], -np.frexp(np.max(np.abs(x[:, 0])))[1])

    def fit(column: np.ndarray, scale: int) -> dict:
        args = _exact_csv(tmp_path / f"x{scale}.csv", column, x[:, 1], y)
        if prior_sd is not None:
            means = (0.0, math.ldexp(1.5, -scale), -1.0)
            sds = (prior_sd[0], math.ldexp(prior_sd[1], -scale), prior_sd[2])
            args += ["--prior-mean", *map(repr, means), "--prior-sd", *map(repr, sds)]
        result = run_fit(*args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    unit = fit(x[:, 0], 0)
    far = fit(np.ldexp(x[:, 0], power), power)
    for method, parameters in unit.items():
        for name, numbers in parameters.items():
            for key, value in numbers.items():
                scale = -power if name == "beta1" else 0
                expected = None if value is None else math.ldexp(value, scale)
                assert far[method][name][key] == expected, (method, name, key)


@pytest.mark.parametrize("level", [1e8, 1e12, 1e15])
@pytest.mark.parametrize("proper", [False, True])
def test_a_response_far_from_zero_beside_its_spread_keeps_its_digits(
    run_fit, tmp_path, level, proper
):
    # y near 1e12 with an sd near 0.3: fitted as it was, the slopes erred by 1.5e-4 of σ
    # and σ̂ by 3e-5 (at 1e15 by all of itself, and Bayes did not converge). Every
    # estimator is equivariant under y -> y + c with the intercept's prior mean moved by
    # c: the fits of y are those of y − level but for the intercept, and OLS's are the
    # exact least squares of the file's numbers (40 digits). The slopes' proper priors
    # are informative (sds 2 and 0.5 against SEs near 0.1); the intercept's sd is what the
    # fits resolve at this level (regsim.limits.PRIOR_RESOLUTION), and its mean, level + 1,
    # lies 1e5 to 1e6 of them from the data's if it is not moved. The slopes' priors had
    # been refused beyond a level near 1e8, their resolution measured with the level in.
    prior_sd = [1e3 + 1e-6 * level, 2.0, 0.5] if proper else None
    rng = np.random.default_rng(9)
    x = rng.normal(size=(12, 2))
    near = 1.0 + x @ np.array([2.0, -1.0]) + 0.3 * rng.normal(size=12)
    y = level + near
    near = y - level  # exact: y lies within a factor 2 of level

    def fit(values: np.ndarray, shift: float) -> dict:
        args = _exact_csv(tmp_path / f"y{shift:g}.csv", x[:, 0], x[:, 1], values)
        if prior_sd is not None:
            args += ["--prior-mean", repr(shift + 1.0), "1.5", "-1.0"]
            args += ["--prior-sd", *(repr(sd) for sd in prior_sd)]
        result = run_fit(*args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    far, unit = fit(y, level), fit(near, 0.0)
    for method, parameters in unit.items():
        for name, numbers in parameters.items():
            scale = numbers["se"]
            for key, value in numbers.items():
                got = far[method][name][key]
                if name == "beta0" and key != "se":
                    # one rounding of the intercept's level, a unit in its last place
                    assert abs(got - (value + level)) <= 2 * np.spacing(level), (method, key)
                else:
                    assert abs(got - value) <= 1e-9 * scale, (method, name, key, got, value)
    with mpmath.workdps(40):
        design = mpmath.matrix([[1, *map(mpmath.mpf, row)] for row in x.tolist()])
        response = mpmath.matrix([mpmath.mpf(v) for v in y.tolist()])
        beta = mpmath.lu_solve(design.T * design, design.T * response)
        residuals = response - design * beta
        sigma = mpmath.sqrt(sum(r**2 for r in residuals) / (12 - 3))
        ols = far["ols"]
        assert abs(ols["sigma"]["estimate"] / sigma - 1) <= 1e-12
        for j in (1, 2):
            assert abs(ols[f"beta{j}"]["estimate"] - beta[j]) <= 1e-12 * ols[f"beta{j}"]["se"]


def test_prior_bounds_scale_with_a_far_response(run_fit, tmp_path):
    # Prior sds are bounded (their precisions must not overflow) in the fits' units: for
    # a response near 1e-100 a prior sd of 1e-101 is fine, 1e-200 is refused in one line
    # naming the bounds for this response.
    rng = np.random.default_rng(3)
    x = rng.normal(size=30)
    y = (1.0 + 2.0 * x + rng.normal(size=30)) * 1e-100
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"x": x, "y": y}).to_csv(path, index=False, float_format="%.17g")
    ok = run_fit(str(path), "--y", "y", "--prior-sd", "inf", "1e-101", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["bayes"]["beta1"]["estimate"] == pytest.approx(2e-100, rel=0.2)
    bad = run_fit(str(path), "--y", "y", "--prior-sd", "inf", "1e-200")
    assert bad.returncode == 1 and bad.stdout == ""
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("error: --prior-sd: 1e-200 is outside what the fits resolve for this")


@pytest.mark.parametrize(
    ("value", "exponent"),
    [
        (2.85e-30, 0),
        (123.0, 0),
        (1e100, 800),
        (1e50, -997),
        (1e-50, -997),
        (-3.7, -3000),
        (9.9999, 1024),
        (1.0, -1074),
        (0.0, 50),
    ],
)
def test_scaled_numbers_are_written_beyond_the_range_of_doubles(value, exponent):
    # value · 2^exponent to three digits, against 40-digit arithmetic: math.ldexp raises
    # OverflowError beyond 1.8e308 and rounds to 0 below 5e-324.
    text = _scaled_text(value, exponent)
    with mpmath.workdps(40):
        exact = mpmath.ldexp(mpmath.mpf(value), exponent)
        assert mpmath.mpf(text) == mpmath.mpf(mpmath.nstr(exact, 3)), text


def _far_csv(tmp_path, scale: float, exact: bool) -> str:
    rng = np.random.default_rng(5)
    x = rng.normal(size=8)
    y = (x if exact else 1.0 + x + 0.3 * rng.normal(size=8)) * scale
    path = tmp_path / f"far{scale:g}{'exact' if exact else ''}.csv"
    pd.DataFrame({"x": x, "y": y}).to_csv(path, index=False, float_format="%.17g")
    return str(path)


@pytest.mark.parametrize("scale", [1e270, 1e-300])
def test_bounds_of_a_far_response_beyond_doubles_are_one_line(run_fit, tmp_path, scale):
    # For a response near 1e270 the prior sds the fits resolve reach past 1e308, for one
    # near 1e-300 below 1e-308: their bounds had raised OverflowError (a traceback) or
    # read "from 0".
    path = _far_csv(tmp_path, scale, False)
    result = run_fit(path, "--y", "y", "--prior-sd", "1", "1")
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    low, high = re.search(r"\(from (\S+) to (\S+), or inf", line).groups()
    shift = response_exponent(pd.read_csv(path)["y"].to_numpy())
    for text, bound in ((low, 1e-50), (high, 1e50)):
        with mpmath.workdps(40):
            exact = mpmath.ldexp(mpmath.mpf(bound), shift)
            assert abs(mpmath.mpf(text) / exact - 1) < 5e-3, (text, line)


@pytest.mark.parametrize("scale", [1e200, 1e-300])
def test_exact_fit_of_a_far_response_names_its_sum_of_squares(run_fit, tmp_path, scale):
    # y = x · 1e200 exactly, up to rounding: the residual sum of squares, in y's units,
    # is beyond 1e308 (it had raised OverflowError) or, for 1e-300, below 1e-308 (it had
    # read 0 beside its nonzero share of the total).
    result = run_fit(_far_csv(tmp_path, scale, True), "--y", "y")
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "the covariates fit 'y' exactly, up to rounding" in line
    rss, share = re.search(r"residual sum of squares (\S+), (\S+) of its sum", line).groups()
    share = float(share)
    assert share > 0 and mpmath.mpf(rss) > 0
    magnitude = mpmath.log10(mpmath.mpf(rss))
    assert abs(magnitude - (math.log10(share) + 2 * math.log10(scale))) < 2, line


def test_posterior_moments_that_do_not_exist_are_not_numbers(run_fit, tmp_path):
    # n = 5, flat priors and prior on σ: ν = 1, a Cauchy-like posterior. The intervals
    # exist (Student's t with one degree of freedom); the means and sds do not.
    path = small_csv(tmp_path, 5)
    fitted = json.loads(run_fit(str(path), "--y", "y", "--json").stdout)
    frame = pd.read_csv(path)
    reference = sm.OLS(frame["y"], sm.add_constant(frame[["x1", "x2"]])).fit()
    scale = reference.bse.to_numpy() * np.sqrt(reference.df_resid / 1)
    for j in range(3):
        row = fitted["bayes"][f"beta{j}"]
        assert row["estimate"] is None and row["se"] is None
        expected = reference.params.iloc[j] + stats.t.ppf(0.975, 1) * scale[j] * np.array([-1, 1])
        np.testing.assert_allclose([row["lower"], row["upper"]], expected, rtol=1e-7)
    assert fitted["bayes"]["sigma"]["estimate"] is None
    table = run_fit(str(path), "--y", "y").stdout
    assert table.splitlines()[-1].split()[1:3] == ["n/a", "n/a"]


BAD_FILES = {
    "empty": ("", "empty"),
    "header_only": ("x1,y\n", "no data rows"),
    "missing_value": ("x1,y\n1,2\n2,\n3,5\n4,4\n", "missing value"),
    "text": ("x1,y\n1,2\nabc,3\n3,5\n4,4\n", "not numeric"),
    "constant": (
        "x1,x2,y\n1,1,2\n1,2,3\n1,3,5\n1,5,4\n1,6,7\n",
        "constant.csv: column 'x1' is constant",
    ),
    "identical": (
        "x1,x2,y\n1,1,2\n2,2,3\n3,3,5\n5,5,4\n6,6,7\n",
        "identical.csv: covariates ['x1', 'x2'] are collinear",
    ),
    "too_few_rows": ("x1,x2,y\n1,2,2\n2,1,3\n3,5,5\n", "need at least 4 rows"),
    "blank_lines_only": ("  \n\n", "the file is empty"),
    "no_response_column": ("x1,x2\n1,2\n2,1\n3,5\n4,4\n5,1\n", "no column 'y'"),
    "text_column": (
        "x1,y\nlow,2\nhigh,3\nlow,5\nhigh,4\n",
        "column 'x1' is not numeric ('low', line 2)",
    ),
    # the line of the first value that is not a number, not of the first value
    "text_among_numbers": (
        "x1,y\n1,2\n2,3\n3,5\n4.5.1,4\n5,6\n",
        "text_among_numbers.csv: column 'x1' is not numeric ('4.5.1', line 5)",
    ),
    "infinite_value": ("x1,y\n1,2\n2,inf\n3,5\n4,4\n", "infinite value inf (line 3)"),
    "nan_text": ("x1,y\n1,2\n2,NaN\n3,5\n4,4\n", "missing value (line 3)"),
    # the file's line, blank lines (empty or spaces only, which pandas skips) counted
    "missing_after_blank_lines": (
        "x1,y\n\n1,2\n   \n2,\n3,5\n4,4\n",
        "missing_after_blank_lines.csv: column 'y' has a missing value (line 5)",
    ),
    "text_after_blank_lines": (
        "x1,y\n1,2\n\n\nabc,3\n3,5\n4,4\n",
        "column 'x1' is not numeric ('abc', line 5)",
    ),
    "blank_lines_before_the_header": (
        "\n\nx1,y\n1,2\n2,inf\n3,5\n4,4\n",
        "infinite value inf (line 5)",
    ),
    # a byte-order mark, then a blank line: the header is line 2
    "bom_then_blank_line": (
        "\xef\xbb\xbf\nx1,y\n1,2\n2,\n3,5\n4,4\n",
        "column 'y' has a missing value (line 4)",
    ),
    # a quoted empty value is a row to pandas, not a blank line (as the line before is)
    "quoted_empty_line": ('x1,y\n\n1,2\n""\n2,5\n3,5\n4,4\n', "missing value (line 4)"),
    # a value longer than Python's csv module reads: the line is still named
    "long_text_value": (
        "x1,y,note\n1,2,a\n2,," + "z" * 200_000 + "\n3,5,b\n4,4,c\n5,6,d\n",
        "column 'y' has a missing value (line 3)",
    ),
    "ragged_row": ("x1,y\n1,2\n2,3,4\n3,5\n4,4\n", "cannot parse as CSV"),
    # pandas would read its first column as an index and shift the rest to the left
    "ragged_first_row": (
        "x1,y\n1,2,3\n2,3\n3,5\n4,4\n",
        "cannot parse as CSV (the first data row has 3 fields, the header 2)",
    ),
    "same_name_twice": ("x1,x1,y\n1,1,2\n2,2,3\n3,3,5\n5,5,4\n6,6,7\n", "appears twice"),
    "constant_response": ("x1,y\n1,2\n2,2\n3,2\n4,2\n", "'y' (the response) is constant"),
    "exact_fit": ("x1,y\n1,2\n2,4\n3,6\n4,8\n", "the covariates fit 'y' exactly"),
    # y = 10 + 2x, whose residual sum of squares was 0 to the bit before y was centred:
    # refused before MAP's search over sigma starts
    "exact_fit_to_the_bit": (
        "x,y\n1,12\n2,14\n3,16\n4,18\n5,20\n",
        "the covariates fit 'y' exactly, up to rounding (residual sum of squares ",
    ),
    "not_text": ("\x00\xff\xfe\x81garbage\n", "cannot parse as CSV"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_data_gives_one_line_error(run_fit, tmp_path, case):
    text, expected = BAD_FILES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(text.encode("latin-1"))
    result = run_fit(str(path), "--y", "y")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert expected in lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--y", "nope"], "no column 'nope'"),
        (["--y", "y", "--x", "x9"], "no column 'x9' (columns: ['x1', 'x2', 'y'])"),
        (["--y", "y", "--x", "x1", "x1"], "notebook.csv: covariate column 'x1' is listed twice"),
        (["--y", "y", "--x", "y"], "notebook.csv: column 'y' is both the response and a covariate"),
        (["--y", "y", "--prior-sd", "1", "1"], "--prior-sd: 2 values, expected 3"),
        (["--y", "y", "--prior-sd", "1", "0", "1"], "--prior-sd: values must be > 0"),
        (["--y", "y", "--alpha", "1.5"], "--alpha"),
        # below what the fits resolve: their spread would be rounding
        (
            ["--y", "y", "--prior-mean", "10", "5", "5", "--prior-sd", "1e-40", "1", "1"],
            "--prior-sd: 1e-40 (coefficient 0) is too small: below",
        ),
    ],
)
def test_bad_options_give_one_line_error(run_fit, notebook_csv, args, expected):
    result = run_fit(str(notebook_csv), *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_one_line(notebook_csv):
    # A full disk: one line and status 1, no traceback.
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "regsim", "fit", str(notebook_csv), "--y", "y"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: cannot write: No space left on device"]


def test_a_reader_that_stops_reading_ends_the_command_quietly(notebook_csv):
    # `regsim fit ... | head -1` once head has gone: status 1 and nothing on stderr.
    process = subprocess.Popen(
        [sys.executable, "-m", "regsim", "fit", str(notebook_csv), "--y", "y"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait() == 1
    assert stderr == b""


def test_command_line_entry_point(tmp_path):
    """The real ``python -m regsim`` process: one error line and exit status 1."""
    result = subprocess.run(
        [sys.executable, "-m", "regsim", "fit", str(tmp_path / "absent.csv"), "--y", "y"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'absent.csv'}: file not found"
    ]


def test_a_folder_is_not_read_as_a_csv_file(run_fit, tmp_path):
    result = run_fit(str(tmp_path), "--y", "y")
    assert result.returncode == 1
    assert result.stderr == f"error: {tmp_path}: is a folder, not a CSV file\n"


def test_prior_resolution_does_not_depend_on_a_covariates_units(run_fit, notebook_csv, tmp_path):
    # x1 in units 2^20 times smaller: its coefficient and the prior sd on it scale by
    # 2^-20, and so does the size the check holds the sd against (||X b||/||x_1||), so the
    # same prior is accepted and every fit is the same, rescaled. A sum of |OLS
    # estimates| (22 here) had refused an sd of 1e-3 * 2^-20 below its floor of 2e-7.
    data = pd.read_csv(notebook_csv)
    data["x1"] = np.ldexp(data["x1"], 20)
    scaled_csv = tmp_path / "scaled.csv"
    data.to_csv(scaled_csv, index=False)
    sd = 1e-3
    prior = ["--prior-mean", "0", "0", "0", "--sigma-prior", "jeffreys", "--json"]
    plain = run_fit(str(notebook_csv), "--y", "y", "--prior-sd", "inf", repr(sd), "inf", *prior)
    scaled = run_fit(
        str(scaled_csv), "--y", "y", "--prior-sd", "inf", repr(math.ldexp(sd, -20)), "inf", *prior
    )
    assert plain.returncode == 0 and scaled.returncode == 0, scaled.stderr
    want, got = json.loads(plain.stdout), json.loads(scaled.stdout)
    for method in ("ols", "ols_hc3", "mle", "map", "bayes"):
        for name, factor in (("beta0", 1.0), ("beta1", 2.0**-20), ("beta2", 1.0), ("sigma", 1.0)):
            for key in ("estimate", "se", "lower", "upper"):
                expected = want[method][name][key] * factor
                assert got[method][name][key] == pytest.approx(expected, rel=1e-8, abs=0)


def test_prior_resolution_does_not_depend_on_where_a_covariate_is_centred(run_fit, tmp_path):
    # Shifting x by a constant leaves the slope, its posterior and the fit's size as
    # they were; measured against the uncentred ||x_1|| the floor for the slope's sd fell
    # with the shift (4e-8 at x, none to speak of at x + 1e5), so the same prior was
    # refused at one and accepted at the other. Now both refuse it, with the same floor.
    rng = np.random.default_rng(5)
    z = rng.uniform(size=20)
    y = 1.0 + 2.0 * z + rng.normal(size=20)
    errors = []
    for shift in (0.0, 1e3, 1e5):
        path = tmp_path / f"shift{shift:g}.csv"
        pd.DataFrame({"x": z + shift, "y": y}).to_csv(path, index=False)
        result = run_fit(str(path), "--y", "y", "--prior-sd", "inf", "1e-9")
        assert result.returncode == 1
        errors.append(result.stderr.strip())
    assert errors[0].startswith("error: --prior-sd: 1e-09 (coefficient 1) is too small")
    assert errors[1] == errors[0] and errors[2] == errors[0]
