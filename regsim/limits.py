"""The numbers regsim can compute with, checked where they come in (config and commands).

Each ``*_problem`` function returns what is wrong with a value, as the end of a one-line
message, or None when the value is fine; the config check and the commands put the key or
option in front.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

#: Smallest α: the intervals' quantile 1 − α/2 must differ from 1 in double precision by
#: far more than rounding (1 − 2.2e-16 is the largest double below 1).
MIN_ALPHA = 1e-12

#: Prior standard deviations between these (or infinite, a flat prior): the precision
#: 1/sd² and the products the MAP and Bayes fits form with it stay far from overflow.
MIN_PRIOR_SD = 1e-50
MAX_PRIOR_SD = 1e50

#: A prior sd below this share of the coefficients' size in its coefficient's units plus
#: |μ_j| is below what MAP's and Bayes's fits resolve (the size: Σ|β_j| in a study, whose
#: covariates are all of unit scale; ‖Xβ̂‖/‖x_j‖ in ``regsim fit``): their estimates carry
#: rounding errors of about 1e-16 of that size, so the posterior's spread would be the
#: rounding's (at sd = 1e-50, MAP's intervals covered 30–50 %).
PRIOR_RESOLUTION = 1e-8

#: Largest |β_j| and |μ_j| accepted: sums of squares of the data stay far from overflow.
MAX_MAGNITUDE = 1e100

#: Largest σ accepted: the MCSEs of relerror and of the paired MSE difference take the
#: fourth power of the SEs and errors, which overflows a double from σ ≈ 1e77 (a study at
#: σ = 1e100 ran, then wrote infinite MCSEs).
MAX_SIGMA = 1e60

#: Most replications a target MCSE may ask for.
MAX_REPLICATIONS = 10**15


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """A value as a message shows it: an integer of many digits by its size, not in full."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**21:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)


def finite(value: Any) -> bool:
    """Whether a number is finite; an integer too large for a float is not."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def alpha_problem(alpha: Any) -> str | None:
    """What is wrong with a level α (intervals of coverage 1 − α), or None."""
    if not _is_number(alpha) or not finite(alpha) or not 0 < alpha < 1:
        return f"must be a number strictly between 0 and 1, got {shown(alpha)}"
    if alpha < MIN_ALPHA or alpha > 1 - MIN_ALPHA:
        return (
            f"{alpha!r} is too close to {0 if alpha < 0.5 else 1}: the intervals' quantiles "
            f"cannot be told apart in double precision (use {MIN_ALPHA:g} to {1 - MIN_ALPHA!r})"
        )
    return None


def bound_text(bound: float, value: float) -> str:
    """``bound`` with two significant digits, or as many more as set it apart from
    ``value`` (a bound of 1.00000002 refusing 1 is not "below 1")."""
    for digits in range(2, 18):
        text = f"{bound:.{digits}g}"
        if (float(text) > value) == (bound > value):
            return text
    return repr(bound)


def prior_resolution_problem(
    sd: float, mean: float, scale: float, names: tuple[str, str, str]
) -> str | None:
    """What is wrong with a finite prior sd below what the fits resolve
    (:data:`PRIOR_RESOLUTION`), or None; ``scale`` is the coefficients' size in the
    coefficient's units, ``names`` how the message calls the sd, that size and the prior
    mean."""
    floor = PRIOR_RESOLUTION * (scale + abs(float(mean)))
    if not math.isfinite(sd) or sd >= floor:
        return None
    value, total, centre = names
    return (
        f"{value} is too small: below {bound_text(floor, sd)} "
        f"({PRIOR_RESOLUTION:g} x ({total} + {centre})) "
        "the fits' rounding, not the prior, would set the estimates' spread"
    )


def prior_sd_problem(sd: Any) -> str | None:
    """What is wrong with a prior standard deviation (``inf``: flat), or None."""
    if not _is_number(sd) or math.isnan(sd) or sd <= 0:
        return f"must be positive (.inf for a flat prior), got {shown(sd)}"
    if math.isinf(sd):
        return None
    if sd < MIN_PRIOR_SD:
        return (
            f"{sd!r} is too small: its precision 1/sd² would overflow (at least {MIN_PRIOR_SD:g})"
        )
    if sd > MAX_PRIOR_SD:
        return f"{shown(sd)} is too large: write .inf for a flat prior (at most {MAX_PRIOR_SD:g})"
    return None


def magnitude_problem(value: Any) -> str | None:
    """What is wrong with a coefficient or prior mean, or None."""
    if not _is_number(value) or not finite(value):
        return f"must be a finite number, got {shown(value)}"
    if abs(value) > MAX_MAGNITUDE:
        return f"{shown(value)} is too large (at most {MAX_MAGNITUDE:g})"
    return None


#: Below this α an interval's upper quantile is computed from its tail probability α/2
#: itself rather than from 1 − α/2, which is rounded to a multiple of 2⁻⁵³: a relative
#: error of 2⁻⁵³/(α/2) in the tail (1e-4 at α = 1e-12, limits off by about 1e-5 SEs).
#: Above it the two forms agree far below any printed digit, and the one the study has
#: always used keeps its recorded tables to the bit.
SMALL_ALPHA = 0.01


def normal_upper(alpha: float) -> float:
    """z_{1−α/2}, the upper quantile of a two-sided (1 − α) normal interval (from α/2
    itself below :data:`SMALL_ALPHA`)."""
    if alpha < SMALL_ALPHA:
        return -NormalDist().inv_cdf(alpha / 2.0)
    return NormalDist().inv_cdf(1 - alpha / 2)
