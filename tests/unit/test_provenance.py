"""Tests of ``regsim.provenance`` and ``python -m regsim verify``."""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from regsim import provenance, verify, workflow
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


def test_the_record_keeps_the_configs_order(results: Path, tmp_path) -> None:
    # The study reads order from its config (the first truth is the zip plot's default
    # cell), so the record keeps it; every other mapping's keys are sorted, as before.
    config = {
        "seed": 1,
        "truths": {"zeta": [1.0, 2.0], "alpha": [1.0, 0.0]},
        "priors": {"weak": {"mean": [0, 0], "sd": [9, 9]}, "flat": {"mean": [0, 0], "sd": [1, 1]}},
    }
    path = results / provenance.PROVENANCE_NAME
    written = provenance.write_provenance(path, config, tables_of(results), repo=tmp_path)
    record = json.loads(path.read_text())
    assert record == written
    assert record["format_version"] == provenance.FORMAT_VERSION == 2
    assert list(record) == sorted(record)
    assert list(record["config"]) == ["seed", "truths", "priors"]
    assert list(record["config"]["truths"]) == ["zeta", "alpha"]
    assert list(record["config"]["priors"]) == ["weak", "flat"]
    assert list(record["packages"]) == sorted(record["packages"])
    assert list(record["platform"]) == sorted(record["platform"])


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
    # a file given for the folder
    with pytest.raises(DataFileError, match=r"provenance.json: not a folder; give the results"):
        provenance.verify(results / "provenance.json")


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


def test_config_differences_can_compare_the_order_the_study_reads(results: Path, tmp_path) -> None:
    two = {**CONFIG, "priors": {**CONFIG["priors"], "weak": {"mean": [0, 0, 0], "sd": [9, 9, 9]}}}
    record = provenance.build_provenance(two, tables_of(results), results, repo=tmp_path)
    swapped = {**two, "priors": dict(reversed(list(two["priors"].items())))}
    assert provenance.config_differences(swapped, record) == []
    assert provenance.config_differences(swapped, record, ordered=True) == ["priors (order)"]
    assert provenance.config_differences(two, record, ordered=True) == []
    # a record of format 1 sorted its keys: no order to compare
    assert (
        provenance.config_differences(swapped, {**record, "format_version": 1}, ordered=True) == []
    )


def test_config_differences_names_the_keys_a_record_does_not_share(results: Path, tmp_path) -> None:
    record = provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    assert provenance.config_differences(CONFIG, record) == []
    # how the study ran is not what it computed
    assert provenance.config_differences({**CONFIG, "observations_per_job": 10}, record) == []
    assert provenance.config_differences({**CONFIG, "keep_datasets": True}, record) == []
    changed = {**CONFIG, "alpha": 0.1, "methods": ["ols", "map"]}
    assert provenance.config_differences(changed, record) == ["alpha", "methods"]
    flat = {**record, "config": {**record["config"], "sigma_prior": "flat"}}
    jeffreys = {**CONFIG, "sigma_prior": "jeffreys"}
    assert provenance.config_differences(jeffreys, flat) == ["sigma_prior"]
    # a flat prior's sd is recorded as text; the same config still agrees
    assert CONFIG["priors"]["shifted"]["sd"][2] == float("inf")
    assert provenance.config_differences(json.loads(json.dumps(CONFIG)), record) == []
    assert provenance.config_differences(CONFIG, {"tables": {}}) == ["config"]
    # two spellings of one study: beta as the truth named beta, the methods in any order
    spelled = {k: v for k, v in CONFIG.items() if k != "beta"}
    spelled |= {"truths": {"beta": CONFIG["beta"]}, "methods": ["map", "ols", "mle"]}
    assert provenance.config_differences(spelled, record) == []
    spelled["truths"]["beta"] = [10.0, 0.0, 10.1777]
    assert provenance.config_differences(spelled, record) == ["truths"]
    # a record of an older version lacks keys that came after it: not compared; a key
    # only the record has is a difference
    older = {**record, "config": {k: v for k, v in record["config"].items() if k != "alpha"}}
    assert provenance.config_differences({**CONFIG, "failures": "own"}, older) == []
    assert provenance.config_differences(
        {k: v for k, v in CONFIG.items() if k != "alpha"}, record
    ) == ["alpha"]


def test_a_report_of_another_configs_results_is_refused(results: Path, tmp_path, capsys) -> None:
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    study = SimpleNamespace(config={**CONFIG, "grid": {"n": [10], "sigma": [1, 5]}})
    report = ["snakemake", "--configfile", "other.yaml", "--report", "r.html"]
    with pytest.raises(SystemExit) as refused:
        workflow.check_report_results(study, report, results)
    assert str(refused.value) == (
        f"report error: {results / 'provenance.json'} records another configuration than "
        "this one (grid differ): give --report the --configfile and --config arguments of "
        "the run that made the results, or run this study first"
    )
    # truths in another order name other cells' pages (the first truth's are the zip
    # plot's): refused too, not left to fail on a page that does not exist
    truths = {"a": [1.0, 2.0, 3.0], "b": [1.0, 0.0, 3.0]}
    config = {k: v for k, v in CONFIG.items() if k != "beta"} | {"truths": truths}
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, config, tables_of(results), repo=tmp_path
    )
    swapped = SimpleNamespace(config={**config, "truths": {"b": truths["b"], "a": truths["a"]}})
    with pytest.raises(SystemExit, match=r"this one \(truths \(order\) differ\)"):
        workflow.check_report_results(swapped, report, results)
    workflow.check_report_results(SimpleNamespace(config=config), report, results)
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    # the report plugin's own spelling, which --report stands for, is a report too
    for argv in (
        ["snakemake", "--reporter", "html", "--report-html-path", "r.html"],
        ["snakemake", "--reporter=html"],
        ["snakemake", "--report=r.html"],
    ):
        with pytest.raises(SystemExit):
            workflow.check_report_results(study, argv, results)
    # a run, a run that reports after it, and a report of the record's own config pass
    for argv in (
        ["snakemake", "--cores", "2"],
        ["snakemake", "--report", "r.html", "--report-after-run"],
    ):
        workflow.check_report_results(study, argv, results)
    for argv in (report, ["snakemake", "--report=r.html"], ["snakemake", "--report"]):
        workflow.check_report_results(SimpleNamespace(config=CONFIG), argv, results)
    # without a record there is nothing to compare
    (results / provenance.PROVENANCE_NAME).unlink()
    workflow.check_report_results(study, report, results)


def test_a_report_over_a_file_of_the_results_is_refused(results: Path, tmp_path) -> None:
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    study = SimpleNamespace(config=CONFIG)
    explorer = results / "explorer.html"
    explorer.write_text("the explorer")
    for argv in (
        ["snakemake", "--report", str(explorer)],
        ["snakemake", f"--report={explorer}"],
        ["snakemake", "--reporter", "html", "--report-html-path", str(explorer)],
        ["snakemake", "--report", str(explorer), "--report-after-run"],
    ):
        with pytest.raises(SystemExit) as refused:
            workflow.check_report_results(study, argv, results)
        assert str(refused.value) == (
            f"report error: {explorer} is a file of the study's results, which the report "
            "would replace; give --report another path (e.g. results/report.html)"
        )
    assert explorer.read_text() == "the explorer"
    with pytest.raises(SystemExit) as refused:
        workflow.check_report_results(
            study, ["snakemake", "--report", str(tmp_path / "nodir" / "r.html")], results
        )
    assert str(refused.value) == (
        f"report error: {tmp_path / 'nodir' / 'r.html'}: no folder {tmp_path / 'nodir'} to "
        "write the report in"
    )
    # a page of the study's report, new or not, is one of its files too
    (results / "report").mkdir()
    with pytest.raises(SystemExit, match="is a file of the study's results"):
        workflow.check_report_results(
            study, ["snakemake", "--report", str(results / "report" / "x.html")], results
        )
    # another name at the top of results/ (an earlier report, the user's own), or a file
    # elsewhere, is written
    (results / "report.html").write_text("an earlier report")
    (results / "summary.html").write_text("an earlier report of another name")
    for path in (results / "report.html", results / "summary.html", tmp_path / "r.html"):
        workflow.check_report_results(study, ["snakemake", "--report", str(path)], results)
    # --report alone writes Snakemake's default, whatever the plugin's path says
    workflow.check_report_results(
        study, ["snakemake", "--report", "--report-html-path", str(explorer)], results
    )


def test_a_run_says_when_results_hold_an_earlier_configs_files(
    results: Path, tmp_path, capsys, monkeypatch
) -> None:
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    study = SimpleNamespace(config=CONFIG, report_pages=["figures/coverage"])
    assert workflow.warn_stale_results(study, results) == 0
    assert capsys.readouterr().err == ""
    (results / "figures").mkdir()
    for name in ("coverage_t3.png", "coverage_t3.pdf"):
        (results / "figures" / name).write_bytes(b"an earlier study's figure")
    assert workflow.warn_stale_results(study, results) == 2
    assert capsys.readouterr().err == (
        f"regsim: {results}/ holds 2 file(s) this study did not write, an earlier "
        f"configuration's (e.g. {results / 'figures' / 'coverage_t3.pdf'}): "
        f"`python -m regsim verify {results}/` lists them\n"
    )
    # a report page of a figure this study does not draw is counted with them
    (results / "report" / "figures").mkdir(parents=True)
    for page in ("coverage", "coverage_t3"):
        (results / "report" / "figures" / f"{page}.html").write_text("<!DOCTYPE html>")
    assert workflow.warn_stale_results(study, results) == 3
    capsys.readouterr()
    # run with --directory, the run works elsewhere than where the command was typed (the
    # shell's PWD): the line names the results by their absolute path, which a command
    # typed there finds; typed in the folder the run works in, by the path as it is
    monkeypatch.chdir(results.parent)
    monkeypatch.setenv("PWD", str(tmp_path / "elsewhere"))
    assert workflow.warn_stale_results(study, "results") == 3
    assert f"`python -m regsim verify {results.resolve()}/` lists them" in capsys.readouterr().err
    monkeypatch.delenv("PWD")
    assert workflow.warn_stale_results(study, "results") == 3
    assert f"`python -m regsim verify {results.resolve()}/` lists them" in capsys.readouterr().err
    monkeypatch.setenv("PWD", str(results.parent))
    assert workflow.warn_stale_results(study, "results") == 3
    assert "`python -m regsim verify results/` lists them" in capsys.readouterr().err
    # the same config with its priors listed in another order is another run's: no claim
    two = {**CONFIG, "priors": {**CONFIG["priors"], "weak": {"mean": [0, 0, 0], "sd": [9, 9, 9]}}}
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, two, tables_of(results), repo=tmp_path
    )
    swapped = {**two, "priors": dict(reversed(list(two["priors"].items())))}
    assert (
        workflow.warn_stale_results(SimpleNamespace(config=swapped, report_pages=[]), results) == 0
    )
    assert workflow.warn_stale_results(SimpleNamespace(config=two, report_pages=[]), results) > 0
    capsys.readouterr()
    provenance.write_provenance(
        results / provenance.PROVENANCE_NAME, CONFIG, tables_of(results), repo=tmp_path
    )
    # after a run of one target the record is an earlier config's: no claim is made
    other = SimpleNamespace(config={**CONFIG, "alpha": 0.1}, report_pages=[])
    assert workflow.warn_stale_results(other, results) == 0
    assert capsys.readouterr().err == ""


def _report(results: Path, pages: dict[str, bytes]) -> None:
    """A report.html as Snakemake builds one: each page under its path, base64 of its bytes."""
    entries = {
        f"results/report/{name}": {
            "data": "data:text/html;base64," + base64.b64encode(data).decode()
        }
        for name, data in pages.items()
    }
    (results / "report.html").write_text(f"<script>{json.dumps(entries)}</script>")


def test_a_report_of_other_pages_than_the_results_hold_is_stale(
    results: Path, tmp_path, capsys, monkeypatch
) -> None:
    record = results / provenance.PROVENANCE_NAME
    provenance.write_provenance(record, CONFIG, tables_of(results), repo=tmp_path)
    monkeypatch.setenv("PWD", str(results.parent))
    monkeypatch.chdir(results.parent)
    (results / "report" / "figures").mkdir(parents=True)
    pages = {"figures/bias.html": b"<html>bias</html>", "protocol.html": b"<html>p</html>"}
    for name, data in pages.items():
        (results / "report" / name).write_bytes(data)
    assert verify.outdated_report(results) is None  # no report
    _report(results, pages)
    assert verify.outdated_report(results) is None  # the pages it shows
    # a run that wrote the record again (a new commit), or a copy that set every time
    # anew, leaves it current: it is judged by what it shows
    os.utime(record, ns=((results / "report.html").stat().st_mtime_ns + 10**9,) * 2)
    assert verify.outdated_report(results) is None
    assert not workflow.warn_outdated_report("results")
    # a later run changed a page
    (results / "report" / "figures" / "bias.html").write_bytes(b"<html>bias, again</html>")
    finding = verify.outdated_report(results)
    assert finding is not None and (finding.status, finding.path) == ("STALE", "report.html")
    assert "1 of the 2 pages under report/ are not as it shows them" in finding.detail
    assert "(e.g. report/figures/bias.html)" in finding.detail
    assert "snakemake --report results/report.html" in finding.detail
    _, findings = verify.verify_all(results, recompute=False)
    assert [(f.status, f.path) for f in findings] == [("STALE", "report.html")]
    capsys.readouterr()
    assert workflow.warn_outdated_report("results")
    assert capsys.readouterr().err == f"regsim: results/report.html: {finding.detail}\n"
    # a run that builds the report after it says nothing
    argv = ["snakemake", "--report-after-run", "--report", "results/report.html"]
    assert not workflow.warn_outdated_report("results", argv)
    assert capsys.readouterr().err == ""
    # a page the report lacks (a figure the config added)
    _report(results, {**pages, "figures/bias.html": b"<html>bias, again</html>"})
    assert verify.outdated_report(results) is None
    (results / "report" / "figures" / "sigma.html").write_bytes(b"<html>sigma</html>")
    finding = verify.outdated_report(results)
    assert finding is not None and "(e.g. report/figures/sigma.html)" in finding.detail
    # a report that names none of the pages (another layout) is not judged
    (results / "report.html").write_text("<html>a report of another kind</html>")
    assert verify.outdated_report(results) is None


@pytest.mark.parametrize(
    "arguments",
    [
        ["--report"],
        ["--report", "r.html"],
        ["--report=r.html"],
        ["--reporter", "html"],
        ["--reporter=html"],
        ["--report", "r.html", "--report-after-run"],
        ["--cores", "2"],
        ["-n", "--configfile", "config.yaml"],
        ["--report-after-run", "--cores", "2"],
    ],
)
def test_asks_for_report_reads_a_command_line_as_snakemakes_parser_does(arguments) -> None:
    # check_report_results reads sys.argv itself (the Snakefile has no documented way to
    # know it is building a report); this fails, naming the options, if Snakemake's
    # parser comes to read them otherwise.
    from snakemake.cli import get_argument_parser

    parsed, _ = get_argument_parser().parse_known_args(arguments)
    report = (parsed.report is not None or parsed.reporter is not None) and not (
        parsed.report_after_run
    )
    assert workflow.asks_for_report(["snakemake", *arguments]) == report
