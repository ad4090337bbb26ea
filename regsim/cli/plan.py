"""``python -m regsim plan``: replications needed for a target Monte Carlo SE."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    parser.add_argument("--alpha", type=float, default=0.05, help="nominal 1 - alpha")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``regsim plan``."""
    table, seconds = plan(args.target_mcse, args.measure, args.pilot, args.alpha)
    print(format_plan(table, seconds), end="")
    return 0
