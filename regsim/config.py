"""The study configuration: how config files combine, and the checks a schema cannot make.

A study is configured by YAML files with the keys ``seed``, ``replications``, ``alpha``,
``beta``, ``grid`` (``n``, ``sigma``, ``errors``), ``priors``, ``sigma_prior`` and
``methods``, plus the execution settings ``observations_per_job`` and ``keep_datasets`` and
the diagnostic setting ``map_max_iter``.
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

from regsim.errors import ConfigError
from regsim.schema import (
    DEFAULT_ERRORS,
    DEFAULT_SIGMA_PRIOR,
    ERROR_MODELS,
    METHOD_NAMES,
    PRIOR_METHODS,
    SIGMA_PRIORS,
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

#: Prior names must be usable as file-name parts and table labels.
PRIOR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

_NAME_RULE = "use a letter followed by letters, digits or underscores (names label files)"

#: Default budget of one simulate job, in observations drawn (replicates × n): the default
#: study's largest sample size, 3 cells × 1000 replicates × n = 1000, fits in one job.
DEFAULT_OBSERVATIONS_PER_JOB = 10_000_000

#: Default Newton iteration cap of the MAP fits (the diagnostic setting ``map_max_iter``).
DEFAULT_MAP_MAX_ITER = 60


#: Largest |β_j| and σ accepted: sums of squares of the data stay far from overflow.
MAX_MAGNITUDE = 1e100

#: Smallest σ relative to Σ_j |β_j|. y = Xβ + ε is stored to about 1e-16 of |Xβ|; with
#: σ at least 1e-8 of it, rounding moves an estimate of σ by at most about 1e-8.
SIGMA_RESOLUTION = 1e-8

#: Smallest σ at all: residual sums of squares stay far from underflow.
MIN_SIGMA = 1e-100


def _finite(value: Any) -> bool:
    """Whether a number is finite; an integer too large for a float is not."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


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
        ``priors`` are not merged key by key).
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        if not layer:
            continue
        if not isinstance(layer, Mapping):
            raise ConfigError(f"a config file must hold a mapping of keys, got {layer!r}")
        for key, value in layer.items():
            merged[str(key)] = copy.deepcopy(_plain(value))
    return merged


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
    layers.append(overrides)
    return layers


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
    import re as _re

    import yaml

    class Loader(yaml.SafeLoader):
        """The safe loader with YAML 1.2 core-schema scalars and unique keys."""

    Loader.yaml_implicit_resolvers = {}
    for tag, pattern, first in _YAML_12_SCALARS:
        Loader.add_implicit_resolver(tag, _re.compile(pattern), list(first))
    # The empty plain scalar (a key with no value) resolves to null, as in 1.1.
    Loader.add_implicit_resolver("tag:yaml.org,2002:null", _re.compile(r"^$"), [""])
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
    Loader.add_implicit_resolver("tag:yaml.org,2002:merge", _re.compile(r"^(?:<<)$"), ["<"])
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
    check(config, known_methods=known_methods)
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
    return f"{key_path(path)}: {_one_line(found.message)}"


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


def check(config: Mapping[str, Any], known_methods: Sequence[str] = KNOWN_METHODS) -> None:
    """Check what the JSON schema cannot express (and re-check its types).

    Parameters
    ----------
    config : mapping
        A merged configuration, normally already schema-validated with defaults filled.
    known_methods : sequence of str
        Method names accepted in ``methods``.

    Raises
    ------
    ConfigError
        On the first problem found; the message starts with the key path, e.g.
        ``grid.n[0]: 3 must exceed the number of coefficients in beta (3)``.
    """
    for key in ("seed", "replications", "beta", "grid"):
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
    keep = config.get("keep_datasets", True)
    if not isinstance(keep, bool):
        raise ConfigError(f"keep_datasets: must be true or false, got {_fmt(keep)}")
    max_iter = config.get("map_max_iter", DEFAULT_MAP_MAX_ITER)
    if not _is_int(max_iter) or max_iter < 1:
        raise ConfigError(f"map_max_iter: must be an integer >= 1, got {_fmt(max_iter)}")
    alpha = config.get("alpha", 0.05)
    if not _is_number(alpha) or not 0 < alpha < 1:
        raise ConfigError(f"alpha: must be a number strictly between 0 and 1, got {_fmt(alpha)}")

    beta = _require_list(config, "beta", "beta")
    for i, b in enumerate(beta):
        if not _is_number(b) or not _finite(b):
            raise ConfigError(f"beta[{i}]: must be a finite number, got {_fmt(b)}")
        if abs(b) > MAX_MAGNITUDE:
            raise ConfigError(f"beta[{i}]: {_fmt(b)} is too large (at most {MAX_MAGNITUDE:g})")
    p = len(beta)

    grid = config["grid"]
    if not isinstance(grid, Mapping):
        raise ConfigError(f"grid: must be a mapping with keys n and sigma, got {_fmt(grid)}")
    for key in ("n", "sigma"):
        if key not in grid:
            raise ConfigError(f"grid.{key}: required key is missing")
    _check_n(_require_list(grid, "n", "grid.n"), p)
    _check_sigma(_require_list(grid, "sigma", "grid.sigma"), beta)
    if "errors" in grid:
        _check_errors(_require_list(grid, "errors", "grid.errors"), p)

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
        _check_prior(name, prior, p)
    needing = [m for m in methods if m in PRIOR_METHODS]
    if needing and not priors:
        raise ConfigError(f"priors: method {needing[0]} needs at least one prior")
    sigma_prior = config.get("sigma_prior", DEFAULT_SIGMA_PRIOR)
    if sigma_prior not in SIGMA_PRIORS:
        known = ", ".join(SIGMA_PRIORS)
        raise ConfigError(f"sigma_prior: must be one of {known}, got {_fmt(sigma_prior)}")
    if "bayes" in methods:
        _check_proper(config["grid"]["n"], priors, sigma_prior)


def _check_proper(sizes: list[Any], priors: Mapping[str, Any], sigma_prior: str) -> None:
    """The posterior of method bayes must be proper for every sample size and prior.

    With flat priors on |F| coefficients and p(σ) ∝ σ^{−a} (a = 0 for ``flat``, 1 for
    ``jeffreys``) the density of σ falls as σ^{−(n − |F| + a)}: the posterior is improper
    for n ≤ |F| + 1 − a (see ``regsim.estimators.bayes``).
    """
    a = SIGMA_PRIORS.index(sigma_prior)
    for name, prior in priors.items():
        flat = sum(1 for sd in prior["sd"] if math.isinf(sd))
        for i, n in enumerate(sizes):
            if n <= flat + 1 - a:
                raise ConfigError(
                    f"grid.n[{i}]: with sigma_prior {sigma_prior} and prior {name!r} flat on "
                    f"{flat} coefficients, method bayes has an improper posterior at n = {n} "
                    f"(needs n > {flat + 1 - a}; or use sigma_prior jeffreys)"
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
        if n in values[:i]:
            raise ConfigError(f"grid.n[{i}]: duplicate value {n}")


def _check_sigma(values: list[Any], beta: list[Any]) -> None:
    scale = math.fsum(abs(float(b)) for b in beta)
    floor = max(SIGMA_RESOLUTION * scale, MIN_SIGMA)
    for i, sigma in enumerate(values):
        if not _is_number(sigma) or not _finite(sigma) or sigma <= 0:
            raise ConfigError(
                f"grid.sigma[{i}]: must be a positive finite number, got {_fmt(sigma)}"
            )
        if sigma > MAX_MAGNITUDE:
            raise ConfigError(
                f"grid.sigma[{i}]: {_fmt(sigma)} is too large (at most {MAX_MAGNITUDE:g})"
            )
        if sigma < floor:
            raise ConfigError(
                f"grid.sigma[{i}]: {_fmt(sigma)} is too small: below {floor:.2g} "
                f"({SIGMA_RESOLUTION:g} x the sum of |beta|, or {MIN_SIGMA:g}) the errors "
                "are lost in the rounding of y"
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


def error_models(config: Mapping[str, Any]) -> list[str]:
    """The error models of a checked configuration, in :data:`ERROR_MODELS` order."""
    listed = config["grid"].get("errors") or [DEFAULT_ERRORS]
    return [e for e in ERROR_MODELS if e in listed]


def _check_prior(name: Any, prior: Any, p: int) -> None:
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
                f"{where}.{key}: length {len(values)}, expected {p} (one per coefficient in beta)"
            )
    for i, mean in enumerate(prior["mean"]):
        if not _is_number(mean) or not math.isfinite(mean):
            raise ConfigError(f"{where}.mean[{i}]: must be a finite number, got {_fmt(mean)}")
    for i, sd in enumerate(prior["sd"]):
        if not _is_number(sd) or math.isnan(sd) or sd <= 0:
            raise ConfigError(
                f"{where}.sd[{i}]: must be positive (.inf for a flat prior), got {_fmt(sd)}"
            )
