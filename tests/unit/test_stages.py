"""The workflow's stages chained by hand, without Snakemake: specs, simulate and collect
jobs under several plans, the one cell writer, table I/O, logs."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from regsim import cells as cell_tables
from regsim import fits as fitting
from regsim import workflow
from regsim.design import Cell, Prior, Unit, plan_jobs
from regsim.errors import DataFileError, InputDataError, RegsimError
from regsim.jobs import run_collect, run_simulate
from regsim.schema import (
    FIT_KEY,
    GROUP_FIELDS,
    MEASURES,
    SORT_KEYS,
    cell_label,
    format_number,
    metrics_columns,
)
from regsim.sensitivity import fits_reader, write_failure_sensitivity
from regsim.simulate import draw, load_datasets
from regsim.specs import CollectJob, FitSpec, PaperJob, SimulateJob, fits_fingerprint
from regsim.tableio import (
    check_metrics,
    read_metrics,
    read_parquet,
    select_levels,
    sort_table,
    write_metrics_csv,
    write_parquet,
)

BETA = (10.0, 3.8987, 10.1777)
PRIORS = (
    Prior("weak", (0.0, 0.0, 0.0), (100.0, 100.0, 100.0)),
    Prior("flat", (0.0, 0.0, 0.0), (math.inf, math.inf, math.inf)),
)
FIT = FitSpec(("ols", "mle", "map"), PRIORS, 0.05)
CELLS = (Cell(12, 1.0, BETA), Cell(30, 0.5, BETA))
REPLICATIONS = 40
FITS_PER_REPLICATE = 2 + len(PRIORS)


# --------------------------------------------------------------------------------------
# Names and specs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1, "1"),
        (1.0, "1"),
        (10.0, "10"),
        (0.5, "0.5"),
        (0.1, "0.1"),
        (1e-5, "1e-05"),
        (2.5e-7, "2.5e-07"),
        (123456.75, "123456.75"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text
    assert float(format_number(value)) == float(value)


def test_format_number_is_unambiguous() -> None:
    values = [0.1, 0.1 + 1e-16, 1 / 3, 2.0, 1e-20]
    assert len({format_number(v) for v in values}) == len(set(values))


def test_cell_labels() -> None:
    assert Cell(20, 1.0, BETA).label == "n20_sigma1" == cell_label({"n": 20, "sigma": 1})
    assert Cell(50, 0.5, BETA, errors="t3").label == "n50_sigma0.5_t3"
    assert Cell(50, 0.5, BETA, errors="normal").label == "n50_sigma0.5"


def test_specs_round_trip_through_params() -> None:
    (job,) = plan_jobs(CELLS[:1], REPLICATIONS, 10**6)
    spec = SimulateJob("n12-1", 7, job.units, FIT)
    assert SimulateJob.from_params(spec.to_params()) == spec
    collect = CollectJob(("n12_sigma1",), REPLICATIONS, 0.05)
    assert CollectJob.from_params(collect.to_params()) == collect
    designs = {"fixed": {"covariates": "normal", "rho": 0.5, "fixed": True}}
    collect = CollectJob(("n12_sigma1",), REPLICATIONS, 0.05, "ols", "common", 4, designs, 11)
    assert CollectJob.from_params(collect.to_params()) == collect
    paper = PaperJob(
        figures=(("bias", {"errors": "normal"}),),
        figure_options={"bias": {}},
        expected={"n": [12]},
        alpha=0.05,
        p=3,
        measures=("bias",),
        parameters=("beta0",),
        slices=({"errors": "normal"},),
    )
    assert PaperJob.from_params(paper.to_params()) == paper


def test_a_unit_with_a_changed_cell_is_refused() -> None:
    plain = Unit(CELLS[0], 0, 5).to_plain()
    plain["cell"]["n"] = 13
    with pytest.raises(ValueError, match="does not match key"):
        Unit.from_plain(plain)


# --------------------------------------------------------------------------------------
# Simulate and collect, chained by hand under several plans
# --------------------------------------------------------------------------------------


def run_study(
    root: Path,
    budget: int,
    *,
    keep_datasets: bool = True,
    fit: FitSpec = FIT,
    reference: str | None = None,
    failures: str = "own",
) -> Path:
    """Plan, simulate and collect the two cells as the workflow does; return ``root``."""
    jobs = plan_jobs(CELLS, REPLICATIONS, budget)
    chunks = []
    for job in jobs:
        spec = SimulateJob(job.name, 7, job.units, fit)
        chunk = root / "chunks" / f"{job.name}.parquet"
        datasets = root / "datasets" / f"{job.name}.npz" if keep_datasets else None
        run_simulate(spec, fits=chunk, datasets=datasets)
        chunks.append(chunk)
    labels = [cell.label for cell in CELLS]
    fingerprints = tuple(fits_fingerprint(cell, 7, fit) for cell in CELLS)
    run_collect(
        CollectJob(
            tuple(labels), REPLICATIONS, 0.05, reference, failures, fingerprints=fingerprints
        ),
        chunks=chunks,
        fits=[root / "fits" / f"{label}.parquet" for label in labels],
        metrics=[root / "metrics" / f"{label}.parquet" for label in labels],
        table=root / "tables" / "metrics.csv",
        sensitivity=(
            root / "tables" / "failures_sensitivity.csv",
            root / "tables" / "failures_sensitivity.md",
        ),
        workers=2,
    )
    return root


#: Budgets (replicates × n): both cells in one job each n, and replicate ranges of 7 and
#: of 13 (some jobs start inside the cell, one ends short).
PLANS = {"whole": 10**6, "sevens": 7 * 30, "uneven": 13 * 12}
OUTPUTS = (
    "fits/n12_sigma1.parquet",
    "fits/n30_sigma0.5.parquet",
    "metrics/n12_sigma1.parquet",
    "metrics/n30_sigma0.5.parquet",
    "tables/metrics.csv",
    "tables/failures_sensitivity.csv",
    "tables/failures_sensitivity.md",
)


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {name: run_study(tmp_path_factory.mktemp(name), b) for name, b in PLANS.items()}


def test_the_plan_does_not_change_any_output(studies: dict[str, Path], tmp_path: Path) -> None:
    assert len(list((studies["sevens"] / "chunks").glob("*.parquet"))) > 2
    lean = run_study(tmp_path / "lean", PLANS["uneven"], keep_datasets=False)
    assert not (lean / "datasets").exists()
    for other in (studies["sevens"], studies["uneven"], lean):
        for relative in OUTPUTS:
            assert (other / relative).read_bytes() == (studies["whole"] / relative).read_bytes()


def test_simulate_writes_the_datasets_it_fits(studies: dict[str, Path]) -> None:
    for name in ("whole", "sevens"):
        units = [
            data
            for path in sorted((studies[name] / "datasets").glob("*.npz"))
            for data in load_datasets(path)
        ]
        for cell in CELLS:
            mine = sorted((d for d in units if d.cell == cell), key=lambda d: d.replicates[0])
            drawn = draw(cell, 7, 0, REPLICATIONS)
            assert all(d.base_seed == 7 for d in mine)
            np.testing.assert_array_equal(np.concatenate([d.replicates for d in mine]), range(40))
            np.testing.assert_array_equal(np.concatenate([d.x for d in mine]), drawn.x)
            np.testing.assert_array_equal(np.concatenate([d.y for d in mine]), drawn.y)


def _simulate_in_a_new_process(job: SimulateJob, fits: Path, quantiles: list) -> list[str]:
    """Run ``job`` in a fresh Python given ``quantiles``; return the scipy modules it
    imported."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from regsim.jobs import run_simulate\n"
        "from regsim.specs import SimulateJob\n"
        "job = SimulateJob.from_params(json.loads(sys.argv[1]))\n"
        "run_simulate(job, fits=sys.argv[2], quantiles=json.loads(sys.argv[3]))\n"
        "print(json.dumps([m for m in sys.modules if m.startswith('scipy')]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(job.to_params()), str(fits), json.dumps(quantiles)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def test_a_simulate_job_given_its_quantiles_writes_the_same_chunk_without_scipy(
    tmp_path: Path,
) -> None:
    """The workflow gives a simulate job the t and chi-square quantiles of its OLS fits
    (a rule's params): the job then imports no scipy (half of its time went to
    scipy.special's import), and its chunk is the bytes of a job computing its own. Given
    by another version of scipy (an environment of the job's own), they are not used."""
    import importlib.metadata

    job = SimulateJob("n12-1", 7, (Unit(CELLS[0], 0, REPLICATIONS),), FIT)
    quantiles = job.ols_quantiles()
    keys = job.ols_quantile_keys()
    assert [name for name, *_ in keys] == ["t_upper", "chi2_upper", "chi2_quantile"]
    assert keys[0][1:] == (9.0, 0.05)  # n - p = 12 - 3
    assert quantiles[0] == importlib.metadata.version("scipy") and len(quantiles) == 4
    run_simulate(job, fits=tmp_path / "own.parquet")
    assert _simulate_in_a_new_process(job, tmp_path / "given.parquet", quantiles) == []
    assert (tmp_path / "given.parquet").read_bytes() == (tmp_path / "own.parquet").read_bytes()
    # Another scipy's numbers, even wrong ones, are left alone: the job computes its own.
    other = ["0.0.1", *(value * 2 for value in quantiles[1:])]
    assert "scipy.special" in _simulate_in_a_new_process(job, tmp_path / "other.parquet", other)
    assert (tmp_path / "other.parquet").read_bytes() == (tmp_path / "own.parquet").read_bytes()
    assert (
        SimulateJob("x", 7, job.units, FitSpec(("mle", "map"), PRIORS, 0.05)).ols_quantiles() == []
    )


def test_remembered_quantiles_are_taken_and_refuse_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scipy.special import gammaincinv, stdtrit

    from regsim.estimators import base

    given = base.ols_quantiles(17, 0.1)
    assert given[0] == float(stdtrit(17, 0.95))
    assert given[2] == 2.0 * float(gammaincinv(8.5, 0.05))
    # A remembered value is the one returned (made up here, to tell it from scipy's).
    monkeypatch.setattr(base, "_QUANTILES", {})
    base.remember_quantiles(base.ols_quantile_keys(17, 0.1), [1.5, 2.5, 3.5])
    assert (base.t_upper(17, 0.1), base.chi2_upper(0.1, 17)) == (1.5, 2.5)
    assert base.chi2_quantile(0.05, 17) == 3.5 and base.t_upper(18, 0.1) == float(stdtrit(18, 0.95))
    with pytest.raises(ValueError, match="not a quantile"):
        base.remember_quantiles([("ndtri", 0.5, 1.0)], [0.0])
    with pytest.raises(ValueError, match="not a quantile"):
        base.remember_quantiles([("t_upper", 3.0, 0.05)], [math.nan])
    with pytest.raises(ValueError, match="2 quantiles given for 3"):
        base.remember_quantiles(base.ols_quantile_keys(3, 0.05), [1.0, 2.0])
    job = SimulateJob("n12-1", 7, (Unit(CELLS[0], 0, REPLICATIONS),), FIT)
    version = job.ols_quantiles()[0]
    with pytest.raises(ValueError, match="2 quantiles given for 3"):
        job.take_quantiles([version, 1.0, 2.0])
    assert not job.take_quantiles([])


def test_fitting_in_small_batches_gives_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, studies: dict[str, Path]
) -> None:
    monkeypatch.setattr(fitting, "FIT_BATCH_REPLICATES", 3)
    root = run_study(tmp_path, PLANS["whole"])
    for relative in OUTPUTS:
        assert (root / relative).read_bytes() == (studies["whole"] / relative).read_bytes()


def test_a_cell_over_the_memory_budget_gives_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, studies: dict[str, Path]
) -> None:
    # too many rows to combine in memory: read and summarized a fit at a time
    monkeypatch.setattr(cell_tables, "WHOLE_CELL_ROWS", REPLICATIONS * 4 * FITS_PER_REPLICATE - 1)
    root = run_study(tmp_path, PLANS["sevens"])
    for relative in OUTPUTS:
        assert (root / relative).read_bytes() == (studies["whole"] / relative).read_bytes()


#: MAP under a conflicting prior, capped at three Newton steps: five of its fits in the
#: n = 30 cell fail, so the failure rules differ there.
FAILING_FIT = FitSpec(
    ("ols", "mle", "map"),
    (*PRIORS, Prior("skeptical", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))),
    0.05,
    map_max_iter=3,
)


@pytest.mark.parametrize("failures", ["own", "common"])
@pytest.mark.parametrize("budget", ["per_parameter", "some_fits"])
def test_paired_measures_and_failure_rules_are_the_same_a_fit_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: str, budget: str
) -> None:
    """A cell summarized a fit at a time pairs each fit with the reference's rows kept
    aside, and finds the replicates any fit failed on: the same bytes as in memory."""
    options = {"fit": FAILING_FIT, "reference": "ols", "failures": failures}
    whole = run_study(tmp_path / "whole", PLANS["whole"], **options)
    metrics = read_metrics(whole / "tables" / "metrics.csv")
    assert {"relprec", "bias_diff", "mse_diff", "coverage_diff"} <= set(metrics["measure"])
    failed = metrics.loc[metrics["measure"] == "n_failed"]
    assert failed["estimate"].max() > 0  # the cap makes some MAP fits fail
    if failures == "common":  # every fit of a cell leaves out the same replicates
        per_cell = failed.groupby(["n", "sigma"])["estimate"].agg(["min", "max"])
        assert (per_cell["min"] == per_cell["max"]).all()
    ols = metrics.loc[(metrics["method"] == "ols") & metrics["measure"].str.endswith("_diff")]
    assert (ols["estimate"] == 0).all() and (ols["mcse"] == 0).all()
    # a fit per call, one parameter at a time; or two fits per call
    rows = REPLICATIONS * 4 - 1 if budget == "per_parameter" else 2 * REPLICATIONS * 4
    monkeypatch.setattr(cell_tables, "WHOLE_CELL_ROWS", rows)
    by_fit = run_study(tmp_path / "by_fit", PLANS["sevens"], **options)
    for relative in OUTPUTS:
        assert (by_fit / relative).read_bytes() == (whole / relative).read_bytes(), relative


@pytest.mark.parametrize("failures", ["own", "common"])
def test_cells_summarized_together_give_the_files_of_each_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failures: str
) -> None:
    """Both cells in one summary call give the bytes of each cell written alone, under
    either failure rule (replicates fail in one cell only, so a rule applied across cells
    would change the other's measures)."""
    options = {"fit": FAILING_FIT, "reference": "ols", "failures": failures}
    alone = run_study(tmp_path / "alone", PLANS["sevens"], **options)
    sources = cell_tables.cell_sources(sorted((alone / "chunks").glob("*.parquet")))
    calls = []
    summarize = cell_tables.summarize_cell
    monkeypatch.setattr(
        cell_tables,
        "summarize_cell",
        lambda fits, *a, **k: calls.append(1) or summarize(fits, *a, **k),
    )
    together = tmp_path / "together"
    cells = [
        cell_tables.CellFiles(
            sources[cell.label],
            together / f"{cell.label}.fits",
            together / f"{cell.label}.metrics",
        )
        for cell in CELLS
    ]
    rows = cell_tables.write_cells(cells, 0.05, reference="ols", failures=failures)
    assert len(calls) == 1
    assert rows == [REPLICATIONS * 4 * (FITS_PER_REPLICATE + 1)] * len(CELLS)
    for cell in CELLS:
        for kind in ("fits", "metrics"):
            mine = (together / f"{cell.label}.{kind}").read_bytes()
            assert mine == (alone / kind / f"{cell.label}.parquet").read_bytes(), (cell, kind)


def test_collect_sets_the_failure_rules_side_by_side(tmp_path: Path) -> None:
    """The collect job's table of both failure rules is the one recomputed from
    metrics.csv and the failing cell's table of fits, as `regsim verify` does."""
    root = run_study(tmp_path / "run", PLANS["sevens"], fit=FAILING_FIT, reference="ols")
    written = pd.read_csv(root / "tables" / "failures_sensitivity.csv")
    assert set(written["n"]) == {30}  # the cell with failed MAP fits, and only it
    assert (written["own_replicates"] >= written["common_replicates"]).all()
    assert (written["own_replicates"] > written["common_replicates"]).any()
    again = tmp_path / "again"
    again.mkdir()
    labels = [cell.label for cell in CELLS]
    write_failure_sensitivity(
        read_metrics(root / "tables" / "metrics.csv"),
        fits_reader({label: root / "fits" / f"{label}.parquet" for label in labels}),
        0.05,
        again / "failures_sensitivity.csv",
        again / "failures_sensitivity.md",
        "ols",
    )
    for name in ("failures_sensitivity.csv", "failures_sensitivity.md"):
        assert (again / name).read_bytes() == (root / "tables" / name).read_bytes()


def test_chunks_list_their_units_with_a_row_group_per_fit(studies: dict[str, Path]) -> None:
    for path in sorted((studies["sevens"] / "chunks").glob("*.parquet")):
        meta = cell_tables.chunk_units(path)
        assert meta["job"] == path.stem
        source = pq.ParquetFile(path)
        for unit in meta["units"]:
            first, last = unit["row_groups"]
            keys = []
            for index in range(first, last):
                group = source.read_row_group(index, columns=["n", *FIT_KEY]).to_pandas()
                assert len(group.drop_duplicates()) == 1
                assert group["n"].iloc[0] == int(unit["label"][1:].split("_")[0])
                keys.append(tuple(group[list(FIT_KEY)].iloc[0]))
            assert len(set(keys)) == FITS_PER_REPLICATE
            rows = (unit["stop"] - unit["start"]) * 4 * FITS_PER_REPLICATE
            assert unit["rows"] == rows


def test_collect_refuses_chunks_that_miss_or_repeat_replicates(
    studies: dict[str, Path], tmp_path: Path
) -> None:
    chunks = sorted((studies["sevens"] / "chunks").glob("*.parquet"))
    labels = ("n12_sigma1", "n30_sigma0.5")
    outputs = {
        "fits": [tmp_path / f"{label}.fits" for label in labels],
        "metrics": [tmp_path / f"{label}.metrics" for label in labels],
        "table": tmp_path / "metrics.csv",
    }
    job = CollectJob(labels, REPLICATIONS, 0.05)
    for wrong in (chunks[1:], [*chunks, chunks[0]]):
        with pytest.raises(DataFileError, match="not 0-39 once each"):
            run_collect(job, chunks=wrong, **outputs)
    assert not any(tmp_path.iterdir())


def test_collect_refuses_a_chunk_another_study_made(
    studies: dict[str, Path], tmp_path: Path
) -> None:
    """A chunk of the same cells and replicates, drawn with another seed, with another
    truth of the same name or fitted with other priors, is named and refused: Snakemake
    only sees a file newer than its inputs."""
    ours = sorted((studies["whole"] / "chunks").glob("*.parquet"))
    (job,) = [j for j in plan_jobs(CELLS, REPLICATIONS, PLANS["whole"]) if j.name == ours[0].stem]
    labels = tuple(cell.label for cell in CELLS)
    collect = CollectJob(
        labels,
        REPLICATIONS,
        0.05,
        fingerprints=tuple(fits_fingerprint(cell, 7, FIT) for cell in CELLS),
    )
    other_truth = tuple(
        dataclasses.replace(unit, cell=dataclasses.replace(unit.cell, beta=(10.0, 0.0, 10.1777)))
        for unit in job.units
    )
    assert [u.cell.label for u in other_truth] == [u.cell.label for u in job.units]
    others = {
        "seed": SimulateJob(job.name, 8, job.units, FIT),
        "truth": SimulateJob(job.name, 7, other_truth, FIT),
        "priors": SimulateJob(job.name, 7, job.units, dataclasses.replace(FIT, priors=PRIORS[:1])),
    }
    for what, spec in others.items():
        foreign = tmp_path / what / ours[0].name
        run_simulate(spec, fits=foreign)
        out = tmp_path / what / "out"
        outputs = {
            "fits": [out / f"{label}.fits" for label in labels],
            "metrics": [out / f"{label}.metrics" for label in labels],
            "table": out / "metrics.csv",
        }
        with pytest.raises(DataFileError) as refused:
            run_collect(collect, chunks=[foreign, *ours[1:]], **outputs)
        assert str(refused.value).startswith(
            f"{foreign}: its fits of cell {job.units[0].cell.label} are not this study's"
        )
        assert not out.exists()
    # Every chunk of another study is named in the one message, here two of them.
    jobs = {j.name: j for j in plan_jobs(CELLS, REPLICATIONS, PLANS["whole"])}
    both = []
    for chunk in ours[:2]:
        both.append(tmp_path / "two" / chunk.name)
        run_simulate(SimulateJob(chunk.stem, 8, jobs[chunk.stem].units, FIT), fits=both[-1])
    out = tmp_path / "two" / "out"
    outputs = {
        "fits": [out / f"{label}.fits" for label in labels],
        "metrics": [out / f"{label}.metrics" for label in labels],
        "table": out / "metrics.csv",
    }
    with pytest.raises(DataFileError) as refused:
        run_collect(collect, chunks=[*both, *ours[2:]], **outputs)
    message = str(refused.value)
    assert message.startswith(f"{both[0]}: its fits of cell")
    assert message.endswith(
        f"(so are 1 other chunk(s): {both[1]}); delete them and rerun the workflow"
    )
    assert "\n" not in message
    # The same chunk, fitted with the priors listed in another order, is this study's.
    again = SimulateJob(job.name, 7, job.units, dataclasses.replace(FIT, priors=PRIORS[::-1]))
    assert again.fingerprint(CELLS[0]) == fits_fingerprint(CELLS[0], 7, FIT)


def test_cell_fits_are_sorted_and_complete(studies: dict[str, Path]) -> None:
    fits = read_parquet(studies["sevens"] / "fits" / "n12_sigma1.parquet")
    assert len(fits) == REPLICATIONS * 4 * FITS_PER_REPLICATE
    groups = ["n", "sigma", *GROUP_FIELDS, "replicate"]
    pd.testing.assert_frame_equal(fits, sort_table(fits.sample(frac=1, random_state=1), groups))
    assert fits["replicate"].iloc[:REPLICATIONS].tolist() == list(range(REPLICATIONS))
    assert pq.ParquetFile(studies["sevens"] / "fits" / "n12_sigma1.parquet").num_row_groups == (
        FITS_PER_REPLICATE
    )


def test_metrics_table_rows(studies: dict[str, Path]) -> None:
    metrics = read_metrics(studies["whole"] / "tables" / "metrics.csv")
    assert list(metrics.columns) == list(metrics_columns())
    groups = metrics.groupby(["n", "sigma", *GROUP_FIELDS], sort=False).size()
    assert len(groups) == 2 * 4 * FITS_PER_REPLICATE
    assert set(metrics.loc[metrics["measure"] == "n_multimodal", "method"]) == {"map"}
    assert (metrics["n"].diff().fillna(0) >= 0).all()
    used = metrics.loc[metrics["measure"] == "n_reps", "estimate"].to_numpy()
    failed = metrics.loc[metrics["measure"] == "n_failed", "estimate"].to_numpy()
    assert (used + failed == REPLICATIONS).all()
    assert set(metrics["measure"]) <= set(MEASURES)


def test_summaries_do_not_depend_on_how_fits_are_grouped(studies: dict[str, Path]) -> None:
    whole = read_parquet(studies["whole"] / "fits" / "n30_sigma0.5.parquet")
    by_fit = [cell_tables.summarize_cell(part, 0.05) for _, part in whole.groupby(list(FIT_KEY))]
    joined = sort_table(
        pd.concat(by_fit, ignore_index=True), ["n", "sigma", *GROUP_FIELDS, "measure"]
    )
    pd.testing.assert_frame_equal(joined, cell_tables.summarize_cell(whole, 0.05), check_exact=True)


def test_write_cell_and_collect_need_inputs() -> None:
    with pytest.raises(ValueError):
        cell_tables.write_cell([], 0.05, "fits.parquet", "metrics.parquet")
    with pytest.raises(ValueError):
        cell_tables.collect_metrics([])


def test_a_failed_job_leaves_no_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (job,) = plan_jobs(CELLS[:1], REPLICATIONS, 10**6)
    spec = SimulateJob(job.name, 7, job.units, FIT)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("regsim.jobs.fit_batches", broken)
    with pytest.raises(RuntimeError):
        run_simulate(spec, fits=tmp_path / "c.parquet", datasets=tmp_path / "d.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------
# Table I/O
# --------------------------------------------------------------------------------------


def metrics_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [20, 20, 10],
            "sigma": [0.1, 1.0, 5.0],
            "errors": ["normal", "t3", "normal"],
            "truth": ["beta", "beta", "null"],
            "design": ["uniform", "uniform", "collinear"],
            "prior": ["", "weak", ""],
            "method": ["ols", "map", "mle"],
            "parameter": ["beta0", "sigma", "beta2"],
            "true": [10.0, 0.1, 0.0],
            "measure": ["bias", "n_multimodal", "coverage"],
            "estimate": [0.1 + 0.2, 3.0, 1 / 3],
            "mcse": [1e-300, math.nan, 0.5],
        }
    )


def test_write_parquet_is_atomic_and_read_back(tmp_path: Path) -> None:
    table = metrics_rows()
    path = tmp_path / "t.parquet"
    write_parquet(table, path)
    pd.testing.assert_frame_equal(read_parquet(path), table, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_read_parquet_names_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="missing.parquet: table file not found"):
        read_parquet(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataFileError, match="bad.parquet: unreadable table file"):
        read_parquet(bad)


def test_reading_row_groups_again_sees_a_replaced_or_damaged_file(tmp_path: Path) -> None:
    """The footer of a file read once is kept, but never for another file at that path."""
    path = tmp_path / "t.parquet"
    first = metrics_rows()
    write_parquet(first, path)
    pd.testing.assert_frame_equal(read_parquet(path, row_groups=[0]), first, check_dtype=False)
    second = first.assign(estimate=[7.0, 8.0, 9.0])
    write_parquet(second, path)  # a new file renamed over the old one
    pd.testing.assert_frame_equal(read_parquet(path, row_groups=[0]), second, check_dtype=False)
    path.write_bytes(path.read_bytes()[:-20])  # the same file, cut short
    with pytest.raises(DataFileError, match="t.parquet: unreadable table file"):
        read_parquet(path, row_groups=[0])
    path.unlink()
    with pytest.raises(DataFileError, match="t.parquet: table file not found"):
        read_parquet(path, row_groups=[0])


def test_write_metrics_csv_format(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    write_metrics_csv(metrics_rows(), path)
    assert path.read_bytes().decode() == (
        "n,sigma,errors,truth,design,prior,method,parameter,true,measure,estimate,mcse\n"
        "20,0.1,normal,beta,uniform,,ols,beta0,10,bias,0.30000000000000004,1e-300\n"
        "20,1,t3,beta,uniform,weak,map,sigma,0.1,n_multimodal,3,\n"
        "10,5,normal,null,collinear,,mle,beta2,0,coverage,0.33333333333333331,0.5\n"
    )


def test_a_checked_metrics_table_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from regsim import tableio

    rows = metrics_rows()
    rows.loc[0, "prior"] = None
    checked = check_metrics(rows)
    assert checked["prior"].tolist()[0] == "" and pd.isna(rows["prior"].tolist()[0])
    conversions = []
    real = tableio.pd.to_numeric
    monkeypatch.setattr(
        tableio.pd, "to_numeric", lambda *a, **k: conversions.append(1) or real(*a, **k)
    )
    again = check_metrics(checked)
    assert not conversions  # neither checked nor copied again
    pd.testing.assert_frame_equal(again, checked)
    # a slice of a checked table is checked; a shallow copy: changing it leaves the original
    piece = check_metrics(select_levels(checked, {"errors": "normal"}))
    assert not conversions and len(piece) > 0
    again["estimate"] = 0.0
    assert (checked["estimate"] != 0.0).any()
    # a column replaced in place since is checked again
    checked["n"] = checked["n"].astype(str)
    assert check_metrics(checked)["n"].dtype == np.int64 and conversions
    checked["sigma"] = "x"
    with pytest.raises(InputDataError, match="n and sigma must be numeric"):
        check_metrics(checked)
    # any column of another type since: checked (and put right) again
    for column, value in (("mcse", "0.5"), ("prior", math.nan), ("method", 1)):
        table = check_metrics(metrics_rows())
        table[column] = value
        conversions.clear()
        again = check_metrics(table)
        assert conversions, column
        assert again[column].map(type).eq(float if column == "mcse" else str).all(), column


def test_read_metrics_round_trips_exactly(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    rows = metrics_rows()
    write_metrics_csv(rows, path)
    back = read_metrics(path)
    assert list(back.columns) == list(metrics_columns())
    assert back["prior"].tolist() == ["", "weak", ""]
    for column in ("n", "sigma", "true", "estimate", "mcse"):
        np.testing.assert_array_equal(back[column].to_numpy(), rows[column].to_numpy())
    for column in ("errors", "truth", "design"):
        assert back[column].tolist() == rows[column].tolist()


def test_sort_table_uses_the_study_order() -> None:
    table = pd.DataFrame(
        {
            "method": ["map", "ols", "mle", "map", "ols", "ols"],
            "parameter": ["sigma", "beta10", "beta2", "beta0", "sigma", "beta2"],
            "measure": ["n_reps", "bias", "coverage", "bias", "empse", "relbias"],
        }
    )
    by_method = sort_table(table, ["method", "parameter"])
    assert by_method["method"].tolist() == ["ols", "ols", "ols", "mle", "map", "map"]
    assert by_method["parameter"].tolist()[:3] == ["beta2", "beta10", "sigma"]
    by_measure = sort_table(table, ["measure"])
    ranks = [MEASURES.index(m) for m in by_measure["measure"]]
    assert ranks == sorted(ranks)


def test_sort_table_sorts_as_pandas_does_with_the_study_keys() -> None:
    rng = np.random.default_rng(3)
    size = 400
    table = pd.DataFrame(
        {
            "n": rng.choice([20, 10], size),
            "sigma": rng.choice([1.0, 0.5, np.nan], size),
            "errors": rng.choice(["t3", "normal", "hetero"], size),
            "prior": rng.choice(np.array(["weak", "", "flat", None], dtype=object), size),
            "method": rng.choice(["map", "ols", "mle"], size),
            "parameter": rng.choice(["sigma", "beta10", "beta2", "beta0"], size),
            "replicate": rng.integers(0, 30, size),  # ties keep their order
            "row": np.arange(size),
        }
    )

    def key(column: pd.Series) -> pd.Series:
        function = SORT_KEYS.get(str(column.name))
        return column if function is None else column.map(function)

    for columns in (list(table.columns[:-1]), ["parameter"], ["prior", "replicate"]):
        expected = table.sort_values(columns, key=key, kind="mergesort").reset_index(drop=True)
        pd.testing.assert_frame_equal(sort_table(table, columns), expected)
        pd.testing.assert_frame_equal(sort_table(expected, columns), expected)


@pytest.mark.parametrize("where", [{"prior": "", "method": "ols"}, {"parameter": "beta1"}])
def test_reading_some_rows_equals_filtering_the_whole_table(
    studies: dict[str, Path], tmp_path: Path, where: dict[str, str]
) -> None:
    path = studies["whole"] / "fits" / "n30_sigma0.5.parquet"
    whole = read_parquet(path)
    mask = np.logical_and.reduce([whole[k] == v for k, v in where.items()])
    expected = whole.loc[mask].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_parquet(path, where=where), expected)
    columns = ["replicate", "estimate", "absent"]  # a column the file lacks is left out
    some = read_parquet(path, only=columns, where=where)
    assert list(some.columns) == [*columns[:2], *where]
    pd.testing.assert_frame_equal(some, expected[list(some.columns)])
    single = tmp_path / "single.parquet"
    write_parquet(whole, single)
    pd.testing.assert_frame_equal(read_parquet(single, where=where), expected)
    nothing = read_parquet(path, where={"method": "absent"})
    assert nothing.empty and list(nothing.columns) == list(whole.columns)


# --------------------------------------------------------------------------------------
# Logs and the end of a run
# --------------------------------------------------------------------------------------


def test_log_to_captures_logging_warnings_and_output(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "job.log"
    with workflow.log_to(path) as log:
        log.info("hello")
        warnings.warn("careful", UserWarning, stacklevel=1)
        print("printed")
        logging.getLogger("regsim.other").warning("from elsewhere")
    text = path.read_text()
    for expected in ("hello", "careful", "printed", "from elsewhere"):
        assert expected in text


def test_log_to_turns_a_regsim_error_into_one_line(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    with pytest.raises(SystemExit) as info, workflow.log_to(path):
        raise RegsimError("something named is wrong")
    assert str(info.value) == "error: something named is wrong"
    with pytest.raises(ZeroDivisionError), workflow.log_to(path):
        1 / 0  # noqa: B018
    assert "Traceback" in path.read_text()


class JobScheduler:
    """Stands in for Snakemake's scheduler: the same names, so the same qualified name."""

    def _schedule_reevalutation(self, delay: float) -> threading.Timer:
        timer = threading.Timer(delay, lambda: None)
        timer.start()
        return timer


def test_scheduler_timers_are_cancelled_and_other_timers_left_alone() -> None:
    recheck = JobScheduler()._schedule_reevalutation(60)
    other = threading.Timer(60, lambda: None)
    other.start()
    try:
        assert workflow.cancel_scheduler_timers() == 1
        recheck.join(timeout=5)
        assert not recheck.is_alive() and other.is_alive()
    finally:
        other.cancel()
        recheck.cancel()


def test_the_cancelled_timer_is_the_installed_snakemakes() -> None:
    """Fails on a Snakemake that schedules its queue re-checks differently: then the
    Snakefile's onsuccess/onerror cancel nothing, and every run ends a second late."""
    from snakemake.scheduling.job_scheduler import JobScheduler as Installed

    lambdas = [
        const.co_qualname
        for const in Installed._schedule_reevalutation.__code__.co_consts
        if hasattr(const, "co_qualname")
    ]
    assert lambdas == [workflow._REEVALUATION]


def test_the_snakefile_reads_config_files_from_snakemakes_settings() -> None:
    """The Snakefile takes --configfile, --config and --replace-workflow-config from
    ``workflow.config_settings``, Snakemake's documented settings object; this fails on
    a Snakemake whose settings lack them."""
    from snakemake.settings.types import ConfigSettings

    fields = {field.name for field in dataclasses.fields(ConfigSettings)}
    assert {"configfiles", "config", "replace_workflow_config"} <= fields
    snakefile = (Path(__file__).resolve().parents[2] / "Snakefile").read_text()
    for name in ("configfiles", "config", "replace_workflow_config"):
        assert f"workflow.config_settings.{name}" in snakefile
