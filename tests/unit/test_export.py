"""Tests of ``python -m regsim export``: every fit row, in the layout R and Stata read."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from regsim import export
from regsim.cli import main
from regsim.design import Cell, Design, Prior, plan_jobs
from regsim.errors import DataFileError, InputDataError, OutputError
from regsim.export import COLUMNS, export_fits, export_format, find_cells, iter_export
from regsim.jobs import run_collect, run_simulate
from regsim.metrics import summarize
from regsim.provenance import PROVENANCE_NAME, write_provenance
from regsim.schema import FACTOR_NAMES
from regsim.specs import CollectJob, FitSpec, SimulateJob
from regsim.tableio import read_metrics, read_parquet

BETA = (10.0, 3.8987, 10.1777)
COLLINEAR = Design("collinear", "normal", 0.5)
# Listed out of the study's order, which the export restores.
CELLS = (
    Cell(30, 0.5, BETA, errors="t3"),
    Cell(12, 1.0, (10.0, 0.0, 10.1777), truth="null_slope", design=COLLINEAR),
    Cell(12, 1.0, BETA),
)
PRIORS = (
    Prior("weak", (0.0, 0.0, 0.0), (100.0, 100.0, 100.0)),
    Prior("skeptical", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
)
# Few MAP iterations: some fits fail, and are exported with converged = 0.
FIT = FitSpec(("ols", "ols_hc3", "mle", "map"), PRIORS, 0.05, map_max_iter=4)
REPLICATIONS = 25
P = len(BETA)
STUDY_ORDER = ["n12_sigma1", "n12_sigma1_null_slope_collinear", "n30_sigma0.5_t3"]
FORMATS = ("csv", "parquet", "dta")


def build_study(root: Path) -> Path:
    """Simulate and collect the cells as the workflow does, and record their provenance."""
    chunks = []
    for job in plan_jobs(CELLS, REPLICATIONS, 10**6):
        chunk = root / "chunks" / f"{job.name}.parquet"
        run_simulate(SimulateJob(job.name, 7, job.units, FIT), fits=chunk)
        chunks.append(chunk)
    labels = [cell.label for cell in CELLS]
    fits = [root / "fits" / f"{label}.parquet" for label in labels]
    metrics = [root / "metrics" / f"{label}.parquet" for label in labels]
    table = root / "tables" / "metrics.csv"
    run_collect(
        CollectJob(tuple(labels), REPLICATIONS, 0.05),
        chunks=chunks,
        fits=fits,
        metrics=metrics,
        table=table,
    )
    write_provenance(root / PROVENANCE_NAME, {"seed": 7}, [*chunks, *fits, *metrics, table])
    return root


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_study(tmp_path_factory.mktemp("study") / "results")


def expected_rows(results: Path) -> pd.DataFrame:
    """Every row of the study's tables of fits, in the study's order, as the export has it."""
    fits = pd.concat(
        [read_parquet(results / "fits" / f"{label}.parquet") for label in STUDY_ORDER],
        ignore_index=True,
    )
    fits["label"] = np.where(
        fits["prior"] == "", fits["method"], fits["method"] + "_" + fits["prior"]
    )
    return fits


def read_back(path: Path, kind: str) -> pd.DataFrame:
    if kind == "csv":
        return pd.read_csv(path)
    if kind == "parquet":
        return pd.read_parquet(path)
    return pd.read_stata(path)


# --------------------------------------------------------------------------------------
# What is written
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FORMATS)
def test_the_file_reads_back_with_every_fit_row(study: Path, tmp_path: Path, kind: str) -> None:
    out = tmp_path / f"fits.{kind}"
    done = export_fits(study, out)
    table = read_back(out, kind)
    fits = expected_rows(study)

    assert (done.format, done.rows, done.cells, done.source) == (
        kind,
        len(fits),
        3,
        PROVENANCE_NAME,
    )
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == len(fits) == len(CELLS) * REPLICATIONS * (3 + len(PRIORS)) * (P + 1)
    for name in ("errors", "truth", "design", "parameter"):
        assert table[name].astype(str).tolist() == fits[name].tolist()
    assert table["method"].astype(str).tolist() == fits["label"].tolist()
    assert list(dict.fromkeys(table["method"])) == [
        "ols",
        "ols_hc3",
        "mle",
        "map_skeptical",
        "map_weak",
    ]
    np.testing.assert_array_equal(table["rep"], fits["replicate"])
    np.testing.assert_array_equal(table["n"], fits["n"])
    np.testing.assert_array_equal(table["sigma"].astype(float), fits["sigma"])
    # the numbers themselves: exact (CSV round trip, Stata doubles)
    for out_column, source in (
        ("est", "estimate"),
        ("se", "se"),
        ("lower", "lower"),
        ("upper", "upper"),
        ("true", "true"),
    ):
        values = fits[source].to_numpy()
        if kind == "dta":  # Stata holds no infinity: missing there
            values = np.where(np.isfinite(values), values, np.nan)
        np.testing.assert_array_equal(table[out_column].to_numpy(float), values, strict=True)
    # failed fits are kept, flagged 0
    assert sorted(set(table["converged"])) == [0, 1]
    np.testing.assert_array_equal(table["converged"], fits["converged"].astype(int))

    # df: n - p exactly on the t intervals (OLS and HC3 coefficients), missing elsewhere
    t_rows = fits["method"].isin(["ols", "ols_hc3"]) & fits["parameter"].str.startswith("beta")
    df = table["df"].to_numpy(float)
    np.testing.assert_array_equal(df[t_rows], (fits["n"] - P)[t_rows].to_numpy(float))
    assert np.isnan(df[~t_rows]).all()
    assert (~t_rows).sum() > 0 and set(fits.loc[~t_rows, "parameter"]) >= {"sigma", "beta1"}


def test_columns_have_types_every_tool_reads(study: Path, tmp_path: Path) -> None:
    export_fits(study, tmp_path / "fits.parquet")
    schema = pq.read_schema(tmp_path / "fits.parquet")
    types = {field.name: str(field.type) for field in schema}
    assert types == {
        "rep": "int64",
        "n": "int64",
        "sigma": "double",
        "errors": "string",
        "truth": "string",
        "design": "string",
        "method": "string",
        "parameter": "string",
        "est": "double",
        "se": "double",
        "lower": "double",
        "upper": "double",
        "true": "double",
        "converged": "int8",
        "df": "int64",
    }
    assert schema.metadata is None  # no pandas-only metadata
    file = pq.ParquetFile(tmp_path / "fits.parquet")
    assert file.num_row_groups == sum(
        pq.ParquetFile(study / "fits" / f"{label}.parquet").num_row_groups for label in STUDY_ORDER
    )

    export_fits(study, tmp_path / "fits.dta")
    data = (tmp_path / "fits.dta").read_bytes()
    assert data.startswith(b"<stata_dta><header><release>118</release>")
    assert b"<strls></strls>" in data  # text as str#, no strL
    with pd.io.stata.StataReader(tmp_path / "fits.dta") as reader:
        labels = reader.variable_labels()
    assert labels["df"].startswith("degrees of freedom")


def test_csv_writes_factors_as_metrics_csv_does(study: Path, tmp_path: Path) -> None:
    export_fits(study, tmp_path / "fits.csv")
    lines = (tmp_path / "fits.csv").read_text(encoding="utf-8").split("\n")
    assert lines[0] == ",".join(COLUMNS)
    assert lines[-1] == ""  # ends with a newline, no \r
    assert "\r" not in "".join(lines)
    first = dict(zip(COLUMNS, lines[1].split(","), strict=True))
    assert (first["rep"], first["n"], first["sigma"], first["true"]) == ("0", "12", "1", "10")
    assert first["method"] == "ols" and first["df"] == str(12 - P)
    last = dict(zip(COLUMNS, lines[-2].split(","), strict=True))
    assert (last["sigma"], last["method"], last["parameter"], last["df"]) == (
        "0.5",
        "map_weak",
        "sigma",
        "",
    )


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_the_same_results_give_the_same_bytes(study: Path, tmp_path: Path, kind: str) -> None:
    first, second = tmp_path / f"a.{kind}", tmp_path / f"b.{kind}"
    export_fits(study, first)
    export_fits(study, second)
    assert first.read_bytes() == second.read_bytes()


def test_a_summariser_of_the_export_gives_the_studys_measures(study: Path, tmp_path: Path) -> None:
    export_fits(study, tmp_path / "fits.csv")
    table = pd.read_csv(tmp_path / "fits.csv")
    by = [*FACTOR_NAMES, "method", "parameter"]
    ours = summarize(
        table,
        estimate="est",
        se="se",
        true_col="true",
        by=by,
        lower="lower",
        upper="upper",
        converged_col="converged",
        method_col="method",
    )
    metrics = read_metrics(study / "tables" / "metrics.csv")
    metrics["method"] = np.where(
        metrics["prior"] == "", metrics["method"], metrics["method"] + "_" + metrics["prior"]
    )
    measures = ["bias", "empse", "coverage", "n_failed"]
    key = [*by, "measure"]
    merged = metrics[metrics["measure"].isin(measures)].merge(
        ours[ours["measure"].isin(measures)],
        on=key,
        how="outer",
        suffixes=("", "_export"),
        validate="1:1",
        indicator=True,
    )
    assert (merged["_merge"] == "both").all()
    assert len(merged) == len(CELLS) * 5 * (P + 1) * len(measures)
    np.testing.assert_array_equal(merged["estimate_export"], merged["estimate"])
    np.testing.assert_array_equal(merged["mcse_export"], merged["mcse"])
    assert merged.loc[merged["measure"] == "n_failed", "estimate"].sum() > 0


# --------------------------------------------------------------------------------------
# Which cells, in which order, a fit at a time
# --------------------------------------------------------------------------------------


def test_cells_come_in_the_studys_order(study: Path) -> None:
    paths = [study / "fits" / f"{cell.label}.parquet" for cell in CELLS]
    cells = find_cells(paths)
    assert [cell.label for cell in cells] == STUDY_ORDER
    assert [cell.coefficients for cell in cells] == [P, P, P]
    assert all(len(cell.row_groups) == 3 + len(PRIORS) for cell in cells)


def test_provenance_names_the_cells_and_a_copy_left_in_fits_is_not_exported(
    study: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    shutil.copytree(study, results)
    shutil.copyfile(results / "fits" / "n12_sigma1.parquet", results / "fits" / "n12_old.parquet")
    listed = export_fits(results, tmp_path / "listed.csv")
    assert listed.source == PROVENANCE_NAME and listed.cells == 3

    # Without provenance.json every fits/*.parquet is a cell: the copy is refused
    (results / PROVENANCE_NAME).unlink()
    with pytest.raises(DataFileError, match="hold the same cell \\(n12_sigma1\\)"):
        export_fits(results, tmp_path / "found.csv")
    (results / "fits" / "n12_old.parquet").unlink()
    found = export_fits(results, tmp_path / "found.csv")
    assert found.source == "fits/*.parquet"
    assert (tmp_path / "found.csv").read_bytes() == (tmp_path / "listed.csv").read_bytes()


def test_rows_are_read_a_fit_at_a_time(study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cells = find_cells(study / "fits" / f"{label}.parquet" for label in STUDY_ORDER)
    reads: list[tuple[str, list[int]]] = []

    def recording(path, *args, row_groups=None, **kwargs):
        reads.append((Path(path).name, list(row_groups)))
        return read_parquet(path, *args, row_groups=row_groups, **kwargs)

    monkeypatch.setattr(export, "read_parquet", recording)
    parts = iter_export(cells)
    assert reads == []  # nothing read before the rows are asked for
    first = next(parts)
    assert reads == [("n12_sigma1.parquet", [0])]
    assert len(first) == REPLICATIONS * (P + 1) and set(first["method"]) == {"ols"}
    rest = list(parts)
    assert len(reads) == 1 + len(rest) == sum(len(cell.row_groups) for cell in cells)
    assert all(len(groups) == 1 for _, groups in reads)


@pytest.mark.parametrize("kind", FORMATS)
def test_memory_holds_one_fit_while_writing(
    study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    alive: list[weakref.ref] = []
    most = 0
    export_rows = export.export_rows

    def tracked(fits, coefficients):
        frame = export_rows(fits, coefficients)
        alive.append(weakref.ref(frame))
        return frame

    def reading(*args, **kwargs):
        nonlocal most
        gc.collect()
        most = max(most, sum(ref() is not None for ref in alive))
        return read_parquet(*args, **kwargs)

    monkeypatch.setattr(export, "export_rows", tracked)
    monkeypatch.setattr(export, "read_parquet", reading)
    export_fits(study, tmp_path / f"fits.{kind}")
    fits = len(CELLS) * (3 + len(PRIORS))
    assert len(alive) == fits
    if kind == "dta":  # built in memory: every fit is held until the end
        assert most == fits - 1
    else:  # at most the fit just written, while the next is read
        assert most <= 1


# --------------------------------------------------------------------------------------
# Files, formats, refusals
# --------------------------------------------------------------------------------------


def test_the_format_follows_the_suffix_and_a_given_one_must_agree_with_it() -> None:
    assert export_format("a.csv") == "csv"
    assert export_format("a.CSV") == "csv"
    assert export_format("a.parquet") == "parquet"
    assert export_format("a.pq") == "parquet"
    assert export_format("d/a.dta") == "dta"
    assert export_format("a.txt", "csv") == "csv"
    assert export_format("a.csv", "csv") == "csv"
    with pytest.raises(InputDataError, match=r"a.csv: --format dta contradicts the name"):
        export_format("a.csv", "dta")
    with pytest.raises(InputDataError, match="which says parquet"):
        export_format("a.pq", "csv")
    for name in ("a.csv.gz", "a.dta.zip", "a.CSV.XZ"):
        for given in (None, "csv", "dta"):
            with pytest.raises(InputDataError, match="an export is not compressed; name it"):
                export_format(name, given)
    with pytest.raises(InputDataError, match=r"a\.txt: cannot tell the format.*csv\|parquet\|dta"):
        export_format("a.txt")
    with pytest.raises(InputDataError, match="unknown export format 'xlsx'"):
        export_format("a.csv", "xlsx")


def test_an_existing_file_is_kept_unless_forced(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "fits.csv"
    out.write_text("mine")
    with pytest.raises(OutputError, match="fits.csv: exists; give --force to replace it"):
        export_fits(study, out)
    assert out.read_text() == "mine"
    export_fits(study, out, force=True)
    assert out.read_text().startswith("rep,n,sigma")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fits.csv"]  # no temporary left


def test_a_file_of_the_study_is_never_the_output(study: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(study, results)
    target = results / "fits" / "n12_sigma1.parquet"
    before = target.read_bytes()
    with pytest.raises(OutputError, match="is in the results folder it exports"):
        export_fits(results, target, force=True)
    with pytest.raises(OutputError, match="is in the results folder it exports"):
        export_fits(results, results / PROVENANCE_NAME, "csv", force=True)
    assert target.read_bytes() == before
    # any of its files (metrics.csv, a chunk), and a new file there too
    table = results / "tables" / "metrics.csv"
    table.parent.mkdir(exist_ok=True)
    table.write_text("mine")
    for path in (table, results / "fits.csv"):
        with pytest.raises(OutputError, match="is in the results folder it exports"):
            export_fits(results, path, "csv", force=True)
    assert table.read_text() == "mine" and not (results / "fits.csv").exists()


def test_a_dta_larger_than_the_limit_is_refused_before_writing(
    study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "DTA_MAX_ROWS", 100)
    rows = len(expected_rows(study))
    with pytest.raises(OutputError, match=f"{rows:,} fit rows, more than the 100 .*csv or parquet"):
        export_fits(study, tmp_path / "fits.dta")
    assert list(tmp_path.iterdir()) == []
    export_fits(study, tmp_path / "fits.csv")  # no limit there


def damage_last_fit(path: Path) -> None:
    """Flip a byte in the estimates of the file's last row group (its checksum then fails)."""
    metadata = pq.ParquetFile(path).metadata
    group = metadata.row_group(metadata.num_row_groups - 1)
    names = [group.column(i).path_in_schema for i in range(group.num_columns)]
    column = group.column(names.index("estimate"))
    offset = column.data_page_offset + column.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


def regsim(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m regsim ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "regsim", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_writes_the_file_and_says_so(study: Path, tmp_path: Path) -> None:
    result = regsim("export", study, "fits.dta", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = len(expected_rows(study))
    assert result.stdout == (
        f"wrote fits.dta: {rows} fit rows of 3 cells (dta; cells listed by provenance.json)\n"
    )
    assert len(pd.read_stata(tmp_path / "fits.dta")) == rows


def test_cli_bad_format_is_refused_by_the_parser(study: Path, tmp_path: Path) -> None:
    result = regsim("export", study, "fits.csv", "--format", "other", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid choice: 'other'" in result.stderr.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def one_line_error(
    capsys: pytest.CaptureFixture[str], *argv: str | Path, expect: str
) -> tuple[int, str]:
    status = main(["export", *map(str, argv)])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert status == 1, captured
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expect in lines[0], lines[0]
    assert captured.out == ""
    return status, lines[0]


def test_cli_bad_inputs_are_one_line_errors(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    one_line_error(capsys, tmp_path / "nowhere", out / "a.csv", expect="no such results folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(capsys, empty, out / "a.csv", expect="no provenance.json and no fits/*.parquet")
    one_line_error(capsys, study, out / "a.txt", expect="cannot tell the format")
    one_line_error(capsys, study, out, expect="is a folder")
    (out / "taken.csv").write_text("mine")
    one_line_error(capsys, study, out / "taken.csv", expect="exists; give --force")
    # a parent that is a file, or a folder that does not exist (a mistyped path): no
    # folder is made, nothing is written
    one_line_error(capsys, study, out / "taken.csv" / "a.csv", expect="is not a folder")
    one_line_error(capsys, study, out / "typo" / "a.csv", expect="typo does not exist")
    assert not (out / "typo").exists()
    # a path ending in a separator names a folder (Path would read it as a file)
    with pytest.raises(SystemExit) as usage:
        main(["export", str(study), f"{out / 'typo'}/"])
    assert usage.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith(
        "typo/ names a folder; give the file to write (see --help)"
    )
    assert not (out / "typo").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / PROVENANCE_NAME).write_text("{")
    one_line_error(capsys, broken, out / "a.csv", expect="is not valid JSON")
    lacking = tmp_path / "lacking"
    shutil.copytree(study, lacking)
    (lacking / "fits" / "n12_sigma1.parquet").unlink()  # listed in provenance.json, gone
    one_line_error(
        capsys, lacking, out / "a.csv", expect="n12_sigma1.parquet: table file not found"
    )
    assert sorted(p.name for p in out.iterdir()) == ["taken.csv"]
    assert (out / "taken.csv").read_text() == "mine"


@pytest.mark.parametrize("kind", FORMATS)
def test_cli_a_damaged_table_leaves_nothing(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    results = tmp_path / "results"
    shutil.copytree(study, results)
    damaged = results / "fits" / "n30_sigma0.5_t3.parquet"
    damage_last_fit(damaged)
    find_cells([damaged])  # its first fit reads: the damage is met while writing
    out = tmp_path / "out"
    out.mkdir()
    (out / f"fits.{kind}").write_text("old")
    _, line = one_line_error(
        capsys, results, out / f"fits.{kind}", "--force", expect="unreadable table file"
    )
    assert str(damaged) in line and "rerun the workflow" in line
    # the last fit is read last: the others were written, then all was dropped
    assert sorted(p.name for p in out.iterdir()) == [f"fits.{kind}"]
    assert (out / f"fits.{kind}").read_text() == "old"


def test_cli_force_replaces(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fits.parquet"
    out.write_text("old")
    assert main(["export", str(study), str(out), "--force"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: ")
    assert len(pd.read_parquet(out)) == len(expected_rows(study))
