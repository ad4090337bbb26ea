"""The conda environment of the rules pins what requirements.txt pins."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
#: conda-forge names that differ from the PyPI ones.
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib"}


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_conda_pins_agree_with_requirements():
    env = yaml.safe_load((ROOT / "envs" / "regsim.yaml").read_text())
    pins = requirement_pins()
    checked = 0
    for dependency in env["dependencies"]:
        name, _, version = dependency.partition("=")
        if name == "python":
            continue
        pypi_name = CONDA_TO_PYPI.get(name, name).lower()
        assert pypi_name in pins, f"{name} is pinned in envs/regsim.yaml, not in requirements.txt"
        assert version == pins[pypi_name], (
            f"{name}: conda {version}, requirements {pins[pypi_name]}"
        )
        checked += 1
    # Every package the rules import is in the environment.
    needed = {"numpy", "scipy", "pandas", "pyarrow", "matplotlib"}
    names = {
        CONDA_TO_PYPI.get(d.partition("=")[0], d.partition("=")[0]) for d in env["dependencies"]
    }
    assert needed <= names
    assert checked >= len(needed)
