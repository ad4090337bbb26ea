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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence

from regsim.atomic import write_atomic, write_bytes_atomic
from regsim.design import DEFAULT_ERRORS, Cell
from regsim.errors import DataFileError

#: Version of the dataset file layout, stored in every file.
FILE_FORMAT = 2


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


def _metadata(datasets: Datasets) -> str:
    return _metadata_of(datasets.cell, datasets.base_seed)


def _metadata_of(cell: Cell, base_seed: int) -> str:
    return json.dumps(
        {
            "format": FILE_FORMAT,
            "base_seed": int(base_seed),
            "cell": cell.canonical(),
            "cell_key": cell.key,
        },
        sort_keys=True,
    )


def save_datasets(path: str | os.PathLike[str], datasets: Datasets) -> None:
    """Write ``datasets`` to an uncompressed ``.npz`` file, atomically.

    The file holds arrays ``x`` (R, n, k), ``y`` (R, n), ``replicates`` (R,) and
    ``metadata`` (a JSON string: format, base_seed, cell parameters and key). It is
    written to a temporary file beside ``path`` and renamed, so a crash never leaves a
    partial file under the final name.
    """
    path = Path(path)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x=datasets.x,
        y=datasets.y,
        replicates=datasets.replicates,
        metadata=np.array(_metadata(datasets)),
    )
    write_bytes_atomic(path, buffer.getvalue())


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """The ``.npy`` header of a C-ordered float64 array of ``shape``, as ``np.save`` writes it."""
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float64)), "fortran_order": False}
    np.lib.format.write_array_header_1_0(buffer, {**header, "shape": shape})
    return buffer.getvalue()


def draw_to_file(
    path: str | os.PathLike[str],
    cell: Cell,
    base_seed: int,
    start: int,
    stop: int,
    batch_replicates: int,
    visit: Callable[[Datasets], None] | None = None,
) -> None:
    """Draw replicates ``start .. stop-1`` batch by batch into one dataset file.

    The file is the one :func:`save_datasets` would write for ``draw(cell, base_seed,
    start, stop)`` (same arrays, same layout; :func:`load_datasets` reads it), but only one
    batch of at most ``batch_replicates`` replicates is in memory at a time: the ``x``
    member of the archive is written as the batches come, ``y`` goes to a temporary file
    and is copied in after. ``visit(batch)`` is called on each batch, e.g. to fit it.
    The file is written atomically.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file to write.
    cell : Cell
        Data-generating parameters.
    base_seed : int
        The study's base seed.
    start, stop : int
        Half-open range of replicate indices.
    batch_replicates : int
        Replicates per batch (>= 1); the data do not depend on it.
    visit : callable, optional
        Called with each batch, in replicate order.
    """
    _check_range(start, stop)
    size = max(1, int(batch_replicates))
    replicates, n, k = stop - start, cell.n, cell.p - 1

    def write(tmp: Path) -> None:
        with (
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
            tempfile.TemporaryFile(dir=tmp.parent) as y_part,
        ):
            with archive.open("x.npy", "w", force_zip64=True) as x_member:
                x_member.write(_npy_header((replicates, n, k)))
                for batch in draw_batches(cell, base_seed, start, stop, size):
                    x_member.write(np.ascontiguousarray(batch.x).tobytes())
                    y_part.write(np.ascontiguousarray(batch.y).tobytes())
                    if visit is not None:
                        visit(batch)
            y_part.seek(0)
            with archive.open("y.npy", "w", force_zip64=True) as y_member:
                y_member.write(_npy_header((replicates, n)))
                shutil.copyfileobj(y_part, y_member, 1 << 22)
            for name, array in (
                ("replicates", np.arange(start, stop, dtype=np.int64)),
                ("metadata", np.array(_metadata_of(cell, base_seed))),
            ):
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    write_atomic(path, write)


def load_datasets(path: str | os.PathLike[str]) -> Datasets:
    """Read a file written by :func:`save_datasets`.

    Raises
    ------
    DataFileError
        If the file is missing, truncated, corrupt or inconsistent; the message names
        the file and says how to regenerate it.
    """
    path = Path(path)
    hint = "delete it and rerun the workflow to regenerate it"
    try:
        with np.load(path, allow_pickle=False) as archive:
            x, y = archive["x"], archive["y"]
            replicates = archive["replicates"]
            meta = json.loads(str(archive["metadata"]))
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: dataset file not found") from error
    # A damaged archive can also name a compression method zipfile does not implement.
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        NotImplementedError,
        zipfile.BadZipFile,
    ) as error:
        raise DataFileError(f"{path}: unreadable dataset file ({error}); {hint}") from error
    params = meta.get("cell", {})
    cell = Cell(
        n=params["n"],
        sigma=float(params["sigma"]),
        beta=tuple(float(b) for b in params["beta"]),
        errors=params.get("errors", "normal"),
    )
    shapes_ok = (
        x.ndim == 3
        and x.shape[1:] == (cell.n, cell.p - 1)
        and y.shape == x.shape[:2]
        and replicates.shape == x.shape[:1]
        and cell.key == meta.get("cell_key")
    )
    if not shapes_ok or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataFileError(f"{path}: inconsistent dataset file; {hint}")
    return Datasets(cell=cell, base_seed=int(meta["base_seed"]), replicates=replicates, x=x, y=y)
