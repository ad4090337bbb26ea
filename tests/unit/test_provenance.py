"""Tests of ``regsim.provenance`` and ``python -m regsim verify``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from regsim import provenance
from regsim.cli import COMMANDS, main
from regsim.cli import verify as verify_cli
from regsim.errors import DataFileError

CONFIG = {
    "seed": 20230406,
    "replications": 50,
    "alpha": 0.05,
    "beta": [10.0, 3.8987, 10.1777],
    "grid": {"n": [10, 40], "sigma": [1, 5]},
    "priors": {"shifted": {"mean": [12.0, 5.8987, 12.1777], "sd": [1, 1, float("inf")]}},
    "methods": ["ols", "mle", "map"],
}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results directory with two tables."""
    root = tmp_path / "results"
    (root / "tables").mkdir(parents=True)
    (root / "tables" / "metrics.csv").write_text("n,sigma\n10,1\n", encoding="utf-8")
    (root / "tables" / "bias_beta1.md").write_text("| σ | n |\n", encoding="utf-8")
    return root


def tables_of(root: Path) -> list[Path]:
    return [root / "tables" / "metrics.csv", root / "tables" / "bias_beta1.md"]


def run_verify(root: Path) -> int:
    """``verify --quick``: these tables are stand-ins, nothing can be recomputed from them
    (tests/e2e/test_reliability.py verifies real studies in full)."""
    parser = argparse.ArgumentParser()
    verify_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["verify", "--quick", str(root)])
    return args.func(args)


def test_build_provenance_records_config_versions_and_hashes(results: Path, tmp_path) -> None:
    record = provenance.build_provenance(CONFIG, tables_of(results), results, repo=tmp_path)
    assert record["seed"] == 20230406
    assert record["config"]["grid"] == CONFIG["grid"]
    assert record["config"]["priors"]["shifted"]["sd"] == [1, 1, "inf"]  # JSON-safe
    assert CONFIG["priors"]["shifted"]["sd"][2] == float("inf")  # the input is not modified
    packages = record["packages"]
    for name in ("python", "numpy", "scipy", "statsmodels", "pandas", "matplotlib", "snakemake"):
        assert packages[name]
    assert packages["numpy"] != "not installed"
    assert record["platform"]["system"]
    assert record["git"] == {"commit": None, "dirty": None}  # tmp_path is not a repository
    assert list(record["tables"]) == ["tables/bias_beta1.md", "tables/metrics.csv"]
    digest = provenance.sha256_file(results / "tables" / "metrics.csv")
    assert record["tables"]["tables/metrics.csv"] == digest
    assert len(digest) == 64
    json.dumps(record, allow_nan=False)


def test_absent_package_is_reported_not_installed(monkeypatch) -> None:
    monkeypatch.setattr(provenance, "PACKAGES", ("numpy", "regsim-no-such-distribution"))
    versions = provenance.package_versions()
    assert versions["regsim-no-such-distribution"] == "not installed"
    assert set(versions) == {"python", "numpy", "regsim-no-such-distribution"}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_and_dirty_flag_are_recorded(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.txt").write_text("a\n", encoding="utf-8")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert provenance.git_state(repo) == {"commit": head, "dirty": False}
    (repo / "a.txt").write_text("changed\n", encoding="utf-8")
    assert provenance.git_state(repo) == {"commit": head, "dirty": True}


def test_hash_changes_when_a_table_changes(results: Path, tmp_path) -> None:
    before = provenance.build_provenance(CONFIG, tables_of(results), results, repo=tmp_path)
    (results / "tables" / "metrics.csv").write_text("n,sigma\n10,2\n", encoding="utf-8")
    after = provenance.build_provenance(CONFIG, tables_of(results), results, repo=tmp_path)
    assert before["tables"]["tables/metrics.csv"] != after["tables"]["tables/metrics.csv"]
    assert before["tables"]["tables/bias_beta1.md"] == after["tables"]["tables/bias_beta1.md"]


def test_write_then_verify_round_trip(results: Path, tmp_path) -> None:
    path = results / provenance.PROVENANCE_NAME
    record = provenance.write_provenance(path, CONFIG, tables_of(results), repo=tmp_path)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == record
    assert "Infinity" not in text
    assert sorted(p.name for p in results.iterdir()) == ["provenance.json", "tables"]  # no temp
    assert provenance.verify(results) == []
    assert [c.status for c in provenance.check_tables(results)] == ["ok", "ok"]
    again = provenance.write_provenance(path, CONFIG, tables_of(results), repo=tmp_path)
    assert again == record and path.read_text(encoding="utf-8") == text  # reproducible


def test_verify_detects_changed_and_missing_tables(results: Path, tmp_path) -> None:
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    (results / "tables" / "metrics.csv").write_text("tampered\n", encoding="utf-8")
    (results / "tables" / "bias_beta1.md").unlink()
    problems = {check.path: check.status for check in provenance.verify(results)}
    assert problems == {"tables/metrics.csv": "mismatch", "tables/bias_beta1.md": "missing"}


def test_tables_outside_the_results_directory_or_missing_are_errors(results: Path) -> None:
    outside = results.parent / "elsewhere.csv"
    outside.write_text("x\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="not inside the results directory"):
        provenance.build_provenance(CONFIG, [outside], results)
    with pytest.raises(DataFileError, match="not found"):
        provenance.build_provenance(CONFIG, [results / "tables" / "gone.csv"], results)


def test_missing_or_malformed_provenance_is_one_line_error(results: Path) -> None:
    with pytest.raises(DataFileError, match="provenance.json not found") as info:
        provenance.verify(results)
    assert "\n" not in str(info.value)
    (results / "provenance.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFileError, match="not valid JSON"):
        provenance.verify(results)
    (results / "provenance.json").write_text('{"tables": {"../x.csv": "00"}}', encoding="utf-8")
    with pytest.raises(DataFileError, match="not inside"):
        provenance.verify(results)
    (results / "provenance.json").write_text('{"tables": ["x"]}', encoding="utf-8")
    with pytest.raises(DataFileError, match="no 'tables' mapping"):
        provenance.verify(results)


def test_verify_command_prints_a_line_per_table_and_sets_exit_status(
    results: Path, tmp_path, capsys
) -> None:
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    assert run_verify(results) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ok         tables/bias_beta1.md",
        "ok         tables/metrics.csv",
    ]
    (results / "tables" / "metrics.csv").write_text("tampered\n", encoding="utf-8")
    assert run_verify(results) == 1
    assert capsys.readouterr().out.splitlines() == [
        "ok         tables/bias_beta1.md",
        "MISMATCH   tables/metrics.csv",
    ]
    (results / "tables" / "bias_beta1.md").unlink()
    assert run_verify(results) == 1
    assert capsys.readouterr().out.splitlines()[0] == "missing    tables/bias_beta1.md"


def test_verify_command_without_provenance_raises_data_file_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError):
        run_verify(tmp_path)


@pytest.mark.skipif("verify" not in COMMANDS, reason="verify is not registered in the CLI yet")
def test_dispatcher_runs_verify(results: Path, tmp_path, capsys) -> None:
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    assert main(["verify", "--quick", str(results)]) == 0
    (results / "provenance.json").unlink()
    assert main(["verify", "--quick", str(results)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_files_are_written_with_the_umask(results: Path, tmp_path) -> None:
    path = results / provenance.PROVENANCE_NAME
    provenance.write_provenance(path, CONFIG, tables_of(results), repo=tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_verify_lists_files_that_are_not_part_of_the_study(results: Path, tmp_path, capsys) -> None:
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    (results / "fits").mkdir()
    (results / "fits" / "n30_sigma2.parquet").write_bytes(b"an earlier study's table")
    (results / "logs").mkdir()
    (results / "logs" / "collect.log").write_text("a record of a run, not a result\n")
    assert run_verify(results) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "STALE      fits/n30_sigma2.parquet: not a file of this study (an earlier configuration's?)"
    )
