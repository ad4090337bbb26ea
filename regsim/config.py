"""The study configuration: how config files combine, and the checks a schema cannot make.

A study is configured by YAML files with the keys ``seed``, ``replications``, ``alpha``,
``beta`` (one truth) or ``truths`` (named truths), ``designs``, ``grid`` (``n``,
``sigma``, ``errors``, ``truth``, ``design``), ``priors``, ``sigma_prior``, ``methods``,
``reference``, ``failures`` and ``tables``, plus the execution settings
``observations_per_job`` and ``keep_datasets`` and the diagnostic setting ``map_max_iter``.
The workflow builds one configuration from layers:

1. the defaults (``config.yaml`` in the working directory, i.e. the repository root),
2. each ``--configfile``, in the order given,
3. ``--config KEY=VALUE`` overrides (from the command line or the profile).

Each layer replaces the *top-level* keys it names, wholesale: a layer that lists two priors
yields exactly those two priors, and a layer's ``grid`` replaces the whole grid. The merged
configuration is then validated against ``schemas/config.schema.yaml`` (which fills
defaults) and checked by :func:`check`. Every problem is reported as a
:class:`~regsim.errors.ConfigError` whose message starts with the key path, e.g.
``priors.weak.sd: length 2, expected 3 (one per coefficient in beta)``.

Config files are data: :func:`read_config_file` reads JSON or YAML with PyYAML's safe
loader only (no Python objects, no templates), rejects duplicate keys, and reports a syntax
error as one line with its line and column.

This module never imports Snakemake: the schema validator is passed in as a function.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from regsim.design import COVARIATES, jobs_per_cell
from regsim.errors import ConfigError
from regsim.limits import (
    MAX_SIGMA,
    alpha_problem,
    bound_text,
    finite,
    magnitude_problem,
    prior_resolution_problem,
    prior_sd_problem,
    shown,
)
from regsim.schema import (
    DEFAULT_DESIGN,
    DEFAULT_ERRORS,
    DEFAULT_SIGMA_PRIOR,
    DEFAULT_TRUTH,
    ERROR_MODELS,
    FAILURE_RULES,
    MEASURES,
    METHOD_NAMES,
    PRIOR_METHODS,
    REFERENCE_CANDIDATES,
    REFERENCE_MEASURES,
    SCALE_MEASURES,
    SIGMA_PRIORS,
    parameter_names,
)

#: Estimation methods the workflow knows.
KNOWN_METHODS: tuple[str, ...] = METHOD_NAMES

#: Execution settings that no longer exist, and what replaced them.
RETIRED_KEYS: dict[str, str] = {
    "replications_per_job": (
        "no longer used; jobs are planned by observations_per_job (replicates x n of one "
        "simulate job)"
    ),
}

#: Names of priors, truths and designs must be usable as file-name parts and table labels.
PRIOR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

#: The design every study has without defining it: U(0, 1) covariates redrawn per replicate.
DEFAULT_DESIGN_SPEC: dict[str, Any] = {"covariates": "uniform"}

#: Largest share of a random binary design's replicates whose X is singular (a covariate
#: constant, or collinear with another or with the intercept, so that coefficients are
#: not identified): more, and the design is refused at that n.
MAX_SINGULAR_SHARE = 0.01

_NAME_RULE = "use a letter followed by letters, digits or underscores (names label files)"

#: Default budget of one simulate job, in observations drawn (replicates × n): the default
#: study's largest sample size, 3 cells × 1000 replicates × n = 1000, fits in one job.
DEFAULT_OBSERVATIONS_PER_JOB = 10_000_000

#: Whether simulate jobs write the datasets by default: no. Any replicate is redrawn bit
#: for bit from the seed (``python -m regsim dataset``); the dataset files were most of a
#: study's disk (the default study: 136 of 192 MB) and of its large-n jobs' writing.
DEFAULT_KEEP_DATASETS = False

#: Default Newton iteration cap of the MAP fits (the diagnostic setting ``map_max_iter``).
DEFAULT_MAP_MAX_ITER = 60


#: Smallest σ relative to Σ_j |β_j|. y = Xβ + ε is stored to about 1e-16 of |Xβ|; with
#: σ at least 1e-8 of it, rounding moves an estimate of σ by at most about 1e-8.
SIGMA_RESOLUTION = 1e-8

#: Smallest σ at all, as :data:`~regsim.limits.MAX_SIGMA` the largest: the MCSEs of the
#: measures take fourth powers of the errors and SEs, which underflow (to 0, or to fewer
#: digits) below about 1e-77 (at σ = 1e-100 the MSE's MCSE was 0).
MIN_SIGMA = 1e-60


def merge(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Combine configuration layers; later layers replace earlier top-level keys.

    Parameters
    ----------
    *layers : mapping or None
        Configuration dictionaries, lowest precedence first (defaults, then each config
        file, then command-line overrides). ``None`` and empty layers are skipped.

    Returns
    -------
    dict
        A new dictionary; no layer is modified. A key present in several layers takes the
        value of the last one, replaced wholesale (nested mappings such as ``grid`` and
        ``priors`` are not merged key by key). ``beta`` and ``truths`` are one setting
        (the truth or truths of the study): a layer giving either replaces both, so a
        config file of named truths overrides the defaults' ``beta``.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        if not layer:
            continue
        if not isinstance(layer, Mapping):
            raise ConfigError(f"a config file must hold a mapping of keys, got {layer!r}")
        keys = {str(key) for key in layer}
        for key in TRUTH_KEYS:
            if key not in keys and keys.intersection(TRUTH_KEYS):
                merged.pop(key, None)
        for key, value in layer.items():
            merged[str(key)] = copy.deepcopy(_plain(value))
    return merged


#: The keys that give the study's truth (one ``beta``, or named ``truths``): one setting.
TRUTH_KEYS: tuple[str, ...] = ("beta", "truths")


def _plain(value: Any) -> Any:
    """Turn mappings (e.g. ``OrderedDict``, ``immutables.Map``) into plain dicts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def load_layers(
    paths: Iterable[str | os.PathLike[str]],
    load: Callable[[str], Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[Mapping[str, Any] | None]:
    """Read config files into layers for :func:`resolve`, lowest precedence first.

    Parameters
    ----------
    paths : iterable of path-like
        Config files: the defaults first, then each ``--configfile`` in order.
    load : callable, optional
        Reads one file into a mapping; default :func:`read_config_file` (what the
        workflow uses: safe YAML, no templates).
    overrides : mapping, optional
        ``--config`` values, appended as the last layer.

    Returns
    -------
    list of mapping

    Raises
    ------
    ConfigError
        If a file is missing or cannot be parsed; the message names the file.
    """
    load = load or read_config_file
    layers: list[Mapping[str, Any] | None] = []
    for path in paths:
        shown = shown_path(path)
        if not Path(path).is_file():
            raise ConfigError(
                f"{shown}: config file not found (run from the workflow folder, "
                "or pass --configfile)"
            )
        try:
            layer = load(str(path))
        except ConfigError:
            raise
        except Exception as error:  # the loader's own error types are not known here
            raise ConfigError(f"{shown}: cannot read config file ({_one_line(error)})") from error
        if layer is not None and not isinstance(layer, Mapping):
            raise ConfigError(f"{shown}: a config file must hold a mapping of keys")
        layers.append(layer)
    layers.append(_command_line(overrides))
    return layers


def _command_line(overrides: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``--config`` values read as a config file's are.

    Snakemake reads a ``--config`` value as a number or a boolean where it can, and else as
    YAML whose every scalar is text: ``keep_datasets=false`` arrives as ``"false"`` and
    ``beta=[10, 0, 10]`` as ``["10", "0", "10"]``. Each text scalar is resolved here by
    YAML 1.2's core schema, as in a config file (:func:`_scalar`).
    """
    if not overrides:
        return overrides
    return {key: _typed(value) for key, value in overrides.items()}


def _typed(value: Any) -> Any:
    if isinstance(value, str):
        return _scalar(value)
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    return value


def _scalar(text: str) -> Any:
    """A plain scalar as YAML 1.2's core schema reads it: a number, boolean or null where
    it is written as one (``1e-3``, ``.inf``, ``false``, ``~``), else the text itself."""
    if any(re.match(pattern, text) for _, pattern, _ in _YAML_12_SCALARS):
        return _load_yaml(text, "--config")
    return text


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` as messages show it: relative to the working directory if inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (OSError, ValueError):
        return str(path)


def read_config_file(path: str | os.PathLike[str]) -> Any:
    """Read one config file as plain data: JSON, or else YAML 1.2 with the safe loader.

    Unlike Snakemake's own loader, this never constructs Python objects and never renders
    a YTE template (``__use_yte__``), whose expressions are Python code: a study config
    is data. Scalars follow YAML 1.2's core schema (:func:`_yaml_loader`), so ``no`` is the
    text "no" (not false), ``012`` is twelve (not octal ten), ``1e-3`` is a number and
    ``1:30`` is text. A key given twice in one mapping is an error in either format (YAML
    and Python's JSON reader would silently keep the last one); a key that overrides one
    brought in by a YAML merge (``<<: *defaults``) is not a duplicate.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    object
        The parsed document (normally a mapping; ``None`` for an empty file).

    Raises
    ------
    ConfigError
        On a missing or unreadable file, a syntax error (with its line and column), a
        duplicate key or a YTE template; one line naming the file.
    """
    shown = shown_path(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise ConfigError(f"{shown}: config file not found") from error
    except IsADirectoryError as error:
        raise ConfigError(f"{shown}: is a folder, not a config file") from error
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{shown}: not UTF-8 text (byte {error.start}); save the file as UTF-8"
        ) from error
    except OSError as error:
        raise ConfigError(f"{shown}: cannot read config file ({_one_line(error)})") from error

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ConfigError(f"{shown}: duplicate key {_fmt(key)}")
            seen[key] = value
        return seen

    try:
        document = json.loads(text, object_pairs_hook=unique_keys)
    except ValueError:
        document = _load_yaml(text, shown)
    if isinstance(document, Mapping) and "__use_yte__" in document:
        raise ConfigError(
            f"{shown}: __use_yte__: templates are not accepted; a study config is plain data"
        )
    return document


#: YAML 1.2 core schema: the only implicit scalar types and how each is written.
_YAML_12_SCALARS: tuple[tuple[str, str, str], ...] = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
)


def _yaml_12_int(loader: Any, node: Any) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _yaml_12_float(loader: Any, node: Any) -> float:
    text = loader.construct_scalar(node)
    special = text.lstrip("+-").lower()
    if special == ".inf":
        return -math.inf if text.startswith("-") else math.inf
    if special == ".nan":
        return math.nan
    return float(text)


def _yaml_12_bool(loader: Any, node: Any) -> bool:
    return loader.construct_scalar(node).lower() == "true"


def _yaml_loader(path: str) -> Any:
    """PyYAML's safe loader with YAML 1.2 scalars, refusing a key given twice.

    PyYAML implements YAML 1.1, where ``yes``/``no``/``on``/``off`` are booleans, ``012`` is
    octal, ``1_000`` and ``1:30`` are numbers and ``1e-3`` is text: a prior named ``no``
    would become ``False``. This loader resolves plain scalars by the 1.2 core schema
    instead (:data:`_YAML_12_SCALARS`); anything else is text.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        """The safe loader with YAML 1.2 core-schema scalars and unique keys."""

    Loader.yaml_implicit_resolvers = {}
    for tag, pattern, first in _YAML_12_SCALARS:
        Loader.add_implicit_resolver(tag, re.compile(pattern), list(first))
    # The empty plain scalar (a key with no value) resolves to null, as in 1.1.
    Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])
    Loader.add_constructor("tag:yaml.org,2002:int", _yaml_12_int)
    Loader.add_constructor("tag:yaml.org,2002:float", _yaml_12_float)
    Loader.add_constructor("tag:yaml.org,2002:bool", _yaml_12_bool)

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        # Only keys written in this mapping can clash: one that overrides a key brought
        # in by a merge (<<: *anchor) is how merges are meant to be used.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(
                    f"{path}: line {mark.line + 1}, column {mark.column + 1}: duplicate key "
                    f"{_fmt(key)}"
                )
            seen.add(key)
        loader.flatten_mapping(node)
        return loader.construct_mapping(node, deep=True)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    # The merge key itself is resolved by the 1.1 rule, which the 1.2 resolvers dropped.
    Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
    return Loader


def _load_yaml(text: str, path: str) -> Any:
    import yaml

    try:
        Loader = _yaml_loader(path)  # noqa: N806 - the class built for this file
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        kind = (
            "not plain data"
            if isinstance(error, yaml.constructor.ConstructorError)
            else "YAML syntax error"
        )
        raise ConfigError(f"{path}: {where}{kind} ({_one_line(problem)})") from None


def resolve(
    layers: Iterable[Mapping[str, Any] | None],
    validate: Callable[[dict[str, Any]], object] | None = None,
    known_methods: Sequence[str] = KNOWN_METHODS,
    capacity: int | None = None,
) -> dict[str, Any]:
    """Merge, validate and check configuration layers.

    Parameters
    ----------
    layers : iterable of mapping
        As for :func:`merge`, lowest precedence first.
    validate : callable, optional
        Schema validation of the merged dictionary, in place (it fills defaults), raising
        on the first violation; typically ``snakemake.utils.validate`` bound to the schema.
        Its exception is turned into a one-line :class:`ConfigError` naming the key.
    known_methods : sequence of str
        Method names accepted in ``methods``.
    capacity : int, optional
        Size in bytes of the results' disk (see :func:`check`).

    Returns
    -------
    dict
        The merged, validated configuration with defaults filled.

    Raises
    ------
    ConfigError
        If the configuration is invalid; the message starts with the key path.
    """
    config = merge(*layers)
    for key, why in RETIRED_KEYS.items():
        if key in config:
            raise ConfigError(f"{key}: {why}")
    if validate is not None:
        try:
            validate(config)
        except ConfigError:
            raise
        except Exception as error:  # the validator's own error type is not known here
            raise ConfigError(describe_schema_error(error)) from error
    check(config, known_methods=known_methods, capacity=capacity)
    return config


def describe_schema_error(error: BaseException) -> str:
    """One line naming the key for a JSON-schema validation failure.

    Parameters
    ----------
    error : BaseException
        A ``jsonschema.ValidationError``, or an exception that carries one in its
        ``args`` or as its cause (Snakemake's ``WorkflowError`` does).

    Returns
    -------
    str
        ``"<key path>: <problem>"``, e.g. ``"grid.sigma[0]: 'a' is not of type 'number'"``.
    """
    found = _find_validation_error(error)
    if found is None:
        text = " ".join(str(error).split()) or type(error).__name__
        return f"(config file): {text}"
    path = list(found.absolute_path)
    validator = getattr(found, "validator", None)
    instance = getattr(found, "instance", None)
    schema = getattr(found, "schema", {}) or {}
    if validator == "additionalProperties" and isinstance(instance, Mapping):
        allowed = set(schema.get("properties", {}))
        unknown = sorted(str(k) for k in instance if k not in allowed)
        if unknown and allowed:
            keys = ", ".join(sorted(allowed))
            return f"{key_path([*path, unknown[0]])}: unknown key (allowed here: {keys})"
    if validator == "required" and isinstance(instance, Mapping):
        missing = [k for k in found.validator_value if k not in instance]
        if missing:
            return f"{key_path([*path, missing[0]])}: required key is missing"
    if "propertyNames" in getattr(found, "schema_path", ()):
        return f"{key_path(path)}: invalid name {_fmt(instance)}; {_NAME_RULE}"
    if validator == "type" and (instance is None or isinstance(instance, (bool, str, int, float))):
        expected = found.validator_value
        types = [expected] if isinstance(expected, str) else list(expected)
        text = f"{_yaml_scalar(instance)} is not of type {', '.join(repr(t) for t in types)}"
        spelt = isinstance(instance, str) and instance.strip().lower().lstrip("+-")
        if spelt in _NOT_FINITE and "number" in types:
            text += " (YAML writes infinity .inf, -.inf, and not-a-number .nan)"
        return f"{key_path(path)}: {text}"
    return f"{key_path(path)}: {_one_line(found.message)}"


#: Spellings of infinity and not-a-number that YAML reads as text.
_NOT_FINITE = ("inf", "infinity", "nan")


def _yaml_scalar(value: Any) -> str:
    """A scalar as the config file would write it: ``true``, ``null``, ``'text'``, 1.5."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return shown(value)


def _find_validation_error(error: BaseException) -> Any:
    seen: set[int] = set()
    todo: list[Any] = [error]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if hasattr(item, "absolute_path") and hasattr(item, "validator"):
            return item
        if isinstance(item, BaseException):
            todo.extend(item.args)
            todo.extend([item.__cause__, item.__context__])
    return None


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def key_path(parts: Iterable[Any]) -> str:
    """Format a key path: ``["priors", "weak", "sd", 1]`` becomes ``priors.weak.sd[1]``.

    Parameters
    ----------
    parts : iterable
        Mapping keys (str) and list indices (int).

    Returns
    -------
    str
        The path, or ``"(top level)"`` for an empty path.
    """
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _require_list(config: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = config.get(key)
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list, got {_fmt(value)}")
    if not value:
        raise ConfigError(f"{where}: empty list; give at least one value")
    return value


def check(
    config: Mapping[str, Any],
    known_methods: Sequence[str] = KNOWN_METHODS,
    capacity: int | None = None,
) -> None:
    """Check what the JSON schema cannot express (and re-check its types).

    Parameters
    ----------
    config : mapping
        A merged configuration, normally already schema-validated with defaults filled.
    known_methods : sequence of str
        Method names accepted in ``methods``.
    capacity : int, optional
        Size in bytes of the disk the results go to: a study whose results could not fit
        on it is refused.

    Raises
    ------
    ConfigError
        On the first problem found; the message starts with the key path, e.g.
        ``grid.n[0]: 3 must exceed the number of coefficients in beta (3)``.
    """
    for key in ("seed", "replications", "grid"):
        if key not in config:
            raise ConfigError(f"{key}: required key is missing")

    seed = config["seed"]
    if not _is_int(seed) or seed < 0:
        raise ConfigError(f"seed: must be a non-negative integer, got {_fmt(seed)}")
    replications = config["replications"]
    if not _is_int(replications) or replications < 2:
        raise ConfigError(f"replications: must be an integer >= 2, got {_fmt(replications)}")
    per_job = config.get("observations_per_job", DEFAULT_OBSERVATIONS_PER_JOB)
    if not _is_int(per_job) or per_job < 1:
        raise ConfigError(f"observations_per_job: must be an integer >= 1, got {_fmt(per_job)}")
    keep = config.get("keep_datasets", DEFAULT_KEEP_DATASETS)
    if not isinstance(keep, bool):
        raise ConfigError(f"keep_datasets: must be true or false, got {_fmt(keep)}")
    max_iter = config.get("map_max_iter", DEFAULT_MAP_MAX_ITER)
    if not _is_int(max_iter) or max_iter < 1:
        raise ConfigError(f"map_max_iter: must be an integer >= 1, got {_fmt(max_iter)}")
    problem = alpha_problem(config.get("alpha", 0.05))
    if problem:
        raise ConfigError(f"alpha: {problem}")

    named = _check_truths(config)
    p = len(next(iter(named.values())))

    grid = config["grid"]
    if not isinstance(grid, Mapping):
        raise ConfigError(f"grid: must be a mapping with keys n and sigma, got {_fmt(grid)}")
    for key in ("n", "sigma"):
        if key not in grid:
            raise ConfigError(f"grid.{key}: required key is missing")
    _check_n(_require_list(grid, "n", "grid.n"), p)
    sigmas = _require_list(grid, "sigma", "grid.sigma")
    if "errors" in grid:
        _check_errors(_require_list(grid, "errors", "grid.errors"), p)
    used = _check_levels(grid, "truth", named, "truths", list(named))
    _check_sigma(sigmas, [named[name] for name in used])
    defined = _check_designs(config, p)
    given = [name for name in config.get("designs") or {}]
    used_designs = _check_levels(grid, "design", defined, "designs", given or [DEFAULT_DESIGN])
    _check_names(error_models(config), used, used_designs)
    for name in used_designs:
        _check_design_sizes(name, defined[name], [int(n) for n in grid["n"]], p)

    methods = _require_list(config, "methods", "methods") if "methods" in config else []
    for i, method in enumerate(methods):
        if method not in known_methods:
            known = ", ".join(known_methods)
            raise ConfigError(f"methods[{i}]: unknown method {_fmt(method)} (known: {known})")
        if method in methods[:i]:
            raise ConfigError(f"methods[{i}]: duplicate method {_fmt(method)}")

    priors = config.get("priors") or {}
    if not isinstance(priors, Mapping):
        raise ConfigError(f"priors: must be a mapping of name -> {{mean, sd}}, got {_fmt(priors)}")
    for name, prior in priors.items():
        _check_prior(name, prior, p, "of each truth" if "truths" in config else "in beta")
    needing = [m for m in methods if m in PRIOR_METHODS]
    if needing and not priors:
        raise ConfigError(f"priors: method {needing[0]} needs at least one prior")
    if needing:
        _check_prior_resolution(priors, [named[name] for name in used])
    if "reference" in config:
        reference = config["reference"]
        listed = methods or list(KNOWN_METHODS)
        if reference in PRIOR_METHODS:
            raise ConfigError(
                f"reference: {_fmt(reference)} is fitted once per prior; the reference is a "
                f"method without a prior ({', '.join(m for m in listed if m not in PRIOR_METHODS)})"
            )
        if reference not in listed:
            raise ConfigError(
                f"reference: {_fmt(reference)} is not one of the study's methods "
                f"({', '.join(map(str, listed))})"
            )
    failures = config.get("failures", "own")
    if failures not in FAILURE_RULES:
        raise ConfigError(
            f"failures: must be one of {', '.join(FAILURE_RULES)}, got {_fmt(failures)}"
        )
    _check_figures(config.get("figures") or {}, p)
    tables = config.get("tables") or {}
    for i, measure in enumerate(tables.get("measures") or []):
        if measure not in MEASURES:
            raise ConfigError(
                f"tables.measures[{i}]: {_fmt(measure)} is not a measure of this study "
                f"({', '.join(MEASURES)})"
            )
        if measure in REFERENCE_MEASURES and not (
            "reference" in config or set(methods or KNOWN_METHODS) & set(REFERENCE_CANDIDATES)
        ):
            raise ConfigError(
                f"tables.measures[{i}]: {measure} is against a reference method, and this "
                "study has none (no ols, ols_hc3 or mle)"
            )
    _check_size(config, p, len(priors), methods, capacity)
    sigma_prior = config.get("sigma_prior", DEFAULT_SIGMA_PRIOR)
    if sigma_prior not in SIGMA_PRIORS:
        known = ", ".join(SIGMA_PRIORS)
        raise ConfigError(f"sigma_prior: must be one of {known}, got {_fmt(sigma_prior)}")
    if "bayes" in methods:
        _check_proper(config["grid"]["n"], priors, sigma_prior)


def _check_proper(sizes: list[Any], priors: Mapping[str, Any], sigma_prior: str) -> None:
    """The posterior of method bayes must be proper, with a mean and an sd, for every
    sample size and prior.

    With flat priors on |F| coefficients and p(σ) ∝ σ^{−a} (a = 0 for ``flat``, 1 for
    ``jeffreys``) the density of σ falls as σ^{−(ν + 1)}, ν = n − |F| − 1 + a: the
    posterior is improper for ν ≤ 0, and the means of σ and of the flat coefficients
    exist only for ν > 1, their sds for ν > 2 (see ``regsim.estimators.bayes``). The study
    reports both on every replicate, so a size where they do not exist would leave the
    cell without a single Bayes fit: it is refused here, before any job.
    """
    a = SIGMA_PRIORS.index(sigma_prior)
    for name, prior in priors.items():
        flat = sum(1 for sd in prior["sd"] if math.isinf(sd))
        coefficients = "coefficient" if flat == 1 else "coefficients"
        setting = f"with sigma_prior {sigma_prior} and prior {name!r} flat on {flat} {coefficients}"
        needed = flat + 3 - a  # ν > 2: every mean and sd exists
        # Jeffreys' prior adds one to ν: named where that is enough at every n.
        enough = a == 0 and min(sizes) - flat > 2
        other = "; or use sigma_prior jeffreys" if enough else ""
        for i, n in enumerate(sizes):
            nu = n - flat - 1 + a
            if nu > 2:
                continue
            if nu <= 0:
                raise ConfigError(
                    f"grid.n[{i}]: {setting}, method bayes has an improper posterior at n = {n} "
                    f"(needs n > {needed}{other})"
                )
            summary = "sd" if nu > 1 else "mean and sd"
            of = "σ and the flat coefficients" if flat else "σ"
            raise ConfigError(
                f"grid.n[{i}]: {setting}, the posterior {summary} of {of} do not exist at "
                f"n = {n}, so method bayes would fail on every replicate (needs n > "
                f"{needed}{other})"
            )


def _check_n(values: list[Any], p: int) -> None:
    for i, n in enumerate(values):
        if not _is_int(n):
            hint = f" (write {int(n)})" if isinstance(n, float) and n.is_integer() else ""
            raise ConfigError(f"grid.n[{i}]: must be an integer, got {_fmt(n)}{hint}")
        if n <= p:
            raise ConfigError(
                f"grid.n[{i}]: {n} must exceed the number of coefficients in beta ({p})"
            )
        need = dataset_bytes(n, p)
        if need > MAX_DATASET_BYTES:
            raise ConfigError(
                f"grid.n[{i}]: {n} observations are too many: drawing and fitting one dataset "
                f"needs about {_size(need)} of memory (at most {_size(MAX_DATASET_BYTES)})"
            )
        if n in values[:i]:
            raise ConfigError(f"grid.n[{i}]: duplicate value {n}")


def _check_sigma(values: list[Any], truths: Sequence[Sequence[Any]]) -> None:
    scale = max(math.fsum(abs(float(b)) for b in beta) for beta in truths)
    floor = SIGMA_RESOLUTION * scale
    for i, sigma in enumerate(values):
        if not _is_number(sigma) or not finite(sigma) or sigma <= 0:
            raise ConfigError(
                f"grid.sigma[{i}]: must be a positive finite number, got {shown(sigma)}"
            )
        if sigma > MAX_SIGMA:
            raise ConfigError(
                f"grid.sigma[{i}]: {shown(sigma)} is too large (at most {MAX_SIGMA:g}: the "
                "fourth powers in the measures' MCSEs would overflow)"
            )
        if sigma < MIN_SIGMA:
            raise ConfigError(
                f"grid.sigma[{i}]: {shown(sigma)} is too small (at least {MIN_SIGMA:g}: the "
                "fourth powers in the measures' MCSEs would underflow)"
            )
        if sigma < floor:
            raise ConfigError(
                f"grid.sigma[{i}]: {_fmt(sigma)} is too small: below "
                f"{bound_text(floor, float(sigma))} "
                f"({SIGMA_RESOLUTION:g} x the sum of |beta|) the errors are lost in the "
                "rounding of y"
            )
        earlier = [j for j in range(i) if float(values[j]) == float(sigma)]
        if earlier:
            raise ConfigError(
                f"grid.sigma[{i}]: duplicate value {sigma} (same as grid.sigma[{earlier[0]}])"
            )


def _check_errors(values: list[Any], p: int) -> None:
    for i, errors in enumerate(values):
        if errors not in ERROR_MODELS:
            known = ", ".join(ERROR_MODELS)
            raise ConfigError(
                f"grid.errors[{i}]: unknown error model {_fmt(errors)} (known: {known})"
            )
        if errors in values[:i]:
            raise ConfigError(f"grid.errors[{i}]: duplicate error model {_fmt(errors)}")
        if errors == "hetero" and p < 2:
            raise ConfigError(
                f"grid.errors[{i}]: 'hetero' needs a covariate (len(beta) >= 2), beta has {p}"
            )


#: Figure families drawn from the metrics table, and the options each takes from the config.
_FIGURE_OPTIONS: dict[str, tuple[str, ...]] = {
    "bias": ("parameters", "ylim"),
    "coverage": ("parameters", "ylim"),
    "rejection": ("parameters", "ylim"),
    "efficiency": ("parameters", "ylim"),
    "laplace": ("parameter", "ylim"),
    "modelse": ("parameters", "ylim"),
    "sigma": ("measures", "ylim"),
    "nested_loop": ("measure", "parameter", "loops", "log_y", "ylim"),
}


def _check_figures(figures: Mapping[str, Any], p: int) -> None:
    """The ``figures`` options name parameters and measures the study has, sane limits."""
    parameters = parameter_names(p)

    def known(where: str, value: Any, allowed: Sequence[str], what: str) -> None:
        if value not in allowed:
            raise ConfigError(
                f"{where}: {_fmt(value)} is not a {what} of this study ({', '.join(allowed)})"
            )

    for family, options in figures.items():
        if family == "zip" or not isinstance(options, Mapping):
            continue
        where = f"figures.{family}"
        for i, parameter in enumerate(options.get("parameters") or []):
            known(f"{where}.parameters[{i}]", parameter, parameters, "parameter")
        if "parameter" in options:
            known(f"{where}.parameter", options["parameter"], parameters, "parameter")
        for i, measure in enumerate(options.get("measures") or []):
            known(f"{where}.measures[{i}]", measure, MEASURES, "measure")
        if "measure" in options:
            known(f"{where}.measure", options["measure"], MEASURES, "measure")
        measure = options.get("measure", "rmse")
        if family == "nested_loop" and options.get("log_y") and measure not in SCALE_MEASURES:
            # its zeros and negative values would fall off a log axis unmarked
            raise ConfigError(
                f"{where}.log_y: {measure} can be 0 or negative, which a log axis cannot show; "
                f"a log axis takes {', '.join(sorted(SCALE_MEASURES))}"
            )
        if "ylim" in options:
            log_y = options.get("log_y")
            if family == "nested_loop" and log_y is None:
                log_y = options.get("measure", "rmse") in SCALE_MEASURES
            if family == "efficiency" and log_y is None:
                log_y = True
            _check_ylim(f"{where}.ylim", options["ylim"], bool(log_y))


def _check_ylim(where: str, ylim: Any, log_y: bool) -> None:
    low, high = ylim
    if not (_is_number(low) and _is_number(high) and finite(low) and finite(high)):
        raise ConfigError(f"{where}: must be two finite numbers, got {_fmt(ylim)}")
    if not low < high:
        raise ConfigError(f"{where}: the low limit {low} is not below the high limit {high}")
    if log_y and low <= 0:
        raise ConfigError(f"{where}: {low} is not above 0, and this axis is logarithmic")


#: Largest memory one dataset may need to be drawn and fitted (a batch holds one at least).
MAX_DATASET_BYTES = 2 * 1024**3

#: Most simulate jobs a study may plan: Snakemake builds a job graph of them all, and a
#: cluster queue holds far fewer.
MAX_JOBS = 50_000

#: Bytes per fit row on disk, in the jobs' chunks and the cells' tables together (measured
#: about 40 each), with a margin.
_FIT_ROW_BYTES = 100


def dataset_bytes(n: int, p: int) -> int:
    """Memory to draw and fit one dataset of ``n`` observations and ``p`` coefficients:
    the covariates, response and error draws, and their centred copy."""
    return 16 * int(n) * (int(p) + 4)


def _size(count: float) -> str:
    """A byte count as text, e.g. ``24 GB``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count:.0f} B"


def _check_size(
    config: Mapping[str, Any],
    p: int,
    priors: int,
    methods: Sequence[str],
    capacity: int | None = None,
) -> None:
    """A study that cannot run (too many jobs, rows or bytes) is refused before any job.

    Everything is counted from the config in O(cells), without building the plan.
    """
    grid = config["grid"]
    replications = int(config["replications"])
    budget = int(config.get("observations_per_job", DEFAULT_OBSERVATIONS_PER_JOB))
    ns = [int(n) for n in grid["n"]]
    per_n = len(grid["sigma"]) * len(error_models(config))
    per_n *= len(truths(config)) * len(designs(config))
    cells = per_n * len(ns)
    # The plan's own count for a cell cut into pieces; at most one job per cell packed
    # whole (whole cells share jobs).
    jobs = per_n * sum(jobs_per_cell(replications, n, budget) for n in ns)
    if jobs > MAX_JOBS:
        raise ConfigError(
            f"replications: {replications} replicates of {cells} cells make up to {jobs:.3g} "
            f"simulate jobs at observations_per_job {budget} (at most {MAX_JOBS}); raise "
            "observations_per_job or lower replications"
        )
    fits = sum(priors if m in PRIOR_METHODS else 1 for m in methods)
    rows = cells * replications * fits * (p + 1)
    need = rows * _FIT_ROW_BYTES
    if config.get("keep_datasets", DEFAULT_KEEP_DATASETS):
        need += replications * per_n * sum(8 * n * p for n in ns)
    if capacity is not None and need > capacity:
        raise ConfigError(
            f"replications: {replications} replicates of {cells} cells need about {_size(need)} "
            f"of results ({rows:.3g} fit rows"
            + (", and the datasets" if config.get("keep_datasets", DEFAULT_KEEP_DATASETS) else "")
            + f"), more than this disk holds ({_size(capacity)})"
        )


def _check_truths(config: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``beta`` (one truth) or ``truths`` (named): the truths by name, all of one length."""
    if "beta" in config and "truths" in config:
        raise ConfigError(
            "truths: give either beta (one truth) or truths (named truths), not both in one "
            "config file"
        )
    if "truths" not in config:
        if "beta" not in config:
            raise ConfigError("beta: required key is missing (or give named truths)")
        beta = _require_list(config, "beta", "beta")
        for i, b in enumerate(beta):
            problem = magnitude_problem(b)
            if problem:
                raise ConfigError(f"beta[{i}]: {problem}")
        return {DEFAULT_TRUTH: beta}
    named = config["truths"]
    if not isinstance(named, Mapping) or not named:
        raise ConfigError(
            f"truths: must be a non-empty mapping of name -> coefficients, got {_fmt(named)}"
        )
    first = None
    for name, beta in named.items():
        if not isinstance(name, str) or not PRIOR_NAME.match(name):
            raise ConfigError(f"truths: invalid name {_fmt(name)}; {_NAME_RULE}")
        where = f"truths.{name}"
        if not isinstance(beta, list) or not beta:
            raise ConfigError(f"{where}: must be a non-empty list of numbers, got {_fmt(beta)}")
        for i, b in enumerate(beta):
            problem = magnitude_problem(b)
            if problem:
                raise ConfigError(f"{where}[{i}]: {problem}")
        if first is None:
            first = name
        elif len(beta) != len(named[first]):
            raise ConfigError(
                f"{where}: length {len(beta)}, expected {len(named[first])} (as truths.{first}); "
                "every truth has the same coefficients"
            )
    return dict(named)


def _check_levels(
    grid: Mapping[str, Any],
    factor: str,
    defined: Mapping[str, Any],
    key: str,
    unset: Sequence[str],
) -> list[str]:
    """``grid.<factor>`` names levels defined under ``key``; the levels the grid uses
    (``unset`` when it does not give the factor)."""
    if factor not in grid:
        return list(unset)
    values = _require_list(grid, factor, f"grid.{factor}")
    for i, name in enumerate(values):
        if name not in defined:
            raise ConfigError(
                f"grid.{factor}[{i}]: {_fmt(name)} is not defined under {key} "
                f"(defined: {', '.join(map(str, defined))})"
            )
        if name in values[:i]:
            raise ConfigError(f"grid.{factor}[{i}]: duplicate {factor} {_fmt(name)}")
    return list(values)


def _check_designs(config: Mapping[str, Any], p: int) -> dict[str, dict[str, Any]]:
    """The designs by name (``uniform`` always among them), each checked."""
    given = config.get("designs")
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise ConfigError(
            f"designs: must be a mapping of name -> {{covariates, rho, fixed}}, got {_fmt(given)}"
        )
    k = p - 1
    out: dict[str, dict[str, Any]] = {}
    for name, spec in given.items():
        if not isinstance(name, str) or not PRIOR_NAME.match(name):
            raise ConfigError(f"designs: invalid name {_fmt(name)}; {_NAME_RULE}")
        where = f"designs.{name}"
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"{where}: must be a mapping with keys covariates, rho, fixed, got {_fmt(spec)}"
            )
        unknown = sorted(str(key) for key in spec if key not in ("covariates", "rho", "fixed"))
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}: unknown key (allowed here: covariates, rho, fixed)"
            )
        covariates = spec.get("covariates", "uniform")
        if covariates not in COVARIATES:
            raise ConfigError(
                f"{where}.covariates: unknown covariates {_fmt(covariates)} "
                f"(known: {', '.join(COVARIATES)})"
            )
        fixed = spec.get("fixed", False)
        if not isinstance(fixed, bool):
            raise ConfigError(f"{where}.fixed: must be true or false, got {_fmt(fixed)}")
        if "rho" in spec:
            rho = spec["rho"]
            if covariates != "normal":
                raise ConfigError(
                    f"{where}.rho: only normal covariates are correlated; "
                    f"{covariates} covariates are independent"
                )
            low = -1.0 / (k - 1) if k > 1 else -1.0
            if not _is_number(rho) or not finite(rho) or not low < rho < 1:
                raise ConfigError(
                    f"{where}.rho: must be a number with {low:.6g} < rho < 1 "
                    f"(-1/(k - 1) for k = {k} covariates), got {shown(rho)}"
                )
        if name == DEFAULT_DESIGN and (covariates != "uniform" or fixed):
            raise ConfigError(
                f"{where}: the name {DEFAULT_DESIGN} is the default design (U(0, 1) "
                "covariates redrawn for every replicate); give this design another name"
            )
        out[name] = {"covariates": covariates, "fixed": fixed}
        if covariates == "normal":
            out[name]["rho"] = float(spec.get("rho", 0.0))
    if DEFAULT_DESIGN not in out:
        out = {DEFAULT_DESIGN: dict(DEFAULT_DESIGN_SPEC), **out}
    return out


def _check_names(errors: Sequence[str], truths: Sequence[str], designs: Sequence[str]) -> None:
    """Levels of different factors are named apart: each names a cell's files."""
    seen: dict[str, str] = {}
    for key, names, default in (
        ("grid.errors", errors, DEFAULT_ERRORS),
        ("grid.truth", truths, DEFAULT_TRUTH),
        ("grid.design", designs, DEFAULT_DESIGN),
    ):
        for name in names:
            if name == default:
                continue
            if name in seen:
                raise ConfigError(
                    f"{key}: {_fmt(name)} is also a level of {seen[name]}; levels of different "
                    "factors need different names (they label the cells' files)"
                )
            seen[name] = key
    # Nor after a level of another factor the grid does not use: `hetero` as a truth in a
    # study of normal errors names its cells like those of heteroskedastic errors.
    taken = dict.fromkeys(ERROR_MODELS, "grid.errors")
    taken |= {DEFAULT_TRUTH: "grid.truth", DEFAULT_DESIGN: "grid.design"}
    for key, names in (("grid.truth", truths), ("grid.design", designs)):
        for name in names:
            if name in taken and taken[name] != key:
                raise ConfigError(
                    f"{key}: {_fmt(name)} is the name of a level of {taken[name]}; levels of "
                    "different factors need different names (they label the cells' files)"
                )


def singular_share(n: int, k: int) -> float:
    """The share of random binary designs (k Bernoulli(½) covariates, n rows) whose
    X = [1, x_1 … x_k] is singular: exact for k ≤ 2, a lower bound beyond.

    * k = 1: x_1 constant, 2^(1−n).
    * k = 2: X has full rank exactly when its rows take at least three of the four kinds
      (any three corners of the square are affinely independent), so the share is that of
      at most two kinds, 6·2^(−n) − 8·4^(−n): a constant covariate, x_1 = x_2, or
      x_1 = 1 − x_2 (collinear with the intercept).
    * k ≥ 3: at least the share of the k² events of a constant covariate or two equal or
      complementary covariates, by Bonferroni's inequality k(k + 1)·2^(−n) − C(k², 2)·4^(1−n)
      (each pair of events has probability at most 4^(1−n)), and at least the share with
      a constant covariate, 1 − (1 − 2^(1−n))^k.
    """
    if k == 0:
        return 0.0
    if k == 1:
        return 2.0 ** (1 - n)
    if k == 2:
        return 6.0 * 2.0**-n - 8.0 * 4.0**-n
    constant = -math.expm1(k * math.log1p(-(2.0 ** (1 - n))))
    events = k * k
    bonferroni = k * (k + 1) * 2.0**-n - events * (events - 1) / 2 * 4.0 ** (1 - n)
    return max(constant, bonferroni)


def _check_design_sizes(name: str, spec: Mapping[str, Any], ns: Sequence[int], p: int) -> None:
    """A random binary design leaves few replicates without a full-rank X."""
    if spec["covariates"] != "binary" or spec["fixed"] or p < 2:
        return
    for n in ns:
        share = singular_share(n, p - 1)
        if share > MAX_SINGULAR_SHARE:
            raise ConfigError(
                f"designs.{name}: binary covariates give too few distinct rows at n = {n}: in "
                f"{share:.2%} of replicates X is singular (a covariate constant, or equal to "
                "another or to 1 minus another) and coefficients are not identified (at most "
                f"{MAX_SINGULAR_SHARE:.0%}); use larger n, or normal or uniform covariates"
            )


def truths(config: Mapping[str, Any]) -> dict[str, tuple[float, ...]]:
    """The truths of a checked configuration the grid uses, by name, in grid order."""
    named = config.get("truths") or {DEFAULT_TRUTH: config["beta"]}
    used = config["grid"].get("truth") or list(named)
    return {name: tuple(float(b) for b in named[name]) for name in used}


def designs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The designs of a checked configuration the grid uses, by name, in grid order.

    Without ``grid.design`` every defined design is used, or the default alone when none
    is defined.
    """
    given = dict(config.get("designs") or {})
    defined = {DEFAULT_DESIGN: dict(DEFAULT_DESIGN_SPEC), **given}
    used = config["grid"].get("design") or (list(given) or [DEFAULT_DESIGN])
    return {name: dict(defined[name]) for name in used}


def error_models(config: Mapping[str, Any]) -> list[str]:
    """The error models of a checked configuration, in :data:`ERROR_MODELS` order."""
    listed = config["grid"].get("errors") or [DEFAULT_ERRORS]
    return [e for e in ERROR_MODELS if e in listed]


def _check_prior_resolution(priors: Mapping[str, Any], truths: Sequence[Sequence[Any]]) -> None:
    """Every finite prior sd at least what the fits resolve (``regsim.limits``): the
    study's covariates (uniform, normal, binary) are all of unit scale, so Σ|β_j| is the
    coefficients' size in each coefficient's units."""
    scale = max(math.fsum(abs(float(b)) for b in beta) for beta in truths)
    for name, prior in priors.items():
        for j, (mean, sd) in enumerate(zip(prior["mean"], prior["sd"], strict=True)):
            names = (_fmt(sd), "the sum of |beta|", "|mean|")
            problem = prior_resolution_problem(sd, mean, scale, names)
            if problem:
                raise ConfigError(f"priors.{name}.sd[{j}]: {problem}")


def _check_prior(name: Any, prior: Any, p: int, source: str = "in beta") -> None:
    if not isinstance(name, str) or not PRIOR_NAME.match(name):
        raise ConfigError(f"priors: invalid name {_fmt(name)}; {_NAME_RULE}")
    where = f"priors.{name}"
    if not isinstance(prior, Mapping):
        raise ConfigError(f"{where}: must be a mapping with keys mean and sd, got {_fmt(prior)}")
    unknown = sorted(str(k) for k in prior if k not in ("mean", "sd"))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (allowed here: mean, sd)")
    for key in ("mean", "sd"):
        if key not in prior:
            raise ConfigError(f"{where}.{key}: required key is missing")
        values = prior[key]
        if not isinstance(values, list):
            raise ConfigError(f"{where}.{key}: must be a list, got {_fmt(values)}")
        if len(values) != p:
            raise ConfigError(
                f"{where}.{key}: length {len(values)}, expected {p} (one per coefficient {source})"
            )
    for i, mean in enumerate(prior["mean"]):
        problem = magnitude_problem(mean)
        if problem:
            raise ConfigError(f"{where}.mean[{i}]: {problem}")
    for i, sd in enumerate(prior["sd"]):
        problem = prior_sd_problem(sd)
        if problem:
            raise ConfigError(f"{where}.sd[{i}]: {problem}")
