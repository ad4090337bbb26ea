"""The failure rules side by side: a study's main measures under ``own`` and ``common``.

A replicate whose fit failed is left out of that fit's measures only (``own``) or of
every method's and prior's of its cell (``common``); which rule is used can change a
study's conclusion (Pawel, Kook & Reeve 2024). :func:`failure_sensitivity` recomputes, for
every cell with a failure, the main measures (:data:`SENSITIVITY_MEASURES`) under both
rules from the cell's table of fits, with their MCSE and the replicates each rule used;
:func:`write_failure_sensitivity` writes ``failures_sensitivity.{csv,md}``. Cells without
a failure are left out: both rules give them the same numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from regsim.atomic import write_text_atomic
from regsim.cells import summarize_cell
from regsim.schema import (
    FACTOR_NAMES,
    OPTIONAL_FACTORS,
    cell_label,
    format_number,
    method_label,
    short_number,
)
from regsim.tableio import check_metrics, sort_table, write_csv_atomic

#: The measures compared under both rules.
SENSITIVITY_MEASURES: tuple[str, ...] = ("bias", "empse", "rmse", "coverage")

#: Columns of the sensitivity table, in file order.
SENSITIVITY_COLUMNS: tuple[str, ...] = (
    *FACTOR_NAMES,
    "prior",
    "method",
    "parameter",
    "measure",
    "own",
    "own_mcse",
    "own_replicates",
    "common",
    "common_mcse",
    "common_replicates",
)


def failing_cells(metrics: pd.DataFrame) -> list[dict[str, Any]]:
    """The levels of every cell of a metrics table with a failed replicate, in its order."""
    table = check_metrics(metrics)
    failed = table.loc[(table["measure"] == "n_failed") & (table["estimate"] > 0)]
    factors = [name for name in FACTOR_NAMES if name in table.columns]
    return failed[factors].drop_duplicates().to_dict("records")


def summaries_by_rule(
    metrics: pd.DataFrame,
    read_fits: Callable[[str], pd.DataFrame],
    alpha: float,
    reference: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Every cell with a failed replicate summarized again under each failure rule.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table (``metrics.csv``), which says which cells had failures.
    read_fits : callable
        Cell label (``regsim.schema.cell_label``) -> that cell's table of fits.
    alpha : float
        Nominal level of the intervals.
    reference : str, optional
        The reference method of the paired measures (does not change the other measures;
        passed so the recomputation is the workflow's).

    Returns
    -------
    dict
        ``{"own": ..., "common": ...}``: each the failing cells' rows of a metrics table
        (:func:`regsim.cells.summarize_cell`) under that rule; empty when no replicate
        failed. Each cell's fits are read once for both.
    """
    by_rule: dict[str, list[pd.DataFrame]] = {rule: [] for rule in ("own", "common")}
    for levels in failing_cells(metrics):
        fits = read_fits(cell_label(levels))
        for rule, parts in by_rule.items():
            parts.append(summarize_cell(fits, alpha, reference=reference, failures=rule))
    columns = list(metrics.columns)
    return {
        rule: pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
        for rule, parts in by_rule.items()
    }


def sensitivity_table(summaries: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The main measures of :func:`summaries_by_rule` under both rules, side by side.

    Returns
    -------
    pandas.DataFrame
        :data:`SENSITIVITY_COLUMNS`: per cell, fit, parameter and measure of
        :data:`SENSITIVITY_MEASURES` the estimate and MCSE under ``own`` and ``common``
        and the replicates each used (``n_reps``). Empty when no replicate failed.
    """
    if summaries["own"].empty:
        return pd.DataFrame(columns=list(SENSITIVITY_COLUMNS))
    keys = [*FACTOR_NAMES, "prior", "method", "parameter"]
    parts = []
    for rule in ("own", "common"):
        summary = summaries[rule]
        used = summary.loc[summary["measure"] == "n_reps", [*keys, "estimate"]]
        used = used.rename(columns={"estimate": f"{rule}_replicates"})
        main = summary.loc[summary["measure"].isin(SENSITIVITY_MEASURES)]
        main = main[[*keys, "measure", "estimate", "mcse"]].rename(
            columns={"estimate": rule, "mcse": f"{rule}_mcse"}
        )
        parts.append(main.merge(used, on=keys))
    table = parts[0].merge(parts[1], on=[*keys, "measure"])[list(SENSITIVITY_COLUMNS)]
    for rule in ("own", "common"):
        table[f"{rule}_replicates"] = table[f"{rule}_replicates"].astype("int64")
    return sort_table(table, [*FACTOR_NAMES, "prior", "method", "parameter", "measure"])


def failure_sensitivity(
    metrics: pd.DataFrame,
    read_fits: Callable[[str], pd.DataFrame],
    alpha: float,
    reference: str | None = None,
) -> pd.DataFrame:
    """The main measures of every cell with a failure, under both failure rules.

    :func:`sensitivity_table` of :func:`summaries_by_rule` (the same parameters).
    """
    return sensitivity_table(summaries_by_rule(metrics, read_fits, alpha, reference))


def own_rule_metrics(
    metrics: pd.DataFrame,
    own: pd.DataFrame,
    failures: str,
    methods: Sequence[str],
) -> pd.DataFrame:
    """The measures of ``methods`` (without a prior) under the ``own`` failure rule.

    Under ``own`` that is ``metrics`` itself. Under ``common`` the rows of every cell
    with a failed replicate are replaced by those of ``own``, each method over the
    replicates it fitted itself; other cells' rows are the same under both rules. What a
    method's own fits say of it (its comparison with exact theory, ``regsim.exact``) then
    does not depend on which replicates another method failed on.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table (``metrics.csv``) under the rule ``failures``.
    own : pandas.DataFrame
        The failing cells' rows under the own rule (``summaries_by_rule(...)["own"]``).
    failures : {"own", "common"}
        The rule ``metrics`` was computed under.
    methods : sequence of str
        The methods whose rows are taken from ``own``; the rows of other methods of a
        failing cell are left out.

    Returns
    -------
    pandas.DataFrame
        ``metrics`` under ``own``; otherwise its rows of the cells without a failure and
        the failing cells' own-rule rows of ``methods`` (not in table order).
    """
    if failures == "own" or own.empty:
        return metrics
    factors = [name for name in FACTOR_NAMES if name in metrics.columns]
    failing = set(own[factors].itertuples(index=False, name=None))
    in_failing = [row in failing for row in metrics[factors].itertuples(index=False, name=None)]
    prior = own["prior"].astype(object).where(own["prior"].notna(), "")
    chosen = own.loc[own["method"].isin(list(methods)) & (prior == "")]
    return pd.concat([metrics.loc[~pd.Series(in_failing, index=metrics.index)], chosen])


def sensitivity_markdown(table: pd.DataFrame) -> str:
    """The sensitivity table as Markdown, with how to read it."""
    lines = [
        "# Failure rules: own against common",
        "",
        "A replicate whose fit failed is left out of that method's measures only (own), or",
        "of every method's and prior's of its cell (common), so that all are compared on",
        "the same replicates (Pawel, Kook & Reeve 2024). For every cell with a failure, the",
        "main measures under both rules, estimate (MCSE), and the replicates each used; a",
        "conclusion that changes between the two columns depends on the failures.",
        "",
    ]
    if table.empty:
        return "\n".join([*lines, "No replicate failed.", ""])
    factors = [item.name for item in OPTIONAL_FACTORS if (table[item.name] != item.default).any()]
    header = ["n", "σ", *factors, "estimator", "parameter", "measure"]
    header += ["own", "R own", "common", "R common"]
    align = ["---:", "---:", *(["---"] * (len(factors) + 3)), "---:", "---:", "---:", "---:"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for r in table.to_dict("records"):
        cells = [str(r["n"]), short_number(r["sigma"]), *(str(r[f]) for f in factors)]
        cells += [method_label(r["method"], r["prior"]), r["parameter"], r["measure"]]
        cells += [_shown(r["own"], r["own_mcse"]), str(r["own_replicates"])]
        cells += [_shown(r["common"], r["common_mcse"]), str(r["common_replicates"])]
        lines.append("| " + " | ".join(cells) + " |")
    cells_with = len(table[list(FACTOR_NAMES)].drop_duplicates())
    lines += ["", f"{cells_with} cells with a failed replicate.", ""]
    return "\n".join(lines)


def _shown(estimate: float, mcse: float) -> str:
    if not math.isfinite(estimate):
        return "—"
    return f"{estimate:.4g} ({mcse:.2g})" if math.isfinite(mcse) else f"{estimate:.4g}"


def write_failure_sensitivity(
    metrics: pd.DataFrame,
    read_fits: Callable[[str], pd.DataFrame],
    alpha: float,
    csv: str | os.PathLike[str],
    markdown: str | os.PathLike[str],
    reference: str | None = None,
) -> pd.DataFrame:
    """Write :func:`failure_sensitivity` as CSV (``%.17g``) and Markdown, atomically."""
    table = failure_sensitivity(metrics, read_fits, alpha, reference)
    write_sensitivity(table, csv, markdown)
    return table


def write_sensitivity(
    table: pd.DataFrame, csv: str | os.PathLike[str], markdown: str | os.PathLike[str]
) -> None:
    """Write a :func:`sensitivity_table` as CSV (``%.17g``) and Markdown, atomically."""
    shown = table.assign(sigma=[format_number(s) for s in table["sigma"]])
    write_csv_atomic(shown, csv)
    write_text_atomic(markdown, sensitivity_markdown(table))


def fits_reader(paths: Mapping[str, str | os.PathLike[str]]) -> Callable[[str], pd.DataFrame]:
    """Cell label -> its table of fits, read from ``paths`` (label -> file)."""
    from regsim.tableio import read_parquet

    def read(label: str) -> pd.DataFrame:
        return read_parquet(paths[label])

    return read


__all__ = [
    "SENSITIVITY_COLUMNS",
    "SENSITIVITY_MEASURES",
    "failure_sensitivity",
    "failing_cells",
    "own_rule_metrics",
    "fits_reader",
    "sensitivity_markdown",
    "sensitivity_table",
    "summaries_by_rule",
    "write_failure_sensitivity",
    "write_sensitivity",
]
