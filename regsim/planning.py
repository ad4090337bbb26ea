"""How many replications a study needs to reach a target Monte Carlo standard error.

Two sources (Morris, White & Crowther 2019, section 5.3):

* **Worst case, no pilot** — only for proportions (coverage, becoverage, power), whose
  MCSE √(p(1 − p)/R) is largest at p = ½:  R = p(1 − p)/MCSE² with p = ½, so
  R = 0.25/MCSE² (and, for coverage, also at the nominal p = 1 − α).
* **From a pilot run** — every measure's MCSE shrinks as 1/√R, so a pilot with R₀
  replications and MCSE m₀ needs R = R₀·(m₀/MCSE)². For bias this is
  EmpSE²/MCSE², for RMSE Var((b − θ)²)/(4·MSE·MCSE²): the pilot's empirical SDs.
  The run time scales with the replications, so the pilot's Snakemake benchmark files
  (seconds per simulate job, and per summarize job when cells were split into chunks)
  give an estimate for the full run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


def _cell_label(n: float, sigma: float) -> str:
    """The label of a cell in the workflow's file names, e.g. ``n20_sigma1``."""
    return f"n{int(n)}_sigma{format_number(float(sigma))}"


def pilot_replications(metrics: pd.DataFrame) -> dict[str, int]:
    """Replicates each cell of a pilot drew, keyed by cell label (e.g. ``n20_sigma1``).

    A group's replicates are its ``n_reps`` plus its ``n_failed`` (failed replicates were
    drawn and fitted too); a cell's are the most over its methods, priors and parameters.
    """
    keys = [*CELL_COLUMNS, "prior", "method", "parameter"]
    counts = metrics[metrics["measure"].isin(("n_reps", "n_failed"))]
    drawn = counts.groupby(keys)["estimate"].sum(min_count=1).dropna()
    per_cell = drawn.groupby(list(CELL_COLUMNS)).max()
    return {
        _cell_label(n, sigma): int(round(reps)) for (n, sigma), reps in per_cell.items() if reps > 0
    }


def _benchmark_seconds(path: Path) -> float:
    """Wall seconds of the job a Snakemake benchmark file measured (its first run)."""
    return float(pd.read_csv(path, sep="\t")["s"].iloc[0])


def pilot_seconds_per_replicate(results: Path, replications: Mapping[str, int]) -> dict[str, float]:
    """Wall seconds per replicate of each cell's simulate jobs in a pilot run.

    Read from the Snakemake benchmark files, keyed by cell label (e.g. ``n20_sigma1``):

    * ``results/benchmarks/simulate/<cell>.tsv`` when one job simulated (and summarized)
      a whole cell, of ``replications[<cell>]`` replicates (see :func:`pilot_replications`);
    * ``results/benchmarks/simulate/n<n>.tsv`` when one job did all the cells of sample
      size n, one after the other: its time is shared among them in proportion to their
      replicates (they differ only in σ, which does not change the work);
    * ``results/benchmarks/simulate/<cell>/reps<start>-<stop>.tsv`` when cells were split
      into chunks, of ``stop − start`` replicates each, plus the cell's
      ``results/benchmarks/summarize/<cell>.tsv``.

    A cell with no replicates counted (e.g. a whole-cell file of a cell not in
    ``replications``) is left out.
    """
    benchmarks = results / "benchmarks"
    seconds: dict[str, float] = {}
    replicates: dict[str, int] = {}
    for path in sorted((benchmarks / "simulate").glob("*.tsv")):
        if path.stem in replications:
            cells = [path.stem]
        else:  # n<n>.tsv: every cell of that sample size
            cells = [cell for cell in replications if cell.startswith(f"{path.stem}_")]
        total = sum(replications[cell] for cell in cells)
        if total <= 0:
            continue
        job_seconds = _benchmark_seconds(path)
        for cell in cells:
            share = job_seconds * replications[cell] / total
            seconds[cell] = seconds.get(cell, 0.0) + share
            replicates[cell] = replicates.get(cell, 0) + replications[cell]
    for path in sorted((benchmarks / "simulate").glob("*/reps*.tsv")):
        cell = path.parent.name
        start, stop = path.stem.removeprefix("reps").split("-")
        seconds[cell] = seconds.get(cell, 0.0) + _benchmark_seconds(path)
        replicates[cell] = replicates.get(cell, 0) + int(stop) - int(start)
    for path in sorted((benchmarks / "summarize").glob("*.tsv")):
        if path.stem in seconds:
            seconds[path.stem] += _benchmark_seconds(path)
    return {cell: seconds[cell] / count for cell, count in replicates.items() if count > 0}


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
    """Replications needed per cell, and the estimated simulate time in seconds.

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
    metrics = read_pilot(pilot)
    table = replications_from_pilot(metrics, measure, target_mcse)
    per_replicate = pilot_seconds_per_replicate(pilot, pilot_replications(metrics))
    labels = [_cell_label(n, sigma) for n, sigma in zip(table["n"], table["sigma"], strict=True)]
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
            f"\n\ntotal: {int(table['replications'].sum())} datasets; estimated simulate "
            f"time {seconds:.0f} s of one core (from the pilot's benchmark files)"
        )
    return text + "\n"
