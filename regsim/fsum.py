"""Correctly rounded sums of many groups of floats at once: the bits of ``math.fsum``.

Every mean of the metrics is an exactly rounded sum divided by a count, so that a group's
numbers depend on its values alone, not on their order or on the other groups summed
with it (:mod:`regsim.metrics`). ``math.fsum`` gives that sum one group at a time, at
about 30 ns a value with the conversion to Python floats. :func:`group_sums` gives the
same bits for all groups at once, about six times faster, and calls ``math.fsum`` only
for the groups whose result it cannot certify.

How. Each group's values (a row of a zero-padded array) are added pairwise, level by
level, in extended precision (``numpy.longdouble``: 64-bit significands on x86): after
``d`` levels the sum ``S̃`` is within ``δ = γ_d Σ|x|`` of the exact sum ``S``, with
``γ_d = d u / (1 − d u)`` and ``u`` the unit roundoff of the extended format. ``r``, ``S̃``
rounded to float64, is the correctly rounded sum of the group (what fsum returns) when
``|S̃ − r| + δ`` is below half the gap between ``r`` and its neighbours (the smaller gap,
where ``r`` is a power of two): then no other float64 is as close to ``S``. A group that
fails the check (a sum within a few hundredths of the gap from a rounding tie, about one
group in eighty of a metrics column; heavy cancellation; a zero sum, whose sign fsum
decides by its own rule; a value that is not finite or a sum that overflows), or every
group where ``longdouble`` is no wider than float64, is summed by ``math.fsum``: the
result is the same, only slower.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["group_sums"]

#: Whether numpy's longdouble is x87's 80-bit format or IEEE quad, whose additions round
#: correctly to 64 or 113 bits. Where it is float64 itself (e.g. arm64 macOS) no sum
#: could be certified; PowerPC's double-double does not round as the bound assumes. The
#: addition is tried too: an x87 unit set to round to 53 bits would keep 1 + 2^-60 at 1.
_EXTENDED = bool(
    np.finfo(np.longdouble).nmant in (63, 112)
    and np.longdouble(1.0) + np.longdouble(2.0**-60) != np.longdouble(1.0)
)

#: Unit roundoff of longdouble (round to nearest).
_U = float(np.finfo(np.longdouble).eps) / 2.0

#: Σ|x| below this (2^1000, about 1e301): no partial sum of fsum's comes near float64's
#: largest value (about 1.8e308), so fsum would not have raised.
_FAR_FROM_OVERFLOW = 2.0**1000

#: Padding a group's row to the longest group's length may cost at most this many times
#: the values themselves; very unequal groups are summed by fsum.
_MAX_PADDING = 4


def group_sums(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The correctly rounded sum of each group: ``math.fsum`` of each slice, bit for bit.

    Parameters
    ----------
    values : numpy.ndarray
        Float64 values, the groups one after another.
    bounds : numpy.ndarray
        ``len(groups) + 1`` nondecreasing offsets into ``values``: group ``g`` is
        ``values[bounds[g]:bounds[g + 1]]`` (an empty group sums to 0.0).

    Returns
    -------
    numpy.ndarray
        ``[math.fsum(values[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]`` as float64.

    Raises
    ------
    OverflowError, ValueError
        As ``math.fsum``, for a group whose sum overflows or that holds both infinities.
    """
    values = np.asarray(values, dtype=np.float64)
    bounds = np.asarray(bounds, dtype=np.int64)
    counts = np.diff(bounds)
    groups = len(counts)
    out = np.zeros(groups)
    if groups == 0:
        return out
    longest = int(counts.max())
    if not _EXTENDED or longest < 2 or groups * longest > _MAX_PADDING * len(values) + 64:
        return _fsums(values, bounds, np.arange(groups), out)
    if (counts == longest).all():
        # groups of one size (every replicate of a cell fitted): the rows are there
        padded = values[bounds[0] : bounds[-1]].reshape(groups, longest)
    else:
        padded = np.zeros((groups, longest))
        row = np.repeat(np.arange(groups), counts)
        column = np.arange(bounds[0], bounds[-1]) - np.repeat(bounds[:-1], counts)
        padded[row, column] = values[bounds[0] : bounds[-1]]
    with np.errstate(invalid="ignore", over="ignore"):
        total, depth = _pairwise_sums(padded.astype(np.longdouble))
        # Σ|x| in float64 is within a factor 1 + γ of the exact one (γ below 1e-9 for
        # fewer than 10^7 values a group): the factor 2 covers it and the products'
        # own rounding.
        magnitude = np.abs(padded).sum(axis=1)
        slack = 2.0 * (depth * _U / (1.0 - depth * _U)) * magnitude
        r = total.astype(np.float64)
        # exact: r is S̃ rounded, within a factor 2 of it
        off = np.abs(total - r.astype(np.longdouble))
        half_gap = 0.5 * np.spacing(np.nextafter(np.abs(r), 0.0))
        certified = (
            np.isfinite(r)
            & (r != 0.0)
            # fsum raises where a partial sum of its own overflows: near float64's
            # largest values the group is left to it, whatever its order of additions
            & (magnitude < _FAR_FROM_OVERFLOW)
            & (off + slack.astype(np.longdouble) < half_gap.astype(np.longdouble))
        )
    out[certified] = r[certified]
    rest = np.flatnonzero(~certified)
    if len(rest):
        _fsums(values, bounds, rest, out)
    return out


def _pairwise_sums(padded: np.ndarray) -> tuple[np.ndarray, int]:
    """Each row's sum, added pairwise level by level, and the number of levels: every
    value goes through at most that many roundings."""
    level, depth = padded, 0
    while level.shape[1] > 1:
        if level.shape[1] % 2:
            level = np.concatenate([level, np.zeros((len(level), 1), dtype=level.dtype)], axis=1)
        level = level[:, 0::2] + level[:, 1::2]
        depth += 1
    return level[:, 0], depth


def _fsums(
    values: np.ndarray, bounds: np.ndarray, groups: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """``out[g] = math.fsum(values[bounds[g]:bounds[g + 1]])`` for each g of ``groups``."""
    starts, stops = bounds[groups].tolist(), bounds[groups + 1].tolist()
    if 4 * len(groups) >= len(bounds) - 1:
        # most groups: one list of the whole column, sliced (fsum reads Python floats
        # faster than numpy's, and one conversion costs less than one a group)
        listed = values.tolist()
        sums = [math.fsum(listed[start:stop]) for start, stop in zip(starts, stops, strict=True)]
    else:
        sums = [
            math.fsum(values[start:stop].tolist())
            for start, stop in zip(starts, stops, strict=True)
        ]
    out[groups] = sums
    return out
