"""Study configuration: layering, schema defaults and the semantic checks."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.utils import validate as snakemake_validate

from regsim import config as cfg
from regsim.config import KNOWN_METHODS
from regsim.errors import ConfigError
from regsim.study import Study
from regsim.workflow import load_study

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "config.schema.yaml"
DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())


def schema_validate(config: dict[str, Any]) -> None:
    """Validate against the workflow's schema exactly as the Snakefile does."""
    snakemake_validate(config, str(SCHEMA))


def resolve(*layers: dict[str, Any] | None) -> dict[str, Any]:
    return cfg.resolve([copy.deepcopy(DEFAULTS), *layers], validate=schema_validate)


def test_shipped_config_is_valid() -> None:
    study = resolve()
    assert study["grid"]["n"] == [10, 20, 50, 100, 200, 500, 1000]
    assert list(study["priors"]) == ["weak", "informative", "shifted", "skeptical"]
    assert len(Study.from_config(study).cells) == 21


# --------------------------------------------------------------------------------------
# Layering
# --------------------------------------------------------------------------------------


def test_user_priors_replace_the_defaults_wholesale() -> None:
    user = {
        "priors": {
            "flat": {"mean": [0, 0, 0], "sd": [math.inf] * 3},
            "tight": {"mean": [10, 4, 10], "sd": [0.5, 0.5, 0.5]},
        }
    }
    study = resolve(user)
    assert list(study["priors"]) == ["flat", "tight"]
    assert [p.name for p in Study.from_config(study).priors] == ["flat", "tight"]


def test_user_grid_replaces_the_default_grid_wholesale() -> None:
    study = resolve({"grid": {"n": [30], "sigma": [2]}})
    assert study["grid"] == {"n": [30], "sigma": [2], "errors": ["normal"]}  # schema default
    assert [(c.n, c.sigma) for c in Study.from_config(study).cells] == [(30, 2.0)]


def test_a_partial_grid_is_not_filled_from_the_defaults() -> None:
    with pytest.raises(ConfigError, match=r"^grid\.sigma: required key is missing$"):
        resolve({"grid": {"n": [30]}})


def test_later_layers_win_and_untouched_keys_are_kept() -> None:
    first = {"replications": 10, "seed": 1}
    second = {"seed": 2}
    overrides = {"alpha": 0.1}
    study = resolve(first, second, overrides)
    assert (study["replications"], study["seed"], study["alpha"]) == (10, 2, 0.1)
    assert study["beta"] == DEFAULTS["beta"]
    assert study["priors"] == DEFAULTS["priors"]


def test_merge_copies_and_skips_empty_layers() -> None:
    base = {"grid": {"n": [10], "sigma": [1]}}
    merged = cfg.merge(base, None, {})
    merged["grid"]["n"].append(20)
    assert base == {"grid": {"n": [10], "sigma": [1]}}


def test_merge_turns_mappings_into_plain_dicts() -> None:
    from collections import OrderedDict

    merged = cfg.merge({"grid": OrderedDict(n=(10,), sigma=[1])})
    assert type(merged["grid"]) is dict
    assert merged["grid"]["n"] == [10]


def test_load_layers_reads_files_in_order_then_overrides(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("seed: 1\nreplications: 5\n")
    second.write_text("seed: 2\n")
    layers = cfg.load_layers(
        [first, second], lambda p: yaml.safe_load(Path(p).read_text()), {"seed": 3}
    )
    assert layers == [{"seed": 1, "replications": 5}, {"seed": 2}, {"seed": 3}]
    assert cfg.merge(*layers) == {"seed": 3, "replications": 5}


def test_load_layers_names_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        cfg.load_layers([missing], yaml.safe_load)


def test_load_layers_names_an_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [\n")

    def load(path: str) -> Any:
        return yaml.safe_load(Path(path).read_text())

    with pytest.raises(ConfigError, match=r"bad\.yaml: cannot read config file") as info:
        cfg.load_layers([bad], load)
    assert "\n" not in str(info.value)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: a config file must hold a mapping"):
        cfg.load_layers([bad], load)


# --------------------------------------------------------------------------------------
# Schema: defaults and one-line messages
# --------------------------------------------------------------------------------------


def test_schema_fills_defaults() -> None:
    prior = {"mean": [0, 0], "sd": [1, 1]}
    minimal = {
        "seed": 1,
        "beta": [1.0, 2.0],
        "grid": {"n": [5], "sigma": [1]},
        "priors": {"a": prior},
    }
    study = cfg.resolve([minimal], validate=schema_validate)
    assert study["replications"] == 1000
    assert study["alpha"] == 0.05
    assert study["methods"] == ["ols", "mle", "map"]
    assert study["observations_per_job"] == cfg.DEFAULT_OBSERVATIONS_PER_JOB
    assert study["keep_datasets"] is False  # any replicate is redrawn from the seed


def test_sigma_prior_defaults_to_flat_and_takes_jeffreys() -> None:
    assert resolve()["sigma_prior"] == "flat"
    assert resolve({"sigma_prior": "jeffreys"})["sigma_prior"] == "jeffreys"
    with pytest.raises(ConfigError, match=r"^sigma_prior: must be one of flat, jeffreys"):
        cfg.check({**copy.deepcopy(DEFAULTS), "sigma_prior": "uniform"})


def test_bayes_posterior_must_be_proper_with_a_mean_and_sd_for_every_n_and_prior() -> None:
    # Flat on all three coefficients, ν = n − 4 + a (a = 1 for Jeffreys' prior): the
    # posterior is improper for ν ≤ 0, σ has no mean for ν ≤ 1 and no sd for ν ≤ 2.
    flat = {"flat": {"mean": [0, 0, 0], "sd": [math.inf] * 3}}
    layer = {"methods": ["ols", "bayes"], "priors": flat, "grid": {"n": [7, 4], "sigma": [1]}}
    with pytest.raises(
        ConfigError, match=r"^grid\.n\[1\]: with sigma_prior flat and prior 'flat' flat on 3 "
    ) as info:
        resolve(layer)
    # the n the study needs (every mean and sd), and Jeffreys' prior only where it is enough
    assert str(info.value).endswith("improper posterior at n = 4 (needs n > 6)")
    for sigma_prior, n, hint in (("flat", 5, ""), ("flat", 6, "; or use sigma_prior jeffreys")):
        changed = {**layer, "sigma_prior": sigma_prior, "grid": {"n": [7, n], "sigma": [1]}}
        with pytest.raises(ConfigError) as info:
            resolve(changed)
        assert str(info.value).endswith(f"(needs n > 6{hint})")
    # not where Jeffreys' prior still falls short at another n of the grid
    with pytest.raises(ConfigError) as info:
        resolve({**layer, "grid": {"n": [40, 6, 5], "sigma": [1]}})
    assert "at n = 6" in str(info.value) and str(info.value).endswith("(needs n > 6)")
    for sigma_prior, n, summary in (("flat", 5, "mean and sd"), ("flat", 6, "sd")) + (
        ("jeffreys", 4, "mean and sd"),
        ("jeffreys", 5, "sd"),
    ):
        changed = {**layer, "sigma_prior": sigma_prior, "grid": {"n": [7, n], "sigma": [1]}}
        with pytest.raises(ConfigError) as info:
            resolve(changed)
        assert str(info.value).startswith(
            f"grid.n[1]: with sigma_prior {sigma_prior} and prior 'flat' flat on 3 coefficients,"
            f" the posterior {summary} of σ and the flat coefficients do not exist at n = {n}"
        )
    resolve({**layer, "grid": {"n": [7], "sigma": [1]}})
    resolve({**layer, "sigma_prior": "jeffreys", "grid": {"n": [6], "sigma": [1]}})
    # MAP's mode exists there (it is the MLE); two flat coefficients need n > 5; none, n > 3.
    resolve({**layer, "methods": ["ols", "map"]})
    two_flat = {"f2": {"mean": [0, 0, 0], "sd": [math.inf, math.inf, 1]}}
    resolve({**layer, "priors": two_flat, "grid": {"n": [6], "sigma": [1]}})
    with pytest.raises(ConfigError, match=r"posterior sd of σ and the flat coefficients"):
        resolve({**layer, "priors": two_flat, "grid": {"n": [5], "sigma": [1]}})
    proper = {"proper": {"mean": [0, 0, 0], "sd": [1, 1, 1]}}
    resolve({**layer, "priors": proper, "grid": {"n": [4], "sigma": [1]}})


def test_schema_default_methods_need_a_prior() -> None:
    minimal = {"seed": 1, "beta": [1.0, 2.0], "grid": {"n": [5], "sigma": [1]}}
    with pytest.raises(ConfigError, match=r"^priors: method map needs at least one prior$"):
        cfg.resolve([minimal], validate=schema_validate)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"colour": "red"}, r"^colour: unknown key \(allowed here: aims, alpha, beta, "),
        ({"grid": {"n": [10], "sigma": [1], "m": [2]}}, r"^grid\.m: unknown key"),
        (
            {"priors": {"weak": {"mean": [0, 0, 0], "sd": [1, 1, 1], "df": 3}}},
            r"^priors\.weak\.df: unknown key \(allowed here: mean, sd\)$",
        ),
        ({"priors": {"weak": {"mean": [0, 0, 0]}}}, r"^priors\.weak\.sd: required key"),
        ({"grid": {"n": [10], "sigma": ["a"]}}, r"^grid\.sigma\[0\]: 'a' is not of type"),
        (
            {"priors": {"../x": {"mean": [0, 0, 0], "sd": [1, 1, 1]}}},
            r"^priors: invalid name '\.\./x'; use a letter",
        ),
        ({"alpha": 1.5}, r"^alpha: 1\.5 is greater than or equal to the maximum of 1$"),
        ({"replications": 1}, r"^replications: 1 is less than the minimum of 2$"),
        ({"seed": "x"}, r"^seed: 'x' is not of type 'integer'$"),
        ({"observations_per_job": 0}, r"^observations_per_job: 0 is less than the minimum"),
        ({"keep_datasets": "no"}, r"^keep_datasets: 'no' is not of type 'boolean'$"),
        ({"replications_per_job": 500}, r"^replications_per_job: no longer used; jobs are"),
        ({"grid": {"n": [], "sigma": [1]}}, r"^grid\.n: \[\] should be non-empty$"),
    ],
)
def test_schema_errors_are_one_line_naming_the_key(layer: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        resolve(layer)
    assert "\n" not in str(info.value)


def test_describe_schema_error_without_a_validation_error() -> None:
    text = cfg.describe_schema_error(RuntimeError("schema file\nnot found"))
    assert text == "(config file): schema file not found"


def test_key_path_formatting() -> None:
    assert cfg.key_path(["priors", "weak", "sd", 1]) == "priors.weak.sd[1]"
    assert cfg.key_path([]) == "(top level)"


# --------------------------------------------------------------------------------------
# Semantic checks (run without the schema, so each is exercised on its own)
# --------------------------------------------------------------------------------------


def checked(**changes: Any) -> None:
    study = copy.deepcopy(DEFAULTS)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = study
        for part in parents:
            target = target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    cfg.check(study)


_DELETE = object()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"priors__weak__sd": [1, 1]},
            r"^priors\.weak\.sd: length 2, expected 3 \(one per coefficient in beta\)$",
        ),
        ({"priors__weak__mean": [0, 0, 0, 0]}, r"^priors\.weak\.mean: length 4, expected 3"),
        (
            {"priors__weak__sd": [1, 0, 1]},
            r"^priors\.weak\.sd\[1\]: must be positive \(\.inf for a flat prior\), got 0$",
        ),
        ({"priors__weak__sd": [1, -2.0, 1]}, r"^priors\.weak\.sd\[1\]: must be positive"),
        ({"priors__weak__sd": [1, math.nan, 1]}, r"^priors\.weak\.sd\[1\]: must be positive"),
        (
            {"priors__weak__mean": [0, math.inf, 0]},
            r"^priors\.weak\.mean\[1\]: must be a finite number, got inf$",
        ),
        ({"priors__weak__mean": "0"}, r"^priors\.weak\.mean: must be a list"),
        ({"priors__weak__df": 3}, r"^priors\.weak\.df: unknown key"),
        ({"priors__weak": [1, 2]}, r"^priors\.weak: must be a mapping"),
        (
            {"priors": {"../x": {"mean": [0, 0, 0], "sd": [1, 1, 1]}}},
            r"^priors: invalid name '\.\./x'",
        ),
        ({"priors": {"1st": {"mean": [0, 0, 0], "sd": [1, 1, 1]}}}, r"^priors: invalid name '1st'"),
        ({"priors": {"a b": {"mean": [0, 0, 0], "sd": [1, 1, 1]}}}, r"^priors: invalid name 'a b'"),
        ({"priors": {}}, r"^priors: method map needs at least one prior$"),
        (
            {"grid__n": [10, 3]},
            r"^grid\.n\[1\]: 3 must exceed the number of coefficients in beta \(3\)$",
        ),
        ({"grid__n": [10, 20.0]}, r"^grid\.n\[1\]: must be an integer, got 20\.0 \(write 20\)$"),
        ({"grid__n": [10, True]}, r"^grid\.n\[1\]: must be an integer, got True$"),
        ({"grid__n": [10, 20, 10]}, r"^grid\.n\[2\]: duplicate value 10$"),
        ({"grid__n": []}, r"^grid\.n: empty list; give at least one value$"),
        ({"grid__sigma": []}, r"^grid\.sigma: empty list"),
        (
            {"grid__sigma": [1, 5, 1.0]},
            r"^grid\.sigma\[2\]: duplicate value 1\.0 \(same as grid\.sigma\[0\]\)$",
        ),
        (
            {"grid__sigma": [1, math.inf]},
            r"^grid\.sigma\[1\]: must be a positive finite number, got inf$",
        ),
        ({"grid__sigma": [0]}, r"^grid\.sigma\[0\]: must be a positive finite number, got 0$"),
        ({"grid__sigma": [-1]}, r"^grid\.sigma\[0\]: must be a positive finite"),
        ({"grid__sigma": _DELETE}, r"^grid\.sigma: required key is missing$"),
        ({"grid": [10, 20]}, r"^grid: must be a mapping"),
        ({"replications": 1}, r"^replications: must be an integer >= 2, got 1$"),
        ({"replications": 10.0}, r"^replications: must be an integer >= 2, got 10\.0$"),
        ({"observations_per_job": 0}, r"^observations_per_job: must be an integer >= 1"),
        ({"keep_datasets": 1}, r"^keep_datasets: must be true or false, got 1$"),
        ({"seed": -1}, r"^seed: must be a non-negative integer, got -1$"),
        ({"seed": 1.5}, r"^seed: must be a non-negative integer"),
        ({"seed": _DELETE}, r"^seed: required key is missing$"),
        ({"alpha": 0}, r"^alpha: must be a number strictly between 0 and 1, got 0$"),
        ({"alpha": 1}, r"^alpha: must be a number strictly between 0 and 1"),
        ({"alpha": "0.05"}, r"^alpha: must be a number strictly between 0 and 1, got '0\.05'$"),
        ({"beta": []}, r"^beta: empty list"),
        ({"beta": [1.0, math.nan]}, r"^beta\[1\]: must be a finite number, got nan$"),
        (
            {"methods": ["ols", "lasso"]},
            r"^methods\[1\]: unknown method 'lasso' \(known: ols, ols_hc3, mle, map, bayes\)$",
        ),
        ({"methods": ["ols", "ols"]}, r"^methods\[1\]: duplicate method 'ols'$"),
        ({"methods": []}, r"^methods: empty list"),
    ],
)
def test_semantic_checks_name_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        checked(**changes)
    assert "\n" not in str(info.value)


def test_semantic_checks_also_run_after_the_schema() -> None:
    with pytest.raises(ConfigError, match=r"^priors\.weak\.sd: length 2, expected 3"):
        resolve({"priors": {"weak": {"mean": [0, 0, 0], "sd": [100, 100]}}})
    with pytest.raises(ConfigError, match=r"^grid\.n\[0\]: 3 must exceed"):
        resolve({"grid": {"n": [3], "sigma": [1]}})


def test_flat_priors_and_methods_without_priors_are_accepted() -> None:
    checked(priors__weak__sd=[math.inf, math.inf, 1])
    checked(methods=["ols", "mle"], priors={})


def test_known_methods_come_from_the_caller() -> None:
    study = copy.deepcopy(DEFAULTS)
    study["methods"] = ["ols", "ridge"]
    cfg.check(study, known_methods=("ols", "ridge"))


# --------------------------------------------------------------------------------------
# The catalogue of bad configurations (tests/data/bad_configs.yaml), as the Snakefile
# reads them; tests/e2e/test_reliability.py runs the same cases through snakemake.
# --------------------------------------------------------------------------------------

CATALOGUE = yaml.safe_load((ROOT / "tests" / "data" / "bad_configs.yaml").read_text())


def catalogue_message(case: dict) -> str:
    """A catalogue case's expected message, its placeholders filled in."""
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    return (
        case["message"]
        .replace("{keys}", ", ".join(sorted(schema["properties"])))
        .replace("{methods}", ", ".join(KNOWN_METHODS))
    )


def catalogue_files(case: dict[str, Any], folder: Path) -> list[str]:
    """Write a case's files into ``folder``; return the config files in layer order."""
    (folder / "tests").mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(case.get("config_yaml") or DEFAULTS_TEXT)
    (folder / "tests" / "smoke.yaml").write_text(SMOKE_TEXT)
    if "layer" in case:
        (folder / "tests" / "bad.yaml").write_text(case["layer"])
    if case.get("replace"):
        return ["tests/bad.yaml"]
    return ["config.yaml", "tests/smoke.yaml"] + (["tests/bad.yaml"] if "layer" in case else [])


DEFAULTS_TEXT = (ROOT / "config.yaml").read_text()
SMOKE_TEXT = (ROOT / "tests" / "smoke.yaml").read_text()


def test_catalogue_covers_every_kind_of_mistake() -> None:
    ids = [case["id"] for case in CATALOGUE]
    assert len(ids) == len(set(ids))
    for kind in (
        "missing-required-key",
        "unknown-key-typo",
        "n-not-above-p",
        "n-not-integer",
        "sigma-zero",
        "sigma-infinite",
        "replications-below-2",
        "replications-not-integer",
        "alpha-zero",
        "alpha-above-1",
        "prior-mean-length",
        "prior-sd-length",
        "prior-sd-zero",
        "unknown-method",
        "empty-grid-list",
        "duplicate-n",
        "duplicate-sigma",
        "yaml-syntax-error-in-config-yaml",
        "yaml-syntax-error-in-configfile",
        "prior-name-path",
    ):
        assert kind in ids


@pytest.mark.parametrize("case", CATALOGUE, ids=[case["id"] for case in CATALOGUE])
def test_catalogue_case_gives_one_line_naming_the_key(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files = catalogue_files(case, tmp_path)
    with pytest.raises(SystemExit) as info:
        load_study(files, case.get("overrides"), replace_defaults=True, validate=schema_validate)
    assert str(info.value) == f"config error: {catalogue_message(case)}"


def test_flat_prior_sd_is_accepted_in_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    case = {"layer": "priors: {flat: {mean: [0, 0, 0], sd: [.inf, .inf, 1]}}"}
    study = cfg.resolve(cfg.load_layers(catalogue_files(case, tmp_path)), validate=schema_validate)
    assert study["priors"]["flat"]["sd"] == [math.inf, math.inf, 1]


# --------------------------------------------------------------------------------------
# Config files are data
# --------------------------------------------------------------------------------------


def test_read_config_file_reads_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"seed": 1, "grid": {"n": [10], "sigma": [Infinity]}}')
    assert cfg.read_config_file(tmp_path / "a.json") == {
        "seed": 1,
        "grid": {"n": [10], "sigma": [math.inf]},
    }
    (tmp_path / "b.yaml").write_text("seed: 1\npriors: {a: {mean: [0], sd: [.inf]}}\n")
    assert cfg.read_config_file(tmp_path / "b.yaml")["priors"]["a"]["sd"] == [math.inf]
    (tmp_path / "empty.yaml").write_text("")
    assert cfg.read_config_file(tmp_path / "empty.yaml") is None


def test_read_config_file_never_builds_python_objects(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    bad = tmp_path / "bad.yaml"
    for text in (
        f'seed: !!python/object/apply:os.system ["touch {marker}"]\n',
        "seed: !!python/object/apply:pathlib.Path.touch\n"
        f'  [!!python/object/apply:pathlib.Path ["{marker}"]]\n',
        "seed: !!python/name:os.system\n",
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=r"bad\.yaml: line 1, column 7: not plain data"):
            cfg.read_config_file(bad)
    bad.write_text(f'__use_yte__: true\nseed: ?__import__("pathlib").Path("{marker}").touch()\n')
    with pytest.raises(ConfigError, match=r"__use_yte__: templates are not accepted"):
        cfg.read_config_file(bad)
    assert not marker.exists()


def test_read_config_file_problems_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found$"):
        cfg.read_config_file(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"seed: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not UTF-8 text \(byte 6\)") as info:
        cfg.read_config_file(bad)
    assert "\n" not in str(info.value)
    bad.write_text("grid:\n\tn: [10]\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line 2, column 1: YAML syntax error"):
        cfg.read_config_file(bad)
    bad.write_text("grid:\n  n: [10]\n  n: [20]\n")
    with pytest.raises(ConfigError, match=r"line 3, column 3: duplicate key 'n'$"):
        cfg.read_config_file(bad)


def test_command_line_lists_and_mappings_are_read_as_in_a_config_file() -> None:
    """Snakemake's --config reads `beta=[10, 0, 10]` with every scalar as text; the
    layer built from it resolves them as YAML 1.2 does in a config file."""
    from snakemake.cli import parse_config

    entries = [
        "beta=[10, 0, 10.5]",
        "keep_datasets=false",
        "priors={w: {mean: [0, 0, 0], sd: [1, .inf, 1e-3]}, no: {mean: [1, 2, 3], sd: [1, 1, 1]}}",
        "seed=7",
    ]
    (layer,) = cfg.load_layers([], overrides=parse_config(entries))
    assert layer == {
        "beta": [10, 0, 10.5],
        "keep_datasets": False,
        "priors": {
            "w": {"mean": [0, 0, 0], "sd": [1, math.inf, 0.001]},
            "no": {"mean": [1, 2, 3], "sd": [1, 1, 1]},
        },
        "seed": 7,
    }
    assert type(layer["beta"][0]) is int and type(layer["keep_datasets"]) is bool
    (beta_only,) = cfg.load_layers([], overrides=parse_config(["beta=[10, 0, 10.5]"]))
    assert resolve({"grid": {"n": [20], "sigma": [1]}}, beta_only)["beta"] == [10, 0, 10.5]


def _documented_layers() -> list[tuple[str, str]]:
    """Every YAML block of the README and docs/*.md: (where, text)."""
    blocks = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text(encoding="utf-8").splitlines()
        for start, line in enumerate(lines):
            if line.strip() == "```yaml":
                stop = lines.index("```", start + 1)
                where = f"{path.relative_to(ROOT)}:{start + 1}"
                blocks.append((where, "\n".join(lines[start + 1 : stop])))
    return blocks


@pytest.mark.parametrize(
    ("where", "text"), [pytest.param(*block, id=block[0]) for block in _documented_layers()]
)
def test_every_documented_config_runs_as_a_layer_on_the_defaults(where: str, text: str) -> None:
    layer = yaml.safe_load(text)
    assert isinstance(layer, dict) and layer, where
    study = Study.from_config(resolve(layer))
    assert study.cells and study.plan, where


def test_every_scale_measure_takes_a_log_axis() -> None:
    from regsim.schema import SCALE_MEASURES

    assert "mad_empse" in SCALE_MEASURES
    for measure in SCALE_MEASURES:
        resolve({"figures": {"nested_loop": {"measure": measure, "log_y": True}}})


def test_the_schemas_lists_of_levels_are_the_packages() -> None:
    from regsim.design import COVARIATES
    from regsim.schema import ERROR_MODELS, FAILURE_RULES, SIGMA_PRIORS

    properties = yaml.safe_load(SCHEMA.read_text())["properties"]
    design = properties["designs"]["additionalProperties"]["properties"]
    assert tuple(design["covariates"]["enum"]) == tuple(COVARIATES)
    assert tuple(properties["grid"]["properties"]["errors"]["items"]["enum"]) == ERROR_MODELS
    assert tuple(properties["sigma_prior"]["enum"]) == SIGMA_PRIORS
    assert tuple(properties["failures"]["enum"]) == FAILURE_RULES


def test_a_bound_is_shown_with_the_digits_that_set_it_apart() -> None:
    from regsim.limits import bound_text

    assert bound_text(2.4e-7, 1e-300) == "2.4e-07"
    assert bound_text(1.00000002, 1.0) == "1.00000002"  # not "below 1"
    assert bound_text(3.449e-7, 3.44e-7) == "3.45e-07"
    assert float(bound_text(1 + 2**-52, 1.0)) > 1.0
