"""Cells, their stable keys, priors and replicate chunks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regsim.design import Cell, Prior, replicate_chunks

DEFAULT_BETA = (10.0, 3.8987, 10.1777)


def test_default_cell_key_follows_documented_recipe():
    # Recipe: SHA-256 of the compact, sorted-key JSON of the canonical parameters, with
    # every float written as its shortest round-trip text (Python repr) in a string.
    text = '{"beta":["10.0","3.8987","10.1777"],"n":20,"sigma":"5.0"}'
    expected = hashlib.sha256(text.encode("utf-8")).hexdigest()
    # Pinned literal: a change of recipe changes every dataset of the study.
    assert expected == "3de327c97df810e3006411e5cc2e0292651397162c66943eb636b0b5c6888912"
    assert Cell(n=20, sigma=5.0, beta=DEFAULT_BETA).key == expected


def test_key_int_is_first_128_bits_of_key():
    cell = Cell(20, 5.0, DEFAULT_BETA)
    assert cell.key_int == int(cell.key[:32], 16)
    assert 0 <= cell.key_int < 2**128


@pytest.mark.parametrize(
    "other",
    [
        Cell(20, 5, DEFAULT_BETA),
        Cell(20.0, 5.0, DEFAULT_BETA),
        Cell(20, 5.0, list(DEFAULT_BETA)),
        Cell(20, 5.0, [10, 3.8987, 10.1777]),
        Cell(20, 5.0, (10.0, 3.8987, 10.1777), errors="normal"),
        Cell(20, 5e0, (1e1, 3.8987, 10.1777)),
    ],
)
def test_key_ignores_spelling_of_parameters(other):
    assert other.key == Cell(20, 5.0, DEFAULT_BETA).key


def test_key_same_for_int_and_float_sigma_and_beta_types():
    assert Cell(10, 1, (1, 2)).key == Cell(10, 1.0, (1.0, 2.0)).key
    assert Cell(10, 1, [1, 2]).key == Cell(10, 1.0, (1.0, 2.0)).key


@pytest.mark.parametrize(
    "changed",
    [
        Cell(21, 5.0, DEFAULT_BETA),
        Cell(20, 5.000000001, DEFAULT_BETA),
        Cell(20, 1.0, DEFAULT_BETA),
        Cell(20, 5.0, (10.0, 3.8987, 10.1778)),
        Cell(20, 5.0, (3.8987, 10.0, 10.1777)),
        Cell(20, 5.0, (10.0, 3.8987)),
        Cell(20, 5.0, (10.0, 3.8987, 10.1777, 0.0)),
        Cell(20, 5.0, (-10.0, 3.8987, 10.1777)),
        Cell(20, 5.0, DEFAULT_BETA, errors="t3"),
    ],
)
def test_key_changes_with_every_parameter(changed):
    assert changed.key != Cell(20, 5.0, DEFAULT_BETA).key


def test_key_distinguishes_neighbouring_floats():
    a = Cell(20, 1.0, (0.1 + 0.2, 1.0))
    b = Cell(20, 1.0, (0.3, 1.0))
    assert a.beta[0] != b.beta[0]
    assert a.key != b.key


def test_normal_errors_left_out_of_canonical_form():
    canonical = Cell(20, 5.0, DEFAULT_BETA).canonical()
    assert "errors" not in canonical
    assert set(canonical) == {"n", "sigma", "beta"}
    other = Cell(20, 5.0, DEFAULT_BETA, errors="t3").canonical()
    assert other["errors"] == "t3"


def test_canonical_json_roundtrips_to_same_cell():
    cell = Cell(17, 0.1 + 0.2, (1e-300, -2.5, 1e300))
    params = json.loads(json.dumps(cell.canonical()))
    again = Cell(params["n"], float(params["sigma"]), [float(b) for b in params["beta"]])
    assert again == cell
    assert again.key == cell.key


def _key_in_subprocess(hash_seed: str) -> str:
    code = (
        "from regsim.design import Cell\n"
        "cells = {Cell(20, 5.0, (10.0, 3.8987, 10.1777)), Cell(50, 1, (1, 2, 3))}\n"
        "print(' '.join(sorted(c.key for c in cells)))\n"
        "print(Cell(20, 5.0, (10.0, 3.8987, 10.1777)).key)\n"
    )
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


def test_key_independent_of_python_hash_seed():
    first = _key_in_subprocess("0")
    second = _key_in_subprocess("4242")
    assert first == second
    assert first.splitlines()[-1] == Cell(20, 5.0, DEFAULT_BETA).key


@settings(max_examples=150, deadline=None)
@given(replications=st.integers(1, 500), chunk_size=st.integers(1, 600))
def test_replicate_chunks_cover_every_replicate_once(replications, chunk_size):
    chunks = replicate_chunks(replications, chunk_size)
    covered = [r for start, stop in chunks for r in range(start, stop)]
    assert covered == list(range(replications))
    assert all(0 < stop - start <= chunk_size for start, stop in chunks)
    assert len(chunks) == -(-replications // chunk_size)
    # Consecutive, half-open, no gaps.
    assert chunks[0][0] == 0 and chunks[-1][1] == replications
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))


@pytest.mark.parametrize("replications, chunk_size", [(0, 5), (5, 0), (-1, 3), (3, -2)])
def test_replicate_chunks_rejects_non_positive(replications, chunk_size):
    with pytest.raises(ValueError):
        replicate_chunks(replications, chunk_size)


def test_prior_precision_and_validation():
    prior = Prior("p", (0, 1, 2), (2.0, float("inf"), 0.5))
    assert prior.precision == (0.25, 0.0, 4.0)
    with pytest.raises(ValueError):
        Prior("bad", (0, 0), (1.0,))
    with pytest.raises(ValueError):
        Prior("bad", (0,), (0.0,))
    with pytest.raises(ValueError):
        Prior("bad", (0,), (-1.0,))
    with pytest.raises(ValueError):
        Prior("bad", (0,), (float("nan"),))
    with pytest.raises(ValueError):
        Prior("bad", (float("inf"),), (1.0,))
