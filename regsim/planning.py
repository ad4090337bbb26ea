"""How many replications a study needs to reach a target Monte Carlo standard error.

Two sources (Morris, White & Crowther 2019, section 5.3):

* **Worst case, no pilot** — only for proportions (coverage, becoverage, power), whose
  MCSE √(p(1 − p)/R) is largest at p = ½:  R = p(1 − p)/MCSE² with p = ½, so
  R = 0.25/MCSE² (and, for coverage, also at the nominal p = 1 − α).
* **From a pilot run** — every measure's MCSE shrinks as 1/√R, so a pilot with R₀
  replications and MCSE m₀ needs R = R₀·(m₀/MCSE)². For bias this is
  EmpSE²/MCSE², for RMSE Var((b − θ)²)/(4·MSE·MCSE²): the pilot's empirical SDs.
  The run time scales with the replications, so the pilot's Snakemake benchmark files
  (seconds per generate and fit job) give an estimate for the full run.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from regsim.errors import DataFileError, InputDataError
from regsim.pipeline import format_number

#: Measures whose MCSE is √(p(1 − p)/R).
PROPORTIONS = ("coverage", "becoverage", "power")

#: The columns that identify a cell of the grid in metrics.csv.
CELL_COLUMNS = ("n", "sigma")


def worst_case_replications(target_mcse: float, proportion: float = 0.5) -> int:
    """Replications R with √(p(1 − p)/R) ≤ target for a proportion p (default ½)."""
    _check_target(target_mcse)
    return _ceil(proportion * (1.0 - proportion) / target_mcse**2)


def _ceil(replications: float) -> int:
    """Round up to whole replications (≥ 2), ignoring float noise above an integer."""
    return max(2, math.ceil(replications * (1.0 - 1e-12)))


def replications_from_pilot(
    metrics: pd.DataFrame, measure: str, target_mcse: float
) -> pd.DataFrame:
    """Replications needed per cell for ``measure``'s MCSE to reach ``target_mcse``.

    Parameters
    ----------
    metrics : DataFrame
        A pilot's metrics table (columns n, sigma, prior, method, parameter, measure,
        estimate, mcse; measure ``n_reps`` gives each group's pilot replications).
    measure : str
        The measure to plan for, e.g. ``bias``, ``rmse`` or ``coverage``.
    target_mcse : float
        The Monte Carlo standard error wanted for every method, prior and parameter.

    Returns
    -------
    DataFrame
        One row per cell: ``n, sigma, replications`` (the largest need over the cell's
        methods, priors and parameters) and ``binding`` (which of them needs most).
    """
    _check_target(target_mcse)
    keys = [*CELL_COLUMNS, "prior", "method", "parameter"]
    rows = metrics[metrics["measure"] == measure].set_index(keys)
    if rows.empty:
        raise InputDataError(f"measure {measure!r} is not in the pilot's metrics table")
    pilot_reps = metrics[metrics["measure"] == "n_reps"].set_index(keys)["estimate"]
    mcse = rows["mcse"]
    needed = pilot_reps.reindex(mcse.index) * (mcse / target_mcse) ** 2
    needed = needed.dropna()
    if needed.empty:
        raise InputDataError(f"the pilot has no Monte Carlo SE for measure {measure!r}")
    frame = needed.rename("replications").reset_index()
    frame["binding"] = (
        frame["method"] + frame["prior"].map(lambda p: f" ({p})" if p else "") + " "
    ) + frame["parameter"]
    best = frame.sort_values("replications", ascending=False, kind="stable")
    best = best.drop_duplicates(list(CELL_COLUMNS)).sort_values(list(CELL_COLUMNS))
    best["replications"] = best["replications"].map(_ceil)
    return best[[*CELL_COLUMNS, "replications", "binding"]].reset_index(drop=True)


def pilot_seconds_per_replicate(results: Path) -> dict[str, float]:
    """Wall seconds per replicate of each cell's generate and fit jobs in a pilot run.

    Read from the Snakemake benchmark files ``results/benchmarks/{generate,fit}/<cell>/``
    ``reps<start>-<stop>.tsv``; keyed by cell label (e.g. ``n20_sigma1``).
    """
    seconds: dict[str, float] = {}
    replicates: dict[str, int] = {}
    for stage in ("generate", "fit"):
        for path in sorted((results / "benchmarks" / stage).glob("*/reps*.tsv")):
            cell = path.parent.name
            seconds[cell] = seconds.get(cell, 0.0) + float(pd.read_csv(path, sep="\t")["s"].iloc[0])
            if stage == "fit":
                start, stop = path.stem.removeprefix("reps").split("-")
                replicates[cell] = replicates.get(cell, 0) + int(stop) - int(start)
    return {cell: seconds[cell] / count for cell, count in replicates.items() if count}


def read_pilot(results: Path) -> pd.DataFrame:
    """The metrics table of a pilot run's results folder."""
    path = results / "tables" / "metrics.csv"
    if not path.is_file():
        raise DataFileError(f"{path}: no metrics table; run the pilot study first")
    return pd.read_csv(path, keep_default_na=False, na_values={"estimate": [""], "mcse": [""]})


def plan(
    target_mcse: float,
    measure: str,
    pilot: Path | None = None,
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, float | None]:
    """Replications needed per cell, and the estimated generate+fit time in seconds.

    Without a pilot only proportions can be planned (worst case p = ½, and for coverage
    also p = 1 − α); the table then has one row with the cell columns empty.
    """
    if pilot is None:
        if measure not in PROPORTIONS:
            raise InputDataError(
                f"--measure {measure}: without --pilot only {', '.join(PROPORTIONS)} can be "
                "planned (their MCSE has a worst case); give a pilot run's results folder"
            )
        rows = [{"assumption": "worst case p = 0.5", "replications": 0}]
        rows[0]["replications"] = worst_case_replications(target_mcse)
        if measure == "coverage":
            rows.append(
                {
                    "assumption": f"at nominal p = {1 - alpha:g}",
                    "replications": worst_case_replications(target_mcse, 1 - alpha),
                }
            )
        return pd.DataFrame(rows), None
    table = replications_from_pilot(read_pilot(pilot), measure, target_mcse)
    per_replicate = pilot_seconds_per_replicate(pilot)
    labels = [
        f"n{n}_sigma{format_number(sigma)}"
        for n, sigma in zip(table["n"], table["sigma"], strict=True)
    ]
    if not labels or any(label not in per_replicate for label in labels):
        return table, None
    return table, sum(
        per_replicate[label] * reps
        for label, reps in zip(labels, table["replications"], strict=True)
    )


def _check_target(target_mcse: float) -> None:
    if not (target_mcse > 0 and math.isfinite(target_mcse)):
        raise InputDataError(f"--target-mcse must be a positive number, got {target_mcse}")


def format_plan(table: pd.DataFrame, seconds: float | None) -> str:
    """The plan as aligned text, with the estimated time when known."""
    text = table.to_string(index=False)
    if seconds is not None:
        text += (
            f"\n\ntotal: {int(table['replications'].sum())} datasets; estimated generate+fit "
            f"time {seconds:.0f} s of one core (from the pilot's benchmark files)"
        )
    return text + "\n"
