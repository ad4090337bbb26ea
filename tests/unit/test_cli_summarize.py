"""Tests of ``python -m regsim summarize``: reference values and error behaviour."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regsim.cli import summarize as summarize_cli
from regsim.errors import InputDataError, OutputError
from regsim.metrics import summarize

DATA = Path(__file__).resolve().parents[1] / "data"
MISIM = DATA / "MIsim.csv"
ARGS = [
    "--estimate",
    "b",
    "--se",
    "se",
    "--true",
    "0.5",
    "--by",
    "method",
    "--ref",
    "CC",
    "--method-col",
    "method",
    "--replicate-col",
    "dataset",
]
VIGNETTE_RELPREC_MCSE = {"MI_LOGT": 3.9375, "MI_T": 3.8424}


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


def run_in_process(*args: str | Path) -> int:
    """Parse and run the summarize command without the dispatcher."""
    parser = argparse.ArgumentParser()
    summarize_cli.register(parser.add_subparsers())
    parsed = parser.parse_args(["summarize", *map(str, args)])
    return parsed.func(parsed)


def test_cli_reproduces_reference_values(tmp_path):
    out = tmp_path / "metrics.csv"
    result = regsim("summarize", MISIM, out, *ARGS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["method", "measure", "estimate", "mcse"]

    stata = pd.read_csv(DATA / "MIsim_res_stata.csv")
    # rsimsum and Stata call the rejection rate "power"
    stata["stat"] = stata["stat"].replace({"cover": "coverage", "power": "rejection"})
    merged = stata.merge(
        table, left_on=["stat", "method"], right_on=["measure", "method"], validate="1:1"
    )
    assert len(merged) == len(stata)
    np.testing.assert_allclose(merged["estimate"], merged["est"], rtol=1e-5, atol=1e-7)
    stata_mcse = merged[merged["stat"] != "relprec"]
    np.testing.assert_allclose(stata_mcse["mcse_y"], stata_mcse["mcse_x"], rtol=1e-5, atol=1e-7)
    relprec = table[table["measure"] == "relprec"].set_index("method")["mcse"]
    for method, mcse in VIGNETTE_RELPREC_MCSE.items():
        assert relprec[method] == pytest.approx(mcse, abs=5e-5)

    # Full precision: the file holds exactly what the library computes.
    expected = summarize(
        pd.read_csv(MISIM),
        estimate="b",
        se="se",
        true=0.5,
        by=["method"],
        ref="CC",
        method_col="method",
        replicate_col="dataset",
    )
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no temporary left


def test_cli_missing_column_is_one_line_error(tmp_path):
    out = tmp_path / "metrics.csv"
    args = [a if a != "b" else "beta" for a in ARGS]
    result = regsim("summarize", MISIM, out, *args, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "'beta'" in lines[0]
    assert not out.exists()


def test_cli_refuses_to_overwrite_its_input(tmp_path):
    source = tmp_path / "MIsim.csv"
    shutil.copyfile(MISIM, source)
    before = source.read_bytes()
    with pytest.raises(InputDataError, match="is the input file"):
        run_in_process(source, tmp_path / "." / "MIsim.csv", *ARGS)
    os.symlink(source, tmp_path / "link.csv")
    with pytest.raises(InputDataError, match="is the input file"):
        run_in_process(source, tmp_path / "link.csv", *ARGS)
    assert source.read_bytes() == before


def test_parquet_input_gives_same_output(tmp_path):
    parquet = tmp_path / "MIsim.parquet"
    pd.read_csv(MISIM).to_parquet(parquet)
    assert run_in_process(MISIM, tmp_path / "a.csv", *ARGS) == 0
    assert run_in_process(parquet, tmp_path / "b.csv", *ARGS) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_an_output_in_a_folder_that_does_not_exist_is_refused(tmp_path):
    out = tmp_path / "typo" / "metrics.csv"
    with pytest.raises(OutputError, match=r"typo does not exist; nothing was written"):
        run_in_process(MISIM, out, *ARGS)
    assert not out.parent.exists()


def test_an_existing_output_is_kept_unless_forced_and_the_output_is_deterministic(tmp_path):
    out = tmp_path / "sub" / "metrics.csv"
    out.parent.mkdir()
    out.write_text("kept\n")
    with pytest.raises(OutputError, match=r"metrics.csv: exists; give --force to replace it"):
        run_in_process(MISIM, out, *ARGS)
    assert out.read_text() == "kept\n"
    assert run_in_process(MISIM, out, *ARGS, "--force") == 0
    first = out.read_bytes()
    assert run_in_process(MISIM, out, *ARGS, "--force") == 0
    assert out.read_bytes() == first
    assert first.startswith(b"method,measure,estimate,mcse\nCC,bias,")
    assert sorted(os.listdir(out.parent)) == ["metrics.csv"]


def test_a_damaged_parquet_input_is_refused_not_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pd.read_csv(MISIM)
    path = tmp_path / "fits.parquet"
    pq.write_table(pa.Table.from_pandas(table), path, write_page_checksum=True)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # a byte of the column pages, not the footer
    path.write_bytes(bytes(data))
    with pytest.raises(InputDataError, match="cannot read input file"):
        run_in_process(path, tmp_path / "out.csv", *ARGS)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("absent.csv", None, "absent.csv.*not found"),
        ("empty.csv", "", "empty.csv.*empty"),
        ("bad.parquet", "not parquet", "cannot read input file .*bad.parquet"),
        ("ragged.csv", "method,b\nCC,1,2\nCC,2\n", "the first data row has 3 fields, the header 2"),
        ("folder.csv", "/", "folder.csv: is a folder, not a CSV file"),
    ],
)
def test_unreadable_input_is_input_data_error(tmp_path, name, content, match):
    path = tmp_path / name
    if content == "/":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(InputDataError, match=match) as info:
        run_in_process(path, tmp_path / "out.csv", *ARGS)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.csv").exists()


def test_interval_and_flag_options_reach_the_library(tmp_path):
    table = pd.read_csv(MISIM)
    table["lo"] = table["b"] - 1.959963984540054 * table["se"]
    table["hi"] = table["b"] + 1.959963984540054 * table["se"]
    table["ok"] = table["dataset"] != 1
    table["mm"] = table["dataset"] <= 3
    source = tmp_path / "in.csv"
    table.to_csv(source, index=False)
    out = tmp_path / "out.csv"
    extra = ["--lower", "lo", "--upper", "hi", "--converged-col", "ok", "--multimodal-col", "mm"]
    assert run_in_process(source, out, *ARGS, *extra, "--alpha", "0.1") == 0
    result = pd.read_csv(out).set_index(["method", "measure"])
    assert result.loc[("CC", "n_failed"), "estimate"] == 1
    assert result.loc[("CC", "n_multimodal"), "estimate"] == 3
    assert result.loc[("CC", "n_reps"), "estimate"] == 999


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--estimate", "b", "--true", "0.5", "--by", "dataset", "--method-col", "method"],
            "--method-col 'method' must also be one of the --by columns",
        ),
        (
            ["--estimate", "b", "--true", "0.5", "--ref", "CC"],
            "--ref needs --method-col (the column naming the method)",
        ),
        (
            ["--estimate", "b", "--true", "0.5", "--failures", "common"],
            "--failures common needs --method-col (the column naming the method)",
        ),
        (
            ["--estimate", "b", "--true", "0.5", "--by", "method"]
            + ["--method-col", "method", "--ref", "CC"],
            "--ref needs --replicate-col (the column naming the replicate, to pair each "
            "method's fits of the same dataset)",
        ),
        (
            ["--estimate", "b", "--true", "0.5", "--by", "method"]
            + ["--method-col", "method", "--failures", "common"],
            "--failures common needs --replicate-col (the column naming the replicate, to "
            "pair each method's fits of the same dataset)",
        ),
    ],
)
def test_options_that_only_work_together_are_named_as_options(tmp_path, options, message):
    with pytest.raises(InputDataError) as info:
        run_in_process(MISIM, tmp_path / "out.csv", *options)
    assert str(info.value) == message
    assert not (tmp_path / "out.csv").exists()


def test_paired_measures_do_not_depend_on_the_order_of_the_rows(tmp_path: Path) -> None:
    # Pairs are found by replicate, which the command asks for: shuffled rows give the
    # same numbers (paired by row order, they would pair unrelated datasets).
    shuffled = tmp_path / "shuffled.csv"
    pd.read_csv(MISIM).sample(frac=1.0, random_state=1).to_csv(shuffled, index=False)
    options = [*ARGS, "--failures", "common"]
    run_in_process(MISIM, tmp_path / "in_order.csv", *options)
    run_in_process(shuffled, tmp_path / "shuffled_out.csv", *options)
    in_order = pd.read_csv(tmp_path / "in_order.csv")
    again = pd.read_csv(tmp_path / "shuffled_out.csv")
    pd.testing.assert_frame_equal(in_order, again, check_exact=False, rtol=1e-12)
    assert {"relprec", "bias_diff"} <= set(in_order["measure"])
