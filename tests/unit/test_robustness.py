"""Failed replicates, damaged files, atomic writes and one-line job errors, stage by stage."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from latex import compile_table

from regsim import fits as fitting
from regsim import simulate, tables
from regsim.cells import summarize_cell
from regsim.design import Cell, Prior, Unit
from regsim.errors import DataFileError
from regsim.estimators import SufficientStats, fit_map, sufficient_stats
from regsim.fits import fit_table
from regsim.jobs import run_collect, run_simulate
from regsim.schema import fit_columns
from regsim.simulate import Datasets, draw, load_datasets, save_datasets
from regsim.specs import CollectJob, FitSpec, SimulateJob
from regsim.tableio import read_metrics, read_parquet, sort_table, write_parquet
from regsim.workflow import log_to

BETA = (10.0, 3.8987, 10.1777)
CELL = Cell(10, 1.0, BETA)
SHIFTED = Prior("shifted", (12.0, 5.8987, 12.1777), (1.0, 1.0, np.inf))
WEAK = Prior("weak", (0.0, 0.0, 0.0), (100.0, 100.0, 100.0))
# Three Newton steps leave some of these MAP fits unconverged (sixty is the default).
FEW = 3


def spec(priors, methods, max_iter: int | None = None) -> FitSpec:
    return FitSpec(tuple(methods), tuple(priors), 0.05, max_iter)


@pytest.fixture(scope="module")
def data() -> Datasets:
    return draw(CELL, 12345, 0, 120)


def stats_slice(stats: SufficientStats, r: int) -> SufficientStats:
    return SufficientStats(
        n=stats.n,
        beta_hat=stats.beta_hat[r : r + 1],
        rss=stats.rss[r : r + 1],
        gram=stats.gram[r : r + 1],
        gram_inv=stats.gram_inv[r : r + 1],
    )


# --------------------------------------------------------------------------------------
# Which replicates fail does not depend on the batch
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("prior", [SHIFTED, WEAK], ids=lambda p: p.name)
@pytest.mark.parametrize("max_iter", [2, FEW, 4, 6])
def test_each_replicate_alone_fails_exactly_as_in_the_batch(
    data: Datasets, prior: Prior, max_iter: int
) -> None:
    stats = sufficient_stats(data.x, data.y)
    batch = fit_map(stats, prior, max_iter=max_iter)
    # R = 1 slices of the batch's statistics ...
    alone = np.array(
        [
            fit_map(stats_slice(stats, r), prior, max_iter=max_iter).converged[0]
            for r in range(len(data))
        ]
    )
    np.testing.assert_array_equal(alone, batch.converged)
    # ... and each dataset on its own, as `regsim fit` fits a user's CSV (R = 1)
    single = np.array(
        [
            fit_map(
                sufficient_stats(data.x[r : r + 1], data.y[r : r + 1]), prior, max_iter=max_iter
            ).converged[0]
            for r in range(len(data))
        ]
    )
    np.testing.assert_array_equal(single, batch.converged)
    if max_iter == FEW and prior is SHIFTED:
        assert 0 < (~batch.converged).sum() < len(data)


def test_unconverged_fits_are_flagged_not_hidden(data: Datasets) -> None:
    fit = fit_map(sufficient_stats(data.x, data.y), SHIFTED, max_iter=FEW)
    failed = ~fit.converged
    assert failed.any()
    # the numbers of a failed fit are still there, but flagged: never used silently
    assert np.isfinite(fit.estimate[failed]).all()


# --------------------------------------------------------------------------------------
# The fit stage: options, batches, consistent flags, warnings
# --------------------------------------------------------------------------------------


def test_fit_table_passes_estimator_options(data: Datasets) -> None:
    table = fit_table(data, spec([SHIFTED], ["map"], FEW))
    assert not table["converged"].all()
    assert fit_table(data, spec([SHIFTED], ["map"]))["converged"].all()


def test_a_fit_with_one_unusable_parameter_fails_on_every_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = fitting.fit_methods

    def sigma_se_lost(*args, **kwargs):
        fits = real(*args, **kwargs)
        prior, fit = fits[-1]
        assert fit.method == "map"
        se = fit.se.copy()
        se[2, -1] = np.nan  # only sigma's SE of one replicate is not finite
        return [*fits[:-1], (prior, replace(fit, se=se))]

    data = draw(CELL, 1, 0, 4)
    fits = fit_table(data, spec([WEAK], ["ols", "map"]))
    assert fits["converged"].all()
    monkeypatch.setattr(fitting, "fit_methods", sigma_se_lost)
    marked = fit_table(data, spec([WEAK], ["ols", "map"]))
    failed = marked.loc[~marked["converged"], ["method", "replicate"]].drop_duplicates()
    assert failed.to_dict("records") == [{"method": "map", "replicate": 2}]
    assert (~marked["converged"]).sum() == 4  # beta0, beta1, beta2 and sigma
    assert np.isnan(marked["se"]).sum() == 1
    pd.testing.assert_frame_equal(
        marked.drop(columns=["converged", "se"]), fits.drop(columns=["converged", "se"])
    )


def test_tables_of_fits_have_the_columns_and_types_of_the_pandas_ones(data: Datasets) -> None:
    table = fit_table(data, spec([WEAK, SHIFTED], ["ols", "mle", "map"]))
    assert list(table.columns) == list(fit_columns())
    assert len(table) == 120 * 4 * 4
    text = ["errors", "truth", "design", "prior", "method", "parameter"]
    assert all(pd.api.types.is_string_dtype(table[c]) for c in text)
    assert table[["n", "replicate"]].dtypes.eq(np.int64).all()
    assert table[["sigma", "estimate", "se", "lower", "upper", "true"]].dtypes.eq(float).all()
    assert table[["converged", "multimodal"]].dtypes.eq(bool).all()
    # one block per fit, replicates in order, parameters within a replicate
    first = table.iloc[:8]
    assert first["parameter"].tolist() == ["beta0", "beta1", "beta2", "sigma"] * 2
    assert first["replicate"].tolist() == [0] * 4 + [1] * 4
    assert table["method"].drop_duplicates().tolist() == ["ols", "mle", "map"]
    assert table["prior"].drop_duplicates().tolist() == ["", "weak", "shifted"]
    assert (table["true"].to_numpy()[:4] == [*BETA, 1.0]).all()


def write_chunk(tmp_path: Path, data: Datasets) -> Path:
    path = tmp_path / "datasets" / "chunk.npz"
    save_datasets(path, [data])
    return path


def simulate_job(fit: FitSpec, replicates: int = 120) -> SimulateJob:
    return SimulateJob("n10-1", 12345, (Unit(CELL, 0, replicates),), fit)


def test_simulate_logs_failures_and_matches_fit_table(
    data: Datasets, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fit = spec([WEAK, SHIFTED], ["ols", "mle", "map"], FEW)
    out = tmp_path / "chunks" / "n10-1.parquet"
    with caplog.at_level(logging.INFO, logger="regsim"):
        run_simulate(simulate_job(fit), fits=out)
    keys = ["prior", "method", "parameter", "replicate"]
    table = sort_table(read_parquet(out), keys)
    expected = sort_table(fit_table(data, fit), keys)
    pd.testing.assert_frame_equal(table, expected)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    failed = expected.loc[~expected["converged"], ["prior", "replicate"]].drop_duplicates()
    assert len(failed)
    for prior, rows in failed.groupby("prior"):
        message = f"n10_sigma1 map ({prior}): {len(rows)} of 120 replicates failed"
        assert any(w.startswith(message) for w in warnings)
    assert not any(w.startswith(("n10_sigma1 ols", "n10_sigma1 mle")) for w in warnings)


def test_a_simulate_job_imports_no_pandas(data: Datasets, tmp_path: Path) -> None:
    """Its tables are pyarrow's (regsim.parquet): pandas would add a fifth of a second to
    the start of every simulate job. The job, failures and dataset file included, runs in
    a process that has not imported pandas when it ends, and writes the same chunk as in
    this one."""
    fit = spec([WEAK, SHIFTED], ["ols", "mle", "map"], FEW)
    here, there = tmp_path / "here.parquet", tmp_path / "there.parquet"
    run_simulate(simulate_job(fit), fits=here)
    code = (
        "import sys\n"
        "from regsim.jobs import run_simulate\n"
        "from regsim.specs import SimulateJob\n"
        "from regsim.workflow import log_to\n"
        "with log_to(sys.argv[4]):\n"
        "    run_simulate(SimulateJob.from_params(eval(sys.argv[1], {'inf': float('inf')})),"
        " fits=sys.argv[2], datasets=sys.argv[3])\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'pandas'))\n"
    )
    params = repr(simulate_job(fit).to_params())
    log = tmp_path / "job.log"
    command = [sys.executable, "-c", code, params, str(there), str(tmp_path / "d.npz"), str(log)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert "replicates failed" in log.read_text()  # the failures were logged
    assert there.read_bytes() == here.read_bytes()


@pytest.mark.parametrize(
    "column",
    [
        np.array([], dtype=float),
        np.array([1.5, np.nan, -np.inf, 0.0]),
        np.arange(10, dtype=np.int64)[::3],
        np.arange(7, dtype=np.int32)[::-1],
        np.array([True, False] * 9 + [True])[1:],
        np.zeros(0, dtype=bool),
    ],
    ids=["empty", "floats", "strided", "reversed", "bools-offset", "no-bools"],
)
def test_columns_built_on_their_memory_equal_pyarrows(column: np.ndarray) -> None:
    import pyarrow as pa

    built, expected = fitting._arrow(column), pa.array(column)
    built.validate(full=True)
    assert built.type == expected.type and built.null_count == expected.null_count == 0
    values = np.asarray(built.to_pylist(), dtype=column.dtype)
    assert np.array_equal(values, column, equal_nan=column.dtype.kind == "f")


def test_a_column_the_buffers_cannot_hold_is_refused() -> None:
    for column in (np.ones((2, 2)), np.ones(3, dtype=">f8"), np.array(["a", "b"])):
        with pytest.raises(ValueError, match="not a column of numbers or booleans"):
            fitting._arrow(column)


def test_runs_of_equal_keys_are_the_same_in_pyarrow_and_pandas() -> None:
    import pyarrow as pa

    from regsim.parquet import row_runs

    rng = np.random.default_rng(3)
    for _ in range(50):
        size = int(rng.integers(1, 30))
        keys = {
            "prior": rng.choice(np.array(["", "weak", None], dtype=object), size),
            "replicate": rng.integers(0, 3, size),
        }
        frame = pd.DataFrame(keys)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for by in (["prior"], ["replicate"], ["prior", "replicate"]):
            assert row_runs(table, by) == row_runs(frame, by)


def test_simulate_in_batches_gives_the_same_chunk(
    data: Datasets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit = spec([WEAK, SHIFTED], ["ols", "mle", "map"])
    whole, batched = tmp_path / "whole.parquet", tmp_path / "batched.parquet"
    run_simulate(simulate_job(fit), fits=whole)
    monkeypatch.setattr(fitting, "FIT_BATCH_REPLICATES", 7)
    monkeypatch.setattr(simulate, "BATCH_OBSERVATIONS", 35)  # n = 10: 3 per batch
    batches = list(simulate.draw_batches(CELL, 12345, 0, 120, simulate.batch_replicates(10)))
    assert [len(b) for b in batches][:2] == [3, 3]
    assert [len(t) // 16 for t in fitting.fit_batches(batches, fit)] == [6] * 20
    run_simulate(simulate_job(fit), fits=batched)
    keys = ["prior", "method", "parameter", "replicate"]
    pd.testing.assert_frame_equal(
        sort_table(read_parquet(batched), keys), sort_table(read_parquet(whole), keys)
    )


def test_summarize_leaves_failed_replicates_out_and_counts_them(data: Datasets) -> None:
    fits = fit_table(data, spec([SHIFTED], ["ols", "map"], FEW))
    metrics = summarize_cell(fits, 0.05)
    kept = summarize_cell(fits[fits["converged"]], 0.05)
    n_failed = (~fits.loc[fits["parameter"] == "sigma", "converged"]).sum()
    assert n_failed > 0
    counts = metrics[metrics["measure"] == "n_failed"].set_index(["method", "parameter"])
    assert (counts.loc["map", "estimate"] == n_failed).all()
    assert (counts.loc["ols", "estimate"] == 0).all()
    same = ~metrics["measure"].isin(["n_failed", "n_multimodal"])
    pd.testing.assert_frame_equal(
        metrics[same].reset_index(drop=True),
        kept[~kept["measure"].isin(["n_failed", "n_multimodal"])].reset_index(drop=True),
    )


# --------------------------------------------------------------------------------------
# Failures in the paper tables and the failure report
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def failing_metrics(data: Datasets) -> pd.DataFrame:
    fits = fit_table(data, spec([WEAK, SHIFTED], ["ols", "mle", "map"], FEW))
    return summarize_cell(fits, 0.05)


def test_paper_tables_mark_cells_with_failed_replicates(failing_metrics: pd.DataFrame) -> None:
    counts = failing_metrics[failing_metrics["measure"] == "n_failed"]
    failed = counts.groupby("prior")["estimate"].max().to_dict()
    markdown = tables.paper_table(failing_metrics, "bias", "beta1", "markdown")
    row = next(line for line in markdown.splitlines() if line.startswith("| 1 | 10 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # OLS, MLE unmarked; a MAP cell is marked when some (not all) of its replicates failed
    assert not cells[2].endswith("†") and not cells[3].endswith("†")
    note = markdown.split("†: ", 1)[1]
    for prior in ("shifted", "weak"):
        if failed[prior]:
            assert f"MAP ({prior}) at σ = 1, n = 10: {int(failed[prior])} of 120" in note
    latex = tables.paper_table(failing_metrics, "bias", "beta1", "latex")
    assert r"$^\dagger$" in latex
    assert (
        r"\multicolumn{6}{l}{\footnotesize $^\dagger$MAP (shifted), $\sigma = 1$, $n = 10$:"
        in latex
    )


def test_failure_report_lists_every_failing_cell(failing_metrics: pd.DataFrame) -> None:
    report = tables.failure_report(failing_metrics)
    assert report.startswith("# Failed replicates\n")
    table = tables.failure_table(failing_metrics)
    assert set(table["method"]) == {"map"} and (table["replicates"] == 120).all()
    for r in table.itertuples():
        assert f"| 1 | 10 | MAP ({r.prior}) | {r.failed} | 120 |" in report
    clean = failing_metrics.copy()
    clean.loc[clean["measure"] == "n_failed", "estimate"] = 0.0
    assert "No replicate failed." in tables.failure_report(clean)
    assert "†" not in tables.paper_table(clean, "bias", "beta1", "markdown")


def test_a_cell_whose_every_replicate_failed_is_marked_too(failing_metrics: pd.DataFrame) -> None:
    # MAP (shifted) failed on all 120: no estimate, and its dash carries the † of its note
    shifted = (failing_metrics["method"] == "map") & (failing_metrics["prior"] == "shifted")
    lost = failing_metrics.loc[~shifted | failing_metrics["measure"].isin(["n_failed", "n_reps"])]
    lost = lost.copy()
    counts = (lost["method"] == "map") & (lost["prior"] == "shifted")
    lost.loc[counts & (lost["measure"] == "n_failed"), "estimate"] = 120.0
    lost.loc[counts & (lost["measure"] == "n_reps"), "estimate"] = 0.0
    markdown = tables.paper_table(lost, "bias", "beta1", "markdown")
    row = next(line for line in markdown.splitlines() if line.startswith("| 1 | 10 |"))
    assert row.rstrip(" |").endswith("—†")
    assert "MAP (shifted) at σ = 1, n = 10: 120 of 120" in markdown
    latex = tables.paper_table(lost, "bias", "beta1", "latex")
    assert r"& --$^\dagger$ \\" in latex


def test_the_failure_report_counts_cells_of_the_grid(failing_metrics: pd.DataFrame) -> None:
    # the same cell's measures again at another σ: two cells, a failing fit in each
    two = pd.concat([failing_metrics, failing_metrics.assign(sigma=2.0)], ignore_index=True)
    table = tables.failure_table(two)
    assert len(table) == 2
    total = int(table["failed"].sum())
    report = tables.failure_report(two)
    assert f"{total} failed replicate fits over the 2 rows above, in 2 cells of the grid." in report


def test_under_the_common_rule_left_out_replicates_are_not_called_failed(data: Datasets) -> None:
    fits = fit_table(data, spec([WEAK, SHIFTED], ["ols", "mle", "map"], FEW))
    common = summarize_cell(fits, 0.05, failures="common")
    failed_anywhere = fits.loc[~fits["converged"], "replicate"].nunique()
    assert 0 < failed_anywhere < 120
    report = tables.failure_report(common, "common")
    assert report.startswith("# Failed replicates (failure rule: common)\n")
    # OLS failed on none of them: its row counts replicates left out, and says so
    assert f"| 1 | 10 | OLS | {failed_anywhere} | 120 |" in report
    assert "| estimator | left out | of |" in report
    assert "replicate fits left out over the 4 rows above, in 1 cell of the grid." in report
    markdown = tables.paper_table(common, "bias", "beta1", "markdown", failures="common")
    note = markdown.split("†: ", 1)[1]
    assert note.startswith("replicates left out under the common failure rule")
    # every estimator of the row left the same replicates out: one note for the row, not
    # one per column
    assert note.endswith(f": every estimator at σ = 1, n = 10: {failed_anywhere} of 120.\n")
    assert "OLS at" not in note and "not converged" not in note
    latex = tables.paper_table(common, "bias", "beta1", "latex", failures="common")
    assert "replicates left out (common failure rule)" in latex
    # a table with notes is a bare tabular unless a caption or label is asked for, and
    # keeps the label it is given
    assert latex.startswith("% Bias") and r"\begin{table}" not in latex
    own = tables.paper_table(summarize_cell(fits, 0.05), "bias", "beta1", "latex")
    assert "$^\\dagger$" in own and r"\begin{table}" not in own
    labelled = tables.paper_table(common, "bias", "beta1", "latex", label="tab:b", caption="B")
    assert r"\label{tab:b}" in labelled and labelled.count(r"\label{") == 1
    assert latex.count(r"\footnotesize $^\dagger$Every estimator, $\sigma = 1$, $n = 10$:") == 1
    # under the own rule the same fits name failures, and OLS has none
    own = tables.paper_table(summarize_cell(fits, 0.05), "bias", "beta1", "markdown")
    assert "replicates failed (not converged or not finite), left out" in own
    assert "OLS at" not in own
    with pytest.raises(ValueError, match="failures must be one of own, common"):
        tables.failure_report(common, "shared")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_with_failure_notes_compiles(failing_metrics: pd.DataFrame, tmp_path: Path) -> None:
    body = tables.paper_table(failing_metrics, "bias", "beta1")
    result = compile_table(body, tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]


# --------------------------------------------------------------------------------------
# Damaged files
# --------------------------------------------------------------------------------------


@pytest.fixture
def fits_file(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    table = fit_table(draw(CELL, 1, 0, 10), spec([WEAK], ["ols", "map"]))
    path = tmp_path / "fits.parquet"
    write_parquet(table, path)
    return path, table


def test_every_flipped_byte_of_a_table_is_detected_or_harmless(
    fits_file: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    path, table = fits_file
    original = path.read_bytes()
    damaged = tmp_path / "damaged.parquet"
    detected = 0
    for offset in range(0, len(original), 7):
        data = bytearray(original)
        data[offset] ^= 0xFF
        damaged.write_bytes(bytes(data))
        try:
            back = read_parquet(damaged, columns=["estimate"])
        except DataFileError as error:
            assert str(error).startswith(f"{damaged}: ")
            assert str(error).endswith("; delete it and rerun the workflow to regenerate it")
            assert "\n" not in str(error)
            detected += 1
            continue
        pd.testing.assert_frame_equal(back, table)  # never a different table
    assert detected > len(range(0, len(original), 7)) // 2  # the rest: unused metadata bytes


def test_truncated_or_foreign_tables_name_the_file(
    fits_file: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    path, _ = fits_file
    original = path.read_bytes()
    for size in (0, 4, 100, len(original) // 2, len(original) - 1):
        path.write_bytes(original[:size])
        with pytest.raises(DataFileError, match=r"fits\.parquet: unreadable table file \("):
            read_parquet(path)
    other = tmp_path / "other.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), other)
    with pytest.raises(
        DataFileError, match=r"other\.parquet: not a table of this workflow \(no column estimate\)"
    ):
        read_parquet(other, columns=["estimate"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"unreadable metrics table \(EmptyDataError"),
        ("garbage\n1\n", r"not a metrics table \(no column n, sigma"),
        (
            "n,sigma,prior,method,parameter,true,measure,estimate,mcse\nx,1,,ols,beta0,1,bias,1,1\n",
            r"damaged metrics table \(column n:",
        ),
        (
            "n,sigma,prior,method,parameter,true,measure,estimate,mcse\n"
            "10,1,,ols,beta0,1,bias,1.0.0,1\n",
            r"damaged metrics table \(column estimate:",
        ),
    ],
)
def test_damaged_metrics_csv_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(text)
    with pytest.raises(DataFileError, match=rf"metrics\.csv: {message}") as info:
        read_metrics(path)
    assert "\n" not in str(info.value)
    with pytest.raises(DataFileError, match=r"nope\.csv: metrics table not found"):
        read_metrics(tmp_path / "nope.csv")


def unsupported_compression(path: Path) -> None:
    """Mark the first member of a zip archive (in its central directory) as compressed
    with method 99, which Python's zipfile does not support."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        central = archive.start_dir
    assert data[central : central + 4] == b"PK\x01\x02"
    data[central + 10 : central + 12] = (99).to_bytes(2, "little")
    path.write_bytes(bytes(data))


def test_any_damaged_dataset_file_is_reported(tmp_path: Path) -> None:
    chunk = write_chunk(tmp_path, draw(CELL, 1, 0, 5))
    original = chunk.read_bytes()
    damages = [
        lambda p: p.write_bytes(original[: len(original) // 2]),
        lambda p: p.write_bytes(b"not a dataset"),
        lambda p: p.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:]),
        unsupported_compression,
    ]
    for damage in damages:
        chunk.write_bytes(original)
        damage(chunk)
        with pytest.raises(DataFileError, match=r"chunk\.npz: unreadable dataset file \(") as info:
            load_datasets(chunk)
        assert str(info.value).endswith("; delete it and rerun the workflow to regenerate it")


def test_collect_reports_a_damaged_chunk_and_writes_nothing(tmp_path: Path) -> None:
    chunk = tmp_path / "chunks" / "n10-1.parquet"
    run_simulate(simulate_job(spec([WEAK], ["ols", "map"]), replicates=5), fits=chunk)
    original = chunk.read_bytes()
    outputs = {
        "fits": [tmp_path / "fits.parquet"],
        "metrics": [tmp_path / "metrics.parquet"],
        "table": tmp_path / "metrics.csv",
    }
    for damaged in (original[: len(original) // 2], b"not a table"):
        chunk.write_bytes(damaged)
        with pytest.raises(DataFileError, match=r"n10-1\.parquet: unreadable table file \("):
            run_collect(CollectJob(("n10_sigma1",), 5, 0.05), chunks=[chunk], **outputs)
        assert not any(path.exists() for path in (*outputs["fits"], outputs["table"]))


def test_load_datasets_reports_an_unsupported_compression_method(tmp_path: Path) -> None:
    chunk = write_chunk(tmp_path, draw(CELL, 1, 0, 5))
    unsupported_compression(chunk)
    with pytest.raises(DataFileError):
        load_datasets(chunk)


# --------------------------------------------------------------------------------------
# Atomic writes and one-line job errors
# --------------------------------------------------------------------------------------


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), path)
    before = path.read_bytes()

    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises
        write_parquet(pd.DataFrame({"a": [object()]}), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_log_to_turns_a_user_error_into_one_line(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as info, log_to(log):
        raise DataFileError("results/x.parquet: unreadable table file (bad); delete it")
    assert str(info.value) == "error: results/x.parquet: unreadable table file (bad); delete it"
    text = log.read_text()
    assert "ERROR regsim: job failed: results/x.parquet: unreadable table file" in text
    assert "Traceback" not in text


def test_an_interrupted_job_exits_130_with_one_log_line(tmp_path: Path) -> None:
    # Ctrl-C reaches every job of a run: no traceback on the console, one line in the log.
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as info, log_to(log):
        raise KeyboardInterrupt
    assert info.value.code == 130
    assert log.read_text().splitlines()[-1].endswith("ERROR regsim: job interrupted")
    assert "Traceback" not in log.read_text()


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 64 kB file system (a tmpfs, mounted as root), removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small file system needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_full_disk_is_one_line_and_keeps_the_old_output(full_disk: Path) -> None:
    chunk = full_disk / "chunks" / "n10-1.parquet"
    chunk.parent.mkdir()
    chunk.write_bytes(b"the old output")
    log = full_disk.parent / "simulate.log"
    with pytest.raises(SystemExit) as info, log_to(log):
        run_simulate(simulate_job(spec([WEAK], ["ols", "map"]), replicates=2000), fits=chunk)
    # the operating system's words, as the library that wrote passes them on
    message = str(info.value)
    assert message.startswith(f"error: {chunk}: cannot write it (") and "\n" not in message
    assert message.endswith("No space left on device); the old file, if any, is kept")
    assert chunk.read_bytes() == b"the old output"
    assert sorted(p.name for p in chunk.parent.iterdir()) == ["n10-1.parquet"]
    assert "Traceback" not in log.read_text()
