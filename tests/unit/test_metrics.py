"""Tests of regsim.metrics: reference values from rsimsum / Stata simsum, and properties."""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regsim.errors import InputDataError
from regsim.metrics import MEASURES, _group_ids, summarize

DATA = Path(__file__).resolve().parents[1] / "data"
Z = NormalDist().inv_cdf(0.975)
MISIM_OPTIONS = dict(
    estimate="b",
    se="se",
    true=0.5,
    by=["method"],
    ref="CC",
    method_col="method",
    replicate_col="dataset",
)

# rsimsum vignette "A-introduction" (4 decimals): (measure, method) -> (estimate, mcse).
VIGNETTE = {
    ("relbias", "CC"): (0.0335, 0.0096),
    ("relbias", "MI_LOGT"): (0.0018, 0.0083),
    ("relbias", "MI_T"): (-0.0024, 0.0085),
    ("becoverage", "CC"): (0.9400, 0.0075),
    ("becoverage", "MI_LOGT"): (0.9490, 0.0070),
    ("becoverage", "MI_T"): (0.9430, 0.0073),
    ("relprec", "MI_LOGT"): (31.0463, 3.9375),
    ("relprec", "MI_T"): (26.3682, 3.8424),
}


@pytest.fixture(scope="module")
def misim() -> pd.DataFrame:
    return pd.read_csv(DATA / "MIsim.csv")


@pytest.fixture(scope="module")
def misim_summary(misim: pd.DataFrame) -> pd.DataFrame:
    return summarize(misim, **MISIM_OPTIONS)


def stata_reference() -> list[tuple[str, str, float, float]]:
    stata = pd.read_csv(DATA / "MIsim_res_stata.csv")
    # rsimsum and Stata call the rejection rate "power"
    stata["stat"] = stata["stat"].replace({"cover": "coverage", "power": "rejection"})
    return list(stata[["stat", "method", "est", "mcse"]].itertuples(index=False, name=None))


def lookup(summary: pd.DataFrame, measure: str, method: str) -> tuple[float, float]:
    row = summary[(summary["measure"] == measure) & (summary["method"] == method)]
    assert len(row) == 1, (measure, method)
    return float(row["estimate"].iloc[0]), float(row["mcse"].iloc[0])


def measures_of(summary: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return summary.set_index([*by, "measure"]).sort_index()


# --------------------------------------------------------------------------------------
# Reference values
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("measure", "method", "est", "mcse"), stata_reference())
def test_matches_stata_simsum(misim_summary, measure, method, est, mcse):
    estimate, our_mcse = lookup(misim_summary, measure, method)
    assert estimate == pytest.approx(est, rel=1e-5, abs=1e-7)
    if measure == "relprec" and method != "CC":
        return  # Stata's MCSE uses n - 2; rsimsum's n - 1 is checked against the vignette
    assert our_mcse == pytest.approx(mcse, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize(("measure", "method"), sorted(VIGNETTE))
def test_matches_rsimsum_vignette(misim_summary, measure, method):
    est, mcse = VIGNETTE[(measure, method)]
    estimate, our_mcse = lookup(misim_summary, measure, method)
    assert estimate == pytest.approx(est, abs=5e-5)
    assert our_mcse == pytest.approx(mcse, abs=5e-5)


def test_reference_method_relprec_is_exactly_zero(misim_summary):
    assert lookup(misim_summary, "relprec", "CC") == (0.0, 0.0)


def test_layout_and_order(misim_summary):
    assert list(misim_summary.columns) == ["method", "measure", "estimate", "mcse"]
    expected = [m for m in MEASURES if m != "n_multimodal"]
    assert len(misim_summary) == 3 * len(expected)
    assert list(misim_summary["method"]) == [m for m in ["CC", "MI_LOGT", "MI_T"] for _ in expected]
    assert list(misim_summary["measure"]) == expected * 3
    counts = misim_summary[misim_summary["measure"].isin(["n_reps", "n_failed"])]
    assert counts["mcse"].isna().all()
    assert sorted(counts["estimate"]) == [0, 0, 0, 1000, 1000, 1000]


def test_optional_measures_only_when_asked(misim):
    plain = summarize(misim, estimate="b", se="se", true=0.5, by=["method"])
    assert "relprec" not in set(plain["measure"])
    assert "n_multimodal" not in set(plain["measure"])
    flagged = misim.assign(mm=misim["dataset"] % 10 == 0)
    with_mm = summarize(
        flagged, estimate="b", se="se", true=0.5, by=["method"], multimodal_col="mm"
    )
    counts = with_mm[with_mm["measure"] == "n_multimodal"]
    assert list(counts["estimate"]) == [100.0, 100.0, 100.0]


def test_single_group_without_by(misim):
    cc = misim[misim["method"] == "CC"]
    out = summarize(cc, estimate="b", se="se", true=0.5)
    assert list(out.columns) == ["measure", "estimate", "mcse"]
    grouped = summarize(cc, estimate="b", se="se", true=0.5, by=["method"])
    np.testing.assert_array_equal(out["estimate"], grouped["estimate"])


def test_rmse_and_width_formulas(misim_summary, misim):
    for method in ["CC", "MI_LOGT", "MI_T"]:
        mse, mse_mcse = lookup(misim_summary, "mse", method)
        rmse, rmse_mcse = lookup(misim_summary, "rmse", method)
        assert rmse == pytest.approx(np.sqrt(mse), rel=1e-14)
        assert rmse_mcse == pytest.approx(mse_mcse / (2 * np.sqrt(mse)), rel=1e-14)
        width, width_mcse = lookup(misim_summary, "width", method)
        w = 2 * Z * misim.loc[misim["method"] == method, "se"]
        assert width == pytest.approx(w.mean(), rel=1e-12)
        assert width_mcse == pytest.approx(w.std(ddof=1) / np.sqrt(len(w)), rel=1e-12)


def test_true_col_same_as_scalar(misim, misim_summary):
    options = {**MISIM_OPTIONS, "true": None, "true_col": "theta"}
    out = summarize(misim.assign(theta=0.5), **options)
    pd.testing.assert_frame_equal(out, misim_summary)


def test_row_order_pairing_matches_replicate_pairing(misim, misim_summary):
    options = {**MISIM_OPTIONS, "replicate_col": None}
    out = summarize(misim.sort_values(["method", "dataset"]), **options)
    pd.testing.assert_frame_equal(out, misim_summary, rtol=1e-12)


# --------------------------------------------------------------------------------------
# Failed replicates
# --------------------------------------------------------------------------------------


def test_failed_replicates_are_excluded_and_counted(misim):
    table = misim.assign(converged=True).reset_index(drop=True)
    not_converged = table.index[(table["method"] == "MI_T") & (table["dataset"] <= 7)]
    table.loc[not_converged, "converged"] = False
    table.loc[(table["method"] == "CC") & (table["dataset"] == 20), "b"] = np.nan
    table.loc[(table["method"] == "CC") & (table["dataset"] == 21), "se"] = np.inf
    table.loc[(table["method"] == "MI_LOGT") & (table["dataset"] == 30), "se"] = np.nan
    failed = ~table["converged"] | table["b"].isna() | ~np.isfinite(table["se"])
    assert failed.sum() == 10

    options = {**MISIM_OPTIONS, "converged_col": "converged"}
    with_failed = summarize(table, **options)
    dropped = summarize(table[~failed], **options)
    counts = ["n_reps", "n_failed"]
    a = with_failed[~with_failed["measure"].isin(counts)].reset_index(drop=True)
    b = dropped[~dropped["measure"].isin(counts)].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)

    n_failed = with_failed[with_failed["measure"] == "n_failed"].set_index("method")["estimate"]
    n_reps = with_failed[with_failed["measure"] == "n_reps"].set_index("method")["estimate"]
    assert n_failed.to_dict() == {"CC": 2.0, "MI_LOGT": 1.0, "MI_T": 7.0}
    assert n_reps.to_dict() == {"CC": 998.0, "MI_LOGT": 999.0, "MI_T": 993.0}


def test_failed_interval_rows_are_excluded(misim):
    table = misim.assign(lo=misim["b"] - Z * misim["se"], hi=misim["b"] + Z * misim["se"])
    table.loc[3, "lo"] = np.nan
    out = summarize(table, estimate="b", se="se", true=0.5, by=["method"], lower="lo", upper="hi")
    failed = out[out["measure"] == "n_failed"]["estimate"].sum()
    assert failed == 1


def test_converged_flags_accept_text_and_integers(misim):
    base = misim.assign(conv=np.where(misim["dataset"] == 1, "False", "true"))
    ints = misim.assign(conv=np.where(misim["dataset"] == 1, 0, 1))
    options = dict(estimate="b", se="se", true=0.5, by=["method"], converged_col="conv")
    pd.testing.assert_frame_equal(summarize(base, **options), summarize(ints, **options))
    n_failed = summarize(base, **options).query("measure == 'n_failed'")["estimate"]
    assert list(n_failed) == [1.0, 1.0, 1.0]


def test_group_with_every_replicate_failed():
    table = pd.DataFrame(
        {"g": ["a", "a", "b", "b"], "b": [1.0, 2.0, np.nan, np.nan], "se": [1.0, 1.0, 1.0, 1.0]}
    )
    out = summarize(table, estimate="b", se="se", true=1.5, by=["g"]).set_index(["g", "measure"])
    assert out.loc[("b", "n_reps"), "estimate"] == 0
    assert out.loc[("b", "n_failed"), "estimate"] == 2
    assert np.isnan(out.loc[("b", "bias"), "estimate"])
    assert out.loc[("a", "bias"), "estimate"] == 0.0


# --------------------------------------------------------------------------------------
# Intervals, rejection, special cases
# --------------------------------------------------------------------------------------


def test_interval_columns_equal_to_wald_give_same_measures(misim):
    table = misim.assign(lo=misim["b"] - Z * misim["se"], hi=misim["b"] + Z * misim["se"])
    wald = summarize(table, estimate="b", se="se", true=0.5, by=["method"])
    own = summarize(table, estimate="b", se="se", true=0.5, by=["method"], lower="lo", upper="hi")
    for measure in ["coverage", "becoverage", "rejection", "width"]:
        w = wald[wald["measure"] == measure][["estimate", "mcse"]].to_numpy()
        o = own[own["measure"] == measure][["estimate", "mcse"]].to_numpy()
        np.testing.assert_allclose(o, w, rtol=1e-12, err_msg=measure)


def test_coverage_bounds_inclusive_and_rejection_uses_own_interval():
    table = pd.DataFrame(
        {
            "b": [1.0, 1.0, 1.0, 1.0],
            "se": [0.1, 0.1, 0.1, 0.1],
            "lo": [0.5, 0.0, -1.0, 2.0],
            "hi": [1.0, 2.0, 3.0, 3.0],
        }
    )
    out = summarize(table, estimate="b", se="se", true=1.0, lower="lo", upper="hi")
    out = out.set_index("measure")
    assert out.loc["coverage", "estimate"] == 0.75  # [0.5, 1.0] covers 1.0: inclusive
    assert out.loc["rejection", "estimate"] == 0.5  # 0 lies outside [0.5, 1] and [2, 3]
    assert out.loc["width", "estimate"] == pytest.approx((0.5 + 2 + 4 + 1) / 4)


def test_wald_rejection_counts_ties_as_rejections():
    table = pd.DataFrame({"b": [2.0, 0.5], "se": [2.0 / Z, 1.0]})
    out = summarize(table, estimate="b", se="se", true=1.0).set_index("measure")
    assert out.loc["rejection", "estimate"] == 0.5


def test_relbias_is_nan_when_true_value_is_zero(misim):
    out = summarize(misim, estimate="b", se="se", true=0.0, by=["method"])
    rel = out[out["measure"] == "relbias"]
    assert rel["estimate"].isna().all() and rel["mcse"].isna().all()
    assert out[out["measure"] == "bias"]["estimate"].notna().all()


def test_groups_sorted_with_missing_last():
    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        {
            "prior": ["wide", None, "tight", None, "wide", "tight"] * 5,
            "n": [20, 10, 20, 10, 10, 20] * 5,
            "b": rng.normal(size=30),
            "se": np.ones(30),
        }
    )
    out = summarize(table, estimate="b", se="se", true=0.0, by=["prior", "n"])
    groups = out[["prior", "n"]].drop_duplicates().to_numpy().tolist()
    assert groups[:3] == [["tight", 20], ["wide", 10], ["wide", 20]]
    assert pd.isna(groups[3][0]) and groups[3][1] == 10
    assert len(groups) == 4


def test_group_ids_are_those_of_pandas_groupby() -> None:
    rng = np.random.default_rng(5)
    size = 300
    table = pd.DataFrame(
        {
            "text": rng.choice(np.array(["b", "a", "", None], dtype=object), size),
            "number": rng.choice([2.5, -1.0, np.nan], size),
            "count": rng.integers(0, 4, size),
            "flag": rng.random(size) > 0.5,
        }
    )
    table["category"] = pd.Categorical(
        rng.choice(["y", "x"], size), categories=["y", "x"], ordered=True
    )
    for by in (["text"], ["number", "text"], ["count", "flag", "number"], ["category", "text"]):
        grouped = table.groupby(by, sort=True, dropna=False, observed=True)
        gid, n_groups = _group_ids(table, by)
        np.testing.assert_array_equal(gid, grouped.ngroup().to_numpy())
        assert n_groups == grouped.ngroups


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------

eighths = st.integers(-800, 800).map(lambda k: k / 8)
sixteenths = st.integers(1, 64).map(lambda k: k / 16)


@settings(max_examples=30, deadline=None)
@given(
    b=st.lists(eighths, min_size=3, max_size=30),
    se=st.lists(sixteenths, min_size=30, max_size=30),
    theta=eighths,
    shift=st.integers(-100, 100),
)
def test_translation_equivariance(b, se, theta, shift):
    table = pd.DataFrame({"b": b, "se": se[: len(b)]})
    base = summarize(table, estimate="b", se="se", true=theta).set_index("measure")
    moved = summarize(table.assign(b=table["b"] + shift), estimate="b", se="se", true=theta + shift)
    moved = moved.set_index("measure")
    for measure in ["bias", "empse", "mse", "modelse", "coverage", "becoverage", "width"]:
        np.testing.assert_allclose(
            moved.loc[measure, ["estimate", "mcse"]].to_numpy(float),
            base.loc[measure, ["estimate", "mcse"]].to_numpy(float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=measure,
        )


def _two_method_table(values: list[float]) -> pd.DataFrame:
    k = len(values) // 2
    return pd.DataFrame(
        {
            "method": ["A"] * k + ["B"] * k,
            "rep": list(range(k)) * 2,
            "b": values[: 2 * k],
            "se": [0.5 + abs(v) / 10 for v in values[: 2 * k]],
        }
    )


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.floats(-5, 5, allow_nan=False), min_size=8, max_size=24),
    data=st.data(),
)
def test_row_permutation_changes_nothing(values, data):
    table = _two_method_table(values)
    order = data.draw(st.permutations(range(len(table))))
    options = dict(
        estimate="b",
        se="se",
        true=0.25,
        by=["method"],
        ref="A",
        method_col="method",
        replicate_col="rep",
    )
    base = summarize(table, **options)
    shuffled = summarize(table.iloc[list(order)], **options)
    pd.testing.assert_frame_equal(shuffled, base, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"estimate": "nope"}, "'nope'.*estimate"),
        ({"se": "stderr"}, "'stderr'.*se"),
        ({"by": ["method", "cell"]}, "'cell'.*by"),
        ({"replicate_col": "rep"}, "'rep'.*replicate-col"),
        ({"true": None}, "true"),
        ({"true_col": "theta"}, "'theta'"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": -0.5}, "alpha"),
        ({"ref": "MI_X"}, "'MI_X'.*'method'"),
        ({"method_col": None}, "method_col"),
        ({"by": []}, "method_col 'method' must be one of the by columns"),
        ({"lower": "b"}, "lower and upper"),
    ],
)
def test_bad_options_raise_input_data_error(misim, change, match):
    options = {**MISIM_OPTIONS, **change}
    with pytest.raises(InputDataError, match=match) as info:
        summarize(misim, **options)
    assert "\n" not in str(info.value)


def test_true_given_both_ways_is_an_error(misim):
    with pytest.raises(InputDataError, match="true"):
        summarize(misim.assign(theta=0.5), **{**MISIM_OPTIONS, "true_col": "theta"})


def test_empty_table_is_an_error(misim):
    with pytest.raises(InputDataError, match="no rows"):
        summarize(misim.iloc[:0], **MISIM_OPTIONS)


def test_true_col_must_be_constant_within_group(misim):
    table = misim.assign(theta=np.where(misim["dataset"] == 1, 0.4, 0.5))
    with pytest.raises(InputDataError, match="'theta'.*not constant"):
        summarize(table, **{**MISIM_OPTIONS, "true": None, "true_col": "theta"})
    # without --by the rows are one group: the message says what would split them
    one = misim.loc[misim["method"] == "CC"].assign(
        theta=lambda t: np.where(t["dataset"] == 1, 0.4, 0.5)
    )
    options = {**MISIM_OPTIONS, "true": None, "true_col": "theta", "by": [], "ref": None}
    options["method_col"] = None
    with pytest.raises(InputDataError, match=r"takes several values, and no --by splits"):
        summarize(one, **options)


def test_non_numeric_estimate_is_an_error(misim):
    table = misim.assign(b=misim["b"].astype(str))
    table.loc[5, "b"] = "oops"
    with pytest.raises(InputDataError, match="'b'.*numeric"):
        summarize(table, **MISIM_OPTIONS)


def test_duplicate_replicate_is_an_error(misim):
    table = misim.copy()
    table.loc[0, "dataset"] = 2.0
    with pytest.raises(InputDataError, match="'dataset'.*repeats"):
        summarize(table, **MISIM_OPTIONS)


# --------------------------------------------------------------------------------------
# Paired contrasts against the reference method
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["CC", "MI_LOGT", "MI_T"])
def test_paired_contrasts_equal_direct_computation_on_misim(misim, misim_summary, method):
    """On rsimsum's MIsim data: each contrast is the mean of the per-dataset paired
    differences, its MCSE their sd over √n (no replicate fails there)."""
    wide = misim.pivot(index="dataset", columns="method", values=["b", "se"])
    b, ref = wide["b"][method], wide["b"]["CC"]
    covers = {
        m: (wide["b"][m] - Z * wide["se"][m] <= 0.5) & (0.5 <= wide["b"][m] + Z * wide["se"][m])
        for m in ("CC", method)
    }
    expected = {
        "bias_diff": b - ref,
        "mse_diff": (b - 0.5) ** 2 - (ref - 0.5) ** 2,
        "coverage_diff": covers[method].astype(float) - covers["CC"].astype(float),
    }
    for measure, values in expected.items():
        estimate, mcse = lookup(misim_summary, measure, method)
        assert estimate == pytest.approx(values.mean(), rel=1e-12, abs=1e-15)
        assert mcse == pytest.approx(values.std(ddof=1) / np.sqrt(len(values)), rel=1e-12, abs=0)
    # the paired contrast of bias is the difference of the biases (same replicates) ...
    assert lookup(misim_summary, "bias_diff", method)[0] == pytest.approx(
        lookup(misim_summary, "bias", method)[0] - lookup(misim_summary, "bias", "CC")[0]
    )


def test_pairing_tightens_the_mcse_of_a_contrast(misim_summary):
    """MI and CC analyse the same datasets: their errors correlate, so the paired MCSE of
    the bias difference is well below the independent √(MCSE_m² + MCSE_ref²)."""
    for method in ("MI_LOGT", "MI_T"):
        paired = lookup(misim_summary, "bias_diff", method)[1]
        independent = np.hypot(
            lookup(misim_summary, "bias", method)[1], lookup(misim_summary, "bias", "CC")[1]
        )
        assert paired < 0.8 * independent
    assert lookup(misim_summary, "bias_diff", "CC") == (0.0, 0.0)
    assert lookup(misim_summary, "coverage_diff", "CC") == (0.0, 0.0)


def test_contrasts_pair_only_replicates_where_both_succeeded(misim):
    table = misim.assign(ok=True)
    failed_ref = (table["method"] == "CC") & (table["dataset"] <= 10)
    failed_other = (table["method"] == "MI_T") & table["dataset"].between(5, 30)
    table.loc[failed_ref | failed_other, "ok"] = False
    out = summarize(table, **MISIM_OPTIONS, converged_col="ok")
    both = misim.pivot(index="dataset", columns="method", values="b")
    kept = ~((both.index <= 10) | ((both.index >= 5) & (both.index <= 30)))
    diff = (both["MI_T"] - both["CC"])[kept]
    assert lookup(out, "bias_diff", "MI_T")[0] == pytest.approx(diff.mean(), rel=1e-12)
    assert lookup(out, "bias_diff", "MI_T")[1] == pytest.approx(
        diff.std(ddof=1) / np.sqrt(kept.sum()), rel=1e-12
    )


def test_a_reference_absent_from_a_group_is_one_line(misim):
    two = pd.concat([misim.assign(n=10), misim.assign(n=20)], ignore_index=True)
    two = two.loc[~((two["n"] == 20) & (two["method"] == "CC"))]
    with pytest.raises(InputDataError, match=r"^ref method 'CC' is absent from the group n=20$"):
        summarize(two, **{**MISIM_OPTIONS, "by": ["n", "method"]})


# --------------------------------------------------------------------------------------
# Failure rules
# --------------------------------------------------------------------------------------


def test_the_common_rule_measures_every_method_on_the_same_replicates(misim):
    table = misim.assign(ok=True)
    table.loc[(table["method"] == "MI_T") & (table["dataset"] <= 40), "ok"] = False
    own = summarize(table, **MISIM_OPTIONS, converged_col="ok")
    common = summarize(table, **MISIM_OPTIONS, converged_col="ok", failures="common")
    # own: only MI_T loses its 40; common: every method loses them
    assert lookup(own, "n_reps", "CC")[0] == 1000 and lookup(own, "n_reps", "MI_T")[0] == 960
    for method in ("CC", "MI_LOGT", "MI_T"):
        assert lookup(common, "n_reps", method)[0] == 960
        assert lookup(common, "n_failed", method)[0] == 40
    kept = misim.loc[misim["dataset"] > 40]
    alone = summarize(kept, **MISIM_OPTIONS)
    for measure in ("bias", "empse", "coverage", "mse"):
        for method in ("CC", "MI_LOGT"):
            assert lookup(common, measure, method) == pytest.approx(lookup(alone, measure, method))
    # with no failure the rules agree bit for bit
    pd.testing.assert_frame_equal(
        summarize(misim, **MISIM_OPTIONS), summarize(misim, **MISIM_OPTIONS, failures="common")
    )


def test_under_the_common_rule_a_missing_row_is_a_failed_fit(misim):
    # MI_T's replicate 7 failed; CC simply has no row of replicate 11 (a user's own table
    # may lack one): under the common rule every method leaves out both.
    table = misim.assign(ok=True)
    table.loc[(table["method"] == "MI_T") & (table["dataset"] == 7), "ok"] = False
    table = table.loc[~((table["method"] == "CC") & (table["dataset"] == 11))]
    common = summarize(table, **MISIM_OPTIONS, converged_col="ok", failures="common")
    kept = misim.loc[~misim["dataset"].isin([7, 11])]
    alone = summarize(kept, **MISIM_OPTIONS)
    for method in ("CC", "MI_LOGT", "MI_T"):
        assert lookup(common, "n_reps", method)[0] == 998, method
        for measure in ("bias", "empse", "coverage", "relprec", "bias_diff"):
            assert lookup(common, measure, method) == pytest.approx(
                lookup(alone, measure, method), rel=1e-12, abs=1e-15
            ), (method, measure)
    # the replicates left out, the one CC has no row of included: every method's n_reps
    # and n_failed add up to the replicates of the study
    for method in ("CC", "MI_LOGT", "MI_T"):
        assert lookup(common, "n_failed", method)[0] == 2, method
    # without a replicate column the k-th rows pair: the method with fewer rows leaves
    # its last pair out of every method's measures
    rows = summarize(
        table.drop(columns="dataset"),
        **{**MISIM_OPTIONS, "replicate_col": None},
        converged_col="ok",
        failures="common",
    )
    assert {lookup(rows, "n_reps", m)[0] for m in ("CC", "MI_LOGT", "MI_T")} == {998}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"failures": "other"}, "option failures must be one of own, common, got 'other'"),
        (
            {"failures": "common", "ref": None, "method_col": None},
            "option failures='common' needs method_col",
        ),
    ],
)
def test_bad_failure_rules_are_one_line(misim, options, message):
    with pytest.raises(InputDataError, match=message):
        summarize(misim, **{**MISIM_OPTIONS, **options})


# --------------------------------------------------------------------------------------
# Robust measures
# --------------------------------------------------------------------------------------


def test_robust_measures_equal_direct_computation(misim, misim_summary):
    for method, group in misim.groupby("method"):
        b = group["b"].to_numpy()
        median = np.median(b)
        assert lookup(misim_summary, "median_bias", method)[0] == median - 0.5
        mad = np.median(np.abs(b - median))
        assert lookup(misim_summary, "mad_empse", method)[0] == pytest.approx(1.4826022 * mad)
    # for normal estimates the scaled MAD estimates the SD, within its MCSE
    draws = np.random.default_rng(5).normal(2.0, 3.0, 20_000)
    out = summarize(pd.DataFrame({"b": draws, "se": 3.0}), estimate="b", true=2.0)
    estimate, mcse = lookup(out.assign(method="all"), "mad_empse", "all")
    assert abs(estimate - 3.0) < 4 * mcse
    estimate, mcse = lookup(out.assign(method="all"), "median_bias", "all")
    assert abs(estimate) < 4 * mcse


@pytest.mark.parametrize("distribution", ["normal", "t3"])
def test_robust_mcses_agree_with_repeated_simulations(distribution):
    """Brute force: 600 simulations of 400 replicates. The spread of the estimates over
    the simulations is what the MCSE of one simulation estimates; their ratio is within
    the precision the 600 repeats allow (an sd from 600 values is good to about 3%)."""
    rng = np.random.default_rng(20231)
    repeats, replicates = 600, 400
    if distribution == "normal":
        draws = rng.standard_normal((repeats, replicates))
    else:
        draws = rng.standard_t(3, (repeats, replicates))
    table = pd.DataFrame(
        {
            "sim": np.repeat(np.arange(repeats), replicates),
            "estimate": draws.ravel(),
            "se": 1.0,
        }
    )
    out = summarize(table, true=0.0, by=["sim"]).set_index(["sim", "measure"])
    for measure in ("median_bias", "mad_empse"):
        rows = out.xs(measure, level="measure")
        spread = rows["estimate"].std(ddof=1)
        typical = rows["mcse"].mean()
        assert typical / spread == pytest.approx(1.0, abs=0.12), (measure, typical, spread)


def test_the_sparsity_is_the_quantile_functions_difference_quotient():
    """median_bias's MCSE is ŝ/(2√n) with ŝ = (b_(j) − b_(i))/((j − i)/n), i and j the
    order statistics at ½ ∓ h, h = 0.97156 n^(−1/3): the module docstring's formula."""
    b = np.random.default_rng(11).standard_t(4, 37)
    n = len(b)
    h = NormalDist().inv_cdf(0.975) ** (2 / 3) * (1.5 / (2 * np.pi)) ** (1 / 3) * n ** (-1 / 3)
    assert h * n ** (1 / 3) == pytest.approx(0.97156, abs=1e-5)
    i, j = int(np.ceil(n * (0.5 - h))), int(np.ceil(n * (0.5 + h)))
    ordered = np.sort(b)
    sparsity = (ordered[j - 1] - ordered[i - 1]) / ((j - i) / n)
    out = summarize(pd.DataFrame({"b": b, "se": 1.0}), estimate="b", true=0.0)
    _, mcse = lookup(out.assign(method="all"), "median_bias", "all")
    assert mcse == pytest.approx(sparsity / (2 * np.sqrt(n)), rel=1e-12)


def _two_methods(ok_a: int, ok_b: int) -> pd.DataFrame:
    """Methods A (the reference) and B on six replicates, the first ``ok_*`` successful."""
    rng = np.random.default_rng(3)
    replicate = np.arange(6)
    tables = []
    for name, ok in (("A", ok_a), ("B", ok_b)):
        b = rng.normal(size=6)
        tables.append(
            pd.DataFrame({"m": name, "rep": replicate, "b": b, "se": 1.0, "ok": replicate < ok})
        )
    return pd.concat(tables)


PAIRED = dict(
    estimate="b", true=0.0, by=["m"], ref="A", method_col="m", replicate_col="rep",
    converged_col="ok",
)  # fmt: skip


def test_a_reference_with_one_success_has_no_relprec():
    """Its EmpSE does not exist, so neither does a gain in precision over it (not 0 ± 0);
    its paired contrasts with itself are 0, with the MCSE of one value: NaN."""
    out = summarize(_two_methods(1, 6), **PAIRED).rename(columns={"m": "method"})
    assert np.isnan(lookup(out, "empse", "A")[0])
    assert all(np.isnan(lookup(out, "relprec", "A")))
    for measure in ("bias_diff", "mse_diff", "coverage_diff"):
        estimate, mcse = lookup(out, measure, "A")
        assert estimate == 0.0 and np.isnan(mcse)
    full = summarize(_two_methods(6, 6), **PAIRED).rename(columns={"m": "method"})
    assert lookup(full, "relprec", "A") == (0.0, 0.0)


def test_relprec_from_two_pairs_has_no_mcse():
    """Two pairs are perfectly correlated whatever the methods: ρ² = 1 would make the
    MCSE 0. From three pairs on it is a number."""
    two = summarize(_two_methods(6, 2), **PAIRED).rename(columns={"m": "method"})
    estimate, mcse = lookup(two, "relprec", "B")
    assert np.isfinite(estimate) and np.isnan(mcse)
    three = summarize(_two_methods(6, 3), **PAIRED).rename(columns={"m": "method"})
    assert np.isfinite(lookup(three, "relprec", "B")[1])
    assert lookup(three, "relprec", "B")[1] > 0


def test_a_single_replicate_has_no_spread():
    """One replicate: EmpSE and the scaled MAD both NaN (a MAD of 0 is no estimate)."""
    out = summarize(pd.DataFrame({"b": [1.2], "se": [0.5]}), estimate="b", true=1.0)
    out = out.assign(method="all")
    assert np.isnan(lookup(out, "empse", "all")[0])
    assert np.isnan(lookup(out, "mad_empse", "all")[0])


@pytest.mark.parametrize("b", [[1.81, 0.3], [0.5, 0.1], [3.25, -7.0], [0.1, 0.2]])
def test_two_replicates_give_a_mad_but_no_mcse_of_it(b):
    # Two values' absolute deviations from their median are equal, so the sparsity at the
    # MAD is 0 but for rounding: the MCSE is NaN, whatever the values (it had been NaN or
    # about 1e-16 by their last bits), and the MAD itself is half their distance, scaled.
    out = summarize(pd.DataFrame({"b": b, "se": [0.5, 0.5]}), estimate="b", true=1.0)
    estimate, mcse = lookup(out.assign(method="all"), "mad_empse", "all")
    assert estimate == pytest.approx(1.482602218505602 * abs(b[0] - b[1]) / 2)
    assert np.isnan(mcse)
    three = pd.DataFrame({"b": [*b, 0.7], "se": [0.5] * 3})
    mcse = lookup(
        summarize(three, estimate="b", true=1.0).assign(method="all"), "mad_empse", "all"
    )[1]
    assert np.isfinite(mcse) and mcse > 0


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    equal=st.booleans(),
    data=st.data(),
)
def test_values_sorted_by_group_are_lexsorts(sizes, equal, data) -> None:
    """The medians' sort (rows of a padded array when the groups are about equal, lexsort
    otherwise) orders every group's values as ``np.lexsort((values, gid))`` does: ties,
    infinities, NaN and empty groups included."""
    from regsim.metrics import _sorted_by_group

    if equal:
        sizes = [sizes[0]] * len(sizes)
    gid = np.repeat(np.arange(len(sizes)), sizes)
    gid = np.array(data.draw(st.permutations(list(gid))), dtype=np.int64)
    values = np.array(
        data.draw(
            st.lists(
                st.sampled_from([0.0, -0.5, 1.5, 2.0, np.inf, -np.inf, np.nan])
                | st.floats(-1e3, 1e3),
                min_size=len(gid),
                max_size=len(gid),
            )
        ),
        dtype=float,
    )
    ordered, starts, counts = _sorted_by_group(gid, values, len(sizes))
    expected = values[np.lexsort((values, gid))]
    np.testing.assert_array_equal(ordered, expected)  # NaN equals NaN here
    assert counts.tolist() == list(sizes)
    assert starts.tolist() == np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()


@pytest.mark.parametrize("case", ["unequal", "many_groups"])
def test_values_sorted_by_group_at_the_sorts_edges(case: str) -> None:
    """The two cases the property test above does not reach: groups far from equal (one
    of 3000 values beside two of one, sorted by lexsort) and more groups than a 16-bit
    id holds (70 000, sorted as rows)."""
    from regsim.metrics import _sorted_by_group

    rng = np.random.default_rng(5)
    sizes = [3000, 1, 1] if case == "unequal" else [2] * 70_000
    gid = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    values = rng.normal(size=len(gid))
    ordered, starts, counts = _sorted_by_group(gid, values, len(sizes))
    np.testing.assert_array_equal(ordered, values[np.lexsort((values, gid))])
    assert counts.tolist() == sizes


#: Each measure's power of the estimates' units: a table scaled by c gives c^power times
#: the measure and its MCSE.
_UNITS = {
    "mse": 2,
    "mse_diff": 2,
    **dict.fromkeys(
        ("bias", "median_bias", "empse", "mad_empse", "modelse", "rmse", "width", "bias_diff"), 1
    ),
}


def _scaled_summary(power: int) -> pd.DataFrame:
    rng = np.random.default_rng(12)
    table = pd.DataFrame(
        {
            "method": np.repeat(["a", "b"], 200),
            "estimate": np.ldexp(2.0 + rng.standard_t(5, size=400), power),
            "se": np.ldexp(rng.uniform(0.8, 1.2, size=400), power),
        }
    )
    return summarize(table, estimate="estimate", se="se", true=np.ldexp(2.0, power), by=["method"])


@pytest.mark.parametrize("power", [-200, 230])
def test_measures_scale_exactly_with_the_table_up_to_their_bounds(power):
    # Estimates, SEs and the truth times 2^power (errors near 6e-61 and 2e69): every
    # measure and MCSE is 2^power to its units' power times the unit table's, bit for
    # bit, so nothing under- or overflows inside; unitless measures are unchanged.
    unit, far = _scaled_summary(0), _scaled_summary(power)
    assert list(far["measure"]) == list(unit["measure"])
    for column in ("estimate", "mcse"):
        scale = [_UNITS.get(m, 0) * power for m in unit["measure"]]
        expected = np.ldexp(unit[column].to_numpy(), scale)
        np.testing.assert_array_equal(far[column].to_numpy(), expected)


@pytest.mark.parametrize(("power", "words"), [(-240, "underflow"), (260, "overflow")])
def test_magnitudes_beyond_the_fourth_powers_are_one_line_errors(power, words):
    # Errors near 1e-100 had given an MSE whose MCSE was 0, near 1e100 an infinite one.
    with pytest.raises(InputDataError, match=f"would {words}") as caught:
        _scaled_summary(power)
    assert "\n" not in str(caught.value)
