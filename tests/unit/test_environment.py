"""The conda environment of the rules pins what requirements.txt pins."""

from __future__ import annotations

import ast
import re
import sys
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
    assert checked >= 5


#: Import names of the packages that differ from their conda names (Pillow and fontTools
#: come with matplotlib-base).
IMPORT_TO_CONDA = {
    "yaml": "pyyaml",
    "PIL": "matplotlib-base",
    "fontTools": "matplotlib-base",
    "matplotlib": "matplotlib-base",
}

#: Imported by the package outside the rules: `python -m regsim` validates a configuration
#: against the workflow's schema with Snakemake's validator (regsim.cli.studyconfig).
OUTSIDE_THE_RULES = {"snakemake"}


def test_every_package_the_code_imports_is_in_the_environment():
    env = yaml.safe_load((ROOT / "envs" / "regsim.yaml").read_text())
    names = {dependency.partition("=")[0] for dependency in env["dependencies"]}
    imported: dict[str, str] = {}
    for path in [*(ROOT / "regsim").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                imported.setdefault(module.partition(".")[0], str(path.relative_to(ROOT)))
    third_party = {
        name: where
        for name, where in imported.items()
        if name not in sys.stdlib_module_names and name not in ("regsim", "__future__")
    }
    assert {"numpy", "scipy", "pandas", "pyarrow", "matplotlib", "yaml"} <= set(third_party)
    for name, where in third_party.items():
        if name not in OUTSIDE_THE_RULES:
            conda = IMPORT_TO_CONDA.get(name, name)
            assert conda in names, f"{where} imports {name}; envs/regsim.yaml lacks {conda}"
