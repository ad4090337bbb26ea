"""Data cells, priors, stable cell keys and replicate chunks.

A *data cell* is one setting of the data-generating parameters (n, sigma, beta, error
model). Its key is the SHA-256 of its canonical JSON form, so it depends only on those
parameters: never on grid order, on which other cells exist, or on Python's ``hash``.
Priors are not part of a cell: every prior is fitted on the same datasets.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

#: Estimators, in table order (the keys of ``regsim.estimators.ESTIMATORS``).
METHODS: tuple[str, ...] = ("ols", "ols_hc3", "mle", "map")

#: Methods whose fit depends on a prior.
PRIOR_METHODS: frozenset[str] = frozenset({"map"})

#: Columns of the long per-replicate table of fits (``regsim.estimators.fit_table``).
FIT_COLUMNS: tuple[str, ...] = (
    "n",
    "sigma",
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

#: Error models (see regsim.simulate): normal, Student t₃ scaled to sd σ, heteroskedastic.
ERROR_MODELS: tuple[str, ...] = ("normal", "t3", "hetero")

#: Error model whose cells keep the key they had before error models existed.
DEFAULT_ERRORS = "normal"


def _canonical_float(value: float) -> str:
    """Shortest round-trip text of a float, so 1, 1.0 and 1e0 give one key."""
    return repr(float(value))


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
    """

    n: int
    sigma: float
    beta: tuple[float, ...]
    errors: str = DEFAULT_ERRORS

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "sigma", float(self.sigma))
        object.__setattr__(self, "beta", tuple(float(b) for b in self.beta))

    @property
    def p(self) -> int:
        """Number of coefficients, intercept included."""
        return len(self.beta)

    def canonical(self) -> dict[str, object]:
        """Canonical data-generating parameters (floats as round-trip text).

        The error model is left out for normal errors so that adding the error-model
        factor keeps every normal-error cell's key, and so its datasets.
        """
        params: dict[str, object] = {
            "n": self.n,
            "sigma": _canonical_float(self.sigma),
            "beta": [_canonical_float(b) for b in self.beta],
        }
        if self.errors != DEFAULT_ERRORS:
            params["errors"] = self.errors
        return params

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
