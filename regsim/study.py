"""The study a checked configuration describes, as typed values the workflow plans from.

:class:`Study` is built once, when the workflow is parsed, from the configuration that
``regsim.config.resolve`` returns: its data cells, priors and methods, the plan of simulate
jobs and the specs of their jobs, and the names of everything it writes (figures per slice
of the optional factors, paper tables, the zip plot's cell). Kept free of numpy, pandas and
Snakemake, so that parsing the workflow stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from regsim.config import (
    DEFAULT_KEEP_DATASETS,
    DEFAULT_MAP_MAX_ITER,
    DEFAULT_OBSERVATIONS_PER_JOB,
    designs,
    error_models,
    truths,
)
from regsim.design import Cell, Design, Job, Prior, plan_jobs
from regsim.errors import ConfigError
from regsim.schema import (
    DEFAULT_SIGMA_PRIOR,
    OPTIONAL_FACTORS,
    PAPER_MEASURES,
    PRIOR_METHODS,
    REFERENCE_CANDIDATES,
    parameter_names,
)
from regsim.specs import CollectJob, FitSpec, PaperJob, SimulateJob, fits_fingerprint

#: Figure families drawn from the metrics table (the keys of ``regsim.figures.FIGURES``;
#: named here so that parsing the workflow does not import matplotlib).
FIGURE_FAMILIES: tuple[str, ...] = (
    "bias",
    "coverage",
    "rejection",
    "efficiency",
    "laplace",
    "modelse",
    "sigma",
    "nested_loop",
)


def _levels_text(levels: Cell | Mapping[str, Any]) -> str:
    """A cell's levels as text, e.g. ``n=20, sigma=1, errors=normal, truth=null, design=…``."""
    items = levels.levels if isinstance(levels, Cell) else levels
    return ", ".join(f"{name}={value}" for name, value in items.items())


def slice_suffix(levels: Mapping[str, str]) -> str:
    """File-name suffix of a slice: ``""`` at every default, else ``_<level>`` per factor."""
    return "".join(
        f"_{levels[f.name]}" for f in OPTIONAL_FACTORS if levels.get(f.name, f.default) != f.default
    )


def slice_text(levels: Mapping[str, str]) -> str:
    """The non-default levels of a slice as text, e.g. ``"truth null_slope, design
    collinear"``; ``""`` at every default."""
    return ", ".join(
        f"{f.name} {levels[f.name]}"
        for f in OPTIONAL_FACTORS
        if levels.get(f.name, f.default) != f.default
    )


@dataclass(frozen=True)
class Study:
    """A resolved study configuration (see ``config.yaml`` and docs/configuration.md).

    Build it with :meth:`from_config`; ``config`` keeps the resolved dictionary for the
    provenance record.
    """

    config: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Study:
        """The study of a configuration checked by ``regsim.config.resolve``.

        Raises
        ------
        ConfigError
            If the ``figures`` settings name a cell or parameter the study lacks.
        """
        study = cls(config)
        study.labels  # noqa: B018 - checked now, before any job
        study.zip  # noqa: B018
        study.estimate_plots  # noqa: B018
        study.check_loops()
        return study

    def check_loops(self) -> None:
        """The nested-loop plot's ``loops`` option, if given, orders the grid's factors.

        Raises
        ------
        ConfigError
            If it is not a permutation of ``n``, ``sigma`` and the factors with several
            levels in the grid.
        """
        loops = ((self.config.get("figures") or {}).get("nested_loop") or {}).get("loops")
        if loops is None:
            return
        several = [
            f.name for f in OPTIONAL_FACTORS if len({c.levels[f.name] for c in self.cells}) > 1
        ]
        factors = [*several, "sigma", "n"]
        if sorted(map(str, loops)) != sorted(factors):
            raise ConfigError(
                f"figures.nested_loop.loops: must order the factors the grid varies "
                f"({', '.join(factors)}), got {', '.join(map(str, loops))}"
            )

    # ----------------------------------------------------------------------------------
    # Settings
    # ----------------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The base seed."""
        return int(self.config["seed"])

    @property
    def replications(self) -> int:
        """Replicates per cell."""
        return int(self.config["replications"])

    @property
    def alpha(self) -> float:
        """Intervals have nominal coverage 1 − α."""
        return float(self.config["alpha"])

    @cached_property
    def truths(self) -> dict[str, tuple[float, ...]]:
        """The truths of the grid by name (``beta`` for a config's ``beta:``), in grid order."""
        return truths(self.config)

    @cached_property
    def designs(self) -> dict[str, Design]:
        """The covariate designs of the grid by name, in grid order."""
        return {name: Design(name=name, **spec) for name, spec in designs(self.config).items()}

    @property
    def p(self) -> int:
        """Number of coefficients."""
        return len(next(iter(self.truths.values())))

    @property
    def parameters(self) -> list[str]:
        """The fitted parameters: ``beta0 … sigma``."""
        return parameter_names(self.p)

    @property
    def methods(self) -> tuple[str, ...]:
        """The estimators, as configured."""
        return tuple(self.config["methods"])

    @cached_property
    def priors(self) -> tuple[Prior, ...]:
        """The priors, in the order listed."""
        return tuple(
            Prior(name=name, mean=tuple(spec["mean"]), sd=tuple(spec["sd"]))
            for name, spec in (self.config.get("priors") or {}).items()
        )

    @property
    def fitted_priors(self) -> tuple[Prior, ...]:
        """The priors the fits use: none without a method that takes one, so that changing
        the priors then reruns nothing."""
        return self.priors if PRIOR_METHODS.intersection(self.methods) else ()

    @property
    def sigma_prior(self) -> str:
        """The prior on σ of MAP and Bayes: ``"flat"`` or ``"jeffreys"``."""
        return str(self.config.get("sigma_prior", DEFAULT_SIGMA_PRIOR))

    @property
    def keep_datasets(self) -> bool:
        """Whether simulate jobs write the datasets."""
        return bool(self.config.get("keep_datasets", DEFAULT_KEEP_DATASETS))

    @property
    def fit(self) -> FitSpec:
        """What every replicate is fitted with."""
        return FitSpec(
            methods=self.methods,
            priors=self.fitted_priors,
            alpha=self.alpha,
            map_max_iter=int(self.config.get("map_max_iter", DEFAULT_MAP_MAX_ITER)),
            sigma_prior=self.sigma_prior if self.fitted_priors else DEFAULT_SIGMA_PRIOR,
        )

    # ----------------------------------------------------------------------------------
    # The grid
    # ----------------------------------------------------------------------------------

    @cached_property
    def cells(self) -> tuple[Cell, ...]:
        """Every data cell: n slowest, then σ, the error model, the truth, the design."""
        grid = self.config["grid"]
        return tuple(
            Cell(
                n=int(n),
                sigma=float(sigma),
                beta=beta,
                errors=errors,
                truth=truth,
                design=design,
            )
            for n in grid["n"]
            for sigma in grid["sigma"]
            for errors in error_models(self.config)
            for truth, beta in self.truths.items()
            for design in self.designs.values()
        )

    @cached_property
    def labels(self) -> dict[str, Cell]:
        """Cells by label.

        Raises
        ------
        ConfigError
            If two cells would share a label (names of levels that run together), or
            labels that differ only in case: they name files, and the file systems of
            macOS and Windows do not tell ``n10_sigma1_A`` from ``n10_sigma1_a``.
        """
        labels: dict[str, Cell] = {}
        folded: dict[str, Cell] = {}
        for cell in self.cells:
            other = folded.setdefault(cell.label.casefold(), cell)
            if other is cell:
                labels[cell.label] = cell
                continue
            if other.label == cell.label:
                raise ConfigError(
                    f"grid: cells {_levels_text(other)} and {_levels_text(cell)} would share "
                    f"the file label {cell.label}; rename a truth or design"
                )
            raise ConfigError(
                f"grid: the file labels {other.label} and {cell.label} differ only in case, "
                "and name the same file where case is ignored (macOS, Windows); rename a "
                "truth or design"
            )
        return labels

    @cached_property
    def varied(self) -> tuple[str, ...]:
        """The factors with a default level that the grid varies or sets off the default:
        each combination of their levels has figures and paper tables of its own."""
        return tuple(
            f.name
            for f in OPTIONAL_FACTORS
            if any(cell.levels[f.name] != f.default for cell in self.cells)
        )

    @cached_property
    def slices(self) -> list[dict[str, str]]:
        """Each combination of the optional factors' levels in the grid, in grid order."""
        found: dict[tuple[str, ...], dict[str, str]] = {}
        for cell in self.cells:  # error models in their order, truths and designs as listed
            levels = {f.name: str(cell.levels[f.name]) for f in OPTIONAL_FACTORS}
            found.setdefault(tuple(levels.values()), levels)
        return list(found.values())

    @property
    def expected(self) -> dict[str, list[Any]]:
        """The design figures and tables must cover (to mark a cell the table lacks), and
        the optional factors' levels in grid order (the nested-loop plot's loops)."""
        levels = [cell.levels for cell in self.cells]
        return {
            "n": list(self.config["grid"]["n"]),
            "sigma": list(self.config["grid"]["sigma"]),
            "methods": list(self.methods),
            "priors": [prior.name for prior in self.priors],
            **{f.name: list(dict.fromkeys(c[f.name] for c in levels)) for f in OPTIONAL_FACTORS},
        }

    # ----------------------------------------------------------------------------------
    # Jobs
    # ----------------------------------------------------------------------------------

    @property
    def observations_per_job(self) -> int:
        """The budget of one simulate job (replicates × n)."""
        return int(self.config.get("observations_per_job", DEFAULT_OBSERVATIONS_PER_JOB))

    @cached_property
    def plan(self) -> dict[str, Job]:
        """The simulate jobs by name (``regsim.design.plan_jobs``)."""
        jobs = plan_jobs(self.cells, self.replications, self.observations_per_job)
        return {job.name: job for job in jobs}

    def simulate_job(self, name: str) -> SimulateJob:
        """The spec of simulate job ``name``."""
        return SimulateJob(
            name=name,
            seed=self.seed,
            units=self.plan[name].units,
            fit=self.fit,
        )

    @property
    def failures(self) -> str:
        """The failure rule of the measures: ``own`` or ``common``."""
        return str(self.config.get("failures", "own"))

    @property
    def collect_job(self) -> CollectJob:
        """The spec of the collect job."""
        return CollectJob(
            cells=tuple(self.labels),
            replications=self.replications,
            alpha=self.alpha,
            reference=self.reference,
            failures=self.failures,
            p=self.p,
            designs=designs(self.config),
            seed=self.seed,
            fingerprints=tuple(fits_fingerprint(cell, self.seed, self.fit) for cell in self.cells),
        )

    def job_priority(self, name: str) -> int:
        """Scheduling priority: larger jobs before smaller ones (the run ends sooner)."""
        return self._job_ranks[name]

    @cached_property
    def _job_ranks(self) -> dict[str, int]:
        # Ranked once: Snakemake asks for every job's priority while it builds the DAG.
        by_work = sorted(self.plan, key=lambda job: (self.plan[job].work, job))
        return {job: rank for rank, job in enumerate(by_work)}

    def simulate_resources(self, name: str) -> dict[str, int]:
        """Memory (MB) and run time (minutes) to request for simulate job ``name``.

        A job draws and fits in batches, so its memory does not grow with its replicates;
        its time grows with its replicates (fits and tables) and observations (draws),
        with wide margins over measured rates.
        """
        job = self.plan[name]
        replicates = sum(unit.replicates for unit in job.units)
        seconds = 60.0 + replicates * self.fit.fits * 20e-6 + job.work * 0.1e-6
        return {"mem_mb": 1000, "runtime": max(2, math.ceil(seconds / 60.0 * 2))}

    def collect_resources(self, threads: int) -> dict[str, int]:
        """Memory (MB) and run time (minutes) of the collect job with ``threads`` workers."""
        rows = len(self.cells) * self.replications * self.fit.fits * (self.p + 1)
        return {
            "mem_mb": 600 + 300 * threads,
            "runtime": max(5, math.ceil((60.0 + rows * 5e-6) / 60.0 * 2)),
        }

    # ----------------------------------------------------------------------------------
    # What is drawn from the metrics table
    # ----------------------------------------------------------------------------------

    @property
    def reference(self) -> str | None:
        """The method every other fit is compared with, replicate by replicate (the paired
        measures, the efficiency figure): the ``reference`` key, else OLS, else OLS with
        HC3 standard errors (the same estimates), else the MLE; None for a study of prior
        methods alone, which then has no paired measures and no efficiency figure."""
        chosen = self.config.get("reference")
        if chosen is not None:
            return str(chosen)
        return next((m for m in REFERENCE_CANDIDATES if m in self.methods), None)

    @property
    def compared(self) -> bool:
        """Whether the study has a reference method and another series (a method, or a
        prior of a method that takes one) to set against it."""
        others = [m for m in self.methods if m != self.reference]
        series = len([p for p in self.priors if PRIOR_METHODS.intersection(others)])
        series += len([m for m in others if m not in PRIOR_METHODS])
        return self.reference is not None and series > 0

    @property
    def families(self) -> tuple[str, ...]:
        """The figure families the study draws: the efficiency figure needs a reference
        and another series to set against it, the Laplace figure both MAP and Bayes."""
        both = {"map", "bayes"} <= set(self.methods) and bool(self.priors)
        return tuple(
            f
            for f in FIGURE_FAMILIES
            if (f != "efficiency" or self.compared) and (f != "laplace" or both)
        )

    @cached_property
    def figure_files(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Figure file stems, each mapped to its (family, slice levels): one file per
        family and slice, ``bias`` at every default level, ``bias_t3`` for t₃ errors,
        ``bias_null_collinear`` for truth ``null`` and design ``collinear``, …; one
        ``nested_loop`` for the whole grid, which loops over every factor."""
        files: dict[str, tuple[str, dict[str, str]]] = {}
        for levels in self.slices:
            for family in self.families:
                if family != "nested_loop":
                    files[f"{family}{slice_suffix(levels)}"] = (family, levels)
        if "nested_loop" in self.families:
            files["nested_loop"] = ("nested_loop", {})
        return files

    def figure_options(self, family: str) -> dict[str, Any]:
        """Keyword arguments of ``regsim.figures.FIGURES[family]`` from the ``figures`` key."""
        options = dict((self.config.get("figures") or {}).get(family, {}))
        if family in ("coverage", "rejection", "laplace"):
            options.setdefault("alpha", self.alpha)
            options.setdefault("replications", self.replications)
        if family == "laplace" and self.p == 1:
            options.setdefault("parameter", "beta0")
        if family == "efficiency" and self.reference != "ols":
            options.setdefault("reference", self.reference)
        if family == "nested_loop" and self.p == 1:
            options.setdefault("parameter", "beta0")  # no slope to show
        return options

    @property
    def paper_job(self) -> PaperJob:
        """The spec of the paper job, its figures in the order of :attr:`figure_files`."""
        return PaperJob(
            figures=tuple(self.figure_files.values()),
            figure_options={
                family: self.figure_options(family)
                for family in dict.fromkeys(f for f, _ in self.figure_files.values())
            },
            expected=self.expected,
            alpha=self.alpha,
            p=self.p,
            measures=self.table_measures,
            parameters=tuple(self.parameters),
            slices=tuple(self.slices),
            reference=self.reference,
            failures=self.failures,
            cell_figures=tuple(self.cell_figures.values()),
        )

    @property
    def table_measures(self) -> tuple[str, ...]:
        """The measures of the paper tables: ``tables.measures``, default bias, coverage
        and RMSE."""
        chosen = (self.config.get("tables") or {}).get("measures")
        return tuple(chosen) if chosen else PAPER_MEASURES

    @cached_property
    def paper_tables(self) -> list[str]:
        """Paper table files (relative to ``results/tables``): measure × parameter × slice,
        LaTeX then Markdown."""
        return [
            f"{measure}_{parameter}{slice_suffix(levels)}.{ext}"
            for measure in self.table_measures
            for parameter in self.parameters
            for levels in self.slices
            for ext in ("tex", "md")
        ]

    @cached_property
    def table_groups(self) -> dict[str, dict[str, Any]]:
        """The paper tables by page of the report, one page per measure and slice (``bias``,
        ``coverage_t3``, …): each its ``measure``, slice ``levels`` and ``parameters``."""
        return {
            f"{measure}{slice_suffix(levels)}": {
                "measure": measure,
                "levels": dict(levels),
                "parameters": list(self.parameters),
            }
            for measure in self.table_measures
            for levels in self.slices
        }

    @property
    def report_pages(self) -> list[str]:
        """The pages the report shows, ``results/report/<page>.html``: ``figures/<stem>``
        for every figure of :attr:`figures`, ``tables/<group>`` for every group of
        :attr:`table_groups`, and the failure reports, theory comparison and protocol
        under the names of their Markdown files."""
        return [
            *(f"figures/{stem}" for stem in self.figures),
            *(f"tables/{group}" for group in self.table_groups),
            "failures",
            "failures_sensitivity",
            "theory",
            "protocol",
        ]

    def _cell_of(self, where: str, chosen: Mapping[str, Any]) -> Cell:
        """The cell of the grid at ``chosen``'s levels (the first level of each factor it
        leaves out).

        Raises
        ------
        ConfigError
            If no cell of the grid has those levels.
        """
        first = self.cells[0]
        wanted = {name: chosen.get(name, value) for name, value in first.levels.items()}
        for cell in self.cells:
            if (
                cell.n == wanted["n"]
                and cell.sigma == float(wanted["sigma"])
                and all(cell.levels[f.name] == wanted[f.name] for f in OPTIONAL_FACTORS)
            ):
                return cell
        raise ConfigError(f"{where}: cell {_levels_text(wanted)} is not in the grid")

    @cached_property
    def estimate_plots(self) -> dict[str, Any]:
        """The cells and parameter of the estimate-level plots (estimate against model SE,
        Bland–Altman against the reference): ``figures.estimates``, default the zip
        plot's cell and parameter.

        Raises
        ------
        ConfigError
            If a cell is not in the grid or the parameter is not the study's.
        """
        options = (self.config.get("figures") or {}).get("estimates") or {}
        parameter = options.get("parameter", self.zip["parameter"])
        if parameter not in self.parameters:
            raise ConfigError(
                f"figures.estimates.parameter: {parameter!r} is not one of {self.parameters}"
            )
        chosen = options.get("cells")
        if chosen is None:
            labels = [self.zip["cell"]]
        else:
            labels = list(
                dict.fromkeys(
                    self._cell_of(f"figures.estimates.cells[{i}]", levels).label
                    for i, levels in enumerate(chosen)
                )
            )
        return {"cells": labels, "parameter": parameter}

    @property
    def estimate_figures(self) -> list[str]:
        """The estimate-level figure stems: ``estimates_<cell>`` for each chosen cell and
        ``bland_altman_<cell>`` when the study has a reference to pair with."""
        return [stem for stem in self.cell_figures if stem != "zip"]

    @property
    def cell_figures(self) -> dict[str, tuple[str, str, str]]:
        """The figures of one cell's replicate fits (the zip plot, then the estimate-level
        figures), each stem mapped to (family, cell label, parameter)."""
        figures = {"zip": ("zip", self.zip["cell"], self.zip["parameter"])}
        families = ["estimates"] + (["bland_altman"] if self.compared else [])
        for cell in self.estimate_plots["cells"]:
            for family in families:
                figures[f"{family}_{cell}"] = (family, cell, self.estimate_plots["parameter"])
        return figures

    @property
    def cell_figure_cells(self) -> list[str]:
        """The cells whose tables of fits :attr:`cell_figures` draw, each once."""
        return list(dict.fromkeys(cell for _, cell, _ in self.cell_figures.values()))

    @property
    def figures(self) -> dict[str, str]:
        """Every figure stem the study draws, mapped to its family: those of
        :attr:`figure_files`, the zip plot and the estimate-level figures."""
        stems = {stem: family for stem, (family, _) in self.figure_files.items()}
        return stems | {stem: family for stem, (family, _, _) in self.cell_figures.items()}

    @cached_property
    def zip(self) -> dict[str, Any]:
        """The zip plot's cell (``cell`` label and its levels) and parameter.

        Default: the first cell of the grid (first n, σ, error model, truth and design),
        ``beta1`` (or ``beta0`` without a slope).

        Raises
        ------
        ConfigError
            If ``figures.zip`` names a cell outside the grid or an unknown parameter.
        """
        first = self.cells[0]
        chosen = {
            "n": first.n,
            "sigma": first.sigma,
            "errors": first.errors,
            "truth": first.truth,
            "design": first.design.name,
            "parameter": "beta1" if self.p > 1 else "beta0",
            **((self.config.get("figures") or {}).get("zip") or {}),
        }
        wanted = {name: chosen[name] for name in first.levels}
        label = next(
            (
                cell.label
                for cell in self.cells
                if cell.n == wanted["n"]
                and cell.sigma == float(wanted["sigma"])
                and all(cell.levels[f.name] == wanted[f.name] for f in OPTIONAL_FACTORS)
            ),
            None,
        )
        if label is None:
            raise ConfigError(f"figures.zip: cell {_levels_text(wanted)} is not in the grid")
        if chosen["parameter"] not in self.parameters:
            raise ConfigError(
                f"figures.zip.parameter: {chosen['parameter']!r} is not one of {self.parameters}"
            )
        return {"cell": label, **chosen}
