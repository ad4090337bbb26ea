"""Config and CSV files are data, never code; outputs stay inside results/."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from regsim import config as cfg
from regsim.design import Cell, plan_jobs
from regsim.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    [*(ROOT / "regsim").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    + [ROOT / "Snakefile", *(ROOT / "rules").glob("*.smk")]
)
# The workflow's wildcard constraints (Snakefile): a cell and a chunk name one path part.
CELL_PATTERN = re.compile(r"n\d+_sigma[0-9.e+-]+")
JOB_PATTERN = re.compile(r"n\d+-\d+")


def code_lines(path: Path) -> list[tuple[int, str]]:
    """Lines of a source file without comments (a crude but sufficient filter)."""
    lines = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        code = line.split("#", 1)[0]
        if code.strip():
            lines.append((number, code))
    return lines


@pytest.mark.parametrize(
    ("pattern", "what"),
    [
        (r"(?<![\w.])eval\(", "eval()"),
        (r"(?<![\w.])exec\(", "exec()"),
        (r"\bpickle\.loads?\(", "pickle.load()"),
        (r"\bmarshal\.loads?\(", "marshal.load()"),
        (r"allow_pickle\s*=\s*True", "np.load(allow_pickle=True)"),
        (r"\byaml\.(unsafe_load|full_load)\(", "an unsafe YAML loader"),
        (r"Loader\s*=\s*yaml\.(Unsafe|Full)?Loader\b", "an unsafe YAML loader"),
        (r"\bshell\s*=\s*True", "subprocess with shell=True"),
        (r"\bos\.system\(", "os.system()"),
    ],
)
def test_no_code_execution_from_data(pattern: str, what: str) -> None:
    regex = re.compile(pattern)
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in SOURCES
        for number, line in code_lines(path)
        if regex.search(line)
    ]
    assert found == [], f"{what} in the package, scripts or rules"


def test_yaml_is_only_loaded_safely() -> None:
    """Every yaml.load( names a SafeLoader subclass defined in the same file."""
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"\byaml\.load\((.*)\)", text):
            loader = re.search(r"Loader\s*=\s*(\w+)", match.group(1))
            assert loader, f"{path.relative_to(ROOT)}: yaml.load without a Loader"
            name = loader.group(1)
            assert name == "SafeLoader" or re.search(rf"class {name}\(yaml\.SafeLoader\)", text), (
                f"{path.relative_to(ROOT)}: yaml.load with {name}"
            )


def test_the_workflow_reads_configs_with_the_safe_reader() -> None:
    snakefile = (ROOT / "Snakefile").read_text()
    assert "load_configfile" not in snakefile  # Snakemake's loader renders YTE templates
    assert not re.search(r"^configfile:", snakefile, re.MULTILINE)
    assert "load_study(" in snakefile
    workflow = (ROOT / "regsim" / "workflow.py").read_text()
    # the default loader, regsim.config.read_config_file (safe YAML, no templates)
    assert "configuration.load_layers(files, overrides=overrides)" in workflow


def test_a_config_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    bad = tmp_path / "study.yaml"
    attempts = [
        f'seed: !!python/object/apply:os.system ["touch {marker}"]\n',
        "seed: !!python/name:builtins.exec\n",
        f'__use_yte__: true\nseed: ?__import__("os").system("touch {marker}")\n',
    ]
    for text in attempts:
        bad.write_text(text)
        with pytest.raises(ConfigError):
            cfg.load_layers([bad])
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# Paths built from config values stay inside results/
# --------------------------------------------------------------------------------------

SIGMAS = [5e-324, 1e-300, 1e-5, 0.1 + 0.2, 1.0, 5.0, 1e16, 1.7976931348623157e308]


@pytest.mark.parametrize("sigma", SIGMAS)
def test_cell_names_are_one_safe_path_part(sigma: float) -> None:
    label = Cell(10, sigma, (1.0, 2.0)).label
    assert CELL_PATTERN.fullmatch(label), label
    assert "/" not in label and ".." not in label and not label.startswith(".")


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=10**9),
    sigma=st.floats(min_value=5e-324, allow_nan=False, allow_infinity=False),
)
def test_any_accepted_cell_gives_a_safe_name(n: int, sigma: float) -> None:
    label = Cell(n, sigma, (1.0,)).label
    assert CELL_PATTERN.fullmatch(label), label
    assert set(label) <= set(string.ascii_letters + string.digits + "_.+-")


def test_job_names_are_one_safe_path_part() -> None:
    cells = [Cell(n, 1.0, (1.0, 2.0)) for n in (3, 10, 10**6)]
    for job in plan_jobs(cells, 10**4, 10**7):
        assert JOB_PATTERN.fullmatch(job.name), job.name


@pytest.mark.parametrize("name", ["../x", "x/y", "..", ".hidden", "a b", "a\\b", "", "1x", "x:y"])
def test_prior_names_that_could_leave_a_folder_are_rejected(name: str) -> None:
    study = yaml.safe_load((ROOT / "config.yaml").read_text())
    study["priors"] = {name: {"mean": [0, 0, 0], "sd": [1, 1, 1]}}
    with pytest.raises(ConfigError, match=r"^priors: invalid name"):
        cfg.check(study)


def test_every_output_of_the_rules_is_under_results() -> None:
    """Outputs, logs and benchmarks of every rule are written below results/."""
    for path in (ROOT / "rules").glob("*.smk"):
        text = path.read_text()
        for block in re.findall(r"\n    (?:output|log|benchmark):\n((?:        .*\n)+)", text):
            # report captions are read, not written (a plain or an f-string, or a default)
            block = re.sub(r"caption=.*\n", "\n", block)
            for target in re.findall(r'"([^"]+\.[a-z]+)"', block):
                assert target.startswith("results/"), f"{path.name}: {target}"
