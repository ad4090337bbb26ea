"""The protocol, and any replicate on demand: regsim protocol, dataset and refit."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_config import schema_validate

from regsim import config as cfg
from regsim.jobs import run_collect, run_simulate
from regsim.protocol import protocol_markdown
from regsim.simulate import draw
from regsim.study import Study
from regsim.tableio import read_parquet

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())

#: A small study of two truths, two designs and every kind of method, MAP failures forced.
STUDY = {
    "seed": 99,
    "replications": 30,
    "aims": "How the Laplace interval fares against the exact posterior under conflict.",
    "truths": {"seed": [10.0, 3.8987, 10.1777], "null": [10.0, 0.0, 10.1777]},
    "designs": {"collinear": {"covariates": "normal", "rho": 0.8}},
    "grid": {"n": [12, 30], "sigma": [1, 5], "design": ["uniform", "collinear"]},
    "priors": {
        "weak": {"mean": [0, 0, 0], "sd": [100, 100, 100]},
        "skeptical": {"mean": [0, 0, 0], "sd": [1, 1, 1]},
    },
    "methods": ["ols", "ols_hc3", "mle", "map", "bayes"],
    "map_max_iter": 3,
}


def study(layer: dict) -> Study:
    config = cfg.resolve([copy.deepcopy(DEFAULTS), copy.deepcopy(layer)], validate=schema_validate)
    return Study.from_config(config)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "regsim", *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small study's config.yaml, and its fits tables as the workflow writes them."""
    root = tmp_path_factory.mktemp("study")
    (root / "config.yaml").write_text(yaml.safe_dump(STUDY))
    s = study(STUDY)
    chunks = []
    for name in s.plan:
        chunk = root / "results" / "chunks" / f"{name}.parquet"
        run_simulate(s.simulate_job(name), fits=chunk)
        chunks.append(chunk)
    labels = list(s.labels)
    run_collect(
        s.collect_job,
        chunks=chunks,
        fits=[root / "results" / "fits" / f"{label}.parquet" for label in labels],
        metrics=[root / "results" / "metrics" / f"{label}.parquet" for label in labels],
        table=root / "results" / "tables" / "metrics.csv",
    )
    return root


# --------------------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------------------


def test_the_protocol_states_every_part_of_ademp() -> None:
    text = protocol_markdown(study(STUDY))
    for heading in (
        "## Aims",
        "## Data-generating mechanisms",
        "## Estimands",
        "## Methods",
        "## Performance measures",
        "## Replications and Monte Carlo error",
        "## Failed replicates",
    ):
        assert heading in text
    assert STUDY["aims"] in text
    assert "16 data cells" in text  # 2 n × 2 σ × 2 truths × 2 designs
    assert "`null`: β = (10, 0, 10.1777)" in text
    assert "`collinear`: x_i ~ N(0, R), R equicorrelated with ρ = 0.8" in text
    assert "**Bayes** (`bayes`)" in text and "| `skeptical` | (0, 0, 0) | (1, 1, 1) |" in text
    # R = 30: coverage MCSE √(0.05 · 0.95 / 30), bias MCSE EmpSE / √30
    assert "= 0.0398 (at worst, p = ½: 0.0913)" in text and "0.1826 × EmpSE" in text
    assert "mad_empse" in text and "coverage_diff" in text  # the measures' table
    assert "failure rule `own`" in text


def test_the_protocol_is_a_function_of_the_configuration_alone() -> None:
    text = protocol_markdown(study(STUDY))
    assert protocol_markdown(study(STUDY)) == text
    reordered = copy.deepcopy(STUDY)
    reordered["truths"] = dict(reversed(list(STUDY["truths"].items())))
    reordered["priors"] = dict(reversed(list(STUDY["priors"].items())))
    assert protocol_markdown(study(reordered)) == text  # provenance.json sorts mappings
    assert protocol_markdown(study({**STUDY, "failures": "common"})) != text
    assert "Not stated (config key `aims`)." in protocol_markdown(study({}))


def test_the_protocol_command_prints_what_the_workflow_writes(results: Path) -> None:
    shown = cli("protocol", cwd=results)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == protocol_markdown(study(STUDY))
    (results / "bad.yaml").write_text("replications: 1\n")
    bad = cli("protocol", "--configfile", "bad.yaml", cwd=results)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "config error: replications: 1 is less than the minimum of 2"
    ]


# --------------------------------------------------------------------------------------
# Any replicate on demand
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "replicate"), [("n12_sigma1_null_collinear", 7), ("n30_sigma5_seed", 29)]
)
def test_refit_prints_the_fits_tables_numbers_to_the_bit(
    results: Path, label: str, replicate: int
) -> None:
    shown = cli("refit", "--cell", label, "--replicate", str(replicate), "--json", cwd=results)
    assert shown.returncode == 0, shown.stderr
    printed = json.loads(shown.stdout)
    fits = read_parquet(results / "results" / "fits" / f"{label}.parquet")
    rows = fits.loc[fits["replicate"] == replicate]
    assert len(rows) == sum(len(v) for v in printed.values())
    for r in rows.to_dict("records"):
        series = r["method"] if not r["prior"] else f"{r['method']}:{r['prior']}"
        got = printed[series][r["parameter"]]
        for key in ("estimate", "se", "lower", "upper"):
            expected = None if not np.isfinite(r[key]) else r[key]
            assert got[key] == expected, (series, r["parameter"], key)
        assert got["converged"] == bool(r["converged"])
    assert set(printed) >= {"ols", "ols_hc3", "mle", "map:weak", "bayes:skeptical"}


def test_the_dataset_is_drawn_again_from_the_seed(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "replicate.csv"
    label = "n30_sigma1_null_collinear"
    shown = cli("dataset", "--cell", label, "--replicate", "3", "--out", str(out), cwd=results)
    assert shown.returncode == 0, shown.stderr
    table = pd.read_csv(out)
    cell = study(STUDY).labels[label]
    data = draw(cell, STUDY["seed"], 3, 4)
    assert list(table.columns) == ["x1", "x2", "y"] and len(table) == 30
    np.testing.assert_array_equal(table[["x1", "x2"]].to_numpy(), data.x[0])
    np.testing.assert_array_equal(table["y"].to_numpy(), data.y[0])
    again = cli("dataset", "--cell", label, "--replicate", "3", "--out", str(out), cwd=results)
    assert again.returncode == 1 and "exists; refusing to replace it" in again.stderr
    typo = tmp_path / "typo" / "replicate.csv"
    lost = cli("dataset", "--cell", label, "--replicate", "3", "--out", str(typo), cwd=results)
    assert lost.returncode == 1 and lost.stderr.strip().endswith(
        "does not exist; nothing was written"
    )
    assert not typo.parent.exists()
    folder = cli("dataset", "--cell", label, "--replicate", "3", "--out", "typo/", cwd=results)
    assert folder.returncode == 2 and "typo/ names a folder" in folder.stderr
    assert not (results / "typo").exists()
    assert not (results / "results" / "datasets").exists()  # nothing read from results/


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cell", "n13_sigma1", "--replicate", "0"],
            "--cell: no cell 'n13_sigma1' in this study; cells: n12_sigma1",
        ),
        (
            ["--cell", "n12_sigma1_seed", "--replicate", "30"],
            "--replicate: 30 is out of range; cell n12_sigma1_seed has replicates 0 to 29",
        ),
        (["--cell", "n12_sigma1_seed", "--replicate", "-1"], "--replicate: -1 is out of range"),
        (
            ["--cell", "n12_sigma1_seed", "--replicate", "0", "--method", "lasso"],
            "--method: 'lasso' is not a method of this study",
        ),
    ],
)
def test_a_replicate_that_does_not_exist_is_one_line(results: Path, args, message) -> None:
    shown = cli("refit", *args, cwd=results)
    assert shown.returncode == 1
    lines = shown.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}")


@pytest.fixture()
def recorded(results: Path, tmp_path: Path) -> Path:
    """A folder whose config.yaml is the small study with seed 7, and whose results/ holds
    the fixture's fits (drawn with seed 99) and a run record saying seed 99."""
    from regsim.provenance import write_provenance

    root = tmp_path / "study"
    (root / "results" / "fits").mkdir(parents=True)
    for fits in (results / "results" / "fits").iterdir():
        (root / "results" / "fits" / fits.name).write_bytes(fits.read_bytes())
    (root / "config.yaml").write_text(yaml.safe_dump({**STUDY, "seed": 7}))
    write_provenance(root / "results" / "provenance.json", study(STUDY).config, [], repo=root)
    return root


@pytest.mark.parametrize("command", ["refit", "dataset"])
def test_a_replicate_of_another_seed_than_the_recorded_runs_is_refused(
    recorded: Path, command: str
) -> None:
    where = ["--cell", "n12_sigma1_seed", "--replicate", "4"]
    shown = cli(command, *where, cwd=recorded)
    assert shown.returncode == 1 and shown.stdout == ""
    assert shown.stderr.strip().splitlines() == [
        "error: results/provenance.json: the run recorded there used seed 99; these config "
        "layers give seed 7; pass the --configfile and --config that run was given"
    ]
    # With the run's own --config, the replicate is the one in results/: to the bit.
    extra = ["--json"] if command == "refit" else []
    again = cli(command, *where, "--config", "seed=99", *extra, cwd=recorded)
    assert again.returncode == 0, again.stderr
    if command == "dataset":
        data = draw(study(STUDY).labels["n12_sigma1_seed"], 99, 4, 5)
        table = pd.read_csv(io.StringIO(again.stdout))
        np.testing.assert_array_equal(table["y"].to_numpy(), data.y[0])
    else:
        fits = read_parquet(recorded / "results" / "fits" / "n12_sigma1_seed.parquet")
        row = fits.loc[(fits["replicate"] == 4) & (fits["method"] == "ols")]
        printed = json.loads(again.stdout)["ols"]
        for r in row.to_dict("records"):
            assert printed[r["parameter"]]["estimate"] == r["estimate"]


def test_the_order_priors_and_methods_are_listed_in_is_not_another_fit(
    results: Path, tmp_path: Path
) -> None:
    # A config.yaml listing the priors in another order than the run's record (a record
    # of format 1 sorted them by name) is still the run's, and so is one listing the
    # methods otherwise.
    from regsim.provenance import write_provenance

    listed = copy.deepcopy(STUDY)  # weak before skeptical
    recorded = {**listed, "priors": dict(reversed(list(listed["priors"].items())))}
    assert list(listed["priors"]) != list(recorded["priors"])
    root = tmp_path / "study"
    (root / "results" / "fits").mkdir(parents=True)
    for fits in (results / "results" / "fits").iterdir():
        (root / "results" / "fits" / fits.name).write_bytes(fits.read_bytes())
    (root / "config.yaml").write_text(yaml.safe_dump(listed, sort_keys=False))
    write_provenance(root / "results" / "provenance.json", study(recorded).config, [], repo=root)
    # the record keeps the order it was given
    assert list(
        json.loads((root / "results" / "provenance.json").read_text())["config"]["priors"]
    ) == list(recorded["priors"])
    label, replicate = "n12_sigma1_null", 5
    for extra in ([], ["--config", f"methods={list(reversed(STUDY['methods']))}"]):
        shown = cli(
            "refit", "--cell", label, "--replicate", str(replicate), "--json", *extra, cwd=root
        )
        assert shown.returncode == 0, shown.stderr
        printed = json.loads(shown.stdout)
        fits = read_parquet(root / "results" / "fits" / f"{label}.parquet")
        rows = fits.loc[(fits["replicate"] == replicate) & (fits["method"] == "map")]
        assert len(rows) == 8
        for r in rows.to_dict("records"):
            assert printed[f"map:{r['prior']}"][r["parameter"]]["estimate"] == r["estimate"]
    # A prior of another sd is another fit, whatever the order.
    other = {**listed["priors"], "weak": {"mean": [0, 0, 0], "sd": [10, 10, 10]}}
    shown = cli(
        "refit", "--cell", label, "--replicate", "0", "--config", f"priors={other}", cwd=root
    )
    assert shown.returncode == 1
    assert "with other methods, priors or settings" in shown.stderr


@pytest.mark.parametrize(
    ("config", "command", "message"),
    [
        (
            ["truths={seed: [10.0, 3.8987, 10.1777], null: [10, 1, 10]}"],
            "dataset",
            "drew cell n12_sigma1_null with other data-generating parameters",
        ),
        (
            ["priors={weak: {mean: [0, 0, 0], sd: [10, 10, 10]}}"],
            "refit",
            "fitted cell n12_sigma1_null with other methods, priors or settings",
        ),
    ],
)
def test_a_replicate_drawn_or_fitted_otherwise_than_the_recorded_runs_is_refused(
    recorded: Path, config: list[str], command: str, message: str
) -> None:
    where = ["--cell", "n12_sigma1_null", "--replicate", "0", "--config", "seed=99", *config]
    shown = cli(command, *where, cwd=recorded)
    assert shown.returncode == 1
    lines = shown.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    # Other priors change no dataset: dataset draws it.
    if command == "refit":
        assert cli("dataset", *where, cwd=recorded).returncode == 0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("seed", "config error: --config seed: not KEY=VALUE"),
        ("replications=1", "config error: replications: 1 is less than the minimum"),
    ],
)
def test_a_bad_config_entry_is_one_line(results: Path, entry: str, message: str) -> None:
    shown = cli(
        "dataset", "--cell", "n12_sigma1_seed", "--replicate", "0", "--config", entry, cwd=results
    )
    assert shown.returncode == 1
    lines = shown.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
