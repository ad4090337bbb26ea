"""The names every part of regsim shares, each written once.

* **Methods**: their order in tables and figures, their printed names, which take a prior
  (:data:`METHODS`), and the priors on σ those can use (:data:`SIGMA_PRIORS`).
* **Parameters**: ``beta0 … beta{p-1}`` then ``sigma`` (:func:`parameter_names`).
* **Grid factors**: the data-generating settings a cell varies (:data:`FACTORS`): n, σ,
  the error model, the truth (the true coefficients) and the covariate design. Every table
  has a column for each; a factor with a default level (normal errors, the one truth of a
  ``beta:`` config, the uniform random design) leaves a cell at that level out of the
  cell's key and label, so adding a level never changes another cell's datasets or files.
  Every part of regsim handles factors as this list.
* **Columns** of the stage contracts: the long table of fits, the metrics table.
* **Labels and numbers**: a cell's file label, grid values as text, table sort order.

Kept to the standard library, so that parsing the workflow stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """An estimator of the study.

    Attributes
    ----------
    name : str
        Registry name (``regsim.estimators.ESTIMATORS``), config and table value.
    label : str
        Printed name in figures and tables.
    takes_prior : bool
        Fitted once per prior of the study.
    multimodal : bool
        Reports whether its objective had several local optima (``n_multimodal``).
    """

    name: str
    label: str
    takes_prior: bool = False
    multimodal: bool = False


#: The estimators, in the order of every table and figure.
METHODS: tuple[Method, ...] = (
    Method("ols", "OLS"),
    Method("ols_hc3", "OLS (HC3)"),
    Method("mle", "MLE"),
    Method("map", "MAP", takes_prior=True, multimodal=True),
    Method("bayes", "Bayes", takes_prior=True, multimodal=True),
)

#: Method names in table order.
METHOD_NAMES: tuple[str, ...] = tuple(m.name for m in METHODS)

#: Methods fitted once per prior.
PRIOR_METHODS: frozenset[str] = frozenset(m.name for m in METHODS if m.takes_prior)

#: Methods for which the ``n_multimodal`` measure is reported.
MULTIMODAL_METHODS: frozenset[str] = frozenset(m.name for m in METHODS if m.multimodal)

_METHOD_LABELS: dict[str, str] = {m.name: m.label for m in METHODS}

#: Priors on σ of the methods that take a prior (config key ``sigma_prior``): p(σ) ∝ 1
#: (``flat``, the default) or p(σ) ∝ 1/σ (``jeffreys``).
SIGMA_PRIORS: tuple[str, ...] = ("flat", "jeffreys")

#: The prior on σ a study uses unless it says otherwise.
DEFAULT_SIGMA_PRIOR = "flat"

#: Priors of the default study, in the order their series are shown; others follow
#: alphabetically.
PRIOR_ORDER: tuple[str, ...] = ("weak", "informative", "shifted", "skeptical")


def method_label(method: str, prior: str = "") -> str:
    """Printed name of a (method, prior) series, e.g. ``"OLS"`` or ``"MAP (weak)"``."""
    name = _METHOD_LABELS.get(method, method.upper())
    return f"{name} ({prior})" if prior else name


def method_name(method: str) -> str:
    """Printed name of a method alone, e.g. ``"OLS (HC3)"``."""
    return _METHOD_LABELS.get(method, method.upper())


def _rank(order: Sequence[str], value: str) -> tuple[int, str]:
    return (order.index(value), value) if value in order else (len(order), value)


def method_rank(method: str) -> tuple[int, str]:
    """Sort key of a method: :data:`METHODS` order, then others alphabetically."""
    return _rank(METHOD_NAMES, method)


def prior_rank(prior: str) -> tuple[int, str]:
    """Sort key of a prior: :data:`PRIOR_ORDER`, then others alphabetically."""
    return _rank(PRIOR_ORDER, prior)


def series_rank(series: tuple[str, str]) -> tuple[tuple[int, str], tuple[int, str]]:
    """Sort key of a (method, prior) series: by method, then prior."""
    method, prior = series
    return method_rank(method), prior_rank(prior)


# --------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------

_BETA = re.compile(r"^beta(\d+)$")


def parameter_names(p: int) -> list[str]:
    """Names of the fitted parameters: ``beta0 … beta{p-1}`` then ``sigma``."""
    return [f"beta{j}" for j in range(p)] + ["sigma"]


def beta_index(parameter: str) -> int | None:
    """j of ``beta{j}``; None for any other name."""
    match = _BETA.match(parameter)
    return int(match.group(1)) if match else None


def parameter_rank(parameter: str) -> tuple[int, int, str]:
    """Sort key: ``beta0, beta1, …`` (numerically), ``sigma``, then others alphabetically."""
    j = beta_index(parameter)
    if j is not None:
        return (0, j, parameter)
    return (1 if parameter == "sigma" else 2, 0, parameter)


# --------------------------------------------------------------------------------------
# Grid factors
# --------------------------------------------------------------------------------------

#: Error models (see regsim.simulate): normal, Student t₃ scaled to sd σ, heteroskedastic.
ERROR_MODELS: tuple[str, ...] = ("normal", "t3", "hetero")

#: Error model whose cells keep the key, label and tables they had before the factor.
DEFAULT_ERRORS = "normal"


#: The truth of a config that gives ``beta:`` (one truth) rather than named ``truths:``.
DEFAULT_TRUTH = "beta"

#: The covariate design of a cell unless the grid says otherwise: U(0, 1) covariates,
#: redrawn for every replicate.
DEFAULT_DESIGN = "uniform"


@dataclass(frozen=True)
class Factor:
    """A data-generating setting that varies over the grid.

    Attributes
    ----------
    name : str
        Its config key under ``grid``, and its column in every table.
    levels : tuple of str
        Known levels in display order; empty for numeric factors (sorted by value) and
        for named ones (sorted by name).
    default : str or None
        The level a cell has when the study does not vary the factor. A cell at the
        default leaves the factor out of its key and its label, so adding the factor (or
        another level of it) keeps every such cell's datasets and files. None: every level
        is named in the label.
    """

    name: str
    levels: tuple[str, ...] = ()
    default: str | None = None

    @property
    def optional(self) -> bool:
        """Whether the factor has a default level."""
        return self.default is not None

    def rank(self, value: Any) -> Any:
        """Sort key of a level: known levels in order, then others alphabetically."""
        return _rank(self.levels, str(value)) if self.levels else value


#: The grid factors, in column order: n and σ, then the factors with a default level.
FACTORS: tuple[Factor, ...] = (
    Factor("n"),
    Factor("sigma"),
    Factor("errors", ERROR_MODELS, DEFAULT_ERRORS),
    Factor("truth", (), DEFAULT_TRUTH),
    Factor("design", (), DEFAULT_DESIGN),
)

FACTOR_NAMES: tuple[str, ...] = tuple(f.name for f in FACTORS)
OPTIONAL_FACTORS: tuple[Factor, ...] = tuple(f for f in FACTORS if f.optional)
_FACTORS_BY_NAME: dict[str, Factor] = {f.name: f for f in FACTORS}

#: The keys of a study design given to the figures and tables (``expected``): the levels
#: of every factor, the methods and the priors, so that a cell or series missing from the
#: whole metrics table is reported too.
EXPECTED_KEYS = frozenset({*(f.name for f in FACTORS), "methods", "priors"})


def factor(name: str) -> Factor:
    """The factor called ``name``."""
    return _FACTORS_BY_NAME[name]


def factor_columns(columns: Iterable[str]) -> tuple[str, ...]:
    """The factor columns among ``columns``, in :data:`FACTORS` order."""
    present = set(columns)
    return tuple(name for name in FACTOR_NAMES if name in present)


def cell_label(levels: Mapping[str, Any]) -> str:
    """A cell's file label: ``n20_sigma1``, ``n50_sigma0.5_t3``, ``n20_sigma1_null_collinear``.

    ``levels`` maps factor names to the cell's levels; an optional factor at its default
    (or absent) adds nothing, so a cell keeps its label when a factor is added.
    """
    label = f"n{int(levels['n'])}_sigma{format_number(levels['sigma'])}"
    for item in OPTIONAL_FACTORS:
        value = levels.get(item.name, item.default)
        if value != item.default:
            label += f"_{value}"
    return label


# --------------------------------------------------------------------------------------
# Columns of the stage contracts
# --------------------------------------------------------------------------------------

#: Columns of a table of fits after the factor columns: one row per replicate, method,
#: prior and parameter (see docs/model.md).
FIT_FIELDS: tuple[str, ...] = (
    "prior",
    "method",
    "parameter",
    "replicate",
    "estimate",
    "se",
    "lower",
    "upper",
    "true",
    "converged",
    "multimodal",
)

#: Columns of the metrics table after the factor columns: one row per group and measure
#: (``true``: the parameter's true value in the cell).
METRIC_FIELDS: tuple[str, ...] = (
    "prior",
    "method",
    "parameter",
    "true",
    "measure",
    "estimate",
    "mcse",
)

#: Columns that, after the factor columns, identify a group of replicates.
GROUP_FIELDS: tuple[str, ...] = ("prior", "method", "parameter")

#: Columns that, after the factor columns, identify one fit of one replicate.
REPLICATE_FIELDS: tuple[str, ...] = ("prior", "method", "replicate")

#: Columns that identify one fit (a method with its prior) within a cell.
FIT_KEY: tuple[str, ...] = ("prior", "method")


def with_factors(fields: Sequence[str], columns: Iterable[str]) -> tuple[str, ...]:
    """The factor columns among ``columns``, then ``fields``: a table's column order."""
    return (*factor_columns(columns), *fields)


def fit_columns() -> tuple[str, ...]:
    """Columns of a table of fits: every factor, then :data:`FIT_FIELDS`."""
    return (*FACTOR_NAMES, *FIT_FIELDS)


def metrics_columns() -> tuple[str, ...]:
    """Columns of a metrics table: every factor, then :data:`METRIC_FIELDS`."""
    return (*FACTOR_NAMES, *METRIC_FIELDS)


# --------------------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------------------

#: Performance measures in output order (formulas: regsim.metrics and docs/metrics.md).
MEASURES: tuple[str, ...] = (
    "bias",
    "relbias",
    "median_bias",
    "empse",
    "mad_empse",
    "modelse",
    "relerror",
    "mse",
    "rmse",
    "coverage",
    "becoverage",
    "width",
    "rejection",
    "relprec",
    "bias_diff",
    "mse_diff",
    "coverage_diff",
    "n_reps",
    "n_failed",
    "n_multimodal",
)

#: Measures against the reference method, replicate by replicate (the paired contrasts).
REFERENCE_MEASURES = frozenset({"relprec", "bias_diff", "mse_diff", "coverage_diff"})

#: The methods that can be the reference, in the order the default takes the first the
#: study fits (the ``reference`` key names one).
REFERENCE_CANDIDATES: tuple[str, ...] = ("ols", "ols_hc3", "mle")

#: The measures of the paper tables unless the ``tables`` key names others.
PAPER_MEASURES: tuple[str, ...] = ("bias", "coverage", "rmse")

#: Measures that cannot be negative (scales and squared errors): a log axis can show them,
#: and the nested-loop plot draws them on one by default.
SCALE_MEASURES = frozenset({"empse", "mad_empse", "modelse", "mse", "rmse", "width"})

#: Measures whose target is 0 (a bias, an error, a difference from the reference): their
#: figures draw a line at 0.
ZERO_TARGET_MEASURES = frozenset(
    {
        "bias",
        "relbias",
        "median_bias",
        "relerror",
        "relprec",
        "bias_diff",
        "mse_diff",
        "coverage_diff",
    }
)

#: Readable names of the measures (table titles).
MEASURE_NAMES: dict[str, str] = {
    "bias": "Bias",
    "relbias": "Relative bias",
    "median_bias": "Median bias",
    "empse": "Empirical SE",
    "mad_empse": "Robust empirical SE (scaled MAD)",
    "modelse": "Model SE",
    "relerror": "Relative error of the model SE (%)",
    "mse": "MSE",
    "rmse": "RMSE",
    "coverage": "Coverage",
    "becoverage": "Bias-eliminated coverage",
    "width": "Interval width",
    "rejection": "Rejection rate (type I error where the truth is 0, power elsewhere)",
    "relprec": "Relative precision (%)",
    "bias_diff": "Difference in bias from the reference (paired)",
    "mse_diff": "Difference in MSE from the reference (paired)",
    "coverage_diff": "Difference in coverage from the reference (paired)",
    "n_reps": "Replicates used",
    "n_failed": "Failed replicates",
    "n_multimodal": "Multimodal replicates",
}


#: Failure rules of the measures: a replicate whose fit failed leaves that fit's measures
#: only (``own``), or every fit's of its group, so that all are measured on the same
#: replicates (``common``).
FAILURE_RULES: tuple[str, ...] = ("own", "common")


def measure_rank(measure: str) -> tuple[int, str]:
    """Sort key of a measure: :data:`MEASURES` order, then others alphabetically."""
    return _rank(MEASURES, measure)


#: Sort key of each text column with an order of its own (see ``regsim.tableio``).
SORT_KEYS: dict[str, Callable[[str], Any]] = {
    **{f.name: f.rank for f in OPTIONAL_FACTORS},
    "method": method_rank,
    "parameter": parameter_rank,
    "measure": measure_rank,
}


# --------------------------------------------------------------------------------------
# Numbers as text
# --------------------------------------------------------------------------------------


def format_number(value: float) -> str:
    """Shortest text that reads back as the same float; whole numbers without ``.0``.

    ``1`` for 1.0, ``0.5`` for 0.5, ``1e-05`` for 0.00001: unambiguous (distinct floats
    give distinct text) and stable across runs and platforms. Used in file labels and
    ``metrics.csv``.
    """
    value = float(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def short_number(value: float) -> str:
    """A grid value as printed in figures and tables: ``5`` for 5.0, ``0.5``, ``1e-05``,
    ``1e+60`` (not its 61 digits)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else f"{value:g}"
