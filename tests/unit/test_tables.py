"""Tests of ``regsim.tables``: the rounding rule and the LaTeX and Markdown layouts."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from latex import compile_table
from test_figures import synthetic_metrics

from regsim import tables
from regsim.errors import InputDataError
from regsim.schema import short_number

NS = (10, 50, 200)
SIGMAS = (1.0, 5.0)


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    return synthetic_metrics(ns=NS, sigmas=SIGMAS, priors=("weak", "informative"))


# --------------------------------------------------------------------------------------
# Rounding rule
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimate", "mcse", "text"),
    [
        (0.04567, 0.0123, "0.046 (0.012)"),  # leading digit 1: two significant figures
        (0.9512, 0.0068, "0.951 (0.007)"),  # leading digit 6: one
        (12.345, 0.25, "12.35 (0.25)"),  # leading digit 2: two; half rounds up
        (1234.5, 340.0, "1200 (300)"),  # rounded to hundreds
        (-0.0004, 0.0123, "0.000 (0.012)"),  # no negative zero
        (-1.23456, 0.045, "-1.23 (0.05)"),
        (0.125, 0.05, "0.13 (0.05)"),  # half away from zero on the decimal value
        (0.9512, 0.0096, "0.951 (0.010)"),  # MCSE rounding up keeps its decimal place
        (1.0, 0.0, "1.000 (0.000)"),  # zero MCSE (coverage of 1)
        (200.0, np.nan, "200"),  # a count: no MCSE
        # beyond the 10^15 place, with an exponent at the MCSE's place (quantize had
        # failed beyond 1e28 in decimal's default 28 digits, stopping the paper job)
        (2.04e27, 6.1e26, "2.0e+27 (6e+26)"),
        (-1.2345e200, 2.2e198, "-1.235e+200 (2.2e+198)"),
        (1.7e308, 1e307, "1.70e+308 (1.0e+307)"),
        (5e16, 3e15, "50000000000000000 (3000000000000000)"),  # the 10^15 place: in full
        (1e100, 0.0, "1.000e+100 (0)"),
        (0.5, np.nan, "0.5"),
    ],
)
def test_rounding_rule_examples(estimate: float, mcse: float, text: str) -> None:
    assert tables.format_cell(estimate, mcse) == text


@pytest.mark.parametrize("exponent", range(0, 308, 7))
def test_every_magnitude_rounds_to_the_mcses_place(exponent: int) -> None:
    # Whatever the size (sigma may be up to 1e100, its MSE 1e200): the text reads back
    # within half a unit of the MCSE's rounding place.
    estimate, mcse = 1.2345678 * 10.0**exponent, 0.0345 * 10.0**exponent
    text = tables.format_cell(estimate, mcse)
    shown, shown_mcse = text.split(" (")
    place = 10.0 ** (-tables.mcse_decimals(mcse))
    assert abs(float(shown) - estimate) <= 0.5 * place * (1 + 1e-12)
    assert float(shown_mcse.rstrip(")")) == pytest.approx(0.03 * 10.0**exponent)
    assert len(shown) < 30


@pytest.mark.parametrize(
    ("value", "text"),
    [(5.0, "5"), (0.5, "0.5"), (1e-05, "1e-05"), (1e15, "1000000000000000"), (1e60, "1e+60")],
)
def test_grid_values_are_short(value: float, text: str) -> None:
    # a large sigma is printed with its exponent, not its 61 digits
    assert short_number(value) == text


def test_missing_estimate_has_no_text() -> None:
    assert tables.format_cell(np.nan, 0.1) is None


@pytest.mark.parametrize(
    ("mcse", "decimals"), [(0.0123, 3), (0.0456, 2), (0.25, 2), (3.4, 0), (23.0, 0), (340.0, -2)]
)
def test_mcse_decimals(mcse: float, decimals: int) -> None:
    assert tables.mcse_decimals(mcse) == decimals


def test_mcse_decimals_rejects_non_positive() -> None:
    with pytest.raises(ValueError):
        tables.mcse_decimals(0.0)


# --------------------------------------------------------------------------------------
# LaTeX
# --------------------------------------------------------------------------------------


def body_rows(latex: str) -> list[str]:
    """The data rows: lines between \\midrule and \\bottomrule that end a row."""
    lines = latex.splitlines()
    start, stop = lines.index(r"\midrule"), lines.index(r"\bottomrule")
    return [line for line in lines[start + 1 : stop] if line.endswith(r"\\")]


def test_latex_table_is_booktabs_with_a_row_per_sigma_and_n(metrics: pd.DataFrame) -> None:
    latex = tables.paper_table(metrics, "bias", "beta1", "latex")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){5-6}"):
        assert rule in latex
    assert latex.count(r"\begin{tabular}{rrrrrr}") == 1
    assert latex.rstrip().endswith(r"\end{tabular}")
    assert r"\multicolumn{2}{c}{MAP}" in latex
    assert r"$\sigma$ & $n$ & OLS & MLE & weak & informative \\" in latex
    rows = body_rows(latex)
    assert len(rows) == len(NS) * len(SIGMAS)
    assert all(row.count("&") == 5 for row in rows)
    assert latex.count(r"\addlinespace") == len(SIGMAS) - 1
    assert rows[0].startswith("1 & 10 & ") and rows[1].startswith(" & 50 & ")
    for command in (r"\hline", r"\multirow", r"\num", r"\SI"):
        assert command not in latex  # nothing beyond booktabs


def test_latex_cells_match_the_rounding_rule(metrics: pd.DataFrame) -> None:
    latex = tables.paper_table(metrics, "rmse", "beta1", "latex")
    row = metrics.query(
        "measure == 'rmse' and parameter == 'beta1' and method == 'ols' and n == 10 and sigma == 1"
    ).iloc[0]
    cell = tables.format_cell(row["estimate"], row["mcse"]).replace("-", "$-$")
    assert body_rows(latex)[0].split(" & ")[2] == cell


def test_latex_negative_numbers_use_math_minus(metrics: pd.DataFrame) -> None:
    table = metrics.copy()
    table.loc[table["measure"] == "bias", "estimate"] = -0.5
    latex = tables.paper_table(table, "bias", "beta1")
    assert "$-$0.5" in latex and " -0.5" not in latex


def test_latex_caption_and_label_wrap_a_table_float(metrics: pd.DataFrame) -> None:
    latex = tables.paper_table(metrics, "coverage", "sigma", caption="Coverage", label="tab:cov")
    lines = latex.splitlines()
    assert lines[:4] == [r"\begin{table}", r"\centering", r"\caption{Coverage}", r"\label{tab:cov}"]
    assert lines[-1] == r"\end{table}"


def test_latex_escapes_prior_names(metrics: pd.DataFrame) -> None:
    table = metrics.replace({"prior": {"weak": "very_weak"}})
    assert r"very\_weak" in tables.paper_table(table, "bias", "beta1")


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------


def test_markdown_table_has_a_row_per_cell_and_a_column_per_series(metrics: pd.DataFrame) -> None:
    markdown = tables.paper_table(metrics, "coverage", "beta2", "markdown")
    lines = markdown.rstrip("\n").splitlines()
    assert lines[0] == "| σ | n | OLS | MLE | MAP (weak) | MAP (informative) |"
    assert lines[1] == "|---:|---:|---:|---:|---:|---:|"
    assert len(lines) == 2 + len(NS) * len(SIGMAS)
    assert all(line.count("|") == 7 for line in lines)
    assert lines[2].startswith("| 1 | 10 | ")
    assert lines[-1].startswith("| 5 | 200 | ")


def test_missing_cells_show_a_dash_and_a_note(metrics: pd.DataFrame) -> None:
    table = metrics.loc[
        ~((metrics["method"] == "mle") & (metrics["n"] == 50) & (metrics["sigma"] == 5))
    ].copy()
    failed = (table["prior"] == "weak") & (table["n"] == 10) & (table["measure"] == "bias")
    table.loc[failed, ["estimate", "mcse"]] = np.nan
    markdown = tables.paper_table(table, "bias", "beta1", "markdown")
    lines = markdown.splitlines()
    assert len([line for line in lines if line.startswith("| ")]) == 1 + len(NS) * len(SIGMAS)
    assert markdown.count("| — |") + markdown.count("| — ") >= 3
    assert "no estimate (3 cells" in lines[-1]
    latex = tables.paper_table(table, "bias", "beta1", "latex")
    assert len(body_rows(latex)) == len(NS) * len(SIGMAS)
    assert "& -- " in latex and "% --: no estimate (3 cells" in latex


def test_prior_read_back_as_nan_is_handled(metrics: pd.DataFrame, tmp_path) -> None:
    path = tmp_path / "metrics.csv"
    metrics.to_csv(path, index=False)
    assert tables.paper_table(pd.read_csv(path), "bias", "beta1", "markdown") == (
        tables.paper_table(metrics, "bias", "beta1", "markdown")
    )


def test_bad_arguments_raise(metrics: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="fmt"):
        tables.paper_table(metrics, "bias", "beta1", "html")  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="no measure 'nonsense'"):
        tables.paper_table(metrics, "nonsense", "beta1")
    with pytest.raises(InputDataError, match="no parameter 'beta9'"):
        tables.paper_table(metrics, "bias", "beta9")
    with pytest.raises(InputDataError, match="duplicate rows"):
        tables.paper_table(pd.concat([metrics, metrics.head(1)]), "bias", "beta0")


def test_write_paper_tables_writes_tex_and_md_per_measure_and_parameter(
    metrics: pd.DataFrame, tmp_path
) -> None:
    paths = tables.write_paper_tables(metrics, tmp_path / "tables", parameters=["beta1", "sigma"])
    names = [p.name for p in paths]
    assert names == [
        f"{m}_{p}.{ext}"
        for m in ("bias", "coverage", "rmse")
        for p in ("beta1", "sigma")
        for ext in ("tex", "md")
    ]
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(names)
    assert (tmp_path / "tables" / "rmse_sigma.md").read_text(encoding="utf-8") == (
        tables.paper_table(metrics, "rmse", "sigma", "markdown")
    )
    every = tables.write_paper_tables(metrics, tmp_path / "all", measures=["bias"])
    assert [p.stem for p in every[::2]] == ["bias_beta0", "bias_beta1", "bias_beta2", "bias_sigma"]


def test_expected_design_adds_rows_and_columns_absent_from_the_table(
    metrics: pd.DataFrame,
) -> None:
    expected = {"n": [10, 50, 200, 1000], "sigma": [1, 5], "methods": ["ols", "mle", "map"]}
    expected["priors"] = ["weak", "informative", "skeptical"]
    markdown = tables.paper_table(metrics, "bias", "beta1", "markdown", expected=expected)
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert lines[0].endswith("| MAP (skeptical) |")
    assert len(lines) == 2 + 4 * 2
    assert "| 1 | 1000 | — | — | — | — | — |" in lines
    assert "no estimate (16 cells" in markdown  # n = 1000: 2 rows x 5; skeptical: 6 more
    with pytest.raises(InputDataError, match="unknown key"):
        tables.paper_table(metrics, "bias", "beta1", expected={"cells": [1]})


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_table_compiles_with_booktabs_only(metrics: pd.DataFrame, tmp_path) -> None:
    table = metrics.copy()
    table.loc[table["measure"] == "bias", "estimate"] *= -1  # negative numbers too
    body = tables.paper_table(table, "bias", "beta1", caption="Bias of $\\hat\\beta_1$")
    result = compile_table(body, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
