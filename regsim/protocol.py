"""The study's protocol, from its configuration: Aims, Data-generating mechanisms,
Estimands, Methods, Performance measures (ADEMP; Morris, White & Crowther 2019).

:func:`protocol_markdown` writes what a reviewer needs to read before the results, in the
order of Siepe et al.'s (2024) preregistration template: the aims (the config's ``aims``
text), every factor of the grid and its levels, how replicates are seeded, the estimands
and their true values, each method and its interval, each performance measure with its
Monte Carlo SE (the table of ``regsim.metrics``), the number of replications with the MCSE
it gives for coverage and bias, and the failure rule. It is a pure function of the
resolved configuration (no versions, no time), so the protocol of a configuration is
always the same bytes: ``results/protocol.md`` is written before any simulation, its
SHA-256 is recorded in ``provenance.json``, and ``regsim verify`` reports a protocol that
is not the one of the recorded configuration.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from regsim.atomic import write_text_atomic
from regsim.design import Design
from regsim.schema import (
    METHODS,
    PRIOR_METHODS,
    format_number,
    method_name,
    parameter_names,
    prior_rank,
)
from regsim.study import Study

#: What each error model draws (ε_i given the cell's σ).
ERROR_DESCRIPTIONS: dict[str, str] = {
    "normal": "ε_i ~ N(0, σ²) i.i.d., the model every estimator assumes",
    "t3": "ε_i = σ·T_i/√3, T_i ~ Student t with 3 degrees of freedom (heavy tails, sd σ)",
    "hetero": (
        "ε_i ~ N(0, σ²·s(x_i1)²), the sd growing with the first covariate: "
        "s = (0.5 + F(x_i1))/√(13/12), F the covariate's CDF (x itself for uniform "
        "covariates, Φ for normal ones), and s = (0.5 + x_i1)/√(5/4) for binary ones, so "
        "that the average variance is σ² (heteroskedastic)"
    ),
}

#: Each method: what it estimates and its (1 − α) interval.
METHOD_DESCRIPTIONS: dict[str, str] = {
    "ols": (
        "least squares; σ by s = √(RSS/(n − p)); intervals β̂_j ± t_{1−α/2, n−p}·SE and, "
        "for σ, the exact χ²_{n−p} interval"
    ),
    "ols_hc3": (
        "least squares with HC3 heteroskedasticity-consistent (sandwich) standard errors; "
        "intervals β̂_j ± t_{1−α/2, n−p}·SE_HC3"
    ),
    "mle": (
        "maximum likelihood: β̂ as OLS, σ̂ = √(RSS/n); Wald intervals estimate ± z_{1−α/2}·SE "
        "from the inverse observed information"
    ),
    "map": (
        "the global joint mode of the posterior in (β, σ) under each prior; Laplace "
        "intervals mode ± z_{1−α/2}·SE from the inverse Hessian at the mode"
    ),
    "bayes": (
        "the exact marginal posterior under each prior (quadrature over log σ): posterior "
        "mean, posterior sd, equal-tailed α/2 and 1 − α/2 quantiles"
    ),
}


def _design_text(design: Design, k: int) -> str:
    covariates = {
        "uniform": "x_ij ~ U(0, 1) i.i.d.",
        "normal": f"x_i ~ N(0, R), R equicorrelated with ρ = {format_number(design.rho)}",
        "binary": "x_ij ~ Bernoulli(½) i.i.d.",
    }[design.covariates]
    if k == 0:
        covariates = "no covariates (intercept only)"
    drawn = (
        "one X per sample size, drawn once from the design's own stream and shared by every "
        "replicate, σ, error model and truth"
        if design.fixed
        else "X redrawn for every replicate"
    )
    return f"{covariates}; {drawn}"


def _vector(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(format_number(v) for v in values) + ")"


def _measure_table() -> list[str]:
    """The measures' table of ``regsim.metrics`` (its docstring), as a code block."""
    import regsim.metrics as metrics

    lines = (metrics.__doc__ or "").splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=" * 12)]
    return ["```", *lines[rules[0] : rules[2] + 1], "```"]


def protocol_markdown(study: Study) -> str:
    """The protocol of a study (see the module docstring), as Markdown.

    Parameters
    ----------
    study : Study
        The resolved study (``regsim.study.Study``).

    Returns
    -------
    str
        The protocol, ending in a newline; the same text for the same configuration.
    """
    config = study.config
    k = study.p - 1
    replications = study.replications
    alpha = study.alpha
    cells = study.cells
    lines = ["# Study protocol", ""]
    lines += [
        "Written by regsim from the study's configuration before any dataset is drawn, in "
        "the ADEMP structure of Morris, White & Crowther (2019). Its SHA-256 is recorded in "
        "`provenance.json`; `python -m regsim verify` reports a protocol that is not the one "
        "of the recorded configuration.",
        "",
        "## Aims",
        "",
        str(config.get("aims") or "Not stated (config key `aims`).").strip(),
        "",
        "## Data-generating mechanisms",
        "",
        f"y = Xβ + ε with X = [1, x_1, …, x_k], k = {k} covariates (p = {study.p} "
        "coefficients, intercept first). The grid crosses every level of every factor below: "
        f"{len(cells)} data cells.",
        "",
        f"* n (observations per dataset): {', '.join(str(n) for n in config['grid']['n'])}",
        f"* σ (error sd): {', '.join(format_number(s) for s in config['grid']['sigma'])}",
        "* error model:",
    ]
    for errors in dict.fromkeys(cell.errors for cell in cells):
        lines.append(f"  * `{errors}`: {ERROR_DESCRIPTIONS.get(errors, errors)}")
    # Listed by name (priors in the study's order): the protocol of a configuration does
    # not depend on the order its mappings were written in (provenance.json sorts them).
    truths = sorted(study.truths.items())
    lines.append("* truth (the true coefficients β):")
    for name, beta in truths:
        lines.append(f"  * `{name}`: β = {_vector(beta)}")
    lines.append("* covariate design:")
    for name, design in sorted(study.designs.items()):
        lines.append(f"  * `{name}`: {_design_text(design, k)}")
    lines += [
        "",
        f"Each cell has {replications} replicate datasets, seeded from the base seed "
        f"{study.seed}: replicate r of a cell is drawn from "
        "`SeedSequence(entropy=seed, spawn_key=(cell key, r // 256, part))` (part 0 the "
        "covariates, part 1 the errors), the cell key being the SHA-256 of its canonical "
        "data-generating parameters (n, σ, β, the error model and design when not the "
        "defaults). A replicate is therefore a function of (seed, cell, r) alone: "
        "`python -m regsim dataset --cell LABEL --replicate R` redraws it. Every method "
        "and prior is fitted on the same datasets.",
        "",
        "## Estimands",
        "",
        "Each coefficient β_j and the error sd σ, in every cell; their true values:",
        "",
        "| truth | " + " | ".join(parameter_names(study.p)[:-1]) + " | σ |",
        "|---|" + "---:|" * (study.p + 1),
    ]
    sigmas = ", ".join(format_number(s) for s in config["grid"]["sigma"])
    for name, beta in truths:
        lines.append(
            f"| `{name}` | " + " | ".join(format_number(b) for b in beta) + f" | {sigmas} |"
        )
    lines += ["", "## Methods", ""]
    lines.append(
        f"Every interval has nominal coverage 1 − α = {format_number(1 - alpha)}. For each method:"
    )
    lines.append("")
    for method in METHODS:
        if method.name in study.methods:
            text = METHOD_DESCRIPTIONS.get(method.name, method.name)
            lines.append(f"* **{method_name(method.name)}** (`{method.name}`): {text}.")
    prior_methods = [m for m in study.methods if m in PRIOR_METHODS]
    if prior_methods and study.priors:
        lines += [
            "",
            f"Priors of {', '.join(method_name(m) for m in prior_methods)} "
            "(independent β_j ~ N(mean_j, sd_j²), sd ∞ a flat prior), with "
            f"p(σ) ∝ {'1' if study.sigma_prior == 'flat' else '1/σ'} "
            f"(`sigma_prior: {study.sigma_prior}`):",
            "",
            "| prior | mean | sd |",
            "|---|---|---|",
        ]
        for prior in sorted(study.priors, key=lambda prior: prior_rank(prior.name)):
            lines.append(f"| `{prior.name}` | {_vector(prior.mean)} | {_vector(prior.sd)} |")
    reference = study.reference
    lines += [
        "",
        "## Performance measures",
        "",
        "Per cell, method, prior and parameter, each measure with its Monte Carlo standard "
        "error (formulas of `regsim.metrics`):",
        "",
        *_measure_table(),
        "",
        (
            f"The paired measures compare every method and prior with `{reference}`, "
            "replicate by replicate, on the replicates where both succeeded."
            if reference is not None
            else "The study has no reference method, so no paired measures."
        ),
        "",
        "## Replications and Monte Carlo error",
        "",
        f"R = {replications} replicates per cell. A coverage estimate near its nominal "
        f"{format_number(1 - alpha)} has MCSE √(α(1 − α)/R) = "
        f"{math.sqrt(alpha * (1 - alpha) / replications):.4f} (at worst, p = ½: "
        f"{0.5 / math.sqrt(replications):.4f}); a bias estimate has MCSE EmpSE/√R = "
        f"{1 / math.sqrt(replications):.4f} × EmpSE, EmpSE being the estimator's empirical "
        "SE in the cell (`python -m regsim plan` turns a pilot's into the R a target MCSE "
        "needs).",
        "",
        "## Failed replicates",
        "",
        (
            "A replicate whose fit failed (did not converge, or gave a non-finite number, or "
            "data too collinear to fit to precision) is left out of "
            + (
                "every method's measures of its cell (failure rule `common`), so that all "
                "are compared on the same replicates."
                if study.failures == "common"
                else "that method's and prior's measures only (failure rule `own`)."
            )
            + " It is counted in `n_failed`; `tables/failures_sensitivity.md` sets the main "
            "measures under both rules side by side."
        ),
        "",
    ]
    return "\n".join(lines)


def write_protocol(study: Study, path: str | os.PathLike[str]) -> str:
    """Write :func:`protocol_markdown` to ``path`` atomically; return the text."""
    text = protocol_markdown(study)
    write_text_atomic(path, text)
    return text


def protocol_of_config(config: Mapping[str, Any]) -> str:
    """The protocol of a resolved configuration (e.g. one recorded in provenance.json)."""
    return protocol_markdown(Study.from_config(config))


__all__ = ["protocol_markdown", "protocol_of_config", "write_protocol"]
