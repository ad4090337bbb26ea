"""The catalogue of inputs that once gave wrong numbers silently (tests/data/wrong_numbers.yaml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pandas as pd
import pytest
import yaml
from test_config import catalogue_files, schema_validate

from regsim import config as cfg
from regsim.cli import main
from regsim.design import Prior
from regsim.estimators import fit_methods, sufficient_stats

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = yaml.safe_load((ROOT / "tests" / "data" / "wrong_numbers.yaml").read_text())


def cases(kind: str) -> list[Any]:
    chosen = [case for case in CATALOGUE if case["kind"] == kind]
    return [pytest.param(case, id=case["id"]) for case in chosen]


def test_catalogue_ids_are_unique_and_every_kind_is_used() -> None:
    ids = [case["id"] for case in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert {case["kind"] for case in CATALOGUE} == {
        "config_value",
        "config_error",
        "fit",
        "summarize",
        "kernel",
    }


def resolve_layer(case: dict[str, Any], folder: Path) -> dict[str, Any]:
    files = catalogue_files({}, folder)
    layer = folder / "tests" / case.get("file", "bad.yaml")
    layer.write_text(case["layer"])
    return cfg.resolve(cfg.load_layers([*files, str(layer)]), validate=schema_validate)


@pytest.mark.parametrize("case", cases("config_value"))
def test_config_value(case: dict[str, Any], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    study = resolve_layer(case, tmp_path)
    value = study
    for part in case["key"].split("."):
        value = value[part]
    assert value == case["value"]
    assert type(value) is type(case["value"])


@pytest.mark.parametrize("case", cases("config_error"))
def test_config_error(case: dict[str, Any], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cfg.ConfigError) as info:
        resolve_layer(case, tmp_path)
    assert str(info.value) == case["message"]


def regression_data(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The covariates (n, 2) and response of a ``fit`` or ``kernel`` case."""
    rng = np.random.default_rng(case["seed"])
    n = case["n"]
    a = rng.uniform(size=n)
    b = (a if case.get("related", True) else 0.0) + case["delta"] * rng.standard_normal(n)
    if "huge" in case:
        a[0] = case["huge"]
    y = 1.0 + case.get("beta_a", 1.0) * a + b + case.get("noise", 0.5) * rng.standard_normal(n)
    return np.column_stack([a, b]), y


def reference_ols(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Least squares on the stored doubles, in 60-digit arithmetic."""
    with mpmath.workdps(60):
        design = mpmath.matrix([[1, *map(mpmath.mpf, map(float, row))] for row in x])
        response = mpmath.matrix([mpmath.mpf(float(v)) for v in y])
        gram_inv = mpmath.inverse(design.T * design)
        beta = gram_inv * (design.T * response)
        residuals = response - design * beta
        rss = sum(r * r for r in residuals)
        n, p = design.rows, design.cols
        s2 = rss / (n - p)
        return {
            "beta": np.array([float(b) for b in beta]),
            "se": np.array([float(mpmath.sqrt(s2 * gram_inv[j, j])) for j in range(p)]),
            "s": float(mpmath.sqrt(s2)),
            "sigma_mle": float(mpmath.sqrt(rss / n)),
        }


@pytest.mark.parametrize("case", cases("fit"))
def test_fit(case: dict[str, Any], tmp_path: Path, capsys) -> None:
    x, y = regression_data(case)
    path = tmp_path / "data.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y}).to_csv(
        path, index=False, float_format="%.17g"
    )
    status = main(["fit", str(path), "--y", "y", "--json"])
    out, err = capsys.readouterr()
    if "message" in case:
        message = case["message"].format(path=path)
        assert (status, out, err.strip().splitlines()) == (1, "", [message])
        return
    assert status == 0, err
    fitted = json.loads(out)
    x = pd.read_csv(path)[["a", "b"]].to_numpy()
    y = pd.read_csv(path)["y"].to_numpy()
    ref = reference_ols(x, y)
    names = ["beta0", "beta1", "beta2"]
    for method in ("ols", "mle", "map"):
        got = np.array([fitted[method][name]["estimate"] for name in names])
        assert np.all(np.abs(got - ref["beta"]) <= case["tolerance"] * ref["se"]), method
    ols_se = np.array([fitted["ols"][name]["se"] for name in names])
    np.testing.assert_allclose(ols_se, ref["se"], rtol=case["tolerance"])
    np.testing.assert_allclose(fitted["ols"]["sigma"]["estimate"], ref["s"], rtol=1e-9)
    np.testing.assert_allclose(fitted["mle"]["sigma"]["estimate"], ref["sigma_mle"], rtol=1e-9)


@pytest.mark.parametrize("case", cases("summarize"))
def test_summarize(case: dict[str, Any], tmp_path: Path, capsys) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(case["csv"])
    status = main(["summarize", str(source), str(target), *case["args"]])
    out, err = capsys.readouterr()
    if "message" in case:
        assert (status, err.strip().splitlines()) == (1, [case["message"]])
        assert not target.exists()
        return
    assert status == 0, err
    table = pd.read_csv(target, dtype=str)
    bias = table[table["measure"] == "bias"]
    by = [c for c in table.columns if c not in ("measure", "estimate", "mcse")]
    rows = [[*bias[by].iloc[i].tolist(), float(bias["estimate"].iloc[i])] for i in range(len(bias))]
    assert rows == case["rows"]


@pytest.mark.parametrize("case", cases("kernel"))
def test_kernel(case: dict[str, Any]) -> None:
    x, y = regression_data(case)
    stats = sufficient_stats(x[None], y[None], sandwich=True)
    prior = Prior("weak", (0.0, 0.0, 0.0), (10.0, 10.0, 10.0))
    fits = fit_methods(stats, [prior], ["ols", "ols_hc3", "mle", "map"], 0.05)
    assert [bool(fit.converged[0]) for _, fit in fits] == [not case["failed"]] * len(fits)
