"""The study a config describes: its cells, the job plan, and what it writes."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_config import schema_validate

from regsim import config as cfg
from regsim import workflow
from regsim.design import Cell, jobs_per_cell, plan_jobs
from regsim.errors import ConfigError
from regsim.study import FIGURE_FAMILIES, Study

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "config.yaml").read_text())
BETA = tuple(DEFAULTS["beta"])


def study(**layer: Any) -> Study:
    config = cfg.resolve([copy.deepcopy(DEFAULTS), layer], validate=schema_validate)
    return Study.from_config(config)


#: Every optional factor at its default level: the slice of a study that varies none.
DEFAULT_LEVELS = {"errors": "normal", "truth": "beta", "design": "uniform"}


# --------------------------------------------------------------------------------------
# Cells and priors
# --------------------------------------------------------------------------------------


def test_cells_and_priors_in_grid_order() -> None:
    s = study(grid={"n": [20, 10], "sigma": [1, 0.5], "errors": ["t3", "normal"]})
    assert [c.label for c in s.cells] == [
        "n20_sigma1",
        "n20_sigma1_t3",
        "n20_sigma0.5",
        "n20_sigma0.5_t3",
        "n10_sigma1",
        "n10_sigma1_t3",
        "n10_sigma0.5",
        "n10_sigma0.5_t3",
    ]
    assert s.cells[0] == Cell(20, 1.0, BETA)
    assert s.varied == ("errors",)
    assert s.slices == [DEFAULT_LEVELS, {**DEFAULT_LEVELS, "errors": "t3"}]
    assert [p.name for p in s.priors] == list(DEFAULTS["priors"])


def test_a_study_that_never_varies_an_optional_factor_has_one_file_per_family() -> None:
    s = study()
    assert s.varied == ()
    assert s.slices == [DEFAULT_LEVELS]
    assert sorted(s.figure_files) == sorted(set(FIGURE_FAMILIES) - {"laplace"})  # no bayes


def test_priors_are_not_fitted_without_a_method_that_takes_one() -> None:
    assert study(methods=["ols", "mle"]).fitted_priors == ()
    assert study().fitted_priors == study().priors
    assert study(methods=["ols", "mle"]).fit.priors == ()
    assert not study(methods=["ols"]).compared and study(methods=["ols", "mle"]).compared


def test_sigma_prior_reaches_the_fits_of_map_and_bayes() -> None:
    s = study(methods=["ols", "map", "bayes"], sigma_prior="jeffreys")
    assert s.fit.sigma_prior == "jeffreys"
    assert s.fit.options["map"]["sigma_prior"] == "jeffreys"
    assert s.fit.options["bayes"] == {"sigma_prior": "jeffreys"}
    assert study().fit.options["map"] == {"sigma_prior": "flat", "max_iter": 60}
    # Without a method that takes a prior the prior on σ is not fitted (no reruns).
    assert study(methods=["ols"], sigma_prior="jeffreys").fit.sigma_prior == "flat"
    job = s.simulate_job(next(iter(s.plan)))
    params = job.to_params()
    assert params["sigma_prior"] == "jeffreys"
    assert type(job).from_params(params) == job
    # Parameters written before the key existed read as flat.
    del params["sigma_prior"]
    assert type(job).from_params(params).fit.sigma_prior == "flat"


# --------------------------------------------------------------------------------------
# The job plan
# --------------------------------------------------------------------------------------


def test_the_default_study_is_one_job_per_sample_size() -> None:
    s = study()
    assert list(s.plan) == [f"n{n}-1" for n in DEFAULTS["grid"]["n"]]
    for name, job in s.plan.items():
        assert {unit.cell.n for unit in job.units} == {int(name[1:].split("-")[0])}
        assert all((u.start, u.stop) == (0, 1000) for u in job.units)


def test_a_small_budget_cuts_cells_into_ranges() -> None:
    s = study(grid={"n": [10, 20], "sigma": [1, 0.5]}, replications=600, observations_per_job=2500)
    # n = 10: 6000 observations a cell, three ranges of 200; n = 20: five of 120
    jobs = s.plan
    assert len(jobs) == 2 * 3 + 2 * 5
    ranges = sorted((u.start, u.stop) for j in jobs.values() for u in j.units if u.cell.n == 10)
    assert ranges == [(0, 200)] * 2 + [(200, 400)] * 2 + [(400, 600)] * 2
    assert all(job.work <= 2500 for job in jobs.values())


cells_strategy = st.lists(
    st.tuples(st.sampled_from([5, 10, 100, 1000]), st.sampled_from([0.5, 1.0, 2.0, 5.0])),
    min_size=1,
    max_size=12,
    unique=True,
)


@settings(max_examples=150, deadline=None)
@given(
    grid=cells_strategy,
    replications=st.integers(1, 3000),
    budget=st.integers(1, 4_000_000),
    reverse=st.booleans(),
)
def test_a_plan_holds_every_replicate_once_within_the_budget(
    grid: list[tuple[int, float]], replications: int, budget: int, reverse: bool
) -> None:
    cells = [Cell(n, sigma, (1.0, 2.0)) for n, sigma in grid]
    jobs = plan_jobs(cells, replications, budget)
    assert len({job.name for job in jobs}) == len(jobs)
    for job in jobs:
        assert len({unit.cell.n for unit in job.units}) == 1  # never mixes sample sizes
        # within the budget, unless one replicate alone exceeds it
        assert job.work <= budget or (len(job.units) == 1 and job.units[0].replicates == 1)
    for cell in cells:
        ranges = sorted((u.start, u.stop) for j in jobs for u in j.units if u.cell == cell)
        edges = [0, *(b for _, b in ranges)]
        assert [a for a, _ in ranges] == edges[:-1] and edges[-1] == replications
    # the order cells are listed in plays no part
    assert plan_jobs(list(reversed(cells)) if reverse else cells, replications, budget) == jobs
    # the config check counts a cut cell's jobs as the plan cuts it
    for cell in cells:
        holding = [job for job in jobs if any(unit.cell == cell for unit in job.units)]
        assert len(holding) == jobs_per_cell(replications, cell.n, budget)


def test_growing_the_grid_keeps_the_jobs_of_other_sample_sizes() -> None:
    before = {job.name: job for job in study(grid={"n": [10, 40], "sigma": [1, 5]}).plan.values()}
    after = study(grid={"n": [10, 25, 40], "sigma": [1, 5]}).plan
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {"n25-1"}


def test_job_specs_priorities_and_resources() -> None:
    s = study(grid={"n": [10, 1000], "sigma": [1, 5]}, replications=200)
    spec = s.simulate_job("n1000-1")
    assert spec.seed == s.seed and spec.fit == s.fit
    # the larger job goes first
    assert s.job_priority("n1000-1") > s.job_priority("n10-1")
    many = study(grid={"n": [10, 50], "sigma": [1, 5]}, replications=40, observations_per_job=100)
    ranks = {name: many.job_priority(name) for name in many.plan}
    assert sorted(ranks.values()) == list(range(len(many.plan))) and len(ranks) > 20
    by_work = sorted(many.plan, key=lambda name: (many.plan[name].work, name))
    assert [ranks[name] for name in by_work] == list(range(len(by_work)))
    for name in s.plan:
        resources = s.simulate_resources(name)
        assert resources["mem_mb"] >= 500 and resources["runtime"] >= 2
    assert s.collect_resources(2)["mem_mb"] < s.collect_resources(8)["mem_mb"]


def test_the_collect_job_travels_as_a_digest_and_is_rebuilt_from_the_config() -> None:
    s = study(grid={"n": [10, 20], "sigma": [1, 5], "errors": ["normal", "t3"]})
    job = s.collect_job
    digest = job.digest()
    assert len(digest) == 16 and job.digest() == digest
    # the job rebuilds the spec from the configuration it is given (a copy, as pickled)
    assert workflow.collect_job(copy.deepcopy(dict(s.config)), digest) == job
    # every part of the spec moves the digest, the per-cell lists included
    changes = {
        "cells": job.cells[:-1],
        "fingerprints": (*job.fingerprints[:-1], "0" * 16),
        "replications": job.replications + 1,
        "alpha": 0.1,
        "reference": "mle",
        "failures": "common",
        "seed": (job.seed or 0) + 1,
        "designs": {"other": {"covariates": "normal", "rho": 0.5, "fixed": False}},
    }
    for field, value in changes.items():
        assert dataclasses.replace(job, **{field: value}).digest() != digest, field
    # so does a setting that reaches the fits only (the fingerprints)
    assert study(grid=s.config["grid"], seed=1).collect_job.digest() != digest
    # a configuration that is not the rule's is refused
    other = study(grid=s.config["grid"], replications=7)
    with pytest.raises(RuntimeError, match="collect job's configuration gives spec"):
        workflow.collect_job(other.config, digest)


def test_a_simulate_job_travels_as_a_digest_and_is_rebuilt_from_the_config() -> None:
    s = study(grid={"n": [10, 20], "sigma": [1, 5], "errors": ["normal", "t3"]})
    name = next(iter(s.plan))
    job = s.simulate_job(name)
    digest = job.digest()
    assert len(digest) == 16 and all(c in "0123456789abcdef" for c in digest)
    assert workflow.simulate_job(copy.deepcopy(dict(s.config)), name, digest) == job
    # every part of the spec moves the digest: its units (ranges of cells) and its fits
    changes = {
        "units": job.units[:-1],
        "seed": job.seed + 1,
        "fit": dataclasses.replace(job.fit, alpha=0.1),
        "name": "n10-2",
    }
    for field, value in changes.items():
        assert dataclasses.replace(job, **{field: value}).digest() != digest, field
    # another configuration, or another job of this one, is refused
    other = study(grid=s.config["grid"], replications=7)
    with pytest.raises(RuntimeError, match=f"simulate job {name}'s configuration gives spec"):
        workflow.simulate_job(other.config, name, digest)
    second = list(s.plan)[1]
    with pytest.raises(RuntimeError, match="gives spec"):
        workflow.simulate_job(s.config, second, digest)


# --------------------------------------------------------------------------------------
# What the study writes
# --------------------------------------------------------------------------------------


def test_figure_files_and_paper_tables_per_slice() -> None:
    s = study(grid={"n": [10], "sigma": [1], "errors": ["normal", "hetero"]})
    assert s.figure_files["bias"] == ("bias", DEFAULT_LEVELS)
    assert s.figure_files["bias_hetero"] == ("bias", {**DEFAULT_LEVELS, "errors": "hetero"})
    # one nested-loop plot loops over the error models; the others are one per slice
    assert s.figure_files["nested_loop"] == ("nested_loop", {})
    assert len(s.figure_files) == 2 * (len(FIGURE_FAMILIES) - 2) + 1  # no laplace
    assert "bias_beta1.tex" in s.paper_tables and "rmse_sigma_hetero.md" in s.paper_tables
    assert len(s.paper_tables) == 3 * 4 * 2 * 2
    paper = s.paper_job
    assert [levels for _, levels in paper.figures][: len(FIGURE_FAMILIES) - 2] == [
        DEFAULT_LEVELS
    ] * (len(FIGURE_FAMILIES) - 2)
    assert paper.figure_options["coverage"] == {"alpha": 0.05, "replications": 1000}
    assert paper.figure_options["rejection"] == {"alpha": 0.05, "replications": 1000}
    assert paper.expected["errors"] == ["normal", "hetero"]


def test_zip_settings_defaults_and_errors() -> None:
    s = study(grid={"n": [20, 50], "sigma": [1, 5]}, beta=[1.0, 2.0], priors={}, methods=["ols"])
    assert s.zip == {
        "cell": "n20_sigma1",
        "n": 20,
        "sigma": 1,
        "errors": "normal",
        "truth": "beta",
        "design": "uniform",
        "parameter": "beta1",
    }
    chosen = study(
        grid={"n": [20, 50], "sigma": [1, 5]},
        figures={"zip": {"n": 50, "sigma": 5.0, "parameter": "sigma"}},
    )
    assert chosen.zip["cell"] == "n50_sigma5"
    with pytest.raises(ConfigError, match="figures.zip: cell n=50, sigma=1, errors=normal, truth"):
        study(grid={"n": [20], "sigma": [1]}, figures={"zip": {"n": 50, "sigma": 1}})
    with pytest.raises(ConfigError, match="figures.zip.parameter"):
        study(figures={"zip": {"parameter": "beta7"}})
    t3 = study(grid={"n": [20], "sigma": [1], "errors": ["t3"]}, figures={"zip": {"errors": "t3"}})
    assert t3.zip["cell"] == "n20_sigma1_t3"
    with pytest.raises(
        ConfigError, match="errors=hetero, truth=beta, design=uniform is not in the grid"
    ):
        study(grid={"n": [20], "sigma": [1]}, figures={"zip": {"errors": "hetero"}})


def test_intercept_only_study_zips_beta0() -> None:
    s = study(beta=[5.0], priors={"w": {"mean": [0], "sd": [math.inf]}})
    assert s.zip["parameter"] == "beta0" and s.parameters == ["beta0", "sigma"]


def test_estimate_level_plots_of_the_chosen_cells() -> None:
    s = study(grid={"n": [20, 50], "sigma": [1, 5], "errors": ["normal", "t3"]})
    assert s.estimate_plots == {"cells": ["n20_sigma1"], "parameter": "beta1"}  # the zip's
    assert s.estimate_figures == ["estimates_n20_sigma1", "bland_altman_n20_sigma1"]
    chosen = study(
        grid={"n": [20, 50], "sigma": [1, 5], "errors": ["normal", "t3"]},
        figures={
            "estimates": {
                "cells": [{"n": 50, "sigma": 5, "errors": "t3"}, {"n": 20, "sigma": 1}],
                "parameter": "sigma",
            }
        },
    )
    assert chosen.estimate_plots == {"cells": ["n50_sigma5_t3", "n20_sigma1"], "parameter": "sigma"}
    # a study without a reference method has no Bland-Altman plot
    alone = study(methods=["map"], grid={"n": [20], "sigma": [1]})
    assert alone.estimate_figures == ["estimates_n20_sigma1"]
    with pytest.raises(ConfigError, match=r"figures.estimates.cells\[0\]: cell n=30"):
        study(figures={"estimates": {"cells": [{"n": 30, "sigma": 1}]}})
    with pytest.raises(ConfigError, match="figures.estimates.parameter"):
        study(figures={"estimates": {"parameter": "beta9"}})
