"""The catalogues of inputs that once failed late, hung, ended in a traceback or misled:
tests/data/late_failures.yaml, size_limits.yaml, tracebacks.yaml and messages.yaml.

Config layers go through the workflow's own loading (``regsim.workflow.load_study``: the
layers, the schema, the checks, the study), after config.yaml and tests/smoke.yaml;
commands through ``python -m regsim``'s entry point. The cases only the real snakemake can
show are run by tests/e2e/test_reliability.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from test_config import DEFAULTS_TEXT, SMOKE_TEXT, schema_validate

from regsim import config as cfg
from regsim import design
from regsim.cli import main
from regsim.workflow import load_study

ROOT = Path(__file__).resolve().parents[2]


def catalogue(name: str, *keys: str) -> list[Any]:
    """The cases of ``tests/data/<name>`` that have every one of ``keys``."""
    cases = yaml.safe_load((ROOT / "tests" / "data" / name).read_text())
    chosen = [case for case in cases if all(key in case for key in keys)]
    return [pytest.param(case, id=case["id"]) for case in chosen]


def test_catalogue_ids_are_unique() -> None:
    for name in ("late_failures.yaml", "size_limits.yaml", "tracebacks.yaml", "messages.yaml"):
        ids = [case["id"] for case in yaml.safe_load((ROOT / "tests" / "data" / name).read_text())]
        assert len(ids) == len(set(ids)), name


def load(case: dict[str, Any], folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The study of config.yaml, tests/smoke.yaml and the case's layer, as the Snakefile
    loads it (``SystemExit`` with one line on a problem)."""
    monkeypatch.chdir(folder)
    (folder / "tests").mkdir(exist_ok=True)
    (folder / "config.yaml").write_text(DEFAULTS_TEXT)
    (folder / "tests" / "smoke.yaml").write_text(SMOKE_TEXT)
    layer = case["layer"].replace("{big}", str(10**400))
    (folder / "tests" / "bad.yaml").write_text(layer)
    if "capacity" in case:
        monkeypatch.setattr(
            "regsim.workflow.shutil.disk_usage",
            lambda _: shutil._ntuple_diskusage(case["capacity"], 0, case["capacity"]),
        )
    return load_study(
        ["tests/smoke.yaml", "tests/bad.yaml"],
        None,
        validate=schema_validate,
    )


LAYERS = [
    *catalogue("late_failures.yaml", "layer", "message"),
    *catalogue("size_limits.yaml", "layer", "message"),
    *catalogue("tracebacks.yaml", "layer", "message"),
]


@pytest.mark.parametrize("case", LAYERS)
def test_refused_before_any_job_with_one_line(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plan is never built for a refused study: sizes are counted, not enumerated.
    def no_plan(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the plan was built")

    monkeypatch.setattr(design, "plan_jobs", no_plan)
    with pytest.raises(SystemExit) as info:
        load(case, tmp_path, monkeypatch)
    assert str(info.value) == f"config error: {case['message']}"


@pytest.mark.parametrize(
    "case",
    [
        *catalogue("late_failures.yaml", "figures"),
        *[p for p in catalogue("size_limits.yaml", "layer") if "message" not in p.values[0]],
    ],
)
def test_legal_studies_are_accepted(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = load(case, tmp_path, monkeypatch)
    if "figures" in case:
        assert list(study.families) == case["figures"]
        assert all(family in case["figures"] for family, _ in study.figure_files.values())


@pytest.mark.parametrize("case", catalogue("messages.yaml", "layer", "key"))
def test_values_are_read_as_meant(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = load(case, tmp_path, monkeypatch)
    assert study.config[case["key"]] == case["value"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """The files a command of the catalogues may name."""
    csv = tmp_path / "data.csv"
    csv.write_text("x1,y\n1,2.1\n2,3.9\n3,6.2\n4,7.8\n5,10.1\n")
    dup = tmp_path / "dup.csv"
    dup.write_text("x1,x1,y\n1,2,3\n2,3,5\n3,5,6\n4,4,8\n5,7,9\n")
    rng = np.random.default_rng(7)
    a = rng.uniform(size=200)
    b = a + 1e-11 * rng.standard_normal(200)
    collinear = tmp_path / "collinear.csv"
    y = 1 + a + b + 0.5 * rng.standard_normal(200)
    pd.DataFrame({"a": a, "b": b, "y": y}).to_csv(collinear, index=False, float_format="%.17g")
    return {
        "csv": str(csv),
        "dup": str(dup),
        "collinear": str(collinear),
        "out": str(tmp_path / "out.csv"),
    }


COMMANDS = [*catalogue("tracebacks.yaml", "command"), *catalogue("messages.yaml", "command")]


@pytest.mark.parametrize("case", COMMANDS)
def test_commands_give_one_line_or_work(
    case: dict[str, Any], files: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    argv = [arg.format(**files) for arg in case["command"]]
    status = main(argv)
    out, err = capsys.readouterr()
    if case["line"] is None:
        assert status == 0, err
        assert err == ""
        return
    assert (status, err.splitlines()) == (1, [case["line"].format(**files)])


def test_the_retired_job_setting_is_named(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(SystemExit) as info:
        load({"layer": "replications_per_job: 500"}, tmp_path, monkeypatch)
    assert "observations_per_job" in str(info.value)
    assert cfg.RETIRED_KEYS["replications_per_job"] in str(info.value)
