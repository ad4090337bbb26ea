"""Helpers behind the workflow's rules, exercised without Snakemake."""

from __future__ import annotations

import logging
import math
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from regsim import pipeline, stages
from regsim.design import Cell, Prior
from regsim.errors import DataFileError
from regsim.metrics import MEASURES
from regsim.schema import SORT_KEYS
from regsim.stages import write_cell

BETA = (10.0, 3.8987, 10.1777)
PRIORS = [
    Prior("weak", (0.0, 0.0, 0.0), (100.0, 100.0, 100.0)),
    Prior("flat", (0.0, 0.0, 0.0), (math.inf, math.inf, math.inf)),
]
METHODS = ["ols", "mle", "map"]


# --------------------------------------------------------------------------------------
# Names and params
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
    assert pipeline.format_number(value) == text
    assert float(text) == float(value)


def test_format_number_is_unambiguous() -> None:
    values = [1.0, 1.0000000000000002, 0.1, 0.30000000000000004, 0.3, 5.0, 50.0]
    texts = [pipeline.format_number(v) for v in values]
    assert len(set(texts)) == len(values)
    assert [float(t) for t in texts] == values


def test_labels() -> None:
    assert pipeline.cell_label(Cell(20, 1.0, BETA)) == "n20_sigma1"
    assert pipeline.cell_label(Cell(50, 0.25, BETA)) == "n50_sigma0.25"
    assert pipeline.chunk_label(0, 250) == "reps000000-000250"
    assert pipeline.chunk_label(1_000_000, 1_000_250) == "reps1000000-1000250"


def test_cell_params_round_trip_and_key_check() -> None:
    cell = Cell(20, 5.0, BETA)
    params = pipeline.cell_params(cell)
    assert params == {
        "n": 20,
        "sigma": 5.0,
        "beta": list(BETA),
        "errors": "normal",
        "key": cell.key,
    }
    assert all(type(v) in (int, float, str, list) for v in params.values())
    assert pipeline.cell_from_params(params) == cell
    with pytest.raises(ValueError, match="do not match key"):
        pipeline.cell_from_params({**params, "sigma": 4.0})


def test_prior_params_round_trip() -> None:
    params = pipeline.prior_params(PRIORS)
    assert params[1] == {"name": "flat", "mean": [0.0] * 3, "sd": [math.inf] * 3}
    assert pipeline.priors_from_params(params) == PRIORS


@pytest.mark.parametrize("stage", ["simulate", "simulate_cell", "fit"])
def test_job_resources_grow_with_the_job(stage: str) -> None:
    small = pipeline.job_resources(stage, 10, 100)
    large = pipeline.job_resources(stage, 1000, 1000)
    assert set(small) == {"mem_mb", "runtime"}
    assert all(isinstance(v, int) and v > 0 for v in small.values())
    assert large["mem_mb"] > small["mem_mb"] and large["runtime"] > small["runtime"]
    assert pipeline.job_resources("summarize", 10, 1000) == pipeline.job_resources(
        "summarize", 1000, 1000
    )


def test_sample_size_resource_is_one_cells_memory_and_all_cells_time() -> None:
    one_cell = pipeline.job_resources("simulate_cell", 200, 1000)
    wildcards = SimpleNamespace(n="200")
    assert pipeline.sample_size_resource("mem_mb", 1000, 3)(wildcards) == one_cell["mem_mb"]
    assert pipeline.sample_size_resource("runtime", 1000, 3)(wildcards) == 3 * one_cell["runtime"]


def test_labels_and_paths() -> None:
    cell = Cell(50, 0.5, BETA, errors="t3")
    assert (
        pipeline.cell_label(cell) == "n50_" + pipeline.noise_label(0.5, "t3") == "n50_sigma0.5_t3"
    )
    assert pipeline.as_paths("a.npz") == ["a.npz"]
    assert pipeline.as_paths(["a.npz", "b.npz"]) == ["a.npz", "b.npz"]


def test_job_resource_reads_the_wildcards() -> None:
    cells = {"n100_sigma1": Cell(100, 1.0, BETA)}
    chunks = {"reps000000-000250": (0, 250)}
    wildcards = SimpleNamespace(cell="n100_sigma1", chunk="reps000000-000250")
    mem = pipeline.job_resource("simulate", "mem_mb", cells, chunks)
    assert mem(wildcards) == pipeline.job_resources("simulate", 100, 250)["mem_mb"]
    whole = pipeline.job_resources("simulate_cell", 100, 250)
    assert whole["mem_mb"] > mem(wildcards)  # it summarizes the cell too
    runtime = pipeline.job_resource("summarize", "runtime", cells, replications=400)
    assert runtime(wildcards) == pipeline.job_resources("summarize", 100, 400)["runtime"]


# --------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------


def test_log_to_captures_logging_warnings_and_output(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "job.log"
    with pipeline.log_to(log) as logger:
        logger.info("hello from the job")
        logging.getLogger("regsim.pipeline").info("pipeline message")
        warnings.warn("something odd", RuntimeWarning, stacklevel=1)
        print("printed line")
    text = log.read_text()
    for expected in ("hello from the job", "pipeline message", "something odd", "printed line"):
        assert expected in text
    assert not any(
        isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) and h.stream.closed
        for h in logging.getLogger().handlers
    )


def test_log_to_records_the_traceback_and_reraises(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(ZeroDivisionError), pipeline.log_to(log):
        1 / 0  # noqa: B018
    text = log.read_text()
    assert "job failed" in text and "ZeroDivisionError" in text


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def test_write_parquet_is_atomic_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.parquet"
    table = pd.DataFrame({"a": [1, 2], "b": ["x", ""]})
    stages.write_parquet(table, path)
    assert [p.name for p in path.parent.iterdir()] == ["t.parquet"]
    pd.testing.assert_frame_equal(stages.read_parquet(path), table, check_dtype=False)


def test_read_parquet_names_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"missing\.parquet: table file not found"):
        stages.read_parquet(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataFileError, match=r"bad\.parquet: unreadable table file"):
        stages.read_parquet(bad)


def metrics_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "n": [20, 20, 10],
            "sigma": [0.1, 1.0, 5.0],
            "prior": ["", "weak", ""],
            "method": ["ols", "map", "mle"],
            "parameter": ["beta0", "sigma", "beta2"],
            "measure": ["bias", "n_multimodal", "coverage"],
            "estimate": [0.1 + 0.2, 3.0, 1 / 3],
            "mcse": [1e-300, math.nan, 0.5],
        }
    )


def test_write_metrics_csv_format(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    stages.write_metrics_csv(metrics_rows(), path)
    assert path.read_bytes().decode() == (
        "n,sigma,prior,method,parameter,measure,estimate,mcse\n"
        "20,0.1,,ols,beta0,bias,0.30000000000000004,1e-300\n"
        "20,1,weak,map,sigma,n_multimodal,3,\n"
        "10,5,,mle,beta2,coverage,0.33333333333333331,0.5\n"
    )


def test_read_metrics_round_trips_exactly(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    rows = metrics_rows()
    stages.write_metrics_csv(rows, path)
    back = stages.read_metrics(path)
    assert list(back.columns) == list(pipeline.METRICS_COLUMNS)
    assert back["prior"].tolist() == ["", "weak", ""]
    for column in ("n", "sigma", "estimate", "mcse"):
        np.testing.assert_array_equal(back[column].to_numpy(), rows[column].to_numpy())


def test_sort_table_uses_the_study_order() -> None:
    table = pd.DataFrame(
        {
            "method": ["map", "ols", "mle", "map", "ols", "ols"],
            "parameter": ["sigma", "beta10", "beta2", "beta0", "sigma", "beta2"],
            "measure": ["n_reps", "bias", "coverage", "bias", "empse", "relbias"],
        }
    )
    by_method = stages.sort_table(table, ["method", "parameter"])
    assert by_method["method"].tolist() == ["ols", "ols", "ols", "mle", "map", "map"]
    assert by_method["parameter"].tolist()[:3] == ["beta2", "beta10", "sigma"]
    by_measure = stages.sort_table(table, ["measure"])
    ranks = [MEASURES.index(m) for m in by_measure["measure"]]
    assert ranks == sorted(ranks)


def test_sort_table_sorts_as_pandas_does_with_the_study_keys() -> None:
    rng = np.random.default_rng(3)
    size = 400
    table = pd.DataFrame(
        {
            "n": rng.choice([20, 10], size),
            "sigma": rng.choice([1.0, 0.5, np.nan], size),
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
        pd.testing.assert_frame_equal(stages.sort_table(table, columns), expected)
        pd.testing.assert_frame_equal(stages.sort_table(expected, columns), expected)


# --------------------------------------------------------------------------------------
# Rule steps, chained by hand
# --------------------------------------------------------------------------------------


def run_cell(root: Path, cell: Cell, chunks: list[tuple[int, int]], how: str) -> Path:
    """Run one cell as the workflow would; return its metrics file.

    ``how``: "whole" (one simulate job that also summarizes), "chunks" (a simulate job
    per chunk, then summarize) or "saved" (generate, then fit the saved file, per chunk).
    A job of several whole cells is :func:`run_cells`.
    """
    label = pipeline.cell_label(cell)
    cell_fits = root / "fits" / f"{label}.parquet"
    cell_metrics = root / "metrics" / f"{label}.parquet"
    args = (pipeline.prior_params(PRIORS), METHODS, 0.05)
    if how == "whole":
        ((start, stop),) = chunks
        data = root / "datasets" / label / f"{pipeline.chunk_label(start, stop)}.npz"
        params = pipeline.cell_params(cell)
        stages.run_simulate(params, 7, start, stop, *args, data, cell_fits, cell_metrics)
        return cell_metrics
    fit_paths = []
    for start, stop in chunks:
        chunk = pipeline.chunk_label(start, stop)
        data = root / "datasets" / label / f"{chunk}.npz"
        fits = root / "fits" / label / f"{chunk}.parquet"
        if how == "chunks":
            stages.run_simulate(pipeline.cell_params(cell), 7, start, stop, *args, data, fits)
        else:
            stages.run_generate(pipeline.cell_params(cell), 7, start, stop, data)
            stages.run_fit(data, *args, fits)
        fit_paths.append(fits)
    stages.run_summarize(fit_paths, 0.05, cell_fits, cell_metrics)
    return cell_metrics


def run_cells(root: Path, cells: list[Cell], replications: int) -> list[Path]:
    """Run whole cells in one simulate job, as the workflow does for the cells of one n."""
    labels = [pipeline.cell_label(cell) for cell in cells]
    chunk = pipeline.chunk_label(0, replications)
    metrics = [root / "metrics" / f"{label}.parquet" for label in labels]
    stages.run_simulate_cells(
        [pipeline.cell_params(cell) for cell in cells],
        7,
        0,
        replications,
        pipeline.prior_params(PRIORS),
        METHODS,
        0.05,
        [root / "datasets" / label / f"{chunk}.npz" for label in labels],
        [root / "fits" / f"{label}.parquet" for label in labels],
        metrics,
    )
    return metrics


CHUNKINGS = {"whole": ("whole", 40), "chunks": ("chunks", 7), "saved": ("saved", 15)}


@pytest.fixture(scope="module")
def two_chunkings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    cells = [Cell(12, 1.0, BETA), Cell(30, 0.5, BETA)]
    for name, (how, size) in CHUNKINGS.items():
        root = tmp_path_factory.mktemp(name)
        chunks = [(a, min(a + size, 40)) for a in range(0, 40, size)]
        metrics = [run_cell(root, cell, chunks, how) for cell in reversed(cells)]
        stages.run_collect(metrics, root / "tables" / "metrics.csv")
        out[name] = root
    root = tmp_path_factory.mktemp("together")
    stages.run_collect(run_cells(root, cells, 40), root / "tables" / "metrics.csv")
    out["together"] = root
    return out


def test_chunking_does_not_change_any_output(two_chunkings: dict[str, Path]) -> None:
    whole = two_chunkings["whole"]
    for other in ("chunks", "saved", "together"):
        for relative in (
            "fits/n12_sigma1.parquet",
            "fits/n30_sigma0.5.parquet",
            "metrics/n12_sigma1.parquet",
            "tables/metrics.csv",
        ):
            expected = (whole / relative).read_bytes()
            assert (two_chunkings[other] / relative).read_bytes() == expected, (other, relative)


def test_simulate_writes_the_datasets_it_fits(two_chunkings: dict[str, Path]) -> None:
    from regsim.simulate import draw, load_datasets

    cell = Cell(30, 0.5, BETA)
    saved = load_datasets(
        two_chunkings["whole"] / "datasets" / "n30_sigma0.5" / "reps000000-000040.npz"
    )
    drawn = draw(cell, 7, 0, 40)
    assert saved.cell == cell and saved.base_seed == 7
    np.testing.assert_array_equal(saved.replicates, np.arange(40))
    np.testing.assert_array_equal(saved.x, drawn.x)
    np.testing.assert_array_equal(saved.y, drawn.y)
    chunk = two_chunkings["chunks"] / "datasets" / "n30_sigma0.5" / "reps000035-000040.npz"
    np.testing.assert_array_equal(load_datasets(chunk).y, drawn.y[35:])
    # chunked simulate and fitting the saved file give the same chunk table
    simulated = stages.read_parquet(
        two_chunkings["chunks"] / "fits" / "n30_sigma0.5" / "reps000035-000040.parquet"
    )
    assert len(simulated) == 5 * 4 * (2 + len(PRIORS))


def test_whole_cell_job_fits_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_chunkings: dict[str, Path]
) -> None:
    monkeypatch.setattr(stages, "FIT_BATCH_REPLICATES", 3)  # 14 batches of the 40 replicates
    metrics = run_cell(tmp_path, Cell(12, 1.0, BETA), [(0, 40)], "whole")
    expected = two_chunkings["whole"] / "metrics" / "n12_sigma1.parquet"
    assert metrics.read_bytes() == expected.read_bytes()
    fits = tmp_path / "fits" / "n12_sigma1.parquet"
    assert (
        fits.read_bytes() == (two_chunkings["whole"] / "fits" / "n12_sigma1.parquet").read_bytes()
    )


def test_whole_cell_job_over_the_memory_budget_gives_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, two_chunkings: dict[str, Path]
) -> None:
    # too many rows to combine in memory: through a scratch file read a fit at a time
    combined = []
    monkeypatch.setattr(stages, "WHOLE_CELL_ROWS", 40 * 4 * (2 + len(PRIORS)) - 1)
    monkeypatch.setattr(stages, "write_cell", lambda *a: combined.append(write_cell(*a)))
    run_cell(tmp_path, Cell(12, 1.0, BETA), [(0, 40)], "whole")
    assert len(combined) == 1
    for relative in ("fits/n12_sigma1.parquet", "metrics/n12_sigma1.parquet"):
        expected = (two_chunkings["whole"] / relative).read_bytes()
        assert (tmp_path / relative).read_bytes() == expected, relative


def test_cell_fits_are_sorted_and_complete(two_chunkings: dict[str, Path]) -> None:
    fits = stages.read_parquet(two_chunkings["chunks"] / "fits" / "n12_sigma1.parquet")
    assert len(fits) == 40 * 4 * (2 + len(PRIORS))
    resorted = stages.sort_table(
        fits.sample(frac=1, random_state=1), [*pipeline.GROUP_COLUMNS, "replicate"]
    )
    pd.testing.assert_frame_equal(fits, resorted)
    assert fits["replicate"].iloc[:40].tolist() == list(range(40))


def test_metrics_table_rows(two_chunkings: dict[str, Path]) -> None:
    metrics = stages.read_metrics(two_chunkings["whole"] / "tables" / "metrics.csv")
    assert list(metrics.columns) == list(pipeline.METRICS_COLUMNS)
    groups = metrics.groupby(list(pipeline.GROUP_COLUMNS), sort=False).size()
    assert len(groups) == 2 * 4 * (2 + len(PRIORS))
    multimodal = metrics[metrics["measure"] == "n_multimodal"]
    assert set(multimodal["method"]) == {"map"}
    assert (metrics["n"].diff().fillna(0) >= 0).all()  # cells in order, n12 before n30
    reps = metrics[metrics["measure"] == "n_reps"]
    assert (
        reps["estimate"] + metrics.loc[metrics["measure"] == "n_failed", "estimate"].to_numpy()
        == 40
    ).all()


def test_summarize_cell_keeps_the_declared_columns() -> None:
    cell = Cell(15, 2.0, BETA)
    from regsim.estimators import fit_table
    from regsim.simulate import draw

    fits = fit_table(draw(cell, 3, 0, 20), PRIORS[:1], METHODS, 0.1)
    metrics = stages.summarize_cell(fits, 0.1)
    assert list(metrics.columns) == list(pipeline.METRICS_COLUMNS)
    per_group = metrics.groupby(["method"])["measure"].nunique()
    assert per_group["map"] == per_group["ols"] + 1


def test_concat_and_collect_need_inputs() -> None:
    with pytest.raises(ValueError):
        stages.write_cell([], 0.05, "fits.parquet", "metrics.parquet")
    with pytest.raises(ValueError):
        stages.collect_metrics([])


def test_figure_names_match_the_figure_registry():
    from regsim.figures import FIGURES

    assert sorted(pipeline.FIGURES) == sorted(FIGURES)


def test_zip_settings_defaults_and_errors():
    from regsim.errors import ConfigError

    config = {"grid": {"n": [20, 50], "sigma": [1, 5]}, "beta": [1.0, 2.0], "figures": {}}
    cells = {"n20_sigma1": Cell(20, 1.0, (1.0, 2.0)), "n50_sigma5": Cell(50, 5.0, (1.0, 2.0))}
    assert pipeline.zip_settings(config, cells) == {
        "cell": "n20_sigma1",
        "n": 20,
        "sigma": 1,
        "errors": "normal",
        "parameter": "beta1",
    }
    config["figures"] = {"zip": {"n": 50, "sigma": 5.0, "parameter": "sigma"}}
    assert pipeline.zip_settings(config, cells)["cell"] == "n50_sigma5"
    config["figures"] = {"zip": {"n": 50, "sigma": 1}}
    missing = "figures.zip: cell n=50, sigma=1, errors=normal is not in the grid"
    with pytest.raises(ConfigError, match=missing):
        pipeline.zip_settings(config, cells)
    config["figures"] = {"zip": {"parameter": "beta7"}}
    with pytest.raises(ConfigError, match="figures.zip.parameter"):
        pipeline.zip_settings(config, cells)
    # with a non-normal error model in the grid, the zip plot can show its cell
    cells["n20_sigma1_t3"] = Cell(20, 1.0, (1.0, 2.0), errors="t3")
    config["figures"] = {"zip": {"errors": "t3"}}
    assert pipeline.zip_settings(config, cells)["cell"] == "n20_sigma1_t3"
    config["figures"] = {"zip": {"errors": "hetero"}}
    with pytest.raises(ConfigError, match="errors=hetero is not in the grid"):
        pipeline.zip_settings(config, cells)


def test_fit_tables_have_a_row_group_per_fit(two_chunkings: dict[str, Path]) -> None:
    import pyarrow.parquet as pq

    for path in (
        two_chunkings["chunks"] / "fits" / "n12_sigma1" / "reps000000-000007.parquet",
        two_chunkings["whole"] / "fits" / "n12_sigma1.parquet",
    ):
        source = pq.ParquetFile(path)
        keys = []
        for i in range(source.num_row_groups):
            group = source.read_row_group(i, columns=list(stages.FIT_KEY)).to_pandas()
            assert len(group.drop_duplicates()) == 1, (path, i)
            keys.append(tuple(group.iloc[0]))
        assert len(set(keys)) == len(keys) == 2 + len(PRIORS)  # ols, mle, a map per prior


@pytest.mark.parametrize("where", [{"prior": "", "method": "ols"}, {"parameter": "beta1"}])
def test_reading_some_rows_equals_filtering_the_whole_table(
    two_chunkings: dict[str, Path], tmp_path: Path, where: dict[str, str]
) -> None:
    path = two_chunkings["whole"] / "fits" / "n30_sigma0.5.parquet"
    whole = stages.read_parquet(path)
    mask = np.logical_and.reduce([whole[k] == v for k, v in where.items()])
    expected = whole.loc[mask].reset_index(drop=True)
    pd.testing.assert_frame_equal(stages.read_parquet(path, where=where), expected)
    columns = ["replicate", "estimate", "errors"]  # a column the file lacks is left out
    some = stages.read_parquet(path, only=columns, where=where)
    assert list(some.columns) == [*columns[:2], *where]
    pd.testing.assert_frame_equal(some, expected[list(some.columns)])
    # a file written as one row group (no statistics to skip by) reads the same
    single = tmp_path / "single.parquet"
    stages.write_parquet(whole, single)
    pd.testing.assert_frame_equal(stages.read_parquet(single, where=where), expected)
    nothing = stages.read_parquet(path, where={"method": "absent"})
    assert nothing.empty and list(nothing.columns) == list(whole.columns)


def test_summaries_do_not_depend_on_how_fits_are_grouped(
    two_chunkings: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one fit per summarize call instead of the whole cell in one: the same bits
    monkeypatch.setattr(stages, "SUMMARIZE_ROWS", 1)
    chunks = sorted((two_chunkings["chunks"] / "fits" / "n30_sigma0.5").glob("*.parquet"))
    fits, metrics = tmp_path / "fits.parquet", tmp_path / "metrics.parquet"
    stages.write_cell(chunks, 0.05, fits, metrics)
    expected = two_chunkings["whole"] / "metrics" / "n30_sigma0.5.parquet"
    assert metrics.read_bytes() == expected.read_bytes()
    whole = stages.read_parquet(two_chunkings["whole"] / "fits" / "n30_sigma0.5.parquet")
    by_fit = [stages.summarize_cell(part, 0.05) for _, part in whole.groupby(["method", "prior"])]
    joined = stages.sort_table(
        pd.concat(by_fit, ignore_index=True), [*pipeline.GROUP_COLUMNS, "measure"]
    )
    pd.testing.assert_frame_equal(joined, stages.summarize_cell(whole, 0.05), check_exact=True)


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
        assert pipeline.cancel_scheduler_timers() == 1
        recheck.join(timeout=5)
        assert not recheck.is_alive() and other.is_alive()
    finally:
        other.cancel()
        recheck.cancel()


def test_the_cancelled_timer_is_the_installed_snakemakes() -> None:
    from snakemake.scheduling.job_scheduler import JobScheduler as Installed

    lambdas = [
        const.co_qualname
        for const in Installed._schedule_reevalutation.__code__.co_consts
        if hasattr(const, "co_qualname")
    ]
    assert lambdas == [pipeline._REEVALUATION]
