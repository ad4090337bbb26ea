"""Typed specs of the workflow's jobs, built once from the rule's ``params``.

A spec travels through Snakemake's ``params`` as plain values (``to_params``), which
Snakemake compares to decide reruns; a job's script rebuilds it (``from_params``) and
passes it, with the job's outputs by name, to its body (:mod:`regsim.jobs`). The specs
that list cells (the simulate and collect jobs') travel as a digest (:func:`digest`) and
are rebuilt from the study's configuration in the job. Kept to the standard library, so
that parsing the workflow stays cheap.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from regsim.design import Cell, Prior, Unit
from regsim.schema import DEFAULT_SIGMA_PRIOR, PRIOR_METHODS


@dataclass(frozen=True)
class FitSpec:
    """What to fit on every replicate: methods, priors, the level, the MAP iteration cap.

    Attributes
    ----------
    methods : tuple of str
        Keys of ``regsim.estimators.ESTIMATORS``.
    priors : tuple of Prior
        The priors of the methods that take one.
    alpha : float
        Intervals have coverage 1 − α.
    map_max_iter : int or None
        Newton iteration cap of the MAP fits (the diagnostic setting); None: the default.
    sigma_prior : str
        The prior on σ of the methods that take a prior (MAP and Bayes): ``"flat"``,
        p(σ) ∝ 1, or ``"jeffreys"``, p(σ) ∝ 1/σ.
    """

    methods: tuple[str, ...]
    priors: tuple[Prior, ...]
    alpha: float
    map_max_iter: int | None = None
    sigma_prior: str = DEFAULT_SIGMA_PRIOR

    @property
    def sandwich(self) -> bool:
        """Whether the statistics need the HC3 covariance."""
        return "ols_hc3" in self.methods

    @property
    def options(self) -> dict[str, dict[str, Any]]:
        """Keyword arguments per method for ``regsim.estimators.fit_methods``."""
        options: dict[str, dict[str, Any]] = {
            "map": {"sigma_prior": self.sigma_prior},
            "bayes": {"sigma_prior": self.sigma_prior},
        }
        if self.map_max_iter is not None:
            options["map"]["max_iter"] = int(self.map_max_iter)
        return options

    @property
    def fits(self) -> int:
        """Fits per replicate: one per method, one per prior for the methods taking one."""
        return sum(len(self.priors) if m in PRIOR_METHODS else 1 for m in self.methods)

    def rows(self, cell: Cell, replicates: int) -> int:
        """Rows of the table of fits of ``replicates`` replicates of ``cell``."""
        return replicates * self.fits * (cell.p + 1)

    def same_fits(self, other: FitSpec) -> bool:
        """Whether ``other`` fits every replicate as this does: the same methods, priors
        and settings, in any order.

        The order in which the methods and priors are listed changes no fit (each is
        fitted on its own, and the tables sort them), and a run record lists the priors
        by name (``regsim.provenance``), whatever order the config gave them in.
        """
        return (
            sorted(self.methods) == sorted(other.methods)
            and sorted(self.priors, key=_prior_name) == sorted(other.priors, key=_prior_name)
            and (self.alpha, self.map_max_iter, self.sigma_prior)
            == (other.alpha, other.map_max_iter, other.sigma_prior)
        )


def _prior_name(prior: Prior) -> str:
    return prior.name


def fits_fingerprint(cell: Cell, seed: int, fit: FitSpec) -> str:
    """What a cell's fits are a function of, as 16 hex digits.

    The cell's data-generating parameters (its key: n, σ, error model, truth, design),
    the base seed and what is fitted (methods and priors in any order, level, MAP's
    iteration cap, prior on σ). A simulate job writes it beside each cell's fits in its
    chunk, and the collect job checks it against the study's, so a chunk another study
    made (another seed, another truth of the same name, other priors) is refused rather
    than summarized: Snakemake only sees a file that is newer than its inputs.
    """
    what = {
        "cell": cell.key,
        "seed": int(seed),
        "methods": sorted(fit.methods),
        "priors": sorted((prior.to_plain() for prior in fit.priors), key=lambda p: p["name"]),
        "alpha": fit.alpha,
        "map_max_iter": fit.map_max_iter,
        "sigma_prior": fit.sigma_prior,
    }
    text = json.dumps(what, sort_keys=True, default=list)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def digest(params: Mapping[str, Any]) -> str:
    """A spec's ``to_params`` as 16 hex digits: what a rule gives Snakemake to compare for
    reruns in place of a spec that lists cells.

    Snakemake keeps a copy of a job's params in its record of each of the job's outputs,
    and prints the old and the new params of every job it reruns for a change of them: a
    collect spec, two outputs per cell, took 11 MB of records on a 378-cell grid (growing
    as the square of the cells), and a config change printed every simulate job's units
    twice (46 KB for the default study). The job rebuilds its spec from the study's
    configuration (``regsim.workflow.simulate_job``, ``collect_job``), which must give
    the same digest.
    """
    text = json.dumps(dict(params), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class SimulateJob:
    """One simulate job of the plan (``regsim.design.plan_jobs``).

    Attributes
    ----------
    name : str
        The job's name, the rule's ``job`` wildcard.
    seed : int
        The study's base seed.
    units : tuple of Unit
        Ranges of cells' replicates, drawn and fitted in this order.
    fit : FitSpec
        Methods, priors, level, MAP iteration cap and prior on σ.
    """

    name: str
    seed: int
    units: tuple[Unit, ...]
    fit: FitSpec

    def fingerprint(self, cell: Cell) -> str:
        """What this job's fits of ``cell`` are a function of (:func:`fits_fingerprint`)."""
        return fits_fingerprint(cell, self.seed, self.fit)

    def to_params(self) -> dict[str, Any]:
        """The spec as plain values, for Snakemake's ``params`` (compared for reruns)."""
        return {
            "name": self.name,
            "seed": self.seed,
            "units": [unit.to_plain() for unit in self.units],
            "methods": list(self.fit.methods),
            "priors": [prior.to_plain() for prior in self.fit.priors],
            "alpha": self.fit.alpha,
            "map_max_iter": self.fit.map_max_iter,
            "sigma_prior": self.fit.sigma_prior,
        }

    def digest(self) -> str:
        """:meth:`to_params` as 16 hex digits (:func:`digest`), the simulate rule's params."""
        return digest(self.to_params())

    def _ols_dfs(self) -> list[int]:
        """The n − p of the job's cells, where it fits OLS (none without)."""
        if not {"ols", "ols_hc3"} & set(self.fit.methods):
            return []
        return sorted({unit.cell.n - unit.cell.p for unit in self.units})

    def ols_quantile_keys(self) -> list[tuple[str, float, float]]:
        """The t and χ² quantiles the job's OLS fits take, a set per n − p of its cells
        (``regsim.estimators.base.ols_quantile_keys``)."""
        from regsim.estimators.base import ols_quantile_keys

        return [key for df in self._ols_dfs() for key in ols_quantile_keys(df, self.fit.alpha)]

    def ols_quantiles(self) -> list[str | float]:
        """The version of scipy that computes them, then the values of
        :meth:`ols_quantile_keys` in its order; empty without OLS or without scipy.

        Computed where the workflow is parsed and given to the job as a rule's params, so
        that the job need not import scipy.special (half of its time) to compute them
        again (:meth:`take_quantiles`). The version tells a job in an environment of its
        own (``--sdm conda``) whether they are the numbers its scipy would give.
        """
        dfs = self._ols_dfs()
        version = _scipy_version()
        if not dfs or version is None:
            return []
        from regsim.estimators.base import ols_quantiles

        return [version, *(value for df in dfs for value in ols_quantiles(df, self.fit.alpha))]

    def take_quantiles(self, given: Sequence[str | float]) -> bool:
        """Take ``given`` (:meth:`ols_quantiles`) as the values of the job's OLS quantiles
        (``regsim.estimators.base.remember_quantiles``) where this environment has the
        scipy that computed them; return whether they were taken (else the fits compute
        their own).

        Raises
        ------
        ValueError
            If ``given`` holds another number of values than the job has quantiles.
        """
        if not given or str(given[0]) != _scipy_version():
            return False
        from regsim.estimators.base import remember_quantiles

        remember_quantiles(self.ols_quantile_keys(), [float(value) for value in given[1:]])
        return True

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SimulateJob:
        """The spec of :meth:`to_params`."""
        return cls(
            name=str(params["name"]),
            seed=int(params["seed"]),
            units=tuple(Unit.from_plain(unit) for unit in params["units"]),
            fit=FitSpec(
                methods=tuple(params["methods"]),
                priors=tuple(
                    Prior(p["name"], tuple(p["mean"]), tuple(p["sd"])) for p in params["priors"]
                ),
                alpha=float(params["alpha"]),
                map_max_iter=params.get("map_max_iter"),
                sigma_prior=str(params.get("sigma_prior", DEFAULT_SIGMA_PRIOR)),
            ),
        )


def _scipy_version() -> str | None:
    """The version of the scipy installed here, from its metadata (without importing it),
    or None."""
    try:
        return importlib.metadata.version("scipy")
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class CollectJob:
    """The collect job: which cells' tables to write, from how many replicates each.

    Attributes
    ----------
    cells : tuple of str
        Cell labels, in the order of the rule's per-cell outputs.
    replications : int
        Replicates per cell; the chunks must hold each replicate exactly once.
    alpha : float
        Nominal level of the intervals.
    reference : str or None
        The method every fit is paired with for the paired measures; None: none.
    failures : {"own", "common"}
        The failure rule of the measures.
    p : int
        Number of coefficients (the comparison with exact theory).
    designs : dict
        The covariate designs by name (``covariates``, ``rho``, ``fixed``), for the exact
        variance of the OLS coefficients (``regsim.exact``).
    seed : int or None
        The study's base seed, which a fixed design's X is drawn from.
    fingerprints : tuple of str
        Each cell's :func:`fits_fingerprint`, in the order of ``cells``: a chunk's fits of
        the cell must carry it. Empty: not checked.
    """

    cells: tuple[str, ...]
    replications: int
    alpha: float
    reference: str | None = None
    failures: str = "own"
    p: int = 3
    designs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int | None = None
    fingerprints: tuple[str, ...] = ()

    def to_params(self) -> dict[str, Any]:
        """The spec as plain values, for Snakemake's ``params``."""
        return {
            "cells": list(self.cells),
            "replications": self.replications,
            "alpha": self.alpha,
            "reference": self.reference,
            "failures": self.failures,
            "p": self.p,
            "designs": {name: dict(spec) for name, spec in self.designs.items()},
            "seed": self.seed,
            "fingerprints": list(self.fingerprints),
        }

    def digest(self) -> str:
        """:meth:`to_params` as 16 hex digits (:func:`digest`), the collect rule's params."""
        return digest(self.to_params())

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CollectJob:
        """The spec of :meth:`to_params`."""
        return cls(
            cells=tuple(params["cells"]),
            replications=int(params["replications"]),
            alpha=float(params["alpha"]),
            reference=params.get("reference"),
            failures=str(params.get("failures", "own")),
            p=int(params.get("p", 3)),
            designs={k: dict(v) for k, v in params.get("designs", {}).items()},
            seed=None if params.get("seed") is None else int(params["seed"]),
            fingerprints=tuple(params.get("fingerprints", ())),
        )


@dataclass(frozen=True)
class PaperJob:
    """The paper job: everything drawn from the metrics table.

    Attributes
    ----------
    figures : tuple of (str, dict)
        (family, slice levels) of each figure, in the order of the rule's figure outputs.
    figure_options : dict
        Family -> keyword arguments of its function (the ``figures`` config).
    expected : dict
        The study design (``n``, ``sigma``, ``methods``, ``priors``), so that figures and
        tables mark a cell the table lacks.
    alpha : float
        Nominal level of the intervals.
    p : int
        Number of coefficients (the figures' exact-theory curves).
    measures, parameters : tuple of str
        The paper tables' measures and parameters.
    slices : tuple of dict
        The slices of the optional factors tabulated, one set of tables each.
    reference : str or None
        The reference method of the paired contrasts (tables' pairing notes, the
        efficiency figure).
    failures : {"own", "common"}
        The failure rule of the metrics, which the tables' notes and the failure report
        name.
    cell_figures : tuple of (str, str, str)
        (family, cell label, parameter) of each figure of one cell's replicate fits (the
        zip plot, the estimate-level figures), in the order of the rule's outputs of them.
    """

    figures: tuple[tuple[str, dict[str, str]], ...]
    figure_options: dict[str, dict[str, Any]]
    expected: dict[str, list[Any]]
    alpha: float
    p: int
    measures: tuple[str, ...]
    parameters: tuple[str, ...]
    slices: tuple[dict[str, str], ...]
    reference: str | None = None
    failures: str = "own"
    cell_figures: tuple[tuple[str, str, str], ...] = ()

    def to_params(self) -> dict[str, Any]:
        """The spec as plain values, for Snakemake's ``params``."""
        return {
            "figures": [[family, dict(levels)] for family, levels in self.figures],
            "figure_options": {k: dict(v) for k, v in self.figure_options.items()},
            "expected": {k: list(v) for k, v in self.expected.items()},
            "alpha": self.alpha,
            "p": self.p,
            "measures": list(self.measures),
            "parameters": list(self.parameters),
            "slices": [dict(levels) for levels in self.slices],
            "reference": self.reference,
            "failures": self.failures,
            "cell_figures": [list(figure) for figure in self.cell_figures],
        }

    def table_options(self) -> dict[str, Any]:
        """The paper tables' keyword arguments (``regsim.tables.write_paper_tables``)."""
        return {
            "measures": self.measures,
            "parameters": self.parameters,
            "expected": self.expected,
            "levels": list(self.slices),
            "reference": self.reference,
            "failures": self.failures,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PaperJob:
        """The spec of :meth:`to_params`."""
        return cls(
            figures=tuple((str(f), dict(levels)) for f, levels in params["figures"]),
            figure_options={k: dict(v) for k, v in params["figure_options"].items()},
            expected={k: list(v) for k, v in params["expected"].items()},
            alpha=float(params["alpha"]),
            p=int(params["p"]),
            measures=tuple(params["measures"]),
            parameters=tuple(params["parameters"]),
            slices=tuple(dict(levels) for levels in params["slices"]),
            reference=params.get("reference"),
            failures=str(params.get("failures", "own")),
            cell_figures=tuple(
                (str(family), str(cell), str(parameter))
                for family, cell, parameter in params.get("cell_figures", ())
            ),
        )
