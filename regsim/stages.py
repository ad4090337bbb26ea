"""The rules' work: each ``run_*`` function is one rule's whole job.

Called from the thin ``scripts/*.py``; nothing here reads the config or imports Snakemake.
Outputs are deterministic: per-cell tables are sorted by fixed keys and the metrics CSV
writes floats with ``%.17g``, so the files are byte-identical whatever the number of
cores, the chunking of replicates into jobs, or the order jobs ran in.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from regsim.errors import DataFileError
from regsim.estimators import fit_table
from regsim.metrics import MEASURES, summarize
from regsim.pipeline import (
    GROUP_COLUMNS,
    METHOD_ORDER,
    METRICS_COLUMNS,
    MULTIMODAL_METHODS,
    cell_from_params,
    cell_label,
    format_number,
    priors_from_params,
)
from regsim.simulate import draw, load_datasets, save_datasets

logger = logging.getLogger("regsim.pipeline")


# --------------------------------------------------------------------------------------
# Writing and reading tables
# --------------------------------------------------------------------------------------


def _write_atomic(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_parquet(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``table`` (without its index) to a parquet file, atomically."""
    _write_atomic(path, lambda tmp: table.to_parquet(tmp, index=False, engine="pyarrow"))


def read_parquet(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a parquet file written by a pipeline stage.

    Raises
    ------
    DataFileError
        If the file is missing or unreadable; the message names the file.
    """
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: table file not found") from error
    except Exception as error:  # pyarrow raises several types for corrupt files
        raise DataFileError(
            f"{path}: unreadable table file ({type(error).__name__}: {error}); "
            "delete it and rerun the workflow to regenerate it"
        ) from error


def write_metrics_csv(metrics: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write the metrics table as CSV, deterministically and atomically.

    Columns are :data:`METRICS_COLUMNS`; ``sigma`` is written as by :func:`format_number`,
    ``estimate`` and ``mcse`` with ``%.17g`` (exact round trip), missing values as empty
    fields, the prior of methods without one as an empty field, lines end with ``\\n``.
    """
    table = metrics.loc[:, list(METRICS_COLUMNS)].copy()
    table["sigma"] = [format_number(s) for s in table["sigma"]]
    table["estimate"] = table["estimate"].astype(float)
    table["mcse"] = table["mcse"].astype(float)
    _write_atomic(
        path,
        lambda tmp: table.to_csv(
            tmp, index=False, float_format="%.17g", na_rep="", lineterminator="\n"
        ),
    )


def read_metrics(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``metrics.csv`` with the intended types (``prior`` stays ``""``, not NaN).

    Parameters
    ----------
    path : path-like
        A file written by :func:`write_metrics_csv`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`METRICS_COLUMNS`; ``n`` int, ``sigma``, ``estimate``, ``mcse`` float.
    """
    table = pd.read_csv(
        path,
        dtype={"prior": str, "method": str, "parameter": str, "measure": str},
        keep_default_na=False,
        na_values={"estimate": [""], "mcse": [""]},
    )
    table["n"] = table["n"].astype("int64")
    for column in ("sigma", "estimate", "mcse"):
        table[column] = table[column].astype(float)
    return table


# --------------------------------------------------------------------------------------
# Ordering
# --------------------------------------------------------------------------------------


def _method_key(method: str) -> str:
    rank = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
    return f"{rank:03d}{method}"


def _parameter_key(parameter: str) -> str:
    if parameter.startswith("beta") and parameter[4:].isdigit():
        return f"0{int(parameter[4:]):09d}"
    if parameter == "sigma":
        return "1"
    return f"2{parameter}"


def _measure_key(measure: str) -> str:
    rank = MEASURES.index(measure) if measure in MEASURES else len(MEASURES)
    return f"{rank:03d}{measure}"


_SORT_KEYS: dict[str, Callable[[str], str]] = {
    "method": _method_key,
    "parameter": _parameter_key,
    "measure": _measure_key,
}


def sort_table(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Sort rows by ``columns`` in the study's fixed order; return a new table.

    ``n``, ``sigma`` and ``replicate`` sort numerically, ``prior`` alphabetically (the
    empty prior of OLS/MLE first), ``method`` as :data:`METHOD_ORDER`, ``parameter`` as
    ``beta0, beta1, …, sigma`` and ``measure`` as ``regsim.metrics.MEASURES``.
    """

    def key(column: pd.Series) -> pd.Series:
        function = _SORT_KEYS.get(str(column.name))
        return column.map(function) if function else column

    return table.sort_values(list(columns), key=key, kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Rule steps
# --------------------------------------------------------------------------------------


def run_generate(
    cell: Mapping[str, Any], seed: int, start: int, stop: int, output: str | os.PathLike[str]
) -> None:
    """Rule ``generate``: draw replicates ``start .. stop-1`` of one cell and save them.

    Parameters
    ----------
    cell : mapping
        The cell as given by :func:`cell_params`.
    seed : int
        The study's base seed.
    start, stop : int
        Replicate range.
    output : path-like
        The ``.npz`` file to write.
    """
    data_cell = cell_from_params(cell)
    logger.info(
        "cell %s (key %s), replicates %d-%d", cell_label(data_cell), data_cell.key, start, stop - 1
    )
    save_datasets(output, draw(data_cell, int(seed), int(start), int(stop)))


def run_fit(
    datasets: str | os.PathLike[str],
    priors: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    alpha: float,
    output: str | os.PathLike[str],
) -> None:
    """Rule ``fit``: fit every method and prior on one chunk of datasets.

    Parameters
    ----------
    datasets : path-like
        An ``.npz`` file written by :func:`run_generate`.
    priors : sequence of mapping
        As given by :func:`prior_params` (used by the MAP fits).
    methods : sequence of str
        Estimators to run.
    alpha : float
        Intervals have coverage ``1 - alpha``.
    output : path-like
        The parquet file to write: the long table of ``regsim.estimators.fit_table``.
    """
    data = load_datasets(datasets)
    logger.info(
        "%s: %d replicates, methods %s, priors %s",
        datasets,
        len(data),
        ", ".join(methods),
        ", ".join(p["name"] for p in priors) or "-",
    )
    table = fit_table(data, priors_from_params(priors), list(methods), float(alpha))
    write_parquet(table, output)


def concat_fits(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Read fit chunks and return one table sorted by group, then replicate.

    The result does not depend on how the replicates were split into chunks.
    """
    if not paths:
        raise ValueError("no fit tables to combine")
    table = pd.concat([read_parquet(p) for p in paths], ignore_index=True)
    return sort_table(table, [*GROUP_COLUMNS, "replicate"])


def summarize_cell(fits: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Performance measures of one cell's fits, one row per group and measure.

    Parameters
    ----------
    fits : pandas.DataFrame
        Long table of replicate fits (columns of ``regsim.estimators.FIT_COLUMNS``).
    alpha : float
        Nominal level; the intervals themselves come from the ``lower``/``upper`` columns.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`METRICS_COLUMNS`, sorted; ``n_multimodal`` only for MAP.
    """
    metrics = summarize(
        fits,
        estimate="estimate",
        se="se",
        true_col="true",
        by=list(GROUP_COLUMNS),
        lower="lower",
        upper="upper",
        alpha=float(alpha),
        converged_col="converged",
        multimodal_col="multimodal",
    )
    keep = (metrics["measure"] != "n_multimodal") | metrics["method"].isin(MULTIMODAL_METHODS)
    return sort_table(metrics.loc[keep, list(METRICS_COLUMNS)], GROUP_COLUMNS + ("measure",))


def run_summarize(
    fits: Sequence[str | os.PathLike[str]],
    alpha: float,
    fits_output: str | os.PathLike[str],
    metrics_output: str | os.PathLike[str],
) -> None:
    """Rule ``summarize``: combine one cell's fit chunks and compute its metrics.

    Parameters
    ----------
    fits : sequence of path-like
        The cell's fit chunks.
    alpha : float
        Nominal level.
    fits_output : path-like
        Parquet file for the cell's whole long table (every replicate).
    metrics_output : path-like
        Parquet file for the cell's metrics rows.
    """
    table = concat_fits(fits)
    logger.info("%d fit rows from %d chunks", len(table), len(fits))
    write_parquet(table, fits_output)
    write_parquet(summarize_cell(table, alpha), metrics_output)


def collect_metrics(paths: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Concatenate per-cell metrics tables into one sorted table."""
    if not paths:
        raise ValueError("no metrics tables to combine")
    table = pd.concat([read_parquet(p) for p in paths], ignore_index=True)
    return sort_table(table.loc[:, list(METRICS_COLUMNS)], GROUP_COLUMNS + ("measure",))


def run_collect(metrics: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str]) -> None:
    """Rule ``collect``: write ``metrics.csv`` from every cell's metrics table."""
    table = collect_metrics(metrics)
    logger.info("%d metrics rows from %d cells", len(table), len(metrics))
    write_metrics_csv(table, output)
