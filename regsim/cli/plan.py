"""``python -m regsim plan``: replications needed for a target Monte Carlo SE."""

from __future__ import annotations

import argparse
from pathlib import Path

from regsim.errors import InputDataError
from regsim.planning import format_plan, plan


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plan`` command."""
    parser = subparsers.add_parser(
        "plan",
        help="replications needed per cell to reach a target Monte Carlo SE",
        description=(
            "Without --pilot: the worst-case replications for a proportion (coverage, "
            "becoverage, rejection), MCSE = sqrt(p(1-p)/R). With --pilot RESULTS: per cell, "
            "R = R_pilot (MCSE_pilot / target)^2 for the method, prior and parameter that "
            "needs most, and the time of the run's simulate and collect jobs estimated from the "
            "pilot's benchmark files and logs."
        ),
    )
    parser.add_argument("--target-mcse", type=float, required=True, help="MCSE wanted")
    parser.add_argument("--measure", default="coverage", help="measure (default: coverage)")
    parser.add_argument("--pilot", type=Path, help="results folder of a pilot run")
    parser.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="nominal 1 - alpha of a coverage planned without --pilot (default 0.05)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``regsim plan``."""
    if args.pilot is not None and args.alpha is not None:
        # The pilot's own MCSEs set the replications: a level given here would change
        # nothing, and should not look as if it did.
        raise InputDataError(
            "--alpha: not used with --pilot (the pilot's MCSEs, at its own alpha, set the "
            "replications)"
        )
    alpha = 0.05 if args.alpha is None else args.alpha
    table, seconds = plan(args.target_mcse, args.measure, args.pilot, alpha)
    print(format_plan(table, seconds), end="")
    return 0
