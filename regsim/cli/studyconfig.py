"""The study a command runs on: the workflow's config layers, read as the workflow reads them.

``config.yaml`` of the working directory (skipped with ``--replace-workflow-config``, or
when absent), then each ``--configfile`` in order, then ``--config KEY=VALUE`` (read as
Snakemake reads it), each replacing the top-level keys it names; validated against
``schemas/config.schema.yaml`` (which fills the defaults) and checked as before any job
(:func:`regsim.workflow.load_study`). A problem is one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from regsim.errors import ConfigError
from regsim.study import Study

#: The config schema, beside the package in the repository.
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--configfile`` (repeatable), ``--config`` and ``--replace-workflow-config``."""
    parser.add_argument(
        "--configfile",
        action="append",
        default=[],
        metavar="FILE",
        help="a config layer over config.yaml, as for snakemake (repeatable, in order)",
    )
    parser.add_argument(
        "--config",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="top-level keys over the config files, as for snakemake (e.g. seed=7)",
    )
    parser.add_argument(
        "--replace-workflow-config",
        action="store_true",
        help="leave config.yaml out: the --configfile layers alone",
    )


def load_cli_study(args: argparse.Namespace) -> Study:
    """The study of the config layers named in ``args``.

    Raises
    ------
    regsim.errors.ConfigError
        Naming the key and the problem (the command prints ``config error: <key>:
        <problem>``, as the workflow does).
    """
    from regsim.workflow import load_study

    def validate(config: dict[str, Any]) -> None:
        from snakemake.utils import validate as snakemake_validate

        snakemake_validate(config, str(SCHEMA))

    try:
        return load_study(
            args.configfile,
            _overrides(args.config),
            replace_defaults=args.replace_workflow_config,
            validate=validate,
        )
    except SystemExit as stop:  # load_study's one line for the workflow
        raise ConfigError(_without_prefix(str(stop.code))) from None


def _overrides(entries: list[str]) -> dict[str, Any] | None:
    """``--config`` entries as Snakemake parses them (``regsim.config`` then types them as a
    config file's values), so that a command sees the study the workflow ran."""
    if not entries:
        return None
    from snakemake.cli import parse_config

    from regsim.startup import config_entry_problem

    try:
        return parse_config(entries)
    except Exception as error:  # noqa: BLE001 - Snakemake's parser raises several kinds
        line = config_entry_problem(entries, error)
        if line is not None:
            raise ConfigError(_without_prefix(line)) from None
        message = " ".join(str(error).split()) or type(error).__name__
        raise ConfigError(f"--config: {message} (got {' '.join(entries)!r})") from None


def _without_prefix(line: str) -> str:
    """A workflow's one line without its ``config error: `` (the command prints it)."""
    return line.removeprefix("error: ").removeprefix("config error: ")
