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
    DEFAULT_MAP_MAX_ITER,
    DEFAULT_OBSERVATIONS_PER_JOB,
    error_models,
)
from regsim.design import Cell, Job, Prior, job_of_cells, plan_jobs
from regsim.errors import ConfigError
from regsim.schema import (
    DEFAULT_SIGMA_PRIOR,
    OPTIONAL_FACTORS,
    PRIOR_METHODS,
    parameter_names,
)
from regsim.specs import CollectJob, FitSpec, PaperJob, SimulateJob

#: Figure families drawn from the metrics table (the keys of ``regsim.figures.FIGURES``;
#: named here so that parsing the workflow does not import matplotlib).
FIGURE_FAMILIES: tuple[str, ...] = (
    "bias",
    "coverage",
    "efficiency",
    "modelse",
    "sigma",
    "nested_loop",
)

#: Measures of the paper tables.
TABLE_MEASURES: tuple[str, ...] = ("bias", "coverage", "rmse")


def slice_suffix(levels: Mapping[str, str]) -> str:
    """File-name suffix of a slice: ``""`` at every default, else ``_<level>`` per factor."""
    return "".join(
        f"_{levels[f.name]}" for f in OPTIONAL_FACTORS if levels.get(f.name, f.default) != f.default
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
        study.zip  # noqa: B018 - checked now, before any job
        return study

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

    @property
    def beta(self) -> tuple[float, ...]:
        """The true coefficients, intercept first."""
        return tuple(float(b) for b in self.config["beta"])

    @property
    def p(self) -> int:
        """Number of coefficients."""
        return len(self.beta)

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
        return bool(self.config.get("keep_datasets", True))

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
        """Every data cell: n slowest, then σ (both in grid order), then the error model."""
        grid = self.config["grid"]
        return tuple(
            Cell(n=int(n), sigma=float(sigma), beta=self.beta, errors=errors)
            for n in grid["n"]
            for sigma in grid["sigma"]
            for errors in error_models(self.config)
        )

    @cached_property
    def labels(self) -> dict[str, Cell]:
        """Cells by label."""
        return {cell.label: cell for cell in self.cells}

    @cached_property
    def factors(self) -> tuple[str, ...]:
        """Factor columns of the study's tables: n, σ and each optional factor it varies
        away from the default."""
        varied = [
            f.name
            for f in OPTIONAL_FACTORS
            if any(cell.levels[f.name] != f.default for cell in self.cells)
        ]
        return ("n", "sigma", *varied)

    @cached_property
    def slices(self) -> list[dict[str, str]]:
        """Each combination of the optional factors' levels in the grid, in grid order."""
        found: dict[tuple[str, ...], dict[str, str]] = {}
        for cell in self.cells:
            levels = {f.name: str(cell.levels[f.name]) for f in OPTIONAL_FACTORS}
            found.setdefault(tuple(levels.values()), levels)
        order = sorted(
            found, key=lambda k: tuple(f.rank(v) for f, v in zip(OPTIONAL_FACTORS, k, strict=True))
        )
        return [found[key] for key in order]

    @property
    def expected(self) -> dict[str, list[Any]]:
        """The design figures and tables must cover (to mark a cell the table lacks)."""
        return {
            "n": list(self.config["grid"]["n"]),
            "sigma": list(self.config["grid"]["sigma"]),
            "methods": list(self.methods),
            "priors": [prior.name for prior in self.priors],
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
            factors=self.factors,
        )

    @property
    def collect_job(self) -> CollectJob:
        """The spec of the collect job."""
        return CollectJob(tuple(self.labels), self.replications, self.alpha)

    def jobs_of(self, label: str) -> list[str]:
        """The simulate jobs holding cell ``label``'s replicates."""
        return job_of_cells(list(self.plan.values()))[label]

    def job_priority(self, name: str) -> int:
        """Scheduling priority: the zip plot's cell first (its plot then overlaps the other
        jobs), then larger jobs before smaller ones (the run ends sooner)."""
        if name in self.jobs_of(self.zip["cell"]):
            return len(self.plan) + 1
        by_work = sorted(self.plan, key=lambda job: (self.plan[job].work, job))
        return by_work.index(name)

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

    @cached_property
    def figure_files(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Figure file stems, each mapped to its (family, slice levels): one file per
        family and slice, ``bias`` at every default level, ``bias_t3`` for t₃ errors, …"""
        return {
            f"{family}{slice_suffix(levels)}": (family, levels)
            for levels in self.slices
            for family in FIGURE_FAMILIES
        }

    def figure_options(self, family: str) -> dict[str, Any]:
        """Keyword arguments of ``regsim.figures.FIGURES[family]`` from the ``figures`` key."""
        options = dict((self.config.get("figures") or {}).get(family, {}))
        if family == "coverage":
            options.setdefault("alpha", self.alpha)
            options.setdefault("replications", self.replications)
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
            measures=TABLE_MEASURES,
            parameters=tuple(self.parameters),
            slices=tuple(self.slices),
        )

    @cached_property
    def paper_tables(self) -> list[str]:
        """Paper table files (relative to ``results/tables``): measure × parameter × slice,
        LaTeX then Markdown."""
        return [
            f"{measure}_{parameter}{slice_suffix(levels)}.{ext}"
            for measure in TABLE_MEASURES
            for parameter in self.parameters
            for levels in self.slices
            for ext in ("tex", "md")
        ]

    @cached_property
    def zip(self) -> dict[str, Any]:
        """The zip plot's cell (``cell`` label, n, sigma, errors) and parameter.

        Default: the first n and σ of the grid with the first error model, ``beta1`` (or
        ``beta0`` without a slope).

        Raises
        ------
        ConfigError
            If ``figures.zip`` names a cell outside the grid or an unknown parameter.
        """
        chosen = {
            "n": self.config["grid"]["n"][0],
            "sigma": self.config["grid"]["sigma"][0],
            "errors": self.cells[0].errors,
            "parameter": "beta1" if self.p > 1 else "beta0",
            **((self.config.get("figures") or {}).get("zip") or {}),
        }
        label = next(
            (
                cell.label
                for cell in self.cells
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
        if chosen["parameter"] not in self.parameters:
            raise ConfigError(
                f"figures.zip.parameter: {chosen['parameter']!r} is not one of {self.parameters}"
            )
        return {"cell": label, **chosen}
