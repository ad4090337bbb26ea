"""The error-model factor (``grid.errors``) and the HC3 method in the outputs.

Normal-error cells must keep their labels, keys and parameters whether or not the factor is
given, tables gain an ``errors`` column only for non-normal error models, and figures and
paper tables never mix or drop error models.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from test_figures import synthetic_metrics

from regsim import config as cfg
from regsim import figures, tables
from regsim.cells import collect_metrics
from regsim.design import Cell, Unit
from regsim.errors import ConfigError, InputDataError
from regsim.jobs import run_collect, run_simulate
from regsim.schema import METHOD_NAMES
from regsim.specs import CollectJob, FitSpec, SimulateJob
from regsim.study import FIGURE_FAMILIES, Study
from regsim.tableio import read_metrics, read_parquet, select_levels

BETA = [10.0, 3.8987, 10.1777]


def study(**grid: object) -> dict:
    return {"seed": 1, "replications": 4, "beta": BETA, "grid": {"n": [20], "sigma": [1]} | grid}


def cells(config: dict) -> list[Cell]:
    return list(Study(config).cells)


def test_normal_cells_keep_label_key_and_params() -> None:
    cell = Cell(20, 1.0, tuple(BETA))
    old_key = hashlib.sha256(
        json.dumps(
            {"n": 20, "sigma": "1.0", "beta": [repr(b) for b in BETA]},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    ).hexdigest()
    assert cell.key == old_key
    assert cell.label == "n20_sigma1"
    without = cells(study())
    with_factor = cells(study(errors=["normal"]))
    assert without == with_factor == [cell]
    assert [Unit(c, 0, 4).to_plain() for c in without] == [Unit(cell, 0, 4).to_plain()]
    assert Cell.from_canonical(cell.canonical()) == cell
    # adding other error models leaves the normal cell as it was
    mixed = cells(study(errors=["t3", "normal"]))
    assert mixed[0] == cell and mixed[0].canonical() == cell.canonical()


def test_cells_expand_n_sigma_errors_in_error_model_order() -> None:
    config = study(n=[20, 10], sigma=[2, 1], errors=["hetero", "t3", "normal"])
    grid = cells(config)
    assert [(c.n, c.sigma, c.errors) for c in grid[:4]] == [
        (20, 2.0, "normal"),
        (20, 2.0, "t3"),
        (20, 2.0, "hetero"),
        (20, 1.0, "normal"),
    ]
    assert len(grid) == 12
    labels = [c.label for c in grid[:3]]
    assert labels == ["n20_sigma2", "n20_sigma2_t3", "n20_sigma2_hetero"]
    assert len({c.key for c in grid}) == 12
    t3 = grid[1]
    assert Cell.from_canonical(t3.canonical()) == t3


@pytest.mark.parametrize(
    ("errors", "beta", "message"),
    [
        (["cauchy"], BETA, "grid.errors[0]: unknown error model 'cauchy'"),
        (["t3", "t3"], BETA, "grid.errors[1]: duplicate error model 't3'"),
        (["normal", "hetero"], [1.0], "grid.errors[1]: 'hetero' needs a covariate"),
        ([], BETA, "grid.errors: empty list"),
    ],
)
def test_bad_error_models_are_rejected(errors: list, beta: list, message: str) -> None:
    config = study(errors=errors) | {"beta": beta}
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        cfg.check(config)


def test_figure_files_one_per_family_and_error_model() -> None:
    config = study(errors=["normal", "t3"]) | {"alpha": 0.05, "methods": ["ols", "mle"]}
    files = Study(config).figure_files
    defaults = {"errors": "normal", "truth": "beta", "design": "uniform"}
    assert files["bias"] == ("bias", defaults)
    assert files["coverage_t3"] == ("coverage", {**defaults, "errors": "t3"})
    assert files["nested_loop"] == ("nested_loop", {})  # one plot loops over both
    # no Laplace figure without MAP and Bayes
    assert len(files) == 2 * (len(FIGURE_FAMILIES) - 2) + 1 and "laplace" not in files
    assert sorted(FIGURE_FAMILIES) == sorted(figures.FIGURES)


def run_cell(tmp_path: Path, cell: Cell) -> tuple[Path, Path]:
    """Simulate and collect one cell."""
    label = cell.label
    fit = FitSpec(("ols", "ols_hc3", "mle"), (), 0.05)
    chunk = tmp_path / f"{label}.chunk.parquet"
    run_simulate(SimulateJob("n20-1", 7, (Unit(cell, 0, 30),), fit), fits=chunk)
    fits, metrics = tmp_path / f"{label}.fits.parquet", tmp_path / f"{label}.metrics.parquet"
    run_collect(
        CollectJob((label,), 30, 0.05),
        chunks=[chunk],
        fits=[fits],
        metrics=[metrics],
        table=tmp_path / f"{label}.csv",
    )
    return fits, metrics


def test_every_table_has_a_column_for_every_factor(tmp_path: Path) -> None:
    normal = Cell(20, 1.0, tuple(BETA))
    t3 = Cell(20, 1.0, tuple(BETA), errors="t3")
    normal_fits, normal_metrics = run_cell(tmp_path, normal)
    t3_fits, t3_metrics = run_cell(tmp_path, t3)
    factors = ["n", "sigma", "errors", "truth", "design"]
    for path in (normal_fits, normal_metrics, t3_fits, t3_metrics):
        assert list(read_parquet(path).columns[:5]) == factors
    assert set(read_parquet(normal_fits)["errors"]) == {"normal"}
    assert set(read_parquet(t3_fits)["errors"]) == {"t3"}
    assert set(read_parquet(t3_metrics)["truth"]) == {"beta"}
    assert set(read_parquet(t3_metrics)["design"]) == {"uniform"}

    header = "n,sigma,errors,truth,design,prior,method,parameter,true,measure,"
    assert (tmp_path / "n20_sigma1.csv").read_text().startswith(header)
    both = collect_metrics([t3_metrics, normal_metrics])
    assert list(dict.fromkeys(both["errors"])) == ["normal", "t3"]
    assert list(dict.fromkeys(both["method"])) == ["ols", "ols_hc3", "mle"]
    normal_rows = select_levels(both, {"errors": "normal"})
    alone = read_metrics(tmp_path / "n20_sigma1.csv")
    pd.testing.assert_frame_equal(normal_rows, alone, check_dtype=False)
    # the true value of each parameter in the cell sits beside its measures
    truth = both.drop_duplicates(["errors", "parameter"]).set_index(["errors", "parameter"])
    assert truth.loc[("t3", "beta1"), "true"] == BETA[1]
    assert truth.loc[("normal", "sigma"), "true"] == 1.0


def with_errors(metrics: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([metrics.assign(errors=e) for e in ("normal", "t3")], ignore_index=True)


def test_figures_and_tables_refuse_mixed_error_models(tmp_path: Path) -> None:
    mixed = with_errors(synthetic_metrics(ns=(10, 50), priors=("weak",)))
    with pytest.raises(InputDataError, match="several errors levels"):
        figures.FIGURES["bias"](mixed)
    with pytest.raises(InputDataError, match="several errors levels"):
        tables.paper_table(mixed, "bias", "beta1", "markdown")
    written = tables.write_paper_tables(mixed, tmp_path, measures=["bias"], parameters=["beta1"])
    assert [p.name for p in written] == [
        "bias_beta1.tex",
        "bias_beta1.md",
        "bias_beta1_t3.tex",
        "bias_beta1_t3.md",
    ]
    # A slice's LaTeX header names its levels; the default slice's stays as it was.
    headers = [path.read_text().splitlines()[0] for path in written if path.suffix == ".tex"]
    assert headers == [
        "% Bias of the estimators of β1: estimate (Monte Carlo SE). Written by regsim.",
        "% Bias of the estimators of β1: estimate (Monte Carlo SE) (errors t3). Written by regsim.",
    ]
    assert "| σ | n | errors |" in tables.failure_report(
        with_errors(synthetic_metrics(ns=(10,), priors=())).assign(estimate=1.0)
    )


def hc3_metrics() -> pd.DataFrame:
    metrics = synthetic_metrics(ns=(10, 50), priors=("weak",))
    hc3 = metrics[metrics["method"] == "ols"].assign(method="ols_hc3")
    return pd.concat([metrics, hc3], ignore_index=True)


@pytest.mark.parametrize("name", sorted(set(figures.FIGURES) - {"laplace"}))  # MAP vs Bayes
def test_ols_hc3_is_drawn_in_every_figure(name: str) -> None:
    figure = figures.FIGURES[name](hc3_metrics())
    labels = {t.get_text() for legend in figure.legends for t in legend.get_texts()}
    labels |= {
        t.get_text() for ax in figure.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    }
    assert any(label.startswith("OLS (HC3)") for label in labels)
    assert figures.METHOD_COLOURS["ols_hc3"] in figures.OKABE_ITO.values()
    assert len(set(figures.METHOD_COLOURS.values())) == len(figures.METHOD_COLOURS)


def test_ols_hc3_tables_are_written_in_method_order(tmp_path: Path) -> None:
    written = tables.write_paper_tables(
        hc3_metrics(), tmp_path, measures=["coverage"], parameters=["beta1"]
    )
    header = (tmp_path / "coverage_beta1.md").read_text().splitlines()
    row = next(line for line in header if line.startswith("| σ"))
    assert row.index("| OLS |") < row.index("OLS (HC3)") < row.index("MLE") < row.index("MAP")
    assert len(written) == 2
    assert METHOD_NAMES == ("ols", "ols_hc3", "mle", "map", "bayes")
