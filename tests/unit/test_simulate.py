"""Seeded replicate datasets: invariances of the seeding scheme, the model, file I/O."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from scipy import stats

from regsim import simulate
from regsim.design import Cell, replicate_chunks
from regsim.errors import DataFileError
from regsim.simulate import (
    BLOCK_REPLICATES,
    Datasets,
    block_streams,
    draw,
    draw_batches,
    load_datasets,
    save_datasets,
)

SEED = 20230406
CELL_A = Cell(20, 5.0, (10.0, 3.8987, 10.1777))
CELL_B = Cell(50, 1.0, (10.0, 3.8987, 10.1777))


def assert_same(a: Datasets, b: Datasets) -> None:
    """Bit-identical datasets (same cell, seed, replicate indices, arrays)."""
    assert a.cell == b.cell
    assert a.base_seed == b.base_seed
    np.testing.assert_array_equal(a.replicates, b.replicates)
    assert a.x.dtype == b.x.dtype == np.float64
    assert a.y.dtype == b.y.dtype == np.float64
    assert a.x.tobytes() == b.x.tobytes()
    assert a.y.tobytes() == b.y.tobytes()


def concat(parts: list[Datasets]) -> Datasets:
    return Datasets(
        cell=parts[0].cell,
        base_seed=parts[0].base_seed,
        replicates=np.concatenate([p.replicates for p in parts]),
        x=np.concatenate([p.x for p in parts]),
        y=np.concatenate([p.y for p in parts]),
    )


def subset(d: Datasets, start: int, stop: int) -> Datasets:
    return Datasets(d.cell, d.base_seed, d.replicates[start:stop], d.x[start:stop], d.y[start:stop])


def test_shapes_and_replicate_indices():
    d = draw(CELL_A, SEED, 5, 12)
    assert len(d) == 7
    assert d.x.shape == (7, 20, 2)
    assert d.y.shape == (7, 20)
    np.testing.assert_array_equal(d.replicates, np.arange(5, 12))
    assert d.replicates.dtype == np.int64


def test_replicate_independent_of_number_requested():
    assert_same(draw(CELL_A, SEED, 0, 10), subset(draw(CELL_A, SEED, 0, 100), 0, 10))


@pytest.mark.parametrize("chunk_size", [7, 33])
def test_replicate_independent_of_chunking(chunk_size):
    whole = draw(CELL_A, SEED, 0, 100)
    parts = [draw(CELL_A, SEED, a, b) for a, b in replicate_chunks(100, chunk_size)]
    assert_same(concat(parts), whole)


def rebuilt(cell: Cell, replicate: int) -> tuple[np.ndarray, np.ndarray]:
    """Replicate ``replicate`` (normal errors) from the documented seeding scheme, alone:
    its block's two streams, the block's earlier replicates drawn and dropped."""
    n, k = cell.n, cell.p - 1
    block, offset = divmod(replicate, BLOCK_REPLICATES)
    covariates, errors = block_streams(cell, SEED, block)
    for _ in range(offset):
        covariates.random((n, k))
        errors.standard_normal(n)
    x = covariates.random((n, k))
    y = cell.beta[0] + x @ np.asarray(cell.beta[1:]) + cell.sigma * errors.standard_normal(n)
    return x, y


@pytest.mark.parametrize("replicate", [0, 3, BLOCK_REPLICATES - 1, BLOCK_REPLICATES, 700])
def test_replicate_follows_the_documented_scheme(replicate):
    x, y = rebuilt(CELL_A, replicate)
    d = draw(CELL_A, SEED, replicate, replicate + 1)
    assert d.x[0].tobytes() == x.tobytes()
    np.testing.assert_allclose(d.y[0], y, rtol=1e-15, atol=1e-13)


@pytest.mark.parametrize("chunk_size", [7, 250, 300])
def test_chunks_across_seeding_blocks(chunk_size):
    # 700 replicates: blocks of 256 cut by chunks anywhere, batches too
    whole = draw(CELL_A, SEED, 0, 700)
    parts = [draw(CELL_A, SEED, a, b) for a, b in replicate_chunks(700, chunk_size)]
    assert_same(concat(parts), whole)
    for start, stop in replicate_chunks(700, chunk_size)[:3]:
        batches = list(draw_batches(CELL_A, SEED, start, stop, 90))
        assert [len(b) for b in batches][0] == min(90, stop - start)
        assert_same(concat(batches), subset(whole, start, stop))


def test_skipping_into_a_block_in_pieces_draws_the_same(monkeypatch):
    # A range starting inside a block drops the block's earlier normals a piece at a time;
    # the piece size must not change the data.
    reference = draw(CELL_A, SEED, 100, 103)
    monkeypatch.setattr(simulate, "_SKIP_PIECE", 7)
    assert_same(draw(CELL_A, SEED, 100, 103), reference)


def test_chunk_in_the_middle_equals_slice():
    assert_same(draw(CELL_B, SEED, 37, 41), subset(draw(CELL_B, SEED, 0, 50), 37, 41))


def test_independent_of_other_cells_and_their_order():
    alone = draw(CELL_A, SEED, 0, 30)
    draw(CELL_B, SEED, 0, 30)
    after_b = draw(CELL_A, SEED, 0, 30)
    # Interleaved with another cell, in two pieces.
    first = draw(CELL_A, SEED, 0, 12)
    draw(CELL_B, SEED, 0, 5)
    second = draw(CELL_A, SEED, 12, 30)
    assert_same(after_b, alone)
    assert_same(concat([first, second]), alone)


def test_independent_of_process_and_core_count():
    chunks = replicate_chunks(60, 25)
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(draw, cell, SEED, a, b) for cell in (CELL_B, CELL_A) for a, b in chunks
        ]
        results = [f.result() for f in futures]
    parallel_b = concat(results[: len(chunks)])
    parallel_a = concat(results[len(chunks) :])
    assert_same(parallel_a, draw(CELL_A, SEED, 0, 60))
    assert_same(parallel_b, draw(CELL_B, SEED, 0, 60))


def test_empty_range_and_bad_range():
    assert len(draw(CELL_A, SEED, 4, 4)) == 0
    with pytest.raises(ValueError):
        draw(CELL_A, SEED, 5, 4)
    with pytest.raises(ValueError):
        draw(CELL_A, SEED, -1, 4)


def test_different_seeds_and_cells_give_different_data():
    base = draw(CELL_A, SEED, 0, 5)
    other_seed = draw(CELL_A, SEED + 1, 0, 5)
    assert not np.any(base.x == other_seed.x)
    assert not np.any(base.y == other_seed.y)
    # A cell differing only in sigma gets its own stream, not a rescaled copy.
    other_sigma = draw(Cell(20, 5.5, CELL_A.beta), SEED, 0, 5)
    assert not np.any(base.x == other_sigma.x)
    other_beta = draw(Cell(20, 5.0, (10.0, 3.8987, 10.0)), SEED, 0, 5)
    assert not np.any(base.x == other_beta.x)
    # Replicates of one cell differ from each other.
    assert not np.any(base.x[0] == base.x[1])


def test_equal_cells_spelled_differently_share_data():
    a = draw(Cell(20, 5, [10, 3.8987, 10.1777]), SEED, 0, 3)
    b = draw(CELL_A, SEED, 0, 3)
    assert a.x.tobytes() == b.x.tobytes() and a.y.tobytes() == b.y.tobytes()


def test_unknown_error_model_rejected():
    with pytest.raises(ValueError, match="unknown error model .cauchy."):
        draw(Cell(20, 5.0, CELL_A.beta, errors="cauchy"), SEED, 0, 2)


def test_data_follow_the_model():
    cell = Cell(40, 2.5, (-3.0, 1.5, 4.0, -0.5))
    d = draw(cell, SEED, 0, 2500)
    beta = np.asarray(cell.beta)
    noise = (d.y - beta[0] - d.x @ beta[1:]).ravel()
    m = noise.size  # 100 000 errors
    assert abs(noise.mean()) < 4 * cell.sigma / np.sqrt(m)
    # sd of the sample sd of normal data ≈ σ/√(2m).
    assert abs(noise.std() - cell.sigma) < 4 * cell.sigma / np.sqrt(2 * m)
    assert stats.kstest(noise / cell.sigma, "norm").pvalue > 1e-3
    x = d.x.ravel()
    assert x.min() >= 0.0 and x.max() < 1.0
    assert abs(x.mean() - 0.5) < 4 * np.sqrt(1 / 12 / x.size)
    assert stats.kstest(x, "uniform").pvalue > 1e-3
    # Covariates are independent of each other and of the errors.
    corr = np.corrcoef(np.column_stack([d.x.reshape(-1, 3), noise]), rowvar=False)
    assert np.all(np.abs(corr[np.triu_indices(4, 1)]) < 4 / np.sqrt(m))


def test_save_load_roundtrip_bit_identical(tmp_path):
    d = draw(CELL_A, SEED, 10, 25)
    other = draw(CELL_B, SEED, 0, 4)
    path = tmp_path / "sub" / "data.npz"
    save_datasets(path, [d, other])  # a job's file holds every unit of the job
    first, second = load_datasets(path)
    assert_same(first, d)
    assert_same(second, other)
    assert [p.name for p in path.parent.iterdir()] == ["data.npz"]  # no temp file left


def test_truncated_file_raises_data_file_error(tmp_path):
    good = tmp_path / "good.npz"
    save_datasets(good, [draw(CELL_A, SEED, 0, 10)])
    data = good.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match="truncated.npz"):
        load_datasets(bad)


@pytest.mark.parametrize(
    "content", [b"", b"garbage, not a dataset file\n" * 10, bytes(range(256)) * 4]
)
def test_garbage_file_raises_data_file_error(tmp_path, content):
    bad = tmp_path / "garbage.npz"
    bad.write_bytes(content)
    with pytest.raises(DataFileError, match="garbage.npz"):
        load_datasets(bad)


def test_missing_file_raises_data_file_error(tmp_path):
    with pytest.raises(DataFileError, match="absent.npz"):
        load_datasets(tmp_path / "absent.npz")
