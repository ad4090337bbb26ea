"""One line, not a traceback, for a ``--configfile`` Snakemake cannot even open.

Snakemake reads every ``--configfile`` itself, before the workflow (and so regsim's own
reader, ``regsim.config.read_config_file``) runs. For a file that is not UTF-8 text, or a
path that is a folder, it stops with a page of Python traceback. ``tools/setup.sh`` puts a
``.pth`` file into the environment that calls :func:`install` when Python starts: when
Snakemake's ``snakemake.common.configfile`` module is imported, its reader is wrapped so
that these two cases end the run with ``config error: <file>: <problem>`` and exit status 1,
as regsim's own checks do. Nothing else changes, nothing is imported before Snakemake
itself imports that module, and a Snakemake without it is left alone (a unit test fails
then, naming the module, so an upgrade does not lose the message silently).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

#: The Snakemake module that reads config files, and its reader.
TARGET = "snakemake.common.configfile"
READER = "_load_configfile"


def problem(path: Any, error: BaseException) -> str | None:
    """The one-line message for an error opening or decoding a config file, or None."""
    shown = str(path)
    if isinstance(error, IsADirectoryError):
        return f"config error: {shown}: is a folder, not a config file"
    if isinstance(error, UnicodeDecodeError):
        return f"config error: {shown}: not UTF-8 text (byte {error.start}); save the file as UTF-8"
    if isinstance(error, PermissionError):
        return f"config error: {shown}: cannot read config file (permission denied)"
    return None


def wrap(module: ModuleType) -> None:
    """Wrap ``module``'s config reader so that :func:`problem` cases exit with one line."""
    reader = getattr(module, READER, None)
    if reader is None or getattr(reader, "__regsim__", False):
        return

    def read(path: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return reader(path, *args, **kwargs)
        except (OSError, UnicodeDecodeError) as error:
            message = problem(path if isinstance(path, str | Path) else "config file", error)
            if message is None:
                raise
            raise SystemExit(message) from None

    read.__regsim__ = True  # type: ignore[attr-defined]
    setattr(module, READER, read)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the reader once Snakemake imports its config module."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            wrap(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Wrap Snakemake's config reader when it is imported (or now, if it already is)."""
    if TARGET in sys.modules:
        wrap(sys.modules[TARGET])
    elif not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
