"""regsim.fsum.group_sums against math.fsum, bit for bit: the metrics' means are exactly
rounded sums, and the tables' recorded bytes depend on every bit."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regsim import fsum


def _fsums(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    return np.array(
        [math.fsum(values[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    )


def _fsum_raises(values: list[float]) -> bool:
    try:
        math.fsum(values)
    except OverflowError:
        return True
    return False


@contextlib.contextmanager
def _no_error() -> Iterator[None]:
    yield


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


#: Values that make sums hard: ties at every scale, huge and subnormal magnitudes, signed
#: zeros, and numbers that cancel.
_HARD = st.sampled_from(
    [0.0, -0.0, 0.5, -0.5, 1.0, 3.0, 1e16, -1e16, 2.0**53, 1.0 + 2.0**-52, 2.0**-1074, 1e300]
)


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    offset=st.integers(0, 3),
    data=st.data(),
)
def test_group_sums_are_fsum_s_bits(sizes: list[int], offset: int, data) -> None:
    total = offset + sum(sizes) + 2
    values = np.array(
        data.draw(
            st.lists(
                _HARD | st.floats(allow_nan=False, allow_infinity=False, width=64),
                min_size=total,
                max_size=total,
            )
        )
    )
    bounds = offset + np.concatenate([[0], np.cumsum(sizes)])
    try:
        expected = _fsums(values, bounds)
    except OverflowError:
        with pytest.raises(OverflowError):
            fsum.group_sums(values, bounds)
        return
    assert _same_bits(fsum.group_sums(values, bounds), expected)


@pytest.mark.parametrize(
    "values, message",
    [([np.inf, 1.0, -np.inf], None), ([1e308, 1e308, 1.0], "overflow")],
)
def test_non_finite_groups_behave_as_fsum(values: list[float], message: str | None) -> None:
    array = np.array(values)
    bounds = np.array([0, len(values)])
    if message is None:
        with pytest.raises(ValueError):
            math.fsum(values)
        with pytest.raises(ValueError):
            fsum.group_sums(array, bounds)
    else:
        with pytest.raises(OverflowError, match=message):
            fsum.group_sums(array, bounds)
    # A partial sum of fsum's overflows although the group's sum is finite: fsum raises,
    # and so does group_sums, which leaves groups near the largest floats to it.
    for order in ([1e308, 1e308, -1e308], [2.0**1000] * 3 + [-(2.0**1000)] * 2):
        with pytest.raises(OverflowError) if _fsum_raises(order) else _no_error():
            got = fsum.group_sums(np.array(order), np.array([0, len(order)]))
            assert got[0] == math.fsum(order)
    nan_and_inf = np.array([np.nan, 1.0, np.inf, 2.0])
    got = fsum.group_sums(nan_and_inf, np.array([0, 2, 4]))
    assert np.isnan(got[0]) and got[1] == np.inf


@pytest.mark.parametrize("shape", ["equal", "unequal", "empty groups", "single values"])
def test_typical_groups_are_certified_without_fsum(monkeypatch, shape: str) -> None:
    """The fast path is the path taken: fsum sums at most a few groups of a metrics-like
    column (estimates about a truth), and the results are its bits all the same."""
    rng = np.random.default_rng(11)
    sizes = {
        "equal": [500] * 200,
        "unequal": list(rng.integers(400, 500, 200)),
        "empty groups": [500, 0] * 100,
        "single values": [1] * 200,
    }[shape]
    values = rng.normal(3.0, 2.0, sum(sizes))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    called: list[int] = []
    real = fsum._fsums

    def counted(values, bounds, groups, out):
        called.append(len(groups))
        return real(values, bounds, groups, out)

    monkeypatch.setattr(fsum, "_fsums", counted)
    got = fsum.group_sums(values, bounds)
    assert _same_bits(got, _fsums(values, bounds))
    fell_back = sum(called)
    if shape == "empty groups":
        assert fell_back <= 100 + 5  # the empty groups (sum 0.0, whose sign fsum sets)
    elif shape == "single values":
        assert fell_back == 200  # nothing to add: fsum is as fast
    else:
        assert fell_back <= 10  # about 1 in 80 sums lies too near a tie to certify


def test_without_extended_precision_every_group_is_fsum_s(monkeypatch) -> None:
    """Where longdouble is float64 (e.g. arm64 macOS) nothing can be certified: the sums
    are fsum's, group by group."""
    monkeypatch.setattr(fsum, "_EXTENDED", False)
    rng = np.random.default_rng(3)
    values = rng.normal(size=1000)
    bounds = np.array([0, 100, 100, 600, 1000])
    assert _same_bits(fsum.group_sums(values, bounds), _fsums(values, bounds))


def test_no_groups_and_cancelling_groups() -> None:
    assert fsum.group_sums(np.array([1.0]), np.array([0])).shape == (0,)
    # 1e16 + 1 - 1e16 is 1 exactly: a float64 sum in any order loses it or not by order
    values = np.array([1e16, 1.0, -1e16, 1.0, 1e16, -1e16] * 50)
    bounds = np.array([0, 3, 6, len(values)])
    got = fsum.group_sums(values, bounds)
    assert got.tolist() == [1.0, 1.0, 100.0 - 2.0]


def test_ties_round_to_even_as_fsum_does() -> None:
    """A sum exactly half-way between two floats is left to fsum (round half to even);
    one a hair beyond the tie is certified and rounds away."""
    half = 2.0**-53  # half the gap above 1.0
    cases = [
        [1.0, half],  # tie: down to 1.0 (even)
        [1.0 + 2.0**-52, half],  # tie: up to 1 + 2^-51 (even)
        [1.0, half, 2.0**-80],  # beyond the tie: up
        [1.0, half, -(2.0**-80)],  # short of it: down
        [-1.0, -half, 0.0, 0.0],
    ]
    values = np.array([v for case in cases for v in case])
    bounds = np.concatenate([[0], np.cumsum([len(case) for case in cases])])
    got = fsum.group_sums(values, bounds)
    assert _same_bits(got, _fsums(values, bounds))
    assert got.tolist() == [1.0, 1.0 + 2.0**-51, 1.0 + 2.0**-52, 1.0, -1.0]
