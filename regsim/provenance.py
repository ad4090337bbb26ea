"""Provenance of a study's results: configuration, software, platform, commit, table hashes.

:func:`build_provenance` gathers, for the results directory ``root``:

* ``config``: the full resolved configuration, made JSON-safe (non-finite numbers such as a
  flat prior's ``sd: .inf`` become the strings ``"inf"``, ``"-inf"``, ``"nan"``);
* ``seed``: the base seed (``config["seed"]``);
* ``packages``: versions of Python and of regsim, numpy, scipy, statsmodels, pandas,
  pyarrow, matplotlib, plotly (the explorer's drawing) and snakemake (``"not installed"``
  when absent);
* ``platform``: operating system, release, machine, Python implementation;
* ``git``: the commit (``git rev-parse HEAD``) and whether tracked files differ from it,
  both ``None`` outside a repository or without git;
* ``tables``: the SHA-256 of every table, keyed by its path relative to ``root``
  (POSIX separators), and ``hash_algorithm`` ``"sha256"``.

No timestamp is recorded, so the file is the same whenever the inputs, environment and
results are. :func:`write_provenance` writes it as JSON atomically and :func:`verify`
recomputes the hashes of the tables it lists.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from regsim.atomic import write_text_atomic
from regsim.errors import DataFileError, RegsimError

__all__ = [
    "PACKAGES",
    "PROVENANCE_NAME",
    "TableCheck",
    "EXECUTION_SETTINGS",
    "build_provenance",
    "check_tables",
    "config_differences",
    "git_state",
    "package_versions",
    "platform_info",
    "read_provenance",
    "sha256_file",
    "verify",
    "write_provenance",
]

#: File name of the provenance record inside a results directory.
PROVENANCE_NAME = "provenance.json"

#: Distributions whose versions are recorded (Python itself is recorded as ``python``).
PACKAGES: tuple[str, ...] = (
    "regsim",
    "numpy",
    "scipy",
    "statsmodels",
    "pandas",
    "pyarrow",
    "matplotlib",
    "pypdfium2",
    "plotly",
    "snakemake",
)

#: Version of the record's layout. 2: the configuration keeps the order it was resolved
#: in, as the study reads it (the order of truths, designs and priors sets the first level
#: of a factor, and so the default cell of the zip plot); 1 sorted its keys.
FORMAT_VERSION = 2
_CHUNK = 1 << 20

Status = Literal["ok", "mismatch", "missing"]


@dataclass(frozen=True)
class TableCheck:
    """The result of re-hashing one table listed in a provenance record.

    Attributes
    ----------
    path : str
        The table's path relative to the results directory, as recorded.
    status : {"ok", "mismatch", "missing"}
        Whether the file's SHA-256 matches the record, differs, or the file is gone.
    expected : str
        The recorded hex digest.
    actual : str or None
        The digest of the file now; ``None`` if it is missing.
    """

    path: str
    status: Status
    expected: str
    actual: str | None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _json_safe(value: Any) -> Any:
    """A deep copy of ``value`` that ``json.dumps(allow_nan=False)`` accepts."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return str(value)


#: Config keys that decide how a study runs, not what it computes: its results are the
#: same bytes whatever they are (``keep_datasets`` keeps the dataset files beside them).
EXECUTION_SETTINGS: frozenset[str] = frozenset({"observations_per_job", "keep_datasets"})


#: Config mappings whose order the study reads: the first truth, design or prior is a
#: factor's first level (the default cell of the zip plot, whose pages the report has).
ORDERED_KEYS = ("truths", "designs", "priors")


def config_differences(
    config: Mapping[str, Any], record: Mapping[str, Any], *, ordered: bool = False
) -> list[str]:
    """The top-level config keys in which a run record's configuration is not ``config``.

    The record holds the configuration as :func:`build_provenance` wrote it; ``config`` is
    compared in the same form, with ``beta: [...]`` the truth ``beta`` of ``truths`` and
    the methods in any order. :data:`EXECUTION_SETTINGS` are left out: a study run with
    other jobs or without its dataset files has the same results. A key only ``config``
    has is not compared (an older version wrote the record, before the key existed); one
    only the record has is a difference.

    Parameters
    ----------
    config : mapping
        A resolved configuration (``regsim.study.Study.config``).
    record : mapping
        A run record (``results/provenance.json``, read as JSON).
    ordered : bool, default False
        Whether a mapping of :data:`ORDERED_KEYS` listed in another order is a difference
        too, ``"truths (order)"`` (where the record keeps the order: format 2 on; format 1
        sorted it): which files the study writes can follow it.

    Returns
    -------
    list of str
        The differing keys, sorted; empty if the record is of this configuration.
    """
    recorded = record.get("config")
    if not isinstance(recorded, Mapping):
        return ["config"]
    ours = _comparable(json.loads(json.dumps(_json_safe(dict(config)))))
    theirs = _comparable(dict(recorded))
    # A key the record lacks came after the version that wrote it: not compared.
    keys = (ours.keys() & theirs.keys()) | (theirs.keys() - ours.keys())
    differing = [key for key in keys - EXECUTION_SETTINGS if ours.get(key) != theirs.get(key)]
    if ordered and record.get("format_version", 1) >= 2:
        for key in ORDERED_KEYS:
            mine, recorded_one = ours.get(key), theirs.get(key)
            if (
                key not in differing
                and isinstance(mine, Mapping)
                and isinstance(recorded_one, Mapping)
            ):
                if list(mine) != list(recorded_one):
                    differing.append(f"{key} (order)")
    return sorted(differing)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A JSON config in the form two spellings of one study share: ``beta: [...]`` as the
    truth ``beta`` of ``truths``, and the methods in any order (they fit the same)."""
    config = dict(config)
    if "beta" in config and "truths" not in config:
        config["truths"] = {"beta": config.pop("beta")}
    if isinstance(config.get("methods"), list):
        config["methods"] = sorted(map(str, config["methods"]))
    return config


def package_versions() -> dict[str, str]:
    """Versions of Python and of :data:`PACKAGES` (``"not installed"`` when absent)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def platform_info() -> dict[str, str]:
    """Operating system, release, machine and Python implementation."""
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def _git(repo: Path, *args: str) -> str | None:
    """Output of a git command in ``repo``, or ``None`` if git fails or is absent."""
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip()


def git_state(repo: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The commit checked out in ``repo`` and whether tracked files differ from it.

    Parameters
    ----------
    repo : path-like, optional
        A directory inside the repository; default the current directory.

    Returns
    -------
    dict
        ``{"commit": str | None, "dirty": bool | None}``; both ``None`` when ``repo`` is
        not in a git repository with a commit, or git is not installed. Untracked files
        do not make the tree dirty.
    """
    where = Path(repo) if repo is not None else Path.cwd()
    commit = _git(where, "rev-parse", "--verify", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form; DataFileError if it is outside."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        raise DataFileError(f"table {path} is not inside the results directory {root}") from None
    return PurePosixPath(*relative.parts).as_posix()


def build_provenance(
    config: Mapping[str, Any],
    tables: Iterable[str | os.PathLike[str]],
    root: str | os.PathLike[str],
    *,
    repo: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Gather the provenance record of a study's results.

    Parameters
    ----------
    config : mapping
        The full resolved configuration (it is copied, not modified).
    tables : iterable of path-like
        Result files to hash; each must be inside ``root``.
    root : path-like
        The results directory; table paths are recorded relative to it.
    repo : path-like, optional
        A directory in the workflow's git repository; default the current directory.

    Returns
    -------
    dict
        Keys ``format_version``, ``config``, ``seed``, ``packages``, ``platform``, ``git``,
        ``hash_algorithm`` and ``tables`` (relative path -> hex SHA-256, sorted by path).

    Raises
    ------
    regsim.errors.DataFileError
        If a table is missing, unreadable or outside ``root``.
    """
    root = Path(root)
    hashes: dict[str, str] = {}
    for table in tables:
        path = Path(table)
        relative = _relative(path, root)
        try:
            hashes[relative] = sha256_file(path)
        except FileNotFoundError:
            raise DataFileError(f"table {path} not found; cannot record its hash") from None
        except OSError as error:
            raise DataFileError(f"table {path} cannot be read: {error.strerror}") from None
    safe_config = _json_safe(copy.deepcopy(dict(config)))
    record = {
        "format_version": FORMAT_VERSION,
        "config": safe_config,
        "seed": safe_config.get("seed"),
        "packages": _sorted_keys(package_versions()),
        "platform": _sorted_keys(platform_info()),
        "git": _sorted_keys(git_state(repo)),
        "hash_algorithm": "sha256",
        "tables": dict(sorted(hashes.items())),
    }
    return dict(sorted(record.items()))


def _sorted_keys(value: Any) -> Any:
    """``value`` with the keys of every mapping in it sorted."""
    if isinstance(value, Mapping):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def write_provenance(
    path: str | os.PathLike[str],
    config: Mapping[str, Any],
    tables: Iterable[str | os.PathLike[str]],
    root: str | os.PathLike[str] | None = None,
    *,
    repo: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Build the provenance record and write it as JSON, atomically.

    Parameters
    ----------
    path : path-like
        The JSON file to write, normally ``<results>/provenance.json``.
    config, tables, repo
        As for :func:`build_provenance`.
    root : path-like, optional
        The results directory; default the directory of ``path``.

    Returns
    -------
    dict
        The record written (keys sorted but the configuration's, which keep their order;
        2-space indent, final newline, strict JSON).

    Raises
    ------
    regsim.errors.DataFileError
        If a table is missing or outside ``root``.
    regsim.errors.RegsimError
        If the file cannot be written.
    """
    path = Path(path)
    record = build_provenance(config, tables, path.parent if root is None else root, repo=repo)
    text = json.dumps(record, indent=2, allow_nan=False, ensure_ascii=False)
    try:
        write_text_atomic(path, text + "\n")
    except OSError as error:
        raise RegsimError(f"cannot write {path}: {error.strerror or error}") from None
    return record


def read_provenance(results_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``<results_dir>/provenance.json``.

    Raises
    ------
    regsim.errors.DataFileError
        If the file is missing, not valid JSON, or has no ``tables`` mapping of relative
        paths to hex digests; the message is one line.
    """
    folder = Path(results_dir)
    if folder.exists() and not folder.is_dir():
        raise DataFileError(
            f"{folder}: not a folder; give the results folder that holds {PROVENANCE_NAME}"
        )
    path = folder / PROVENANCE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError(
            f"{path} not found; run the workflow to write it (or give the results directory)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataFileError(f"{path} cannot be read: {error}") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFileError(
            f"{path} is not valid JSON (line {error.lineno}): {error.msg}"
        ) from None
    tables = record.get("tables") if isinstance(record, dict) else None
    if not isinstance(tables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tables.items()
    ):
        raise DataFileError(f"{path} has no 'tables' mapping of paths to SHA-256 digests")
    for relative in tables:
        parts = PurePosixPath(relative).parts
        if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
            raise DataFileError(f"{path} lists {relative!r}, which is not inside {results_dir}")
    return record


def check_tables(results_dir: str | os.PathLike[str]) -> list[TableCheck]:
    """Re-hash every table listed in ``<results_dir>/provenance.json``.

    Parameters
    ----------
    results_dir : path-like
        The results directory holding ``provenance.json``.

    Returns
    -------
    list of TableCheck
        One per recorded table, in the record's (sorted) order.

    Raises
    ------
    regsim.errors.DataFileError
        If ``provenance.json`` is missing or malformed.
    """
    root = Path(results_dir)
    record = read_provenance(root)
    checks = []
    for relative, expected in record["tables"].items():
        path = root.joinpath(*PurePosixPath(relative).parts)
        try:
            actual = sha256_file(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            checks.append(TableCheck(relative, "missing", expected, None))
            continue
        except OSError as error:
            raise DataFileError(f"{path} cannot be read: {error.strerror}") from None
        status: Status = "ok" if actual == expected.lower() else "mismatch"
        checks.append(TableCheck(relative, status, expected, actual))
    return checks


def verify(results_dir: str | os.PathLike[str]) -> list[TableCheck]:
    """The recorded tables whose hash no longer matches, or that are missing.

    Parameters
    ----------
    results_dir : path-like
        The results directory holding ``provenance.json``.

    Returns
    -------
    list of TableCheck
        The checks of :func:`check_tables` whose status is not ``"ok"``; empty when every
        table is unchanged.

    Raises
    ------
    regsim.errors.DataFileError
        If ``provenance.json`` is missing or malformed.
    """
    return [check for check in check_tables(results_dir) if check.status != "ok"]
