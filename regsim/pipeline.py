"""Small helpers behind the workflow's rules: file names, job steps and table output.

Each ``run_*`` function is one rule's whole job, called from a thin ``scripts/*.py``; the
other helpers name files, size jobs and write tables. Nothing here reads the config or
imports Snakemake: the Snakefile passes everything as arguments.

Outputs are deterministic: per-cell tables are sorted by fixed keys and the metrics CSV
writes floats with ``%.17g``, so the files are byte-identical whatever the number of
cores, the chunking of replicates into jobs, or the order jobs ran in.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pandas as pd

from regsim.design import Cell, Prior
from regsim.errors import DataFileError
from regsim.estimators import fit_table
from regsim.metrics import MEASURES, summarize
from regsim.simulate import draw, load_datasets, save_datasets

#: Columns of the metrics table, in file order.
METRICS_COLUMNS: tuple[str, ...] = (
    "n",
    "sigma",
    "prior",
    "method",
    "parameter",
    "measure",
    "estimate",
    "mcse",
)

#: Columns that identify a group of replicates (one metrics row per group and measure).
GROUP_COLUMNS: tuple[str, ...] = ("n", "sigma", "prior", "method", "parameter")

#: Method order in output tables; methods not listed follow alphabetically.
METHOD_ORDER: tuple[str, ...] = ("ols", "mle", "map")

#: Methods for which the ``n_multimodal`` measure is reported.
MULTIMODAL_METHODS: frozenset[str] = frozenset({"map"})

#: Per-stage cost model for job resources: (base MB, bytes per observation-replicate,
#: base minutes, minutes per million observation-replicates).
_COSTS: dict[str, tuple[float, float, float, float]] = {
    "generate": (500.0, 120.0, 1.0, 0.5),
    "fit": (800.0, 600.0, 2.0, 5.0),
    "summarize": (800.0, 20000.0, 1.0, 0.0),
}

logger = logging.getLogger("regsim.pipeline")


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------


def format_number(value: float) -> str:
    """Shortest text that reads back as the same float; whole numbers without ``.0``.

    Parameters
    ----------
    value : float
        A finite number.

    Returns
    -------
    str
        ``1`` for 1.0, ``0.5`` for 0.5, ``1e-05`` for 0.00001: unambiguous (distinct
        floats give distinct text) and stable across runs and platforms.
    """
    value = float(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def cell_label(cell: Cell) -> str:
    """Directory / file stem of a data cell, e.g. ``n20_sigma1`` or ``n50_sigma0.5``."""
    return f"n{cell.n}_sigma{format_number(cell.sigma)}"


def chunk_label(start: int, stop: int) -> str:
    """File stem of a replicate chunk ``[start, stop)``, e.g. ``reps000000-000250``."""
    return f"reps{start:06d}-{stop:06d}"


def cell_params(cell: Cell) -> dict[str, Any]:
    """A cell as plain values (for Snakemake ``params:``, which tracks them for reruns).

    Parameters
    ----------
    cell : Cell

    Returns
    -------
    dict
        ``n, sigma, beta, errors`` and the cell ``key``.
    """
    return {
        "n": cell.n,
        "sigma": cell.sigma,
        "beta": list(cell.beta),
        "errors": cell.errors,
        "key": cell.key,
    }


def cell_from_params(params: Mapping[str, Any]) -> Cell:
    """Rebuild the cell described by :func:`cell_params`, checking its key.

    Raises
    ------
    ValueError
        If the parameters do not give the recorded key.
    """
    cell = Cell(
        n=int(params["n"]),
        sigma=float(params["sigma"]),
        beta=tuple(float(b) for b in params["beta"]),
        errors=str(params.get("errors", "normal")),
    )
    if "key" in params and params["key"] != cell.key:
        raise ValueError(f"cell parameters {dict(params)} do not match key {params['key']}")
    return cell


def prior_params(priors: Sequence[Prior]) -> list[dict[str, Any]]:
    """Priors as plain values, in the given order (for Snakemake ``params:``)."""
    return [{"name": p.name, "mean": list(p.mean), "sd": list(p.sd)} for p in priors]


def priors_from_params(params: Sequence[Mapping[str, Any]]) -> list[Prior]:
    """Rebuild the priors described by :func:`prior_params`."""
    return [Prior(name=p["name"], mean=tuple(p["mean"]), sd=tuple(p["sd"])) for p in params]


# --------------------------------------------------------------------------------------
# Job resources
# --------------------------------------------------------------------------------------


def job_resources(stage: str, n: int, replications: int) -> dict[str, int]:
    """Memory and run time to request for one job.

    Parameters
    ----------
    stage : {"generate", "fit", "summarize"}
        The rule.
    n : int
        Observations per dataset.
    replications : int
        Replicates handled by the job.

    Returns
    -------
    dict
        ``mem_mb`` (MB) and ``runtime`` (minutes), growing linearly with ``n × replications``
        (for summarize, with ``replications``: it reads fits, not datasets), with generous
        margins over measured use.
    """
    base_mb, bytes_per, base_min, min_per_million = _COSTS[stage]
    size = replications if stage == "summarize" else n * replications
    mem_mb = base_mb + bytes_per * size / 1e6
    runtime = base_min + min_per_million * size / 1e6
    return {"mem_mb": int(math.ceil(mem_mb)), "runtime": int(math.ceil(runtime))}


def job_resource(
    stage: str,
    field: str,
    cells: Mapping[str, Cell],
    chunks: Mapping[str, tuple[int, int]] | None = None,
    replications: int = 1000,
) -> Callable[[Any], int]:
    """A Snakemake resource function: one field of :func:`job_resources` for a job.

    Parameters
    ----------
    stage : str
        The rule, as for :func:`job_resources`.
    field : {"mem_mb", "runtime"}
        The resource.
    cells : mapping
        Cells by the ``cell`` wildcard's value.
    chunks : mapping, optional
        Replicate ranges by the ``chunk`` wildcard's value, for per-chunk jobs.
    replications : int, default 1000
        Replicates per cell, for whole-cell jobs (no ``chunks``).

    Returns
    -------
    callable
        ``f(wildcards) -> int``.
    """

    def resource(wildcards: Any) -> int:
        cell = cells[wildcards.cell]
        if chunks is None:
            return job_resources(stage, cell.n, replications)[field]
        start, stop = chunks[wildcards.chunk]
        return job_resources(stage, cell.n, stop - start)[field]

    return resource


# --------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------


@contextmanager
def log_to(path: str | os.PathLike[str]) -> Iterator[logging.Logger]:
    """Send logging, warnings, stdout and stderr to ``path`` for the duration.

    An exception leaving the block is logged with its traceback, then re-raised.

    Parameters
    ----------
    path : path-like
        The rule's log file (created or overwritten).

    Yields
    ------
    logging.Logger
        The ``regsim`` logger.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    with path.open("w", encoding="utf-8") as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        log = logging.getLogger("regsim")
        try:
            with redirect_stdout(stream), redirect_stderr(stream), warnings.catch_warnings():
                warnings.simplefilter("default")
                try:
                    yield log
                except BaseException:
                    log.exception("job failed")
                    raise
        finally:
            logging.captureWarnings(False)
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.flush()


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
