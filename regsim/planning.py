"""How many replications a study needs to reach a target Monte Carlo standard error.

Two sources (Morris, White & Crowther 2019, section 5.3):

* **Worst case, no pilot** — only for proportions (coverage, becoverage, rejection), whose
  MCSE √(p(1 − p)/R) is largest at p = ½:  R = p(1 − p)/MCSE² with p = ½, so
  R = 0.25/MCSE² (and, for coverage, also at the nominal p = 1 − α).
* **From a pilot run** — every measure's MCSE shrinks as 1/√R, so a pilot with R₀
  replications and MCSE m₀ needs R = R₀·(m₀/MCSE)². For bias this is
  EmpSE²/MCSE², for RMSE Var((b − θ)²)/(4·MSE·MCSE²): the pilot's empirical SDs.
  The jobs' work grows with the replications and their start-up does not: the
  pilot's Snakemake benchmark files (each job's seconds) and its jobs' logs (the seconds
  of each unit's drawing and fitting, and of the collect job's cells' tables, shared
  among the cells by their fit rows) give an estimate for the full run
  (:func:`pilot_times`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from regsim.cells import chunk_units
from regsim.errors import DataFileError, InputDataError
from regsim.limits import MAX_REPLICATIONS, alpha_problem
from regsim.schema import MEASURES, cell_label, factor_columns, format_number
from regsim.tableio import read_metrics

#: Measures whose MCSE is √(p(1 − p)/R).
PROPORTIONS = ("coverage", "becoverage", "rejection")


def _cells(metrics: pd.DataFrame) -> list[str]:
    """The columns that identify a cell of the grid: every factor column of the table."""
    return list(factor_columns(metrics.columns))


def worst_case_replications(target_mcse: float, proportion: float = 0.5) -> int:
    """Replications R with √(p(1 − p)/R) ≤ target for a proportion p (default ½)."""
    _check_target(target_mcse)
    # (√(p(1 − p))/target)² rather than p(1 − p)/target², whose target² can underflow to 0;
    # a product, not **, so that too large a result is inf rather than an OverflowError
    ratio = math.sqrt(proportion * (1.0 - proportion)) / target_mcse
    return _ceil(ratio * ratio, target_mcse)


def _ceil(replications: float, target_mcse: float) -> int:
    """Round up to whole replications (≥ 2), ignoring float noise above an integer.

    Raises
    ------
    InputDataError
        If the target asks for more than ``MAX_REPLICATIONS`` (or an infinite number).
    """
    if not replications <= MAX_REPLICATIONS:
        raise InputDataError(
            f"--target-mcse {target_mcse:g} needs {replications:.3g} replications a cell (at "
            f"most {MAX_REPLICATIONS:.0e}); ask for a larger Monte Carlo SE"
        )
    nearest = round(replications)
    if abs(replications - nearest) <= 1e-9 * max(1.0, replications):  # rounding noise
        return max(2, nearest)
    return max(2, math.ceil(replications))


def replications_from_pilot(
    metrics: pd.DataFrame, measure: str, target_mcse: float
) -> pd.DataFrame:
    """Replications needed per cell for ``measure``'s MCSE to reach ``target_mcse``.

    Parameters
    ----------
    metrics : DataFrame
        A pilot's metrics table (columns n, sigma, prior, method, parameter, measure,
        estimate, mcse; measures ``n_reps`` and ``n_failed`` give the replicates each group
        used and left out, whose sum is the datasets the pilot drew for it).
    measure : str
        The measure to plan for, e.g. ``bias``, ``rmse`` or ``coverage``.
    target_mcse : float
        The Monte Carlo standard error wanted for every method, prior and parameter.

    Returns
    -------
    DataFrame
        One row per cell: its factor columns (``n, sigma`` and any other factor of the
        grid), ``replications`` (the largest need over the cell's methods, priors and
        parameters) and ``binding`` (which of them needs most; of several that need as
        much, to rounding, the first in the table's order, e.g. OLS before the MAP fits
        that equal it under flat priors). ``attrs["without_mcse"]`` lists the groups
        (``binding``-style names, with their cell) that the pilot gives no MCSE of the
        measure and are left out of the plan, e.g. a relative bias of a true value 0;
        ``attrs["unplanned_cells"]`` the cells none of whose groups has one, which have
        no row.

    Notes
    -----
    An MCSE falls as 1/√(replicates used); with failures at the pilot's rate, the used
    replicates are a fixed share of those drawn, so a group needs R = R_drawn ·
    (MCSE_pilot / target)² datasets drawn, R_drawn = n_reps + n_failed in the pilot.
    """
    _check_target(target_mcse)
    cells = _cells(metrics)
    keys = [*cells, "prior", "method", "parameter"]
    rows = metrics[metrics["measure"] == measure].set_index(keys)
    if rows.empty:
        raise InputDataError(f"measure {measure!r} is not in the pilot's metrics table")
    # Replicates drawn, not only those used: a method that failed on a share of the
    # pilot's datasets fails on that share of the run's too, so the datasets to draw are
    # the pilot's drawn ones scaled (a group's rows are n_reps + n_failed, either rule).
    counts = metrics[metrics["measure"].isin(("n_reps", "n_failed"))]
    pilot_reps = counts.groupby(keys)["estimate"].sum(min_count=1)
    mcse = rows["mcse"]
    needed = (pilot_reps.reindex(mcse.index) * (mcse / target_mcse) ** 2).rename("replications")
    frame = needed.reset_index()
    frame["binding"] = (
        frame["method"] + frame["prior"].map(lambda p: f" ({p})" if p else "") + " "
    ) + frame["parameter"]
    missing = frame["replications"].isna()
    frame, unplanned = frame.loc[~missing], frame.loc[missing]
    if frame.empty:
        raise InputDataError(f"the pilot has no Monte Carlo SE for measure {measure!r}")
    # Needs equal to rounding (estimators that coincide, e.g. MAP under flat priors and
    # the MLE's coefficients) are ties: the first in the table's order binds.
    tied = frame["replications"].map(lambda r: float(f"{r:.9g}"))
    order = tied.sort_values(ascending=False, kind="stable").index
    best = frame.loc[order].drop_duplicates(cells).sort_values(cells, kind="stable")
    best["replications"] = best["replications"].map(lambda r: _ceil(r, target_mcse))
    best = best[[*cells, "replications", "binding"]].reset_index(drop=True)
    records = unplanned.to_dict("records")
    labels = [_label(row) for row in records]
    best.attrs["without_mcse"] = [
        f"{row['binding']} in {label}" for row, label in zip(records, labels, strict=True)
    ]
    planned = {_label(row) for row in best.to_dict("records")}
    best.attrs["unplanned_cells"] = [
        label for label in dict.fromkeys(labels) if label not in planned
    ]
    return best


def _label(row: Mapping[str, object]) -> str:
    """The label of a cell in the workflow's file names, e.g. ``n20_sigma1_t3``."""
    return cell_label(row)


def pilot_replications(metrics: pd.DataFrame) -> dict[str, int]:
    """Replicates each cell of a pilot drew, keyed by cell label (e.g. ``n20_sigma1``).

    A group's replicates are its ``n_reps`` plus its ``n_failed`` (failed replicates were
    drawn and fitted too); a cell's are the most over its methods, priors and parameters.
    """
    cells = _cells(metrics)
    keys = [*cells, "prior", "method", "parameter"]
    counts = metrics[metrics["measure"].isin(("n_reps", "n_failed"))]
    drawn = counts.groupby(keys)["estimate"].sum(min_count=1).dropna()
    per_cell = drawn.groupby(cells).max().reset_index()
    return {
        _label(row): int(round(row["estimate"]))
        for row in per_cell.to_dict("records")
        if row["estimate"] > 0
    }


def _benchmark_seconds(path: Path) -> float:
    """Wall seconds of the job a Snakemake benchmark file measured (its first run)."""
    return float(pd.read_csv(path, sep="\t")["s"].iloc[0])


@dataclass(frozen=True)
class PilotTimes:
    """What a pilot run's jobs took, apart as it grows with the replications or not.

    Attributes
    ----------
    per_replicate : dict of str to float
        Seconds per replicate of each cell (by label) that grow with its replications:
        drawing and fitting its replicates, and writing its tables.
    fixed : float
        Seconds of the pilot's simulate and collect jobs that do not: each job's start-up
        (the interpreter, its imports), and the tables of every cell at once.
    measured : bool
        Whether the jobs' logs told the two apart. Without them (a pilot run before they
        did) every second of a job counts as growing with the replications: an upper
        bound, far above the run's time for a small pilot, whose jobs are mostly start-up.
    """

    per_replicate: dict[str, float]
    fixed: float
    measured: bool


_UNIT_LINE = re.compile(
    r" INFO regsim\.jobs: (?P<label>\S+): replicates (?P<first>\d+)-(?P<last>\d+) drawn and "
    r"fitted in (?P<seconds>[0-9.]+) s$"
)
_CELLS_LINE = re.compile(
    r" INFO regsim\.jobs: (?P<cells>\d+) cells' tables written in (?P<seconds>[0-9.]+) "
    r"CPU-seconds$"
)


def _log_lines(path: Path, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    """The lines of a job's log (none if it is missing) that match ``pattern``."""
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", errors="replace") as lines:
        return [match for line in lines if (match := pattern.search(line.rstrip("\n")))]


def pilot_times(results: Path) -> PilotTimes:
    """The times of a pilot run's jobs, per cell and replicate and apart from start-up.

    Each simulate job's log (``results/logs/simulate/<job>.log``) gives the seconds each
    unit of its chunk of fits (``results/chunks/<job>.parquet``, which lists them) took to
    draw and fit; the rest of the job's wall time (its benchmark file,
    ``results/benchmarks/simulate/<job>.tsv``) is its start-up. The collect job's log gives
    the seconds its workers took on the cells' tables, shared among the cells by their fit
    rows (their CPU seconds, in its forked workers); the rest of its time does not grow with
    the replications. Where a simulate job's
    log gives no unit's time, its time is shared among its units by their replicates, and
    counted as growing with them; so is the collect job's without its line.

    Where the folder holds the run's record (``provenance.json``), only the simulate jobs
    whose chunks it records count: a job of an earlier configuration left in the folder
    (``regsim verify`` lists it as stale) ran another study.
    """
    recorded = _recorded_jobs(results)
    seconds: dict[str, float] = {}
    replicates: dict[str, int] = {}
    rows: dict[str, int] = {}
    fixed, measured = 0.0, True
    for path in sorted((results / "benchmarks" / "simulate").glob("*.tsv")):
        chunk = results / "chunks" / f"{path.stem}.parquet"
        if not chunk.is_file() or (recorded is not None and path.stem not in recorded):
            continue
        units = chunk_units(chunk)["units"]
        job_seconds = _benchmark_seconds(path)
        log = results / "logs" / "simulate" / f"{path.stem}.log"
        timed = {
            (m["label"], int(m["first"]), int(m["last"]) + 1): float(m["seconds"])
            for m in _log_lines(log, _UNIT_LINE)
        }
        keys = [(unit["label"], unit["start"], unit["stop"]) for unit in units]
        if all(key in timed for key in keys):
            work = [timed[key] for key in keys]
            fixed += max(0.0, job_seconds - sum(work))
        else:
            measured = False
            total = sum(stop - start for _, start, stop in keys)
            work = [job_seconds * (stop - start) / total for _, start, stop in keys]
        for unit, unit_seconds in zip(units, work, strict=True):
            label = unit["label"]
            seconds[label] = seconds.get(label, 0.0) + unit_seconds
            replicates[label] = replicates.get(label, 0) + unit["stop"] - unit["start"]
            rows[label] = rows.get(label, 0) + unit["rows"]
    collect = results / "benchmarks" / "collect.tsv"
    if collect.is_file() and rows:
        collect_seconds, all_rows = _benchmark_seconds(collect), sum(rows.values())
        lines = _log_lines(results / "logs" / "collect.log", _CELLS_LINE)
        if lines:
            cells_seconds = float(lines[-1]["seconds"])
            fixed += max(0.0, collect_seconds - cells_seconds)
        else:
            measured, cells_seconds = False, collect_seconds
        for label, count in rows.items():
            seconds[label] += cells_seconds * count / all_rows
    per_replicate = {
        label: seconds[label] / count for label, count in replicates.items() if count > 0
    }
    return PilotTimes(per_replicate, fixed, measured)


def _recorded_jobs(results: Path) -> set[str] | None:
    """The simulate jobs whose chunks the run's record lists; None without a record."""
    from regsim.provenance import PROVENANCE_NAME, read_provenance

    if not (results / PROVENANCE_NAME).is_file():
        return None
    tables = read_provenance(results)["tables"]
    return {
        Path(name).stem
        for name in tables
        if name.startswith("chunks/") and name.endswith(".parquet")
    }


@dataclass(frozen=True)
class TimeEstimate:
    """The estimated time of a planned run's simulate and collect jobs, in seconds of one
    core: ``growing`` with the replications, from the pilot's per replicate, and ``fixed``
    as in the pilot (:class:`PilotTimes`)."""

    growing: float
    fixed: float
    measured: bool

    @property
    def total(self) -> float:
        """Both together."""
        return self.growing + self.fixed


def read_pilot(results: Path) -> pd.DataFrame:
    """The metrics table of a pilot run's results folder.

    Where the folder holds the run's record (``provenance.json``), the table must have
    the bytes it records: a table cut short (a copy interrupted, a full disk) can still
    parse, its last number shortened, and would be planned from silently.

    Raises
    ------
    DataFileError
        If the table is missing, is not the recorded one, or cannot be read.
    """
    from regsim.provenance import PROVENANCE_NAME, read_provenance, sha256_file

    path = results / "tables" / "metrics.csv"
    if not path.is_file():
        raise DataFileError(f"{path}: no metrics table; run the pilot study first")
    if (results / PROVENANCE_NAME).is_file():
        recorded = read_provenance(results)["tables"].get("tables/metrics.csv")
        if recorded is not None and sha256_file(path) != recorded.lower():
            raise DataFileError(
                f"{path}: not the metrics table {results / PROVENANCE_NAME} records (cut short, "
                "or written since without the record); run the pilot study again"
            )
    return read_metrics(path)


def plan(
    target_mcse: float,
    measure: str,
    pilot: Path | None = None,
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, TimeEstimate | None]:
    """Replications needed per cell, and the estimated time of the run's simulate and
    collect jobs (:class:`TimeEstimate`; None without a pilot, or where the pilot's
    benchmark files do not cover every cell).

    Without a pilot only proportions can be planned (worst case p = ½, and for coverage
    also p = 1 − α); the table then has one row with the cell columns empty.
    """
    problem = alpha_problem(alpha)
    if problem:
        raise InputDataError(f"--alpha: {problem}")
    if measure not in MEASURES:
        raise InputDataError(f"--measure {measure}: not a measure; known: {', '.join(MEASURES)}")
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
    times = pilot_times(pilot)
    labels = [_label(row) for row in table.to_dict("records")]
    if not labels or any(label not in times.per_replicate for label in labels):
        return table, None
    growing = sum(
        times.per_replicate[label] * reps
        for label, reps in zip(labels, table["replications"], strict=True)
    )
    return table, TimeEstimate(growing, times.fixed, times.measured)


def _check_target(target_mcse: float) -> None:
    if not (target_mcse > 0 and math.isfinite(target_mcse)):
        raise InputDataError(f"--target-mcse must be a positive number, got {target_mcse}")


def format_plan(table: pd.DataFrame, seconds: TimeEstimate | None) -> str:
    """The plan as aligned text, how it was reckoned, and the estimated time when known."""
    shown = table.copy()
    if "sigma" in shown.columns:  # as in the cells' labels and metrics.csv: 1, not 1.0
        shown["sigma"] = [format_number(value) for value in shown["sigma"]]
    text = shown.to_string(index=False) + "\n"
    if "assumption" in table.columns:
        text += "\nR = p (1 - p) / target^2 at each p above, rounded up (at least 2)\n"
        return text
    text += (
        "\nR = R_pilot (MCSE_pilot / target)^2 for each method, prior and parameter, with "
        "R_pilot the\nreplicates the pilot drew for it (n_reps + n_failed: failures recur at "
        "the pilot's rate);\na cell's R is the largest (binding), rounded up (at least 2)\n"
    )
    left_out = table.attrs.get("without_mcse") or []
    if left_out:
        text += (
            f"left out: {len(left_out)} method, prior and parameter group(s) the pilot gives "
            f"no Monte Carlo SE of this measure (e.g. a relative measure of a true value 0), "
            f"e.g. {left_out[0]}\n"
        )
    unplanned = table.attrs.get("unplanned_cells") or []
    if unplanned:
        text += (
            f"no plan for {len(unplanned)} cell(s), none of whose groups has one: "
            f"{', '.join(unplanned)} (not in the total below)\n"
        )
    total = int(table["replications"].sum())
    if seconds is not None and seconds.measured:
        text += (
            f"total: {total} datasets; estimated time of the simulate and collect jobs "
            f"{_seconds(seconds.total)} of one core: {_seconds(seconds.growing)} drawing, "
            f"fitting and summarizing, at the pilot's time per replicate, and "
            f"{_seconds(seconds.fixed)} the jobs' start-up and the tables of all cells, as "
            "in the pilot (from its benchmark files and logs)\n"
        )
    elif seconds is not None:
        text += (
            f"total: {total} datasets; estimated time of the simulate and collect jobs at "
            f"most {_seconds(seconds.total)} of one core, from the pilot's whole job times "
            "(its logs do not tell the jobs' start-up, which does not grow with the "
            "replications, from their work)\n"
        )
    else:
        text += (
            f"total: {total} datasets; no time estimate: the pilot's benchmark files do not "
            "cover every cell\n"
        )
    return text


def _seconds(value: float) -> str:
    """Seconds as printed: whole seconds, tenths below 10."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
