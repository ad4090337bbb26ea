"""Paper tables of the performance measures, in LaTeX (booktabs) and Markdown.

:func:`paper_table` makes one table per measure and parameter from the long metrics table
(the columns of ``results/tables/metrics.csv``). Layout:

* rows: the error SD ``sigma`` (outer, increasing) × the sample size ``n`` (inner,
  increasing), every combination of the levels present anywhere in the table or in the
  study design passed as ``expected``;
* columns: ``sigma``, ``n``, then one per series: OLS, MLE, then MAP under each prior
  (weak, informative, shifted, skeptical, then any others alphabetically). In LaTeX the
  MAP columns share a spanning "MAP" header over the prior names; in Markdown they are
  headed "MAP (weak)" etc.;
* cells: ``estimate (MCSE)``.

Rounding rule
-------------
The Monte Carlo standard error is rounded to **two significant figures when its leading
digit is 1 or 2, otherwise to one** (so its rounding error is at most about 25% of its
value); the estimate is rounded **to the same decimal place**. Rounding is half away from
zero on the shortest decimal representation of each float (``0.125`` → ``0.13``). Examples:
``(0.04567, 0.0123)`` → ``0.046 (0.012)``; ``(0.9512, 0.0068)`` → ``0.951 (0.007)``;
``(12.345, 0.25)`` → ``12.35 (0.25)``; ``(1234.5, 340)`` → ``1200 (300)``. Where the
place is beyond 10^15 the numbers are written with an exponent at that place:
``(2.04e27, 6.1e26)`` → ``2.0e+27 (6e+26)``. An MCSE of
exactly 0 (e.g. a coverage of 1) shows the estimate to 3 decimals with ``(0.000)``
(beyond 10^15, to 4 significant figures with ``(0)``); a
missing MCSE (the count measures) shows the estimate alone, an integer if it is one.
A cell with no estimate (the row is missing, or all its replicates failed) is never
dropped: it shows a dash and a note under the table says so.

Failed replicates
-----------------
A replicate whose fit failed (did not converge, or gave a non-finite number) is left out
of every measure of its method and prior and counted in the ``n_failed`` rows of the
metrics table. A cell where some replicates failed is marked with a dagger (``†``; LaTeX
``$^\\dagger$``) and a note under the table gives, per such cell, how many of its
replicates failed. :func:`failure_report` lists every method, prior and cell with failed
replicates across the whole study (``results/tables/failures.md`` in the workflow). Under
the ``common`` failure rule ``n_failed`` counts the replicates left out of an estimator,
those another estimator of the cell failed on included, and the notes and the report say
"left out", not "failed".

The LaTeX output is a ``tabular`` needing only the ``booktabs`` package (``\\toprule``,
``\\midrule``, ``\\cmidrule``, ``\\addlinespace``, ``\\bottomrule``), or a ``table`` float
around it when a caption or label is given.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from regsim.atomic import write_text_atomic
from regsim.errors import InputDataError, RegsimError
from regsim.schema import (
    EXPECTED_KEYS,
    FAILURE_RULES,
    MEASURE_NAMES,
    OPTIONAL_FACTORS,
    PAPER_MEASURES,
    PRIOR_METHODS,
    method_label,
    method_name,
    parameter_rank,
    series_rank,
    short_number,
)
from regsim.study import slice_suffix, slice_text
from regsim.tableio import check_metrics, levels_of, select_levels, slices

__all__ = [
    "PAPER_MEASURES",
    "failure_report",
    "failure_table",
    "format_cell",
    "mcse_decimals",
    "paper_table",
    "round_to",
    "table_name",
    "write_failure_report",
    "write_paper_tables",
]

_ZERO_MCSE_DECIMALS = 3

#: Places before the point up to which a rounded number is written out in full.
_FIXED_POINT_PLACES = 15

Format = Literal["latex", "markdown"]


# --------------------------------------------------------------------------------------
# Rounding
# --------------------------------------------------------------------------------------


def _decimal(value: float) -> Decimal:
    """The shortest decimal that reads back as ``value``."""
    return Decimal(repr(float(value)))


def mcse_decimals(mcse: float) -> int:
    """Decimal places at which an MCSE is rounded (negative: tens, hundreds, ...).

    Two significant figures when the leading digit is 1 or 2, otherwise one.

    Parameters
    ----------
    mcse : float
        A positive, finite Monte Carlo standard error.

    Returns
    -------
    int
        The number of decimal places, e.g. 3 for 0.0123, 2 for 0.0456, 0 for 23,
        -2 for 340.

    Raises
    ------
    ValueError
        If ``mcse`` is not positive and finite.
    """
    if not (math.isfinite(mcse) and mcse > 0):
        raise ValueError(f"mcse must be positive and finite, got {mcse!r}")
    value = _decimal(mcse)
    leading = value.as_tuple().digits[0]
    significant = 2 if leading in (1, 2) else 1
    return significant - 1 - value.adjusted()


def round_to(value: float, decimals: int) -> str:
    """``value`` rounded half away from zero at ``decimals`` places, as plain text.

    Parameters
    ----------
    value : float
        A finite number.
    decimals : int
        Decimal places; negative rounds to tens (-1), hundreds (-2), ...

    Returns
    -------
    str
        Fixed-point text with ``max(decimals, 0)`` decimals and no exponent; never ``-0``.
        Rounded at a place beyond 10^15 (``decimals < -15``), the digits down to that place
        with an exponent instead (``2.0e+27``), which a table can show.
    """
    # Enough digits for any float at any place: a finite double has at most 309 digits
    # before its point (the default context's 28 made quantize fail beyond 1e28).
    with localcontext() as context:
        context.prec = 800
        quantum = Decimal(1).scaleb(-decimals)
        rounded = _decimal(value).quantize(quantum, rounding=ROUND_HALF_UP)
        if rounded.is_zero():
            rounded = abs(rounded)
        if decimals < -_FIXED_POINT_PLACES:
            return f"{rounded:e}"
        if decimals < 0:
            rounded = rounded.quantize(Decimal(1))
        return f"{rounded:f}"


def format_cell(estimate: float, mcse: float) -> str | None:
    """Text of one cell, ``"estimate (MCSE)"``, by the module's rounding rule.

    Parameters
    ----------
    estimate : float
        The performance measure's estimate.
    mcse : float
        Its Monte Carlo standard error; NaN for the count measures.

    Returns
    -------
    str or None
        ``None`` when the estimate is missing (NaN); otherwise e.g. ``"0.046 (0.012)"``,
        ``"1.000 (0.000)"`` for a zero MCSE, or the estimate alone when the MCSE is NaN.
    """
    if estimate is None or not math.isfinite(float(estimate)):
        return None
    estimate = float(estimate)
    if mcse is None or not math.isfinite(float(mcse)):
        if estimate.is_integer():
            return str(int(estimate))
        return f"{estimate:.3g}"
    mcse = float(mcse)
    if mcse == 0.0 and abs(estimate) >= 10.0**_FIXED_POINT_PLACES:
        return f"{estimate:.3e} (0)"
    if mcse == 0.0:
        decimals = _ZERO_MCSE_DECIMALS
    else:
        decimals = mcse_decimals(abs(mcse))
    return f"{round_to(estimate, decimals)} ({round_to(abs(mcse), decimals)})"


# --------------------------------------------------------------------------------------
# Table layout
# --------------------------------------------------------------------------------------


def _prepare(metrics: pd.DataFrame) -> pd.DataFrame:
    """A metrics table of one slice of the optional factors, checked and typed."""
    table = check_metrics(metrics)
    levels_of(table)  # one level of each optional factor: a table never mixes slices
    return table


Failures = dict[tuple[float, int, str, str], tuple[int, int | None]]


def _failures(table: pd.DataFrame, parameter: str) -> Failures:
    """(failed, replicates) per cell key (sigma, n, method, prior) with failed replicates.

    ``replicates`` is ``n_failed + n_reps``, or None when the ``n_reps`` row is missing.
    """
    rows = table.loc[table["parameter"] == parameter]
    keys = ["sigma", "n", "method", "prior"]
    used = {
        (float(s), int(n), m, p): e
        for s, n, m, p, e in rows.loc[rows["measure"] == "n_reps", [*keys, "estimate"]].itertuples(
            index=False
        )
    }
    failures: Failures = {}
    for sigma, n, method, prior, failed in rows.loc[
        rows["measure"] == "n_failed", [*keys, "estimate"]
    ].itertuples(index=False):
        if math.isfinite(failed) and failed > 0:
            key = (float(sigma), int(n), method, prior)
            reps = used.get(key)
            total = int(failed + reps) if reps is not None and math.isfinite(reps) else None
            failures[key] = (int(failed), total)
    return failures


#: The measure each paired contrast is the difference of.
CONTRAST_OF: dict[str, str] = {
    "bias_diff": "bias",
    "mse_diff": "mse",
    "coverage_diff": "coverage",
}


def pairing_note(
    metrics: pd.DataFrame, measure: str, parameter: str, reference: str | None
) -> str | None:
    """How much pairing tightens the MCSEs of a contrast table, or None.

    For a paired contrast (``bias_diff``, ``mse_diff``, ``coverage_diff``) against
    ``reference``: the range over the table's cells of the MCSE the difference would have
    if the two methods were independent, ``sqrt(MCSE_m² + MCSE_ref²)`` of the measure it
    differences, over its paired MCSE. None for any other measure, or without a reference.
    """
    base = CONTRAST_OF.get(measure)
    if base is None or reference is None:
        return None
    return _pairing_note(check_metrics(metrics), measure, parameter, reference)


def _pairing_note(table: pd.DataFrame, measure: str, parameter: str, reference: str) -> str | None:
    """:func:`pairing_note` of a checked metrics table (:func:`check_metrics`)."""
    base = CONTRAST_OF[measure]
    rows = table.loc[table["parameter"] == parameter]
    keys = ["sigma", "n", "method", "prior"]
    paired = rows.loc[rows["measure"] == measure].set_index(keys)["mcse"]
    single = rows.loc[rows["measure"] == base, [*keys, "mcse"]]
    ref = single.loc[(single["method"] == reference) & (single["prior"] == "")]
    both = single.merge(ref[["sigma", "n", "mcse"]], on=["sigma", "n"], suffixes=("", "_ref"))
    both = both.loc[(both["method"] != reference) | (both["prior"] != "")].set_index(keys)
    ratio = (np.hypot(both["mcse"], both["mcse_ref"]) / paired.reindex(both.index)).to_numpy()
    ratio = ratio[np.isfinite(ratio)]
    if not ratio.size:
        return None
    span = (
        f"{ratio.min():.2g}"
        if ratio.min() == ratio.max()
        else f"{ratio.min():.2g}–{ratio.max():.2g}"
    )
    return (
        f"MCSEs are paired on the replicates both methods fitted; treating each method as "
        f"independent of {method_name(reference)}, √(MCSE² + MCSE_ref²) of the {base}, "
        f"would make them {span} times as large."
    )


def _in_table_order(failures: Failures) -> list[tuple[tuple[float, int, str, str], tuple]]:
    """Failure notes by σ, n, then the column order of the estimators."""
    return sorted(failures.items(), key=lambda item: (*item[0][:2], series_rank(item[0][2:])))


def _failure_notes(
    failures: Failures, series: Sequence[tuple[str, str]]
) -> list[tuple[str | None, float, int, tuple[int, int | None]]]:
    """The † notes in table order, one per (estimator or None, σ, n): None where every
    estimator of the table's row left out as many replicates (under the common failure
    rule, the same ones), so that a row is noted once rather than once per column."""
    notes: list[tuple[str | None, float, int, tuple[int, int | None]]] = []
    rows: dict[tuple[float, int], list[tuple[tuple[str, str], tuple[int, int | None]]]] = {}
    for (sigma, n, method, prior), counts in _in_table_order(failures):
        rows.setdefault((sigma, n), []).append(((method, prior), counts))
    for (sigma, n), noted in rows.items():
        counts = {c for _, c in noted}
        if len(series) > 1 and len(noted) == len(series) and len(counts) == 1:
            notes.append((None, sigma, n, noted[0][1]))
            continue
        for (method, prior), c in noted:
            notes.append((method_label(method, prior), sigma, n, c))
    return notes


#: How a note names every estimator of a row at once.
_EVERY_ESTIMATOR = "every estimator"


def _failure_text(failed: int, total: int | None) -> str:
    return f"{failed} of {total}" if total is not None else str(failed)


#: What the † notes call the replicates counted in ``n_failed``, by failure rule: under
#: ``common`` they include those another estimator of the cell failed on.
_LEFT_OUT = {
    "own": (
        "replicates failed (not converged or not finite), left out",
        "replicates failed, left out",
    ),
    "common": (
        "replicates left out under the common failure rule (a fit of the cell failed on them)",
        "replicates left out (common failure rule)",
    ),
}


def _check_rule(rule: str) -> None:
    if rule not in FAILURE_RULES:
        raise ValueError(f"failures must be one of {', '.join(FAILURE_RULES)}, got {rule!r}")


@dataclass(frozen=True)
class _Contents:
    """What one paper table shows, whatever its format."""

    measure: str
    parameter: str
    sigmas: list[float]
    ns: list[int]
    series: list[tuple[str, str]]
    cells: dict[tuple, str | None]
    failures: Failures
    note: str | None
    rule: str = "own"
    #: The slice's non-default levels (``regsim.study.slice_text``), named in the header.
    where: str = ""

    def render(self, fmt: Format, caption: str | None = None, label: str | None = None) -> str:
        """The table as LaTeX or Markdown (:func:`paper_table`)."""
        grid = (self.measure, self.parameter, self.sigmas, self.ns, self.series, self.cells)
        if fmt == "latex":
            return _latex(
                *grid, caption, label, self.failures, self.note, self.rule, where=self.where
            )
        return _markdown(*grid, caption, self.failures, self.note, self.rule)


def _contents(
    table: pd.DataFrame,
    measure: str,
    parameter: str,
    expected: Mapping[str, Sequence[Any]] | None,
    reference: str | None,
    rule: str = "own",
) -> _Contents:
    """The contents of a paper table from a prepared slice (:func:`_prepare`)."""
    sigmas, ns, series, cells, failures = _grid(table, measure, parameter, expected)
    note = None
    if measure in CONTRAST_OF and reference is not None:
        note = _pairing_note(table, measure, parameter, reference)
    return _Contents(
        measure,
        parameter,
        sigmas,
        ns,
        series,
        cells,
        failures,
        note,
        rule,
        where=slice_text(levels_of(table)),
    )


def _grid(
    table: pd.DataFrame,
    measure: str,
    parameter: str,
    expected: Mapping[str, Sequence[Any]] | None = None,
) -> tuple[list[float], list[int], list[tuple[str, str]], dict[tuple, str | None], Failures]:
    """Rows, columns, cell texts and failed-replicate counts of one table, from a
    prepared slice (:func:`_prepare`)."""
    expected = expected or {}
    unknown = sorted(set(expected) - EXPECTED_KEYS)
    if unknown:
        raise InputDataError(f"expected: unknown key(s) {', '.join(unknown)}")
    if not (table["measure"] == measure).any():
        present = ", ".join(sorted(table["measure"].unique()))
        raise InputDataError(f"metrics table: no measure {measure!r}; measures: {present}")
    if not (table["parameter"] == parameter).any():
        present = ", ".join(sorted(table["parameter"].unique()))
        raise InputDataError(f"metrics table: no parameter {parameter!r}; parameters: {present}")
    try:
        sigmas = sorted(
            {float(s) for s in table["sigma"].unique()}
            | {float(s) for s in expected.get("sigma", [])}
        )
        ns = sorted({int(n) for n in table["n"].unique()} | {int(n) for n in expected.get("n", [])})
    except (TypeError, ValueError):
        raise InputDataError("expected: n and sigma must be numbers") from None
    pairs = {(str(m), str(p)) for m, p in table[["method", "prior"]].drop_duplicates().to_numpy()}
    for method in expected.get("methods", []):
        if method in PRIOR_METHODS:
            pairs |= {(str(method), str(prior)) for prior in expected.get("priors", [])}
        else:
            pairs.add((str(method), ""))
    series = sorted(pairs, key=series_rank)
    rows = table.loc[(table["measure"] == measure) & (table["parameter"] == parameter)]
    keys = ["sigma", "n", "method", "prior"]
    if rows.duplicated(keys).any():
        first = rows.loc[rows.duplicated(keys), keys].iloc[0].to_dict()
        raise InputDataError(f"metrics table: duplicate rows for {measure}/{parameter} at {first}")
    cells: dict[tuple, str | None] = {}
    for sigma, n, method, prior, estimate, mcse in rows[[*keys, "estimate", "mcse"]].itertuples(
        index=False
    ):
        cells[(float(sigma), int(n), method, prior)] = format_cell(estimate, mcse)
    return sigmas, ns, series, cells, _failures(table, parameter)


def _latex_escape(text: str) -> str:
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#"}
    special |= {"_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}"}
    special |= {"^": r"\textasciicircum{}"}
    return "".join(special.get(ch, ch) for ch in text)


def _latexshort_number(text: str) -> str:
    """A cell's text with minus signs typeset as math minus."""
    return text.replace("-", "$-$")


def _title(measure: str, parameter: str, markdown: bool) -> str:
    name = MEASURE_NAMES.get(measure, measure)
    if parameter.startswith("beta") and parameter[4:].isdigit():
        symbol = f"β{parameter[4:]}" if markdown else rf"$\beta_{{{int(parameter[4:])}}}$"
    elif parameter == "sigma":
        symbol = "σ" if markdown else r"$\sigma$"
    else:
        symbol = parameter if markdown else _latex_escape(parameter)
    return f"{name} of the estimators of {symbol}: estimate (Monte Carlo SE)"


def _empty_note(count: int) -> str:
    return f"no estimate ({count} cells: not in the table, or all replicates failed)"


def _latex(
    measure: str,
    parameter: str,
    sigmas: Sequence[float],
    ns: Sequence[int],
    series: Sequence[tuple[str, str]],
    cells: dict[tuple, str | None],
    caption: str | None,
    label: str | None,
    failures: Failures | None = None,
    pairing: str | None = None,
    rule: str = "own",
    *,
    where: str = "",
) -> str:
    dash = "--"
    failures = failures or {}
    of_slice = f" ({where})" if where else ""
    lines = [f"% {_title(measure, parameter, markdown=True)}{of_slice}. Written by regsim."]
    lines.append(r"\begin{tabular}{" + "r" * (2 + len(series)) + "}")
    lines.append(r"\toprule")
    plain = [s for s in series if not s[1]]
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    for method, prior in series:
        if prior:
            if not groups or groups[-1][0] != method:
                groups.append((method, []))
            groups[-1][1].append((method, prior))
    if groups:
        top = ["", ""] + [""] * len(plain)
        rules = []
        column = 3 + len(plain)
        for method, members in groups:
            name = _latex_escape(method_name(method))
            top.append(rf"\multicolumn{{{len(members)}}}{{c}}{{{name}}}")
            rules.append(rf"\cmidrule(lr){{{column}-{column + len(members) - 1}}}")
            column += len(members)
        lines.append(" & ".join(top) + r" \\")
        lines.append(" ".join(rules))
    header = [r"$\sigma$", r"$n$"]
    for method, prior in series:
        name = prior if prior else method_name(method)
        header.append(_latex_escape(name))
    lines.append(" & ".join(header) + r" \\")
    lines.append(r"\midrule")
    empty = 0
    for i, sigma in enumerate(sigmas):
        if i:
            lines.append(r"\addlinespace")
        for j, n in enumerate(ns):
            row = [short_number(sigma) if j == 0 else "", str(n)]
            for method, prior in series:
                text = cells.get((sigma, n, method, prior))
                empty += text is None
                # an empty cell is marked too: all its replicates failed
                mark = r"$^\dagger$" if (sigma, n, method, prior) in failures else ""
                row.append((dash if text is None else _latexshort_number(text)) + mark)
            lines.append(" & ".join(row) + r" \\")
    lines.append(r"\bottomrule")
    for estimator, sigma, n, (failed, total) in _failure_notes(failures, series):
        name = _latex_escape(estimator or _EVERY_ESTIMATOR.capitalize())
        note = (
            rf"$^\dagger${name}, $\sigma = {short_number(sigma)}$, $n = {n}$: "
            f"{_failure_text(failed, total)} {_LEFT_OUT[rule][1]}"
        )
        lines.append(rf"\multicolumn{{{2 + len(series)}}}{{l}}{{\footnotesize {note}}} \\")
    if pairing is not None:
        text = _latex_escape(pairing).replace("√", r"$\surd$").replace("²", "$^2$")
        lines.append(rf"\multicolumn{{{2 + len(series)}}}{{l}}{{\footnotesize {text}}} \\")
    lines.append(r"\end{tabular}")
    if empty:
        lines.append(f"% {dash}: {_empty_note(empty)}")
    body = "\n".join(lines)
    if caption is None and label is None:
        return body + "\n"
    wrapped = [r"\begin{table}", r"\centering"]
    if caption is not None:
        wrapped.append(rf"\caption{{{caption}}}")
    if label is not None:
        wrapped.append(rf"\label{{{label}}}")
    wrapped += [body, r"\end{table}"]
    return "\n".join(wrapped) + "\n"


def _markdown(
    measure: str,
    parameter: str,
    sigmas: Sequence[float],
    ns: Sequence[int],
    series: Sequence[tuple[str, str]],
    cells: dict[tuple, str | None],
    caption: str | None,
    failures: Failures | None = None,
    pairing: str | None = None,
    rule: str = "own",
) -> str:
    dash = "—"
    failures = failures or {}
    header = ["σ", "n"]
    for method, prior in series:
        name = method_name(method)
        header.append(f"{name} ({prior})" if prior else name)
    lines = []
    if caption is not None:
        lines += [caption, ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---:"] * len(header)) + "|")
    empty = 0
    for sigma in sigmas:
        for n in ns:
            row = [short_number(sigma), str(n)]
            for method, prior in series:
                text = cells.get((sigma, n, method, prior))
                empty += text is None
                # an empty cell is marked too: all its replicates failed
                mark = "†" if (sigma, n, method, prior) in failures else ""
                row.append((dash if text is None else text) + mark)
            lines.append("| " + " | ".join(row) + " |")
    if failures:
        listed = "; ".join(
            f"{name or _EVERY_ESTIMATOR} at σ = {short_number(sigma)}, n = {n}: "
            f"{_failure_text(failed, total)}"
            for name, sigma, n, (failed, total) in _failure_notes(failures, series)
        )
        lines += ["", f"†: {_LEFT_OUT[rule][0]}: {listed}."]
    if pairing is not None:
        lines += ["", pairing]
    if empty:
        lines += ["", f"{dash}: {_empty_note(empty)}."]
    return "\n".join(lines) + "\n"


def paper_table(
    metrics: pd.DataFrame,
    measure: str,
    parameter: str,
    fmt: Format = "latex",
    *,
    caption: str | None = None,
    label: str | None = None,
    expected: Mapping[str, Sequence[Any]] | None = None,
    reference: str | None = None,
    failures: str = "own",
) -> str:
    """One measure of one parameter as a paper table: rows ``sigma`` × ``n``, columns series.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The long metrics table (``prior`` empty or NaN for methods without one).
    measure : str
        E.g. ``"bias"``, ``"coverage"``, ``"rmse"``.
    parameter : str
        E.g. ``"beta1"`` or ``"sigma"``; one table per parameter.
    fmt : {"latex", "markdown"}, default "latex"
        ``"latex"``: a booktabs ``tabular`` (preceded by a comment line naming the measure);
        ``"markdown"``: a pipe table.
    caption : str, optional
        LaTeX: wraps the tabular in a ``table`` float with this caption (inserted verbatim,
        so it may hold LaTeX). Markdown: a paragraph above the table.
    label : str, optional
        LaTeX only: ``\\label`` of the ``table`` float.
    expected : mapping, optional
        The study design, ``{"n": [...], "sigma": [...], "methods": [...], "priors": [...]}``
        (each key optional): its rows and columns appear (with dashes) even when absent
        from the whole table.
    reference : str, optional
        The reference method of a paired contrast (``bias_diff`` …): a note under the
        table says how much larger its MCSEs would be without pairing
        (:func:`pairing_note`).
    failures : {"own", "common"}, default "own"
        The failure rule the metrics were computed under, which the † notes name: under
        ``common`` the replicates counted in ``n_failed`` include those another estimator
        of the cell failed on.

    Returns
    -------
    str
        The table text, ending in a newline. Cells are ``estimate (MCSE)`` rounded as in
        the module docstring; a cell without an estimate is a dash, explained in a note.

    Raises
    ------
    regsim.errors.InputDataError
        If a column, the measure or the parameter is missing, or rows are duplicated.
    ValueError
        If ``fmt`` is neither ``"latex"`` nor ``"markdown"``.
    """
    if fmt not in ("latex", "markdown"):
        raise ValueError(f"fmt must be 'latex' or 'markdown', got {fmt!r}")
    _check_rule(failures)
    contents = _contents(_prepare(metrics), measure, parameter, expected, reference, failures)
    return contents.render(fmt, caption, label)


def table_name(measure: str, parameter: str, levels: dict[str, str] | None = None) -> str:
    """File stem of a paper table: ``bias_beta1`` at the default levels, ``bias_beta1_t3``
    for t₃ errors (the suffix of :func:`regsim.study.slice_suffix`)."""
    return f"{measure}_{parameter}{slice_suffix(levels or {})}"


def write_paper_tables(
    metrics: pd.DataFrame,
    directory: str | os.PathLike[str],
    *,
    measures: Sequence[str] = PAPER_MEASURES,
    parameters: Sequence[str] | None = None,
    expected: Mapping[str, Sequence[Any]] | None = None,
    levels: Sequence[dict[str, str]] | None = None,
    reference: str | None = None,
    failures: str = "own",
) -> list[Path]:
    """Write ``{measure}_{parameter}.tex`` and ``.md`` for every measure, parameter and slice.

    One set of tables per slice of the optional factors: ``bias_beta1.tex`` at the default
    levels (the same file as without the factors) and ``bias_beta1_t3.tex`` etc. for others.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The long metrics table, every slice.
    directory : path-like
        Output directory (created if needed).
    measures : sequence of str, default ("bias", "coverage", "rmse")
        Measures to tabulate.
    parameters : sequence of str, optional
        Parameters to tabulate; default every parameter in the table.
    expected : mapping, optional
        The study design, as for :func:`paper_table`.
    levels : sequence of dict, optional
        The slices to tabulate (``regsim.tableio.slices``); default the table's own.
    reference : str, optional
        The reference method of the paired contrasts, as for :func:`paper_table`.
    failures : {"own", "common"}, default "own"
        The failure rule, as for :func:`paper_table`.

    Returns
    -------
    list of pathlib.Path
        The files written (``.tex`` then ``.md`` per table), each written atomically.

    Raises
    ------
    regsim.errors.InputDataError
        As :func:`paper_table`.
    regsim.errors.RegsimError
        If a file cannot be written.
    """
    directory = Path(directory)
    _check_rule(failures)
    table = check_metrics(metrics)
    if levels is None:
        levels = slices(table)
    if parameters is None:
        parameters = sorted(table["parameter"].unique(), key=parameter_rank)
    written = []
    for chosen in levels:
        # A slice checked once, each table's contents built once for both formats: the
        # same text as paper_table gives.
        subset = _prepare(select_levels(table, chosen))
        for measure in measures:
            for parameter in parameters:
                stem = table_name(measure, parameter, chosen)
                contents = _contents(subset, measure, parameter, expected, reference, failures)
                for fmt, suffix in (("latex", ".tex"), ("markdown", ".md")):
                    path = directory / f"{stem}{suffix}"
                    _write_text(path, contents.render(fmt))
                    written.append(path)
    return written


def failure_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Every method, prior and cell with failed replicates.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The long metrics table (with its ``n_failed`` and ``n_reps`` rows), every slice.

    Returns
    -------
    pandas.DataFrame
        Columns ``sigma, n``, the table's optional factor columns, then ``method, prior,
        failed, replicates`` (``failed`` the largest ``n_failed`` over the parameters,
        which is the same for all of them in tables written by the workflow;
        ``replicates`` = failed + used), one row per group with failed > 0, sorted by
        sigma, n, the factors' levels, method and prior.
    """
    table = check_metrics(metrics)
    factors = [f for f in OPTIONAL_FACTORS if f.name in table.columns]
    keys = ["sigma", "n", *(f.name for f in factors), "method", "prior"]
    failed = table.loc[table["measure"] == "n_failed"].groupby(keys)["estimate"].max()
    used = table.loc[table["measure"] == "n_reps"].groupby(keys)["estimate"].min()
    both = pd.concat({"failed": failed, "used": used}, axis=1).reset_index()
    both = both.loc[both["failed"].fillna(0) > 0]
    rows = [
        {
            "sigma": float(r["sigma"]),
            "n": int(r["n"]),
            **{f.name: r[f.name] for f in factors},
            "method": r["method"],
            "prior": r["prior"],
            "failed": int(r["failed"]),
            "replicates": int(r["failed"] + r["used"]) if math.isfinite(r["used"]) else None,
        }
        for r in both.to_dict("records")
    ]
    rows.sort(
        key=lambda r: (
            r["sigma"],
            r["n"],
            *(f.rank(r[f.name]) for f in factors),
            series_rank((r["method"], r["prior"])),
        )
    )
    return pd.DataFrame(rows, columns=keys + ["failed", "replicates"])


def failure_report(metrics: pd.DataFrame, failures: str = "own") -> str:
    """Markdown report of the failed replicates of a study (``failures.md``).

    Parameters
    ----------
    metrics : pandas.DataFrame
        The long metrics table.
    failures : {"own", "common"}, default "own"
        The failure rule the metrics were computed under. Under ``common`` the
        ``n_failed`` rows count every replicate left out of an estimator's measures,
        those another estimator of the cell failed on included, and the report says so
        (which fits failed: ``failures_sensitivity.md`` and the simulate logs).

    Returns
    -------
    str
        A heading, what a failed replicate is and how it is handled, then either "No
        replicate failed." or a table with one row per method, prior and cell with failed
        (or left-out) replicates (σ, n, the optional factors the study varies,
        estimator, failed or left out, of), and a line with the totals.
    """
    _check_rule(failures)
    table = failure_table(metrics)
    if failures == "own":
        lines = [
            "# Failed replicates",
            "",
            "A replicate whose fit failed (the MAP iteration did not converge, the Hessian was",
            "not positive definite, or an estimate, SE or interval bound was not finite) is",
            "left out of every performance measure of that estimator in that cell, and counted",
            "in the `n_failed` rows of `metrics.csv`; the paper tables mark such cells with †.",
            "The simulate logs (`results/logs/simulate/`) name the replicates.",
            "",
        ]
        counted, total_text = "failed", "failed replicate fits"
    else:
        lines = [
            "# Failed replicates (failure rule: common)",
            "",
            "A replicate on which any fit of a cell failed (the MAP iteration did not",
            "converge, the Hessian was not positive definite, or an estimate, SE or interval",
            "bound was not finite) is left out of every estimator's performance measures in",
            "that cell, so that all are measured on the same replicates (`failures: common`).",
            "Each row counts the replicates left out of one estimator in one cell (the",
            "`n_failed` rows of `metrics.csv`): those it failed on and those another estimator",
            "failed on. Which fits failed: `failures_sensitivity.md`, which sets both rules",
            "side by side, and the simulate logs (`results/logs/simulate/`).",
            "",
        ]
        counted, total_text = "left out", "replicate fits left out"
    if table.empty:
        return "\n".join([*lines, "No replicate failed.", ""])
    # the factors the study sets off their default, as its file names do
    factors = [
        f.name
        for f in OPTIONAL_FACTORS
        if f.name in table.columns
        and (metrics[f.name].fillna(f.default).astype(str) != f.default).any()
    ]
    header = ["σ", "n", *factors, "estimator", counted, "of"]
    align = ["---:", "---:", *(["---"] * len(factors)), "---", "---:", "---:"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for r in table.to_dict("records"):
        total = (
            "" if r["replicates"] is None or pd.isna(r["replicates"]) else str(int(r["replicates"]))
        )
        cells = [
            short_number(r["sigma"]),
            str(r["n"]),
            *(str(r[name]) for name in factors),
            method_label(r["method"], r["prior"]),
            str(r["failed"]),
            total,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    grid_cells = table[["sigma", "n", *(f.name for f in OPTIONAL_FACTORS if f.name in table)]]
    count = len(grid_cells.drop_duplicates())
    rows = "the row above" if len(table) == 1 else f"the {len(table)} rows above"
    lines += [
        "",
        f"{int(table['failed'].sum())} {total_text} over {rows}, in {count} "
        f"{'cell' if count == 1 else 'cells'} of the grid.",
        "",
    ]
    return "\n".join(lines)


def write_failure_report(
    metrics: pd.DataFrame, path: str | os.PathLike[str], failures: str = "own"
) -> Path:
    """Write :func:`failure_report` to ``path`` atomically; return the path."""
    path = Path(path)
    _write_text(path, failure_report(metrics, failures))
    return path


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically; an OS error becomes a one-line RegsimError."""
    try:
        write_text_atomic(path, text)
    except OSError as error:
        raise RegsimError(f"cannot write {path}: {error}") from None
