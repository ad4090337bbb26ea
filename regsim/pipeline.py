"""What the Snakefile needs while it parses: file names, job parameters and resources.

Kept to the standard library and :mod:`regsim.design` so that parsing the workflow (every
``snakemake`` call, dry runs and no-op reruns included) and each job's start-up stay cheap;
the rules' work lives in :mod:`regsim.stages`. Nothing here reads the config or imports
Snakemake: the Snakefile passes everything as arguments.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from regsim.design import DEFAULT_ERRORS, ERROR_MODELS, Cell, Prior
from regsim.errors import ConfigError, RegsimError

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

#: The error-model column: present in a fits or metrics table only when the study has a
#: non-normal error model, so that normal-error studies' tables are unchanged by the factor.
ERRORS_COLUMN = "errors"

#: Method order in output tables; methods not listed follow alphabetically.
METHOD_ORDER: tuple[str, ...] = ("ols", "ols_hc3", "mle", "map")


def with_errors(columns: Sequence[str], table_columns: Sequence[str]) -> tuple[str, ...]:
    """``columns`` with ``errors`` inserted after ``sigma`` if the table has that column."""
    columns = tuple(columns)
    if ERRORS_COLUMN not in table_columns or ERRORS_COLUMN in columns:
        return columns
    at = columns.index("sigma") + 1
    return (*columns[:at], ERRORS_COLUMN, *columns[at:])


#: Methods for which the ``n_multimodal`` measure is reported.
MULTIMODAL_METHODS: frozenset[str] = frozenset({"map"})

#: Per-step cost model for job resources: (base MB, bytes per observation-replicate,
#: base minutes, minutes per million observation-replicates).
_COSTS: dict[str, tuple[float, float, float, float]] = {
    "generate": (500.0, 120.0, 1.0, 0.5),
    "fit": (800.0, 600.0, 2.0, 5.0),
    "summarize": (800.0, 20000.0, 1.0, 0.0),
}

#: The steps each rule's job does: a simulate job draws and fits a chunk; a whole-cell
#: simulate job summarizes the cell too.
_STEPS: dict[str, tuple[str, ...]] = {
    "simulate": ("generate", "fit"),
    "simulate_cell": ("generate", "fit", "summarize"),
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


def error_suffix(errors: str) -> str:
    """File-name suffix of an error model: ``""`` for normal errors, else ``_<model>``."""
    if errors not in ERROR_MODELS:
        raise ValueError(f"unknown error model {errors!r}; known: {', '.join(ERROR_MODELS)}")
    return "" if errors == DEFAULT_ERRORS else f"_{errors}"


def cell_label(cell: Cell) -> str:
    """Directory / file stem of a data cell, e.g. ``n20_sigma1``, ``n50_sigma0.5_t3``.

    Normal-error cells keep the label they had before error models existed.
    """
    return f"n{cell.n}_{noise_label(cell.sigma, cell.errors)}"


def noise_label(sigma: float, errors: str) -> str:
    """The part of a cell label after its sample size, e.g. ``sigma0.5_t3``."""
    return f"sigma{format_number(sigma)}{error_suffix(errors)}"


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


def as_paths(output: str | Sequence[str]) -> list[str]:
    """A rule's named output as a list: one path, or the list a named list output holds."""
    return [output] if isinstance(output, str) else list(output)


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
    stage : {"simulate", "simulate_cell", "summarize", "generate", "fit"}
        The job: a simulate job of a chunk, of a whole cell (which summarizes it too), a
        summarize job, or the generate and fit steps alone.
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
    mem_mb, runtime = 0.0, 0.0
    for step in _STEPS.get(stage, (stage,)):
        base_mb, bytes_per, base_min, min_per_million = _COSTS[step]
        size = replications if step == "summarize" else n * replications
        mem_mb = max(mem_mb, base_mb) + bytes_per * size / 1e6
        runtime += base_min + min_per_million * size / 1e6
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


def sample_size_resource(field: str, replications: int, cells: int) -> Callable[[Any], int]:
    """A Snakemake resource function for a job simulating ``cells`` whole cells of one n.

    The cells are drawn, fitted and summarized one after the other: the job needs the
    memory of one and the run time of all (wildcard ``n``).
    """

    def resource(wildcards: Any) -> int:
        one_cell = job_resources("simulate_cell", int(wildcards.n), replications)
        return one_cell[field] * (cells if field == "runtime" else 1)

    return resource


# --------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------


#: Qualified name of the function Snakemake's scheduler runs on a timer to look at its
#: queue again (Snakemake's own spelling).
_REEVALUATION = "JobScheduler._schedule_reevalutation.<locals>.<lambda>"


def cancel_scheduler_timers() -> int:
    """Cancel Snakemake's pending queue re-checks once a run has ended; return how many.

    Snakemake (9.x) looks at its job queue again one second after each scheduling round,
    on a ``threading.Timer`` the interpreter waits for before it exits: every run ended a
    second after its last job. Called from the Snakefile's ``onsuccess`` and ``onerror``,
    when nothing is left to schedule. Other timers are left alone, and nothing happens if
    a Snakemake version schedules its re-checks differently.
    """
    pending = [
        thread
        for thread in threading.enumerate()
        if isinstance(thread, threading.Timer)
        and getattr(thread.function, "__qualname__", "") == _REEVALUATION
    ]
    for timer in pending:
        timer.cancel()
    return len(pending)


@contextmanager
def log_to(path: str | os.PathLike[str]) -> Iterator[logging.Logger]:
    """Send logging, warnings, stdout and stderr to ``path`` for the duration.

    An exception leaving the block is logged with its traceback, then re-raised. A
    :class:`~regsim.errors.RegsimError` (bad input, a damaged file) is a message for the
    user, not a bug: it is logged as one ``ERROR`` line and the job exits with status 1
    printing ``error: <message>`` as one line, which Snakemake shows on the console.

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
        failure: SystemExit | None = None
        try:
            with redirect_stdout(stream), redirect_stderr(stream), warnings.catch_warnings():
                warnings.simplefilter("default")
                try:
                    yield log
                except RegsimError as error:
                    log.error("job failed: %s", error)
                    failure = SystemExit(f"error: {error}")
                except BaseException:
                    log.exception("job failed")
                    raise
        finally:
            logging.captureWarnings(False)
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.flush()
    if failure is not None:
        raise failure from None


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


#: Figure families drawn from metrics.csv (the keys of ``regsim.figures.FIGURES``; named
#: here so that parsing the workflow does not import matplotlib).
FIGURES: tuple[str, ...] = ("bias", "coverage", "efficiency", "modelse", "sigma", "nested_loop")


def figure_files(error_models: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Figure file stems, each mapped to its (figure family, error model).

    One file per family and error model: ``bias`` for normal errors (as before error models
    existed), ``bias_t3`` for t₃ errors, and so on.
    """
    return {
        f"{figure}{error_suffix(errors)}": (figure, errors)
        for errors in error_models
        for figure in FIGURES
    }


def figure_options(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Keyword arguments of ``regsim.figures.FIGURES[name]`` from the ``figures`` config."""
    options = dict(config.get("figures", {}).get(name, {}))
    if name == "coverage":
        options.setdefault("alpha", config["alpha"])
        options.setdefault("replications", config["replications"])
    return options


def zip_settings(config: Mapping[str, Any], cells: Mapping[str, Cell]) -> dict[str, Any]:
    """The zip plot's cell (label, n, sigma, errors) and parameter, defaults filled in.

    The default cell is the first n and σ of the grid with the first error model.

    Raises
    ------
    ConfigError
        If ``figures.zip`` names a cell outside the grid or an unknown parameter.
    """
    chosen = {
        "n": config["grid"]["n"][0],
        "sigma": config["grid"]["sigma"][0],
        "errors": next(iter(cells.values())).errors if cells else DEFAULT_ERRORS,
        "parameter": "beta1" if len(config["beta"]) > 1 else "beta0",
        **config.get("figures", {}).get("zip", {}),
    }
    label = next(
        (
            label
            for label, cell in cells.items()
            if cell.n == chosen["n"]
            and cell.sigma == float(chosen["sigma"])
            and cell.errors == chosen["errors"]
        ),
        None,
    )
    if label is None:
        raise ConfigError(
            f"figures.zip: cell n={chosen['n']}, sigma={chosen['sigma']}, "
            f"errors={chosen['errors']} is not in the grid"
        )
    parameters = [f"beta{j}" for j in range(len(config["beta"]))] + ["sigma"]
    if chosen["parameter"] not in parameters:
        raise ConfigError(
            f"figures.zip.parameter: {chosen['parameter']!r} is not one of {parameters}"
        )
    return {"cell": label, **chosen}
