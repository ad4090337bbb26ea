"""One line, not a traceback, for a ``--configfile`` Snakemake cannot even open, or a
``--config`` entry it cannot read.

Snakemake reads every ``--configfile`` itself, before the workflow (and so regsim's own
reader, ``regsim.config.read_config_file``) runs. For a path that does not exist or is a
folder, or a file that is not UTF-8 text, it stops with a page of Python traceback; for a
file that is empty, holds a list or is not YAML, with a message that names neither the
file nor the line. ``tools/setup.sh`` puts a ``.pth`` file into the environment that calls
:func:`install` when Python starts: when Snakemake's ``snakemake.common.configfile``
module is imported, its reader and its loader are wrapped so that these cases end the run
with ``config error: <file>: <problem>`` and exit status 1, as regsim's own checks do;
when ``snakemake.cli`` is imported, its reader of ``--config KEY=VALUE`` is wrapped so that
an entry without ``=`` or with a key it does not take (``grid.n=…``, a one-letter key) is
``config error: --config <entry>: <problem>``. Nothing else changes, nothing is imported
before Snakemake itself imports those modules (regsim's reader only once a file has
failed), and a Snakemake without them is left alone (a unit test fails then, naming the
module, so an upgrade does not lose the message silently).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

#: The Snakemake module that reads config files, its reader (path to content) and its
#: loader (the reader, then a check that the content is a mapping).
TARGET = "snakemake.common.configfile"
READER = "_load_configfile"
LOADER = "load_configfile"

#: The Snakemake module of the command line, and its reader of ``--config KEY=VALUE``,
#: which raises a ValueError (a traceback) for an entry without ``=`` or a key it does
#: not take.
CLI = "snakemake.cli"
CLI_CONFIG = "parse_config"

#: The keys ``--config`` takes (Snakemake's own rule): two or more characters.
_CONFIG_KEY = re.compile(r"[a-zA-Z_][\w-]*\w$")


def config_entry_problem(entries: Any, error: BaseException) -> str | None:
    """The one-line message for the first ``--config`` entry Snakemake cannot read, or
    None where its error is about something else."""
    for entry in entries or []:
        key, equals, _ = str(entry).partition("=")
        if not equals:
            return f"config error: --config {entry}: not KEY=VALUE"
        if not _CONFIG_KEY.match(key):
            return (
                f"config error: --config {entry}: Snakemake's --config takes a key of two or "
                "more letters, digits, _ or -, starting with a letter or _; give this one in "
                "a --configfile"
            )
    return None


def problem(path: Any, error: BaseException) -> str | None:
    """The one-line message for an error opening or decoding a config file, or None."""
    shown = str(path)
    if isinstance(error, FileNotFoundError):
        return f"config error: {shown}: no such file"
    if isinstance(error, IsADirectoryError):
        return f"config error: {shown}: is a folder, not a config file"
    if isinstance(error, UnicodeDecodeError):
        return f"config error: {shown}: not UTF-8 text (byte {error.start}); save the file as UTF-8"
    if isinstance(error, PermissionError):
        return f"config error: {shown}: cannot read config file (permission denied)"
    return None


def not_a_mapping(path: Any, content: Any) -> str:
    """The one-line message for a config file whose content is not keys with values."""
    if content is None:
        return f"config error: {path}: empty; a config file sets keys (key: value)"
    kinds = {list: "a list", str: "text", int: "a number", float: "a number", bool: "a boolean"}
    kind = kinds.get(type(content), type(content).__name__)
    return f"config error: {path}: holds {kind}, not keys with values (key: value)"


def wrap(module: ModuleType) -> None:
    """Wrap ``module``'s config reader so that :func:`problem` cases exit with one line,
    and its loader so that content other than a mapping does (:func:`not_a_mapping`)."""
    _replace(module, LOADER, Exception, lambda path, _: _what_is_wrong(module, path))
    _replace(
        module,
        READER,
        (OSError, UnicodeDecodeError),
        lambda path, error: problem(path if isinstance(path, str | Path) else "config file", error),
    )


def _replace(
    module: ModuleType,
    name: str,
    errors: type[BaseException] | tuple[type[BaseException], ...],
    message: Callable[[Any, BaseException], str | None],
) -> None:
    """Replace ``module.name`` (called with a config file's path first) by a function that
    turns its ``errors`` into an exit with ``message(path, error)``, where that is not None;
    once only, and not where the module has no such function."""
    original = getattr(module, name, None)
    if original is None or getattr(original, "__regsim__", False):
        return

    def replaced(path: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(path, *args, **kwargs)
        except errors as error:
            line = message(path, error)
            if line is None:
                raise
            raise SystemExit(line) from None

    replaced.__regsim__ = True  # type: ignore[attr-defined]
    setattr(module, name, replaced)


def _what_is_wrong(module: ModuleType, path: Any) -> str | None:
    """One line for a config file Snakemake's loader refused, read again only to say
    what is wrong; None where that is another problem, which stays Snakemake's."""
    if not isinstance(path, str | Path):
        return None
    try:
        content = getattr(module, READER)(path)
    except Exception:
        # Neither JSON nor YAML: regsim's own reader says where (line and column).
        from regsim.config import read_config_file
        from regsim.errors import ConfigError

        try:
            read_config_file(path)
        except ConfigError as error:
            return f"config error: {error}"
        except Exception:
            return None
        return None
    return None if isinstance(content, dict) else not_a_mapping(path, content)


def wrap_cli(module: ModuleType) -> None:
    """Wrap ``module``'s ``--config`` reader so that an entry it cannot read exits with one
    line (:func:`config_entry_problem`)."""
    _replace(module, CLI_CONFIG, ValueError, config_entry_problem)


#: What is wrapped when Snakemake imports each module.
_WRAPPERS: dict[str, Callable[[ModuleType], None]] = {TARGET: wrap, CLI: wrap_cli}


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the readers once Snakemake imports their modules."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        wrapper = _WRAPPERS.get(name)
        if wrapper is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            wrapper(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Wrap Snakemake's config readers when they are imported (now, those already are)."""
    for name, wrapper in _WRAPPERS.items():
        if name in sys.modules:
            wrapper(sys.modules[name])
    if not all(name in sys.modules for name in _WRAPPERS) and not any(
        isinstance(finder, _Finder) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _Finder())
