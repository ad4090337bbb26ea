"""``python -m regsim protocol``: the study's ADEMP protocol, before any run.

Prints the protocol (:mod:`regsim.protocol`) of the study the workflow would run with the
same config layers (``config.yaml``, then each ``--configfile``): what
``results/protocol.md`` will hold.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from regsim.cli.studyconfig import add_config_options, load_cli_study


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``protocol`` command to the dispatcher's subparsers."""
    parser = subparsers.add_parser(
        "protocol",
        help="print the study's ADEMP protocol (aims, data, estimands, methods, measures)",
        description=(
            "Print the protocol of the study of config.yaml and each --configfile, as "
            "results/protocol.md will hold it: Aims, Data-generating mechanisms, Estimands, "
            "Methods, Performance measures, replications and their Monte Carlo error, and "
            "the failure rule."
        ),
    )
    add_config_options(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the protocol; return 0."""
    from regsim.protocol import protocol_markdown

    sys.stdout.write(protocol_markdown(load_cli_study(args)))
    return 0
