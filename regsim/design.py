"""Data cells, covariate designs, priors, stable cell keys, and the plan of jobs.

A *data cell* is one setting of the data-generating factors (n, σ, error model, the true
coefficients β, the covariate design). Its key is the SHA-256 of its canonical JSON form,
so it depends only on those settings: never on grid order, on which other cells exist, on
the names given to truths or designs, or on Python's ``hash``. Priors are not part of a
cell: every method and prior is fitted on the same datasets.

The unit of work is a :class:`Unit`, a range of one cell's replicates. :func:`plan_jobs`
packs units into :class:`Job` s by a work budget (observations drawn, replicates × n): a
job may draw and fit many small cells, or one chunk of a large cell. Replicate r is the
same dataset whatever the packing, so no output depends on it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from regsim.schema import (
    DEFAULT_DESIGN,
    DEFAULT_ERRORS,
    DEFAULT_TRUTH,
    FACTOR_NAMES,
    cell_label,
)

#: Covariate distributions of a design: U(0, 1), N(0, 1) with equicorrelation ρ,
#: Bernoulli(½).
COVARIATES: tuple[str, ...] = ("uniform", "normal", "binary")


def _canonical_float(value: float) -> str:
    """Shortest round-trip text of a float, so 1, 1.0 and 1e0 give one key."""
    return repr(float(value))


@dataclass(frozen=True)
class Design:
    """How a cell's covariates x_1 … x_k are drawn.

    Parameters
    ----------
    name : str
        Its name in the config and the tables.
    covariates : {"uniform", "normal", "binary"}
        U(0, 1) i.i.d.; N(0, 1) with every pair correlated ``rho``; Bernoulli(½) i.i.d.
    rho : float
        Equicorrelation of normal covariates, −1/(k − 1) < ρ < 1 (0 for the others).
    fixed : bool
        One X for every replicate (and every σ, error model and truth) of a sample size,
        drawn once from the design's own stream; else X is redrawn for every replicate.
    """

    name: str = DEFAULT_DESIGN
    covariates: str = "uniform"
    rho: float = 0.0
    fixed: bool = False

    def __post_init__(self) -> None:
        if self.covariates not in COVARIATES:
            raise ValueError(f"unknown covariates {self.covariates!r}; known: {COVARIATES}")
        object.__setattr__(self, "rho", float(self.rho))
        object.__setattr__(self, "fixed", bool(self.fixed))

    @property
    def is_default(self) -> bool:
        """U(0, 1) covariates redrawn for every replicate: the study's original design."""
        return self.covariates == "uniform" and not self.fixed

    def canonical(self) -> dict[str, object]:
        """The design's data-generating settings (its name plays no part)."""
        params: dict[str, object] = {"covariates": self.covariates, "fixed": self.fixed}
        if self.covariates == "normal":
            params["rho"] = _canonical_float(self.rho)
        return params

    @property
    def key_int(self) -> int:
        """128 bits of the SHA-256 of the canonical settings: the fixed X's stream."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:32], 16)

    @classmethod
    def from_canonical(cls, params: Mapping[str, Any], name: str = DEFAULT_DESIGN) -> Design:
        """The design of :meth:`canonical` (named ``name``)."""
        return cls(
            name=name,
            covariates=str(params.get("covariates", "uniform")),
            rho=float(params.get("rho", 0.0)),
            fixed=bool(params.get("fixed", False)),
        )


#: The design of a cell unless the grid names another.
UNIFORM = Design()


@dataclass(frozen=True)
class Cell:
    """One data-generating setting of the study.

    Parameters
    ----------
    n : int
        Number of observations per dataset.
    sigma : float
        Standard deviation of the errors.
    beta : tuple of float
        True coefficients, intercept first; ``p = len(beta)``.
    errors : str
        Error model; ``"normal"`` is ε ~ N(0, σ²).
    truth : str
        Name of the truth β (the config's ``truths``; ``beta`` for a config's ``beta:``).
    design : Design
        How the covariates are drawn.
    """

    n: int
    sigma: float
    beta: tuple[float, ...]
    errors: str = DEFAULT_ERRORS
    truth: str = DEFAULT_TRUTH
    design: Design = UNIFORM

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "beta", tuple(float(b) for b in self.beta))

    @property
    def p(self) -> int:
        """Number of coefficients, intercept included."""
        return len(self.beta)

    @property
    def levels(self) -> dict[str, Any]:
        """The cell's level of every grid factor (``regsim.schema.FACTORS``), in order."""
        levels = {
            "n": self.n,
            "sigma": self.sigma,
            "errors": self.errors,
            "truth": self.truth,
            "design": self.design.name,
        }
        return {name: levels[name] for name in FACTOR_NAMES}

    @property
    def label(self) -> str:
        """File label, e.g. ``n20_sigma1`` or ``n50_sigma0.5_t3``."""
        return cell_label(self.levels)

    def true_values(self) -> tuple[float, ...]:
        """True values of the fitted parameters: β_0 … β_k, then σ."""
        return (*self.beta, self.sigma)

    def canonical(self) -> dict[str, object]:
        """Canonical data-generating parameters (floats as round-trip text).

        The error model is left out for normal errors and the design for the default
        design, so that adding those factors keeps every such cell's key, and so its
        datasets. Names (of the truth, of the design) are not data-generating: a truth
        renamed keeps its datasets.
        """
        params: dict[str, object] = {
            "n": self.n,
            "sigma": _canonical_float(self.sigma),
            "beta": [_canonical_float(b) for b in self.beta],
        }
        if self.errors != DEFAULT_ERRORS:
            params["errors"] = self.errors
        if not self.design.is_default:
            params["design"] = self.design.canonical()
        return params

    @classmethod
    def from_canonical(
        cls,
        params: Mapping[str, Any],
        truth: str = DEFAULT_TRUTH,
        design: str = DEFAULT_DESIGN,
    ) -> Cell:
        """The cell whose :meth:`canonical` form is ``params`` (its names given apart)."""
        return cls(
            n=int(params["n"]),
            sigma=float(params["sigma"]),
            beta=tuple(float(b) for b in params["beta"]),
            errors=str(params.get("errors", DEFAULT_ERRORS)),
            truth=truth,
            design=Design.from_canonical(params.get("design", {}), design),
        )

    @property
    def key(self) -> str:
        """SHA-256 hex digest of the canonical parameters (sorted-key JSON)."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def key_int(self) -> int:
        """The first 128 bits of :attr:`key` as an integer, for ``SeedSequence``."""
        return int(self.key[:32], 16)


@dataclass(frozen=True)
class Prior:
    """Independent normal priors β_j ~ N(mean_j, sd_j²); ``sd_j = inf`` is a flat prior.

    Parameters
    ----------
    name : str
        Label used in tables and file names.
    mean, sd : tuple of float
        One entry per coefficient, intercept first.
    """

    name: str
    mean: tuple[float, ...]
    sd: tuple[float, ...]

    def __post_init__(self) -> None:
        mean = tuple(float(m) for m in self.mean)
        sd = tuple(float(s) for s in self.sd)
        if len(mean) != len(sd):
            raise ValueError(f"prior {self.name!r}: mean has {len(mean)} entries, sd {len(sd)}")
        if not all(s > 0 for s in sd) or any(math.isnan(s) for s in sd):
            raise ValueError(f"prior {self.name!r}: every sd must be > 0 (inf allowed)")
        if not all(math.isfinite(m) for m in mean):
            raise ValueError(f"prior {self.name!r}: every mean must be finite")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "sd", sd)

    @property
    def precision(self) -> tuple[float, ...]:
        """Prior precisions 1/sd² (0 for a flat prior)."""
        return tuple(0.0 if math.isinf(s) else 1.0 / (s * s) for s in self.sd)

    def to_plain(self) -> dict[str, Any]:
        """The prior as plain values (``sd`` ``inf`` stays a float)."""
        return {"name": self.name, "mean": list(self.mean), "sd": list(self.sd)}


def replicate_chunks(replications: int, chunk_size: int) -> list[tuple[int, int]]:
    """Split replicates ``0 .. replications-1`` into ``[start, stop)`` chunks.

    Parameters
    ----------
    replications : int
        Number of replicates in the cell (≥ 1).
    chunk_size : int
        Largest number of replicates in one chunk (≥ 1).

    Returns
    -------
    list of (int, int)
        Consecutive half-open ranges covering every replicate once.
    """
    if replications < 1 or chunk_size < 1:
        raise ValueError("replications and chunk_size must be positive")
    return [(a, min(a + chunk_size, replications)) for a in range(0, replications, chunk_size)]


# --------------------------------------------------------------------------------------
# Units and jobs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """Replicates ``start .. stop-1`` of one cell: the unit of work of a simulate job."""

    cell: Cell
    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop:
            raise ValueError(f"bad replicate range [{self.start}, {self.stop})")

    @property
    def replicates(self) -> int:
        """Number of replicates."""
        return self.stop - self.start

    @property
    def work(self) -> int:
        """Observations drawn and fitted: replicates × n."""
        return self.replicates * self.cell.n

    def to_plain(self) -> dict[str, Any]:
        """The unit as plain values; the cell's key makes a changed cell a changed unit."""
        return {
            "cell": self.cell.canonical(),
            "truth": self.cell.truth,
            "design": self.cell.design.name,
            "key": self.cell.key,
            "start": self.start,
            "stop": self.stop,
        }

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> Unit:
        """The unit of :meth:`to_plain`, checking the recorded key.

        Raises
        ------
        ValueError
            If the cell's parameters do not give the recorded key.
        """
        cell = Cell.from_canonical(
            plain["cell"],
            truth=plain.get("truth", DEFAULT_TRUTH),
            design=plain.get("design", DEFAULT_DESIGN),
        )
        if "key" in plain and plain["key"] != cell.key:
            raise ValueError(f"cell {dict(plain['cell'])} does not match key {plain['key']}")
        return cls(cell, int(plain["start"]), int(plain["stop"]))


@dataclass(frozen=True)
class Job:
    """One simulate job: its name (the rule's wildcard) and the units it draws and fits."""

    name: str
    units: tuple[Unit, ...]

    @property
    def work(self) -> int:
        """Observations drawn and fitted by the job."""
        return sum(unit.work for unit in self.units)

    @property
    def cells(self) -> list[Cell]:
        """The cells the job has replicates of, in its order."""
        return list(dict.fromkeys(unit.cell for unit in self.units))


def piece_size(replications: int, n: int, budget: int) -> int:
    """Replicates per piece of a cell whose replicates × n exceed ``budget``: the fewest
    near-equal pieces of at most ``budget`` observations each (at least one replicate)."""
    # The fewest pieces p ≥ ceil(R n / budget) with ceil(R / p) · n ≤ budget, that is
    # p ≥ R / (budget // n); where even one replicate exceeds the budget, one each.
    fit = budget // n
    pieces = -(-replications * n // budget)
    pieces = max(pieces, -(-replications // fit)) if fit else replications
    return -(-replications // pieces)


def jobs_per_cell(replications: int, n: int, budget: int) -> int:
    """The simulate jobs of a cell that :func:`plan_jobs` cuts into pieces (more than
    ``budget`` observations), or 1 for a cell it packs whole (with others of its n)."""
    if replications * n <= budget:
        return 1
    return -(-replications // piece_size(replications, n, budget))


def plan_jobs(cells: Iterable[Cell], replications: int, budget: int) -> list[Job]:
    """Pack every cell's replicates into simulate jobs of at most ``budget`` observations.

    The one planning function of the workflow. Cells are grouped by sample size (a job
    never mixes sample sizes, so a study has a job per n at least, and adding a sample
    size repacks no other); within a group, in order of their keys (so the order of the
    grid in the config plays no part), whole cells are packed greedily while the job's
    replicates × n stays within ``budget``. A cell that alone exceeds it is cut into the
    fewest near-equal replicate ranges that fit, each a job of its own.

    Parameters
    ----------
    cells : iterable of Cell
        The data cells.
    replications : int
        Replicates per cell (≥ 1).
    budget : int
        Largest replicates × n of a job (≥ 1).

    Returns
    -------
    list of Job
        Named ``n{n}-{i}`` (i counting from 1 within the sample size), by n then i.
    """
    if replications < 1 or budget < 1:
        raise ValueError("replications and budget must be positive")
    by_n: dict[int, list[Cell]] = {}
    for cell in cells:
        by_n.setdefault(cell.n, []).append(cell)
    jobs: list[Job] = []
    for n in sorted(by_n):
        packs: list[list[Unit]] = []
        open_pack: list[Unit] = []
        for cell in sorted(by_n[n], key=lambda c: c.key):
            work = replications * n
            if work > budget:
                size = piece_size(replications, n, budget)
                packs += [[Unit(cell, a, b)] for a, b in replicate_chunks(replications, size)]
                continue
            if open_pack and sum(u.work for u in open_pack) + work > budget:
                packs.append(open_pack)
                open_pack = []
            open_pack.append(Unit(cell, 0, replications))
        if open_pack:
            packs.append(open_pack)
        jobs += [Job(f"n{n}-{i}", tuple(units)) for i, units in enumerate(packs, start=1)]
    return jobs
