"""Paired contrasts, failure rules and robust measures in the workflow's own tables."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_config import schema_validate

from regsim import config as cfg
from regsim import figures
from regsim.cells import summarize_cell
from regsim.design import Cell, Prior
from regsim.errors import ConfigError
from regsim.fits import fit_table
from regsim.sensitivity import failure_sensitivity, sensitivity_markdown, write_failure_sensitivity
from regsim.simulate import draw
from regsim.specs import FitSpec
from regsim.study import Study
from regsim.tables import pairing_note, paper_table

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())
BETA = (10.0, 3.8987, 10.1777)
PRIORS = (
    Prior("weak", (0.0, 0.0, 0.0), (100.0, 100.0, 100.0)),
    Prior("skeptical", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
)
#: Three Newton steps: the skeptical prior's MAP fails on some replicates at n = 30.
SPEC = FitSpec(("ols", "mle", "map"), PRIORS, 0.05, map_max_iter=3)


@pytest.fixture(scope="module")
def fits() -> pd.DataFrame:
    cell = Cell(30, 0.5, BETA)
    table = fit_table(draw(cell, 7, 0, 300), SPEC)
    assert (~table["converged"]).any()
    return table


def study(**layer) -> Study:
    return Study.from_config(
        cfg.resolve([copy.deepcopy(DEFAULTS), layer], validate=schema_validate)
    )


# --------------------------------------------------------------------------------------
# A cell's metrics
# --------------------------------------------------------------------------------------


def test_a_cells_contrasts_pair_every_prior_with_the_reference(fits) -> None:
    metrics = summarize_cell(fits, 0.05, reference="ols")
    rows = metrics.set_index(["prior", "method", "parameter", "measure"])
    for prior, method in (("", "mle"), ("weak", "map"), ("skeptical", "map")):
        mine = fits.loc[(fits["prior"] == prior) & (fits["method"] == method)]
        ref = fits.loc[(fits["prior"] == "") & (fits["method"] == "ols")]
        for parameter in ("beta1", "sigma"):
            a = mine.loc[mine["parameter"] == parameter].set_index("replicate")
            b = ref.loc[ref["parameter"] == parameter].set_index("replicate")
            both = a["converged"] & b["converged"]
            diff = (a["estimate"] - b["estimate"])[both]
            estimate = rows.loc[(prior, method, parameter, "bias_diff"), "estimate"]
            mcse = rows.loc[(prior, method, parameter, "bias_diff"), "mcse"]
            assert estimate == pytest.approx(diff.mean(), rel=1e-12, abs=1e-14)
            assert mcse == pytest.approx(diff.std(ddof=1) / math.sqrt(both.sum()), rel=1e-10)
    ols = metrics.loc[(metrics["method"] == "ols") & metrics["measure"].str.endswith("_diff")]
    assert len(ols) == 3 * 4 and (ols["estimate"] == 0).all() and (ols["mcse"] == 0).all()


def test_the_common_rule_leaves_every_fit_the_same_replicates(fits) -> None:
    own = summarize_cell(fits, 0.05, reference="ols")
    common = summarize_cell(fits, 0.05, reference="ols", failures="common")
    used = common.loc[common["measure"] == "n_reps", "estimate"]
    failed_anywhere = fits.loc[~fits["converged"], "replicate"].nunique()
    assert set(used) == {300 - failed_anywhere}
    own_used = own.loc[own["measure"] == "n_reps"].set_index(["prior", "method"])["estimate"]
    assert own_used.loc[("", "ols")].iloc[0] == 300
    assert own_used.loc[("skeptical", "map")].iloc[0] == 300 - failed_anywhere
    with pytest.raises(Exception, match="failures must be one of own, common"):
        summarize_cell(fits, 0.05, failures="other")


# --------------------------------------------------------------------------------------
# The failure rules side by side
# --------------------------------------------------------------------------------------


def test_the_sensitivity_table_has_both_rules_of_every_failing_cell(fits, tmp_path) -> None:
    quiet = fit_table(draw(Cell(30, 5.0, BETA), 7, 0, 50), FitSpec(("ols", "mle"), (), 0.05))
    tables = {"n30_sigma0.5": fits, "n30_sigma5": quiet}
    metrics = pd.concat(
        [summarize_cell(t, 0.05, reference="ols") for t in tables.values()], ignore_index=True
    )
    table = failure_sensitivity(metrics, tables.__getitem__, 0.05, "ols")
    assert set(table["sigma"]) == {0.5}  # the cell without a failure is left out
    assert set(table["measure"]) == {"bias", "empse", "rmse", "coverage"}
    ols = table.loc[(table["method"] == "ols") & (table["parameter"] == "beta1")]
    assert (ols["own_replicates"] == 300).all()
    assert (ols["common_replicates"] < 300).all()
    # each side is the cell's own metrics under that rule
    common = summarize_cell(fits, 0.05, failures="common").set_index(
        ["prior", "method", "parameter", "measure"]
    )
    for r in table.to_dict("records"):
        key = (r["prior"], r["method"], r["parameter"], r["measure"])
        assert r["common"] == common.loc[key, "estimate"]
    text = sensitivity_markdown(table)
    assert "| 30 | 0.5 | OLS | beta1 | bias |" in text
    write_failure_sensitivity(
        metrics, tables.__getitem__, 0.05, tmp_path / "s.csv", tmp_path / "s.md"
    )
    back = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert len(back) == len(table) and back["own"].tolist() == table["own"].tolist()
    none = failure_sensitivity(metrics.loc[metrics["sigma"] == 5.0], tables.__getitem__, 0.05)
    assert none.empty and "No replicate failed." in sensitivity_markdown(none)


# --------------------------------------------------------------------------------------
# Paper tables and the efficiency figure
# --------------------------------------------------------------------------------------


def test_a_contrast_table_says_how_much_pairing_tightened_its_mcses(fits) -> None:
    metrics = summarize_cell(fits, 0.05, reference="ols")
    note = pairing_note(metrics, "bias_diff", "beta1", "ols")
    assert note is not None and note.startswith("MCSEs are paired")
    mle = metrics.set_index(["method", "prior", "parameter", "measure"])
    independent = math.hypot(
        mle.loc[("mle", "", "beta1", "bias"), "mcse"], mle.loc[("ols", "", "beta1", "bias"), "mcse"]
    )
    assert mle.loc[("mle", "", "beta1", "bias_diff"), "mcse"] < independent / 100  # MLE = OLS
    assert pairing_note(metrics, "bias", "beta1", "ols") is None
    assert note in paper_table(metrics, "bias_diff", "beta1", "markdown", reference="ols")
    latex = paper_table(metrics, "bias_diff", "beta1", "latex", reference="ols")
    assert r"MCSEs are paired" in latex and r"$\surd$" in latex


def test_the_efficiency_figure_uses_the_paired_covariance(fits) -> None:
    metrics = summarize_cell(fits, 0.05, reference="ols")
    plain = metrics.loc[~metrics["measure"].str.endswith("_diff")]

    def bars(table: pd.DataFrame) -> np.ndarray:
        figure = figures.efficiency_figure(table, parameters=["beta1"])
        lengths = []
        for ax in figure.axes:
            for collection in ax.collections:
                for segment in getattr(collection, "get_segments", list)():
                    lengths.append(abs(segment[1][1] - segment[0][1]))
        return np.array(lengths)

    paired, independent = bars(metrics), bars(plain)
    assert paired.sum() < independent.sum()


# --------------------------------------------------------------------------------------
# Configuration and the command line
# --------------------------------------------------------------------------------------


def test_reference_failures_and_table_measures_reach_the_jobs() -> None:
    s = study(reference="mle", failures="common", tables={"measures": ["bias", "mse_diff"]})
    assert s.collect_job.reference == "mle" and s.collect_job.failures == "common"
    assert s.paper_job.reference == "mle"
    assert "mse_diff_beta1.md" in s.paper_tables and "coverage_beta1.md" not in s.paper_tables
    assert study().collect_job.reference == "ols" and study().collect_job.failures == "own"


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            {"reference": "lasso"},
            "reference: 'lasso' is not one of the study's methods (ols, mle, map)",
        ),
        ({"reference": "map"}, "reference: 'map' is fitted once per prior"),
        ({"failures": "other"}, "failures: 'other' is not one of"),
        ({"tables": {"measures": ["accuracy"]}}, "tables.measures[0]: 'accuracy' is not a measure"),
    ],
)
def test_bad_settings_are_one_line(layer, message) -> None:
    with pytest.raises(ConfigError) as info:
        study(**layer)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_usage_error_of_the_command_line_is_one_line(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "regsim",
            "summarize",
            "in.csv",
            "out.csv",
            "--true",
            "0",
            "--failures",
            "other",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--failures: invalid choice: 'other'" in lines[0]
