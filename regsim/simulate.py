"""Seeded replicate datasets of one data cell.

Model: y = X β + ε with X = [1, U_1, …, U_k], U ~ Uniform(0, 1) i.i.d., and errors by
the cell's error model (:data:`ERROR_MODELS`), each with mean 0 and (average) variance σ²:

* ``normal``: ε ~ N(0, σ²) i.i.d.;
* ``t3``: ε = σ·T/√3 with T ~ Student t, 3 degrees of freedom (heavy tails, sd σ);
* ``hetero``: ε_i ~ N(0, σ²·(0.5 + U_i1)²/(13/12)), sd growing with the first covariate,
  rescaled so that the average variance is σ².

Seeding. Replicates are drawn in fixed blocks of :data:`BLOCK_REPLICATES`: replicate r
belongs to block b = r // 256. A block owns two PCG64 streams, seeded by
``SeedSequence(entropy=base_seed, spawn_key=(cell.key_int, b, part))``: part 0 gives the
covariates (n·k uniforms per replicate, in replicate order) and part 1 the normal draws the
errors are made of (n per replicate for normal and heteroskedastic errors, 4n for t₃;
numpy's ziggurat normals). A range of replicates starting inside a block skips the draws
of the block's earlier replicates (covariates by ``PCG64.advance``, as each uniform takes
one 64-bit output; normals by drawing them, as a ziggurat normal takes a variable number).
Replicate r is therefore a pure function of (base seed, cell parameters, r): the same
whatever the number of replicates, the chunking, the batch size, the other cells, the
order cells run in, or the number of cores.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence

from regsim.atomic import replacing
from regsim.design import Cell, Unit
from regsim.errors import DataFileError
from regsim.schema import DEFAULT_ERRORS

#: Version of the dataset file layout, stored in every file: 3 holds every unit of a job.
FILE_FORMAT = 3

#: A job draws at most this many observations (n × replicates) at once, about 1 MB of
#: data at k = 2, which stays in a core's cache between the draw and the statistics; so a
#: job's memory does not grow with its replicates. Results do not depend on it.
BATCH_OBSERVATIONS = 50_000

#: Largest replicates of a batch, whatever n.
BATCH_REPLICATES = 2_000


def batch_replicates(n: int) -> int:
    """Replicates drawn at once at ``n`` observations (:data:`BATCH_OBSERVATIONS`)."""
    return max(1, min(BATCH_REPLICATES, BATCH_OBSERVATIONS // max(int(n), 1)))


@dataclass(frozen=True)
class Datasets:
    """A batch of replicate datasets of one cell.

    Attributes
    ----------
    cell : Cell
        The data-generating parameters.
    base_seed : int
        The study's base seed.
    replicates : ndarray of int64, shape (R,)
        Replicate indices.
    x : ndarray of float64, shape (R, n, k)
        Covariates U_1 … U_k (the intercept column is implicit).
    y : ndarray of float64, shape (R, n)
        Responses.
    """

    cell: Cell
    base_seed: int
    replicates: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.replicates.shape[0])


#: Replicates per seeding block (see the module docstring). Part of the seeding scheme:
#: changing it changes every dataset.
BLOCK_REPLICATES = 256


def block_streams(cell: Cell, base_seed: int, block: int) -> tuple[Generator, Generator]:
    """The covariate and error streams of one block of ``cell``'s replicates, at their start."""
    return tuple(  # type: ignore[return-value]
        Generator(
            PCG64(SeedSequence(entropy=int(base_seed), spawn_key=(cell.key_int, int(block), part)))
        )
        for part in (0, 1)
    )


def _normal_errors(normals: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """ε/σ ~ N(0, 1)."""
    return normals


def _t3_errors(normals: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """ε/σ = T/√3 with T ~ t₃ (variance 3): Z₀/√(Z₁² + Z₂² + Z₃²) from four normals."""
    chi2 = np.square(normals[:, n : 2 * n])
    chi2 += np.square(normals[:, 2 * n : 3 * n])
    chi2 += np.square(normals[:, 3 * n :])
    return normals[:, :n] / np.sqrt(chi2)


#: E[(0.5 + U)²] for U ~ Uniform(0, 1): rescales the heteroskedastic sd to mean variance σ².
_HETERO_MEAN_SQUARE = 13.0 / 12.0


def _hetero_errors(normals: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """ε/σ = (0.5 + U₁)/√(13/12) · Z: sd grows with the first covariate, mean variance 1."""
    if x.shape[2] == 0:
        raise ValueError("heteroskedastic errors need at least one covariate")
    scale = (0.5 + x[:, :, 0]) / np.sqrt(_HETERO_MEAN_SQUARE)
    return scale * normals


#: Error models: name -> (normal draws per replicate for given n, errors/σ maker).
ERROR_MODELS = {
    "normal": (lambda n: n, _normal_errors),
    "t3": (lambda n: 4 * n, _t3_errors),
    "hetero": (lambda n: n, _hetero_errors),
}


def normals_per_replicate(cell: Cell) -> int:
    """Normal draws one replicate's errors are made of."""
    if cell.errors not in ERROR_MODELS:
        raise ValueError(f"unknown error model {cell.errors!r}; known: {', '.join(ERROR_MODELS)}")
    return ERROR_MODELS[cell.errors][0](cell.n)


def _check_range(start: int, stop: int) -> None:
    if not 0 <= start <= stop:
        raise ValueError(f"bad replicate range [{start}, {stop})")


#: Normal draws dropped at a time when a range starts inside a block (1 MB).
_SKIP_PIECE = 1 << 17


class _ReplicateStream:
    """Replicates of one cell drawn in order, from ``start`` on, a batch at a time.

    Keeps the current block's streams between batches, so a job drawing its replicates
    batch by batch pays for opening (and skipping into) a block once.
    """

    def __init__(self, cell: Cell, base_seed: int, start: int) -> None:
        self.cell, self.base_seed, self.next = cell, int(base_seed), int(start)
        self.covariates_per_replicate = cell.n * (cell.p - 1)
        self.normals_per_replicate = normals_per_replicate(cell)
        self.block = -1

    def _open(self, block: int, offset: int) -> None:
        self.covariates, self.errors = block_streams(self.cell, self.base_seed, block)
        self.covariates.bit_generator.advance(offset * self.covariates_per_replicate)
        # The earlier replicates' normals are drawn and dropped a piece at a time, so that
        # skipping into a block of large-n replicates does not hold them all at once.
        skip = offset * self.normals_per_replicate
        while skip > 0:
            piece = min(skip, _SKIP_PIECE)
            self.errors.standard_normal(piece)
            skip -= piece
        self.block = block

    def take(self, count: int, respond: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The next ``count`` replicates' uniforms (R, n, k) and normals (R, m).

        With ``respond`` the second array is the responses y (R, n) instead.
        """
        x = np.empty((count, self.cell.n, self.cell.p - 1))
        normals = np.empty((count, self.normals_per_replicate))
        done = 0
        while done < count:  # a loop over the blocks a batch spans, not over replicates
            block, offset = divmod(self.next, BLOCK_REPLICATES)
            if block != self.block:
                self._open(block, offset)
            here = min(count - done, BLOCK_REPLICATES - offset)
            # Drawn in place: rows of C-ordered arrays are contiguous.
            self.covariates.random(out=x[done : done + here])
            self.errors.standard_normal(out=normals[done : done + here])
            self.next += here
            done += here
        if not respond:
            return x, normals
        # Normal errors are the normals themselves: y takes their place.
        y = normals if self.cell.errors == DEFAULT_ERRORS else np.empty((count, self.cell.n))
        _responses(self.cell, x, normals, y)
        return x, y


def _responses(cell: Cell, x: np.ndarray, normals: np.ndarray, out: np.ndarray) -> None:
    """y = β₀ + Xβ₁ + σ · errors into ``out`` (which may be ``normals`` itself)."""
    errors = ERROR_MODELS[cell.errors][1](normals, x, cell.n)
    np.multiply(errors, cell.sigma, out=out)
    out += cell.beta[0]
    if x.shape[2]:
        out += (x.reshape(-1, x.shape[2]) @ np.asarray(cell.beta[1:])).reshape(out.shape)


def draw_numbers(
    cell: Cell, base_seed: int, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """The random numbers replicates ``start .. stop-1`` are made of.

    Returns
    -------
    uniforms : ndarray, shape (R, n, k)
        The covariates.
    normals : ndarray, shape (R, m)
        The normal draws of the errors (m from :func:`normals_per_replicate`).
    """
    _check_range(start, stop)
    return _ReplicateStream(cell, base_seed, start).take(stop - start)


def _datasets(cell: Cell, base_seed: int, start: int, x: np.ndarray, y: np.ndarray) -> Datasets:
    return Datasets(
        cell=cell,
        base_seed=int(base_seed),
        replicates=np.arange(start, start + x.shape[0], dtype=np.int64),
        x=x,
        y=y,
    )


def draw(cell: Cell, base_seed: int, start: int, stop: int) -> Datasets:
    """Draw replicates ``start .. stop-1`` of ``cell``.

    Parameters
    ----------
    cell : Cell
        Data-generating parameters.
    base_seed : int
        The study's base seed (a non-negative integer).
    start, stop : int
        Half-open range of replicate indices.

    Returns
    -------
    Datasets
    """
    _check_range(start, stop)
    x, y = _ReplicateStream(cell, base_seed, start).take(stop - start, respond=True)
    return _datasets(cell, base_seed, start, x, y)


def draw_batches(
    cell: Cell, base_seed: int, start: int, stop: int, batch_replicates: int
) -> Iterator[Datasets]:
    """Replicates ``start .. stop-1`` of ``cell`` in consecutive batches.

    The same datasets as :func:`draw` over the whole range, at most ``batch_replicates``
    (>= 1) at a time.
    """
    _check_range(start, stop)
    size = max(1, int(batch_replicates))
    stream = _ReplicateStream(cell, base_seed, start)
    for first in range(start, stop, size):
        x, y = stream.take(min(size, stop - first), respond=True)
        yield _datasets(cell, base_seed, first, x, y)


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header of a C-ordered float64 array of ``shape``, as ``np.save`` writes it."""
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float64)), "fortran_order": False}
    np.lib.format.write_array_header_1_0(buffer, {**header, "shape": shape})
    return buffer.getvalue()


class DatasetFile:
    """One job's replicate datasets in an uncompressed ``.npz`` file, written as they are drawn.

    For each unit ``i`` of the job the archive holds ``x_i`` (R, n, k), ``y_i`` (R, n) and
    ``replicates_i`` (R,); ``metadata`` is a JSON string (format, base seed, and per unit
    its cell's canonical parameters, key, label and replicate range). :meth:`record` passes
    a unit's batches through, writing each as it goes, so only one batch is in memory; the
    file appears under its name, whole, when the ``with`` block ends without an error
    (:func:`regsim.atomic.replacing`). :func:`load_datasets` reads it.
    """

    def __init__(self, path: str | os.PathLike[str], base_seed: int) -> None:
        self.path, self.base_seed = Path(path), int(base_seed)
        self.units: list[dict[str, Any]] = []

    def __enter__(self) -> DatasetFile:
        self._stack = ExitStack()
        tmp = self._stack.enter_context(replacing(self.path))
        self.archive = self._stack.enter_context(
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        )
        self.scratch = tmp.parent
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> bool | None:
        if kind is None:
            meta = {"format": FILE_FORMAT, "base_seed": self.base_seed, "units": self.units}
            self._write("metadata", np.array(json.dumps(meta, sort_keys=True)))
        return self._stack.__exit__(kind, error, traceback)

    def _write(self, name: str, array: np.ndarray) -> None:
        with self.archive.open(f"{name}.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, array, allow_pickle=False)

    def record(self, unit: Unit, batches: Iterable[Datasets]) -> Iterator[Datasets]:
        """Write the batches of ``unit`` (in replicate order) while passing them on."""
        index, cell = len(self.units), unit.cell
        shape = (unit.replicates, cell.n, cell.p - 1)
        with tempfile.TemporaryFile(dir=self.scratch) as y_part:
            with self.archive.open(f"x_{index}.npy", "w", force_zip64=True) as x_member:
                x_member.write(_npy_header(shape))
                for batch in batches:
                    x_member.write(np.ascontiguousarray(batch.x).tobytes())
                    y_part.write(np.ascontiguousarray(batch.y).tobytes())
                    yield batch
            y_part.seek(0)
            with self.archive.open(f"y_{index}.npy", "w", force_zip64=True) as y_member:
                y_member.write(_npy_header(shape[:2]))
                shutil.copyfileobj(y_part, y_member, 1 << 22)
        self._write(f"replicates_{index}", np.arange(unit.start, unit.stop, dtype=np.int64))
        self.units.append(
            {
                "cell": cell.canonical(),
                "cell_key": cell.key,
                "label": cell.label,
                "start": unit.start,
                "stop": unit.stop,
            }
        )


def save_datasets(path: str | os.PathLike[str], datasets: Sequence[Datasets]) -> None:
    """Write batches of datasets (each a range of one cell) as one dataset file, atomically."""
    with DatasetFile(path, datasets[0].base_seed) as out:
        for data in datasets:
            start = int(data.replicates[0]) if len(data) else 0
            unit = Unit(data.cell, start, start + len(data))
            for _ in out.record(unit, [data]):
                pass


def load_datasets(path: str | os.PathLike[str]) -> list[Datasets]:
    """Read a file written by :class:`DatasetFile`: one :class:`Datasets` per unit.

    Raises
    ------
    DataFileError
        If the file is missing, truncated, corrupt or inconsistent; the message names
        the file and says how to regenerate it.
    """
    path = Path(path)
    hint = "delete it and rerun the workflow to regenerate it"
    out = []
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["metadata"]))
            if meta.get("format") != FILE_FORMAT:
                raise ValueError(f"format {meta.get('format')}, expected {FILE_FORMAT}")
            for index, unit in enumerate(meta["units"]):
                cell = Cell.from_canonical(unit["cell"])
                data = Datasets(
                    cell=cell,
                    base_seed=int(meta["base_seed"]),
                    replicates=archive[f"replicates_{index}"],
                    x=archive[f"x_{index}"],
                    y=archive[f"y_{index}"],
                )
                consistent = (
                    data.x.ndim == 3
                    and data.x.shape[1:] == (cell.n, cell.p - 1)
                    and data.y.shape == data.x.shape[:2]
                    and data.replicates.shape == data.x.shape[:1]
                    and cell.key == unit.get("cell_key")
                    and np.isfinite(data.x).all()
                    and np.isfinite(data.y).all()
                )
                if not consistent:
                    raise DataFileError(f"{path}: inconsistent dataset file; {hint}")
                out.append(data)
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: dataset file not found") from error
    except DataFileError:
        raise
    # A damaged archive can also name a compression method zipfile does not implement.
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        EOFError,
        NotImplementedError,
        zipfile.BadZipFile,
    ) as error:
        raise DataFileError(f"{path}: unreadable dataset file ({error}); {hint}") from error
    return out
