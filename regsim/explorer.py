"""The results explorer: one self-contained HTML page to browse a study's results offline.

:func:`explorer_html` turns the study's recorded files into one page that opens from
``file://`` and fetches nothing: the metrics table (every measure with its MCSE), the
replicate intervals of the zip plot's cell, the paper tables, failure reports and
theory comparison (rendered as HTML tables), and the provenance record (configuration,
seed, versions, hashes). The data are one JSON block (:func:`explorer_data`), the
drawing is Plotly's JavaScript bundle (shipped inside the ``plotly`` Python package,
inlined) driven by ``explorer.js`` beside this module:

* **Plot**: a measure of a parameter against a factor of the grid (n by default, on a log
  axis), a panel per level of another factor, the other factors fixed by filters, each
  method and prior switched on or off; ±1.96·MCSE bars, the target where there is one
  (coverage 1 − α with its Monte Carlo band, rejection α with its band for a parameter
  that is 0, zero for a bias or a difference), hover text "estimate (MCSE), n_reps,
  failures".
* **Nested loop**: the measure over every cell of the grid (Rücker & Schwarzer 2014).
* **Zip plot** of the zip plot's cell (Morris, White & Crowther 2019).
* **Tables**, **Diagnostics** (failures, failure rules, exact theory) and **Study**.

The page is drawn from recorded files and records nothing itself; it is the same bytes
for the same files. :func:`write_explorer` reads the files and writes the page.
"""

from __future__ import annotations

import html
import importlib.util
import json
import math
import os
from collections.abc import Mapping, Sequence
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from regsim.atomic import write_text_atomic
from regsim.errors import DataFileError, RegsimError
from regsim.pages import TABLE_CSS, markdown_html, paper_table_title
from regsim.schema import (
    FACTORS,
    MEASURE_NAMES,
    OPTIONAL_FACTORS,
    SCALE_MEASURES,
    ZERO_TARGET_MEASURES,
    beta_index,
    cell_label,
    format_number,
    measure_rank,
    method_label,
    method_name,
    parameter_rank,
    prior_rank,
    series_rank,
    short_number,
)
from regsim.study import Study, slice_suffix
from regsim.styles import series_styles

__all__ = [
    "DOCUMENTS",
    "ZIP_INTERVALS",
    "explorer_data",
    "explorer_html",
    "plotly_bundle",
    "write_explorer",
]

#: The Markdown documents of the Diagnostics view: file name -> what it is.
DOCUMENTS: dict[str, str] = {
    "failures.md": "Failed replicates",
    "failures_sensitivity.md": "Failure rules side by side",
    "theory.md": "Simulation against exact theory",
}

#: Most replicate intervals the zip plot embeds. Past it only the zip plot's parameter is
#: embedded, and past it again every k-th interval in order of |z| (the coverage and its
#: band still count them all), so that the page stays small for a cell of 10⁵ replicates.
ZIP_INTERVALS = 40_000

#: Plotly's names of the matplotlib markers of regsim.styles.
_SYMBOLS: dict[str, str] = {
    "o": "circle",
    "s": "square",
    "d": "diamond-tall",
    "D": "diamond",
    "^": "triangle-up",
    "v": "triangle-down",
    "<": "triangle-left",
    ">": "triangle-right",
    "P": "cross",
    "X": "x",
    "h": "hexagon",
}

#: Printed names of the factors in the page.
_FACTOR_LABELS: dict[str, str] = {
    "n": "n",
    "sigma": "σ",
    "errors": "error model",
    "truth": "truth",
    "design": "design",
}

_CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; }
header { padding: 10px 18px 6px; border-bottom: 1px solid #ddd; }
header h1 { font-size: 19px; margin: 0 0 3px; }
header p { margin: 0; color: #555; font-size: 13px; }
nav { display: flex; gap: 4px; padding: 8px 18px 0; border-bottom: 1px solid #ddd; }
nav button { border: 1px solid #ccc; border-bottom: none; background: #f4f4f4; padding: 6px 12px;
  cursor: pointer; border-radius: 4px 4px 0 0; font-size: 14px; }
nav button[aria-selected="true"] { background: #fff; font-weight: 600; position: relative;
  top: 1px; }
#layout { display: flex; align-items: flex-start; }
#controls { width: 250px; flex: none; padding: 12px 14px; font-size: 13px;
  border-right: 1px solid #eee; }
#controls label.field { display: block; margin: 0 0 8px; }
#controls select { width: 100%; margin-top: 2px; font-size: 13px; }
#controls fieldset { border: 1px solid #ddd; margin: 0 0 10px; padding: 4px 8px 6px; }
#controls fieldset label { display: block; }
#controls .idle { opacity: 0.45; }
#controls .note { color: #666; font-size: 12px; }
main { flex: 1; min-width: 0; padding: 8px 16px 24px; }
main > section[hidden] { display: none; }
.graph { width: 100%; }
.swatch { display: inline-block; width: 22px; height: 0; border-top: 3px solid;
  vertical-align: middle; margin-right: 4px; }
table.kv td { padding: 1px 10px 1px 0; vertical-align: top; font-size: 13px; }
pre.config { background: #f6f6f6; padding: 8px; font-size: 12px; overflow: auto; }
h2 { font-size: 17px; } h3 { font-size: 15px; }
"""


# --------------------------------------------------------------------------------------
# The data
# --------------------------------------------------------------------------------------


def _number(value: Any) -> float | int | None:
    """A JSON number (None for a missing or non-finite one)."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _numbers(values: np.ndarray) -> list[float | None]:
    """Floats as JSON numbers, NaN and ±inf as None (JSON has neither); each reads back as
    the same double. A measure can be infinite (e.g. ``relprec`` where a method's
    estimates did not vary: its EmpSE is 0), and the page shows it as missing."""
    return [v if math.isfinite(v) else None for v in values.tolist()]


def _dash(linestyle: Any) -> str:
    """Plotly's dash of a matplotlib line style (dash lengths in line widths)."""
    if linestyle in ("-", "solid", None):
        return "solid"
    _, pattern = linestyle
    return ",".join(f"{2 * length:g}px" for length in pattern)


def _series_styles(series: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Colour, dash and marker of each series in Plotly's terms, from the figures' styles
    (:func:`regsim.styles.series_styles`): the same Okabe–Ito colour per method and
    line style per prior as every figure."""
    styles = series_styles(list(series))
    out = []
    for method, prior in series:
        style = styles[(method, prior)]
        symbol = _SYMBOLS.get(style["marker"], "circle")
        if style["markerfacecolor"] == "white":
            symbol += "-open"
        out.append(
            {
                "method": method,
                "prior": prior,
                "label": method_label(method, prior),
                "color": style["color"],
                "dash": _dash(style["linestyle"]),
                "symbol": symbol,
            }
        )
    return out


def _levels(metrics: pd.DataFrame, study: Study) -> dict[str, list[Any]]:
    """Each factor's levels in the table: n and σ by value, the others in grid order."""
    levels: dict[str, list[Any]] = {}
    for item in FACTORS:
        found = list(dict.fromkeys(metrics[item.name].tolist()))
        if item.name in ("n", "sigma"):
            levels[item.name] = sorted(found)
        else:
            listed = [str(v) for v in study.expected.get(item.name, [])]
            ordered = [v for v in listed if v in found]
            rest = sorted((v for v in found if v not in ordered), key=item.rank)
            levels[item.name] = ordered + rest
    return levels


def _loops(study: Study, varied: Sequence[str]) -> list[str]:
    """The nested loops, outermost first: the study's ``figures.nested_loop.loops`` or
    the factors the grid varies, then σ, then n."""
    chosen = ((study.config.get("figures") or {}).get("nested_loop") or {}).get("loops")
    if chosen:
        return [str(name) for name in chosen]
    return [*(name for name in varied if name not in ("n", "sigma")), "sigma", "n"]


def _zip_data(fits: pd.DataFrame, parameter: str, series: Sequence[tuple[str, str]]) -> dict:
    """The zip plot's intervals of one cell: per parameter and series, each usable
    replicate's limits at the centile of its |z|, whether it covers, and the coverage."""
    fits = fits.copy()
    fits["prior"] = fits["prior"].fillna("").astype(str)
    estimate, se = fits["estimate"].to_numpy(float), fits["se"].to_numpy(float)
    lower, upper = fits["lower"].to_numpy(float), fits["upper"].to_numpy(float)
    fits["ok"] = (
        fits["converged"].astype(bool)
        & np.isfinite(estimate)
        & np.isfinite(se)
        & (se > 0)
        & np.isfinite(lower)
        & np.isfinite(upper)
    )
    parameters = sorted(set(fits["parameter"]), key=parameter_rank)
    usable = int(fits["ok"].sum())
    if usable > ZIP_INTERVALS:
        parameters = [parameter]
        usable = int((fits["ok"] & (fits["parameter"] == parameter)).sum())
    stride = max(1, math.ceil(usable / ZIP_INTERVALS))
    index = {s: i for i, s in enumerate(series)}
    panels: dict[str, list[dict[str, Any]]] = {}
    truths: dict[str, float] = {}
    ranges: dict[str, list[float]] = {}
    for name in parameters:
        rows = fits.loc[fits["parameter"] == name]
        truth = float(rows["true"].iloc[0])
        truths[name] = truth
        valid = rows.loc[rows["ok"]]
        if len(valid):
            lo = min(float(np.quantile(valid["lower"], 0.005)), truth)
            hi = max(float(np.quantile(valid["upper"], 0.995)), truth)
        else:
            lo, hi = truth - 1.0, truth + 1.0
        pad = 0.04 * (hi - lo) if hi > lo else 1.0
        ranges[name] = [lo - pad, hi + pad]
        panels[name] = []
        for key, part in rows.groupby(["method", "prior"], sort=False):
            good = part.loc[part["ok"]]
            count = len(good)
            z = np.abs(good["estimate"].to_numpy() - truth) / good["se"].to_numpy()
            order = np.argsort(z, kind="stable")
            centile = 100.0 * np.arange(1, count + 1) / max(count, 1)
            low, high = good["lower"].to_numpy()[order], good["upper"].to_numpy()[order]
            covers = (low <= truth) & (truth <= high)
            p = float(covers.mean()) if count else math.nan
            half = 1.96 * math.sqrt(p * (1.0 - p) / count) if count else math.nan
            shown = np.arange(stride - 1, count, stride) if stride > 1 else np.arange(count)
            panels[name].append(
                {
                    "series": index[(str(key[0]), str(key[1]))],
                    "lower": [float(f"{v:.6g}") for v in low[shown].tolist()],
                    "upper": [float(f"{v:.6g}") for v in high[shown].tolist()],
                    "centile": [round(v, 4) for v in centile[shown].tolist()],
                    "covers": covers[shown].astype(int).tolist(),
                    "coverage": _number(p),
                    "half": _number(half),
                    "count": count,
                    "failed": int(len(part) - count),
                }
            )
        panels[name].sort(key=lambda panel: panel["series"])
    return {
        "parameters": parameters,
        "truth": truths,
        "range": ranges,
        "panels": panels,
        "stride": stride,
    }


def explorer_data(
    metrics: pd.DataFrame,
    study: Study,
    *,
    zip_fits: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Everything the explorer's plots draw, as one JSON-ready dictionary.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table (``regsim.tableio.read_metrics``).
    study : Study
        The study the table is of (its level, replications, grid order, zip plot's cell).
    zip_fits : pandas.DataFrame, optional
        The table of fits of the zip plot's cell (every parameter); no zip plot without.

    Returns
    -------
    dict
        ``factors`` (name, label, levels, their printed ``text`` and exact ``keys``,
        ``numeric``), ``cells`` (each
        cell's label and level index per factor), ``series`` (method, prior, label,
        colour, dash, marker), ``parameters``, ``measures`` (name, label, target),
        ``groups`` (cell, series and parameter index and the true value of every
        (cell, method, prior, parameter) of the table) and ``values``: per measure, the
        ``estimate`` and ``mcse`` of every group (None where the table has none), the
        numbers of ``metrics.csv`` exactly; then ``study`` (α, R, loops, zip plot's cell
        and parameter) and ``zip``.
    """
    table = metrics.copy()
    table["prior"] = table["prior"].fillna("").astype(str)
    for item in OPTIONAL_FACTORS:
        if item.name not in table.columns:
            table[item.name] = item.default
        table[item.name] = table[item.name].astype(str)
    levels = _levels(table, study)
    factor_names = [f.name for f in FACTORS]
    codes = {
        name: pd.Categorical(table[name], categories=levels[name]).codes.astype(np.int64)
        for name in factor_names
    }
    combos = np.stack([codes[name] for name in factor_names], axis=1)
    cell_keys, cell_of_row = np.unique(combos, axis=0, return_inverse=True)
    cell_of_row = cell_of_row.reshape(-1)
    cells = []
    for key in cell_keys.tolist():
        level_values = {name: levels[name][i] for name, i in zip(factor_names, key, strict=True)}
        cells.append({"label": cell_label(level_values), "levels": key})

    # Python lists of the label columns: iterating a column of Arrow strings directly
    # converts one element at a time (half a second over a 378-cell grid's table).
    row_series = list(zip(table["method"].tolist(), table["prior"].tolist(), strict=True))
    series = sorted(set(row_series), key=series_rank)
    series_index = {s: i for i, s in enumerate(series)}
    parameters = sorted(set(table["parameter"].tolist()), key=parameter_rank)
    parameter_index = {p: i for i, p in enumerate(parameters)}
    series_of_row = np.array([series_index[s] for s in row_series])
    parameter_of_row = table["parameter"].map(parameter_index).to_numpy()
    group_key = (cell_of_row * len(series) + series_of_row) * len(parameters) + parameter_of_row
    group_keys, group_of_row = np.unique(group_key, return_inverse=True)
    group_of_row = group_of_row.reshape(-1)
    first = np.zeros(len(group_keys), dtype=np.int64)
    first[group_of_row[::-1]] = np.arange(len(table))[::-1]
    true_values = table["true"].to_numpy(float)[first]

    measure_codes, measure_names = pd.factorize(table["measure"])
    measure_code = dict(zip(measure_names.tolist(), range(len(measure_names)), strict=True))
    measures = sorted(measure_code, key=measure_rank)
    values: dict[str, dict[str, list[float | None]]] = {}
    estimate = table["estimate"].to_numpy(float)
    mcse = table["mcse"].to_numpy(float)
    for measure in measures:
        rows = np.flatnonzero(measure_codes == measure_code[measure])
        est = np.full(len(group_keys), np.nan)
        err = np.full(len(group_keys), np.nan)
        est[group_of_row[rows]] = estimate[rows]
        err[group_of_row[rows]] = mcse[rows]
        values[measure] = {"estimate": _numbers(est), "mcse": _numbers(err)}

    def target(measure: str) -> str | None:
        if measure in ("coverage", "becoverage"):
            return "coverage"
        if measure == "rejection":
            return "rejection"
        return "zero" if measure in ZERO_TARGET_MEASURES else None

    varied = [name for name in factor_names if len(levels[name]) > 1]
    zip_cell = study.zip
    return {
        "factors": [
            {
                "name": name,
                "label": _FACTOR_LABELS.get(name, name),
                "levels": [_number(v) if name in ("n", "sigma") else v for v in levels[name]],
                "text": [
                    short_number(v) if name in ("n", "sigma") else str(v) for v in levels[name]
                ],
                "keys": [
                    format_number(v) if name in ("n", "sigma") else str(v) for v in levels[name]
                ],
                "numeric": name in ("n", "sigma"),
            }
            for name in factor_names
        ],
        "cells": cells,
        "series": _series_styles(series),
        "methods": [
            {"name": m, "label": method_name(m)} for m in dict.fromkeys(m for m, _ in series)
        ],
        "priors": sorted({p for _, p in series if p}, key=prior_rank),
        "parameters": [{"name": p, "label": _symbol(p)} for p in parameters],
        "measures": [
            {"name": m, "label": MEASURE_NAMES.get(m, m), "target": target(m)} for m in measures
        ],
        "groups": {
            "cell": (group_keys // (len(series) * len(parameters))).tolist(),
            "series": (group_keys // len(parameters) % len(series)).tolist(),
            "parameter": (group_keys % len(parameters)).tolist(),
            "true": _numbers(true_values),
        },
        "values": values,
        "study": {
            "alpha": study.alpha,
            "replications": study.replications,
            "reference": study.reference,
            "scales": sorted(SCALE_MEASURES),
            "loops": _loops(study, varied),
            "varied": varied,
            "zip": {
                "cell": zip_cell["cell"],
                "parameter": zip_cell["parameter"],
                "n": int(zip_cell["n"]),
                "sigma": format_number(zip_cell["sigma"]),
            },
            "default": {
                "measure": "coverage" if "coverage" in measures else measures[0],
                "parameter": zip_cell["parameter"]
                if zip_cell["parameter"] in parameters
                else parameters[0],
            },
        },
        "zip": None
        if zip_fits is None
        else _zip_data(_under_rule(zip_fits, study.failures), zip_cell["parameter"], series),
    }


def _under_rule(fits: pd.DataFrame, failures: str) -> pd.DataFrame:
    """The zip cell's fits under the measures' failure rule
    (:func:`regsim.cells.under_common_rule` under ``common``), as in the paper job's."""
    if failures != "common":
        return fits
    from regsim.cells import under_common_rule

    return under_common_rule(fits)


def _symbol(parameter: str) -> str:
    j = beta_index(parameter)
    return f"β{j}" if j is not None else ("σ" if parameter == "sigma" else parameter)


# --------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------


def plotly_bundle() -> tuple[str, str]:
    """Plotly's JavaScript bundle as shipped in the ``plotly`` package, and its version.

    Raises
    ------
    regsim.errors.RegsimError
        If the ``plotly`` package is not installed.
    """
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RegsimError("the explorer needs the plotly package (pip install -r requirements.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RegsimError(f"{path}: cannot read Plotly's bundle ({error.strerror})") from None
    return text, metadata.version("plotly")


def _json_script(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: every ``<`` written as
    ``\\u003c``, so that no ``</script>`` or ``<!--`` inside a string ends or alters it."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c")


def _tables_view(study: Study, tables: Mapping[str, str]) -> tuple[str, str]:
    """The paper tables (a select and a section each) and the documents, as HTML."""
    options, sections = [], []
    for group in study.table_groups.values():
        measure, levels = group["measure"], group["levels"]
        for parameter in group["parameters"]:
            stem = f"{measure}_{parameter}{slice_suffix(levels)}"
            text = tables.get(f"{stem}.md")
            if text is None:
                continue
            title = paper_table_title(measure, parameter, levels)
            hidden = "" if not sections else " hidden"
            options.append(f'<option value="{stem}">{html.escape(title)}</option>')
            sections.append(
                f'<section class="paper-table" data-table="{stem}"{hidden}>'
                f"<h3>{html.escape(title)}</h3>\n{markdown_html(text, source=f'{stem}.md')}\n"
                f'<p class="note">From <code>tables/{stem}.md</code>.</p></section>'
            )
    paper = (
        '<label class="field">Table <select id="table-select">'
        + "".join(options)
        + "</select></label>\n"
        + "\n".join(sections)
    )
    documents = []
    for name in DOCUMENTS:
        text = tables.get(name)
        if text is not None:
            documents.append(
                f'<section class="document" data-document="{name}">'
                f"{markdown_html(text, source=name)}"
                f'<p class="note">From <code>tables/{name}</code>.</p></section>'
            )
    return paper, "\n".join(documents)


def _study_view(study: Study, provenance: Mapping[str, Any], plotly_version: str) -> str:
    """The configuration, seed, versions, commit and hashes of the provenance record."""
    git = provenance.get("git") or {}
    facts = [
        ("seed", provenance.get("seed", study.seed)),
        ("replications per cell", study.replications),
        ("α (intervals 1 − α)", study.alpha),
        ("cells", len(study.cells)),
        ("methods", ", ".join(study.methods)),
        (
            "priors",
            ", ".join(sorted((p.name for p in study.fitted_priors), key=prior_rank)) or "none",
        ),
        ("git commit", git.get("commit") or "not recorded (not run in a git checkout)"),
        ("tracked files changed", {True: "yes", False: "no"}.get(git.get("dirty"), "not recorded")),
        ("drawn with", f"Plotly {plotly_version} (plotly.js, inlined)"),
    ]

    def rows(items: Sequence[tuple[Any, Any]]) -> str:
        return "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in items
        )

    packages = sorted((provenance.get("packages") or {}).items())
    platform = sorted((provenance.get("platform") or {}).items())
    hashes = sorted((provenance.get("tables") or {}).items())
    config = yaml.safe_dump(
        provenance.get("config", dict(study.config)),
        sort_keys=False,
        default_flow_style=None,
        allow_unicode=True,
        width=88,
    )
    return "\n".join(
        [
            "<h2>Study</h2>",
            f'<table class="kv" id="study-facts">{rows(facts)}</table>',
            "<h3>Configuration (resolved, as recorded)</h3>",
            f'<pre class="config" id="study-config">{html.escape(config)}</pre>',
            "<h3>Package versions</h3>",
            f'<table class="kv" id="study-packages">{rows(packages)}</table>',
            "<h3>Platform</h3>",
            f'<table class="kv">{rows(platform)}</table>',
            f"<h3>Provenance: SHA-256 of the {len(hashes)} recorded files</h3>",
            '<p class="note">As <code>results/provenance.json</code> records them; '
            "<code>python -m regsim verify results/</code> checks the files against them.</p>",
            f'<table class="md" id="study-hashes"><thead><tr><th>file</th><th>SHA-256</th>'
            f"</tr></thead><tbody>{rows(hashes)}</tbody></table>",
        ]
    )


def explorer_html(
    metrics: pd.DataFrame,
    study: Study,
    provenance: Mapping[str, Any],
    *,
    tables: Mapping[str, str] | None = None,
    zip_fits: pd.DataFrame | None = None,
) -> str:
    """The explorer page of a study's results: one HTML file, everything inline.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The metrics table (``regsim.tableio.read_metrics``).
    study : Study
        The study of the results.
    provenance : mapping
        Its provenance record (``regsim.provenance.read_provenance``).
    tables : mapping of str to str, optional
        Markdown tables by file name (``coverage_beta1.md``, ``failures.md``,
        ``failures_sensitivity.md``, ``theory.md``); those given are shown.
    zip_fits : pandas.DataFrame, optional
        The table of fits of the zip plot's cell; no zip plot without.

    Returns
    -------
    str
        The page. Its data are the JSON of :func:`explorer_data` in a
        ``<script type="application/json" id="explorer-data">`` block; nothing is fetched.

    Raises
    ------
    regsim.errors.RegsimError
        If the ``plotly`` package is not installed.
    """
    bundle, version = plotly_bundle()
    app = resources.files("regsim").joinpath("explorer.js").read_text(encoding="utf-8")
    data = explorer_data(metrics, study, zip_fits=zip_fits)
    paper, documents = _tables_view(study, tables or {})
    zip_cell = data["study"]["zip"]
    summary = (
        f"{len(data['cells'])} cells × {len(data['series'])} estimators (methods and priors), "
        f"{study.replications} replicates per cell, seed {study.seed}, "
        f"intervals {100 * (1 - study.alpha):g}%"
    )
    views = [
        ("plot", "Plot"),
        ("nested", "Nested loop"),
        ("zip", "Zip plot"),
        ("tables", "Tables"),
        ("documents", "Diagnostics"),
        ("study", "Study"),
    ]
    tabs = "".join(
        f'<button type="button" role="tab" data-view="{key}" '
        f'aria-selected="{"true" if key == "plot" else "false"}">{label}</button>'
        for key, label in views
    )
    body = f"""
<header>
<h1>regsim results explorer</h1>
<p>{html.escape(summary)}. Every number is read from <code>results/tables/metrics.csv</code>;
bars are ±1.96 MCSE.</p>
</header>
<nav role="tablist">{tabs}</nav>
<div id="layout">
<form id="controls" autocomplete="off" onsubmit="return false">
<label class="field" data-views="plot nested">Measure <select id="measure"></select></label>
<label class="field" data-views="plot nested zip">Parameter <select id="parameter"></select></label>
<label class="field" data-views="plot">x axis <select id="x-factor"></select></label>
<label class="field" data-views="plot">Panels <select id="panel-factor"></select></label>
<fieldset data-views="plot"><legend>Filters</legend><div id="filters"></div></fieldset>
<fieldset data-views="plot nested zip"><legend>Methods</legend><div id="methods"></div></fieldset>
<fieldset data-views="plot nested zip"><legend>Priors (MAP, Bayes)</legend><div id="priors"></div>
</fieldset>
<p class="note">Hover a point for its estimate (MCSE), replicates used and failures; click a
legend entry to hide a series.</p>
</form>
<main>
<section id="view-plot"><div id="plot" class="graph"></div></section>
<section id="view-nested" hidden><div id="nested" class="graph"></div></section>
<section id="view-zip" hidden>
<p>Zip plot of the cell {html.escape(str(zip_cell["cell"]))}
(n = {zip_cell["n"]}, σ = {html.escape(str(zip_cell["sigma"]))}): each replicate's interval
at the centile of its |z| = |estimate − true| / SE, sky blue if it covers the true value,
orange if not; the estimated coverage (solid), its Monte Carlo 95% interval (dashed) and the
nominal level (dotted).</p>
<div id="zip" class="graph"></div></section>
<section id="view-tables" hidden>{paper}</section>
<section id="view-documents" hidden>{documents}</section>
<section id="view-study" hidden>{_study_view(study, provenance, version)}</section>
</main>
</div>
"""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>regsim results explorer</title>\n"
        f"<style>{_CSS}{TABLE_CSS}</style>\n"
        f"<script>{bundle}</script>\n"
        f"</head>\n<body>{body}"
        f'<script type="application/json" id="explorer-data">{_json_script(data)}</script>\n'
        f"<script>{app}</script>\n</body>\n</html>\n"
    )


def write_explorer(
    path: str | os.PathLike[str],
    config: Mapping[str, Any],
    *,
    metrics: str | os.PathLike[str],
    provenance: str | os.PathLike[str],
    tables: Sequence[str | os.PathLike[str]] = (),
    zip_fits: str | os.PathLike[str] | None = None,
) -> Path:
    """Read a study's recorded files and write its explorer page (:func:`explorer_html`).

    Parameters
    ----------
    path : path-like
        The page to write (``results/explorer.html``), atomically.
    config : mapping
        The study's resolved configuration (the workflow's; the record's copy has its keys
        sorted, which would lose the grid order of named truths and designs).
    metrics : path-like
        ``results/tables/metrics.csv``.
    provenance : path-like
        ``results/provenance.json``, shown in the page.
    tables : sequence of path-like
        The Markdown tables to show (paper tables, failures, theory).
    zip_fits : path-like, optional
        The table of fits of the zip plot's cell.

    Returns
    -------
    Path
        The page written.

    Raises
    ------
    regsim.errors.DataFileError
        If a file is missing or damaged.
    regsim.errors.RegsimError
        If the configuration is not a study's, or Plotly is not installed.
    """
    from regsim.tableio import read_metrics, read_parquet

    try:
        record = json.loads(Path(provenance).read_text(encoding="utf-8"))
    except OSError as error:
        raise DataFileError(f"{provenance}: cannot read it ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataFileError(f"{provenance}: not a provenance record ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise DataFileError(f"{provenance}: not a provenance record (no config)")
    study = Study.from_config(config)
    texts = {}
    for table in tables:
        try:
            texts[Path(table).name] = Path(table).read_text(encoding="utf-8")
        except OSError as error:
            raise DataFileError(f"{table}: cannot read it ({error.strerror})") from None
    fits = None if zip_fits is None else read_parquet(zip_fits)
    page = explorer_html(read_metrics(metrics), study, record, tables=texts, zip_fits=fits)
    write_text_atomic(path, page)
    return Path(path)
