"""Seeded replicate datasets of one data cell.

Model: y = X β + ε with X = [1, x_1, …, x_k], covariates by the cell's design
(:class:`regsim.design.Design`), and errors by the cell's error model
(:data:`ERROR_MODELS`), each with mean 0 and (average) variance σ²:

* covariates ``uniform``: x_j ~ U(0, 1) i.i.d.; ``normal``: x ~ N(0, R) with R the
  equicorrelation matrix (1 on the diagonal, ρ off it), x = L z with L Lᵀ = R (Cholesky)
  and z_j = Φ⁻¹(u_j); ``binary``: x_j = 1{u_j < ½} ~ Bernoulli(½). Each is made from
  the same n·k uniforms u per replicate, so every design has the same stream layout.
  A *fixed* design draws X once per (design, n), from a stream of its own
  (``SeedSequence(entropy=base_seed, spawn_key=(design.key_int, n))``), and every replicate
  of every cell of that design and n (any σ, error model, truth) reuses it.
* ``normal`` errors: ε ~ N(0, σ²) i.i.d.;
* ``t3``: ε = σ·T/√3 with T ~ Student t, 3 degrees of freedom (heavy tails, sd σ);
* ``hetero``: ε_i ~ N(0, σ²·s(x_i1)²), sd growing with the first covariate:
  s = (0.5 + F(x_1))/√(13/12) with F the covariate's U(0, 1)-making map (the identity for
  uniform covariates, Φ for normal ones, so F(x_1) ~ U(0, 1) either way), and
  s = (0.5 + x_1)/√(5/4) for binary ones: the average variance is σ² over the design's
  distribution.

Seeding. Replicates are drawn in fixed blocks of :data:`BLOCK_REPLICATES`: replicate r
belongs to block b = r // 256. A block owns two PCG64 streams, seeded by
``SeedSequence(entropy=base_seed, spawn_key=(cell.key_int, b, part))``: part 0 gives the
covariates' uniforms (n·k per replicate, in replicate order; none for a fixed design) and
part 1 the normal draws the errors are made of (n per replicate for normal and
heteroskedastic errors, 4n for t₃; numpy's ziggurat normals). A range of replicates
starting inside a block skips the draws of the block's earlier replicates (uniforms by
``PCG64.advance``, as each takes one 64-bit output; normals by drawing them, as a ziggurat
normal takes a variable number). Replicate r is therefore a pure function of (base seed,
cell parameters, r): the same whatever the number of replicates, the chunking, the batch
size, the other cells, the order cells run in, or the number of cores.
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
from regsim.design import Cell, Design, Unit
from regsim.errors import DataFileError
from regsim.schema import DEFAULT_DESIGN, DEFAULT_ERRORS, DEFAULT_TRUTH

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
        Covariates x_1 … x_k (the intercept column is implicit).
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


#: Added to a uniform k·2⁻⁵³ of [0, 1 − 2⁻⁵³] before Φ⁻¹, so that it is above 0: below
#: ½ it becomes the midpoint (k + ½)·2⁻⁵³; from ½ on, where doubles are 2⁻⁵³ apart, the
#: sum rounds to the even one of k·2⁻⁵³ and (k + 1)·2⁻⁵³, and at the top to 1.
_HALF_ULP = 2.0**-54

#: The largest double below 1: where the sum rounded to 1 (k = 2⁵³ − 1, one uniform in
#: 2⁵³), Φ⁻¹ would be +∞ and the covariate infinite.
_BELOW_ONE = 1.0 - 2.0**-53


def equicorrelation_factor(k: int, rho: float) -> np.ndarray:
    """L with L Lᵀ = R, R the k × k equicorrelation matrix (1 on the diagonal, ρ off it).

    Its first row is (1, 0, …, 0), so the first covariate is z_1 itself.
    """
    corr = np.full((k, k), float(rho))
    np.fill_diagonal(corr, 1.0)
    return np.linalg.cholesky(corr)


def make_covariates(design: Design, uniforms: np.ndarray) -> np.ndarray:
    """The covariates of ``design`` from uniforms of shape (..., n, k), in place.

    Uniform covariates are the uniforms; binary ones 1{u < ½}; normal ones
    L·Φ⁻¹(u) (:func:`equicorrelation_factor`). Returns the array it wrote.
    """
    if design.covariates == "binary":
        np.less(uniforms, 0.5, out=uniforms, casting="unsafe")
    elif design.covariates == "normal":
        from scipy.special import ndtri

        uniforms += _HALF_ULP
        np.minimum(uniforms, _BELOW_ONE, out=uniforms)
        ndtri(uniforms, out=uniforms)
        k = uniforms.shape[-1]
        if k > 1 and design.rho != 0.0:
            factor = equicorrelation_factor(k, design.rho)
            uniforms[...] = uniforms @ factor.T
    return uniforms


def fixed_covariates(design: Design, n: int, k: int, base_seed: int) -> np.ndarray:
    """The one X (n, k) of a fixed design at sample size ``n``.

    Drawn from ``SeedSequence(entropy=base_seed, spawn_key=(design.key_int, n))``: the same
    for every σ, error model and truth, and unchanged by other cells or designs.
    """
    stream = Generator(
        PCG64(SeedSequence(entropy=int(base_seed), spawn_key=(design.key_int, int(n))))
    )
    return make_covariates(design, stream.random((int(n), int(k))))


def fixed_design_problem(design: Design, n: int, k: int, base_seed: int) -> str | None:
    """What makes a fixed design's X unusable at ``n``, or None.

    Every replicate shares the X, so an X whose coefficients are not identified (rank
    below k + 1) or that the fits would refuse as too collinear
    (``regsim.estimators.COLLINEARITY_LIMIT``) would fail every replicate.
    """
    from regsim.estimators import sufficient_stats

    x = fixed_covariates(design, n, k, base_seed)
    rank = int(np.linalg.matrix_rank(np.column_stack([np.ones(n), x])))
    if rank < k + 1:
        rows = len(np.unique(x, axis=0))
        return (
            f"the X it draws at n = {n} has rank {rank}, below the {k + 1} coefficients "
            f"({rows} distinct rows); use a larger n, or redraw X per replicate"
        )
    y = np.arange(n, dtype=float)[None, :]  # any response: only the collinearity is asked
    if not bool(sufficient_stats(x[None], y).usable[0]):
        return (
            f"the X it draws at n = {n} is too collinear to fit (its coefficients' variance "
            "inflation passes the fits' limit); use a larger n or a smaller rho"
        )
    return None


def _normal_errors(normals: np.ndarray, x: np.ndarray, cell: Cell) -> np.ndarray:
    """ε/σ ~ N(0, 1)."""
    return normals


def _t3_errors(normals: np.ndarray, x: np.ndarray, cell: Cell) -> np.ndarray:
    """ε/σ = T/√3 with T ~ t₃ (variance 3): Z₀/√(Z₁² + Z₂² + Z₃²) from four normals."""
    n = cell.n
    chi2 = np.square(normals[:, n : 2 * n])
    chi2 += np.square(normals[:, 2 * n : 3 * n])
    chi2 += np.square(normals[:, 3 * n :])
    return normals[:, :n] / np.sqrt(chi2)


#: E[(0.5 + U)²] for U ~ Uniform(0, 1): rescales the heteroskedastic sd to mean variance σ².
_HETERO_MEAN_SQUARE = 13.0 / 12.0

#: E[(0.5 + B)²] for B ~ Bernoulli(½): the same for binary covariates.
_HETERO_MEAN_SQUARE_BINARY = 5.0 / 4.0


def hetero_scale(design: Design, first: np.ndarray) -> np.ndarray:
    """The heteroskedastic sd factor s(x_1) of ``design`` (mean of s² 1 over the design)."""
    if design.covariates == "binary":
        return (0.5 + first) / np.sqrt(_HETERO_MEAN_SQUARE_BINARY)
    if design.covariates == "normal":
        from scipy.special import ndtr

        first = ndtr(first)
    return (0.5 + first) / np.sqrt(_HETERO_MEAN_SQUARE)


def _hetero_errors(normals: np.ndarray, x: np.ndarray, cell: Cell) -> np.ndarray:
    """ε/σ = s(x_1) · Z: sd grows with the first covariate, mean variance 1."""
    if x.shape[2] == 0:
        raise ValueError("heteroskedastic errors need at least one covariate")
    return hetero_scale(cell.design, x[:, :, 0]) * normals


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
        k = cell.p - 1
        self.fixed = (
            fixed_covariates(cell.design, cell.n, k, base_seed) if cell.design.fixed else None
        )
        self.covariates_per_replicate = 0 if cell.design.fixed else cell.n * k
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
        """The next ``count`` replicates' covariates (R, n, k) and normals (R, m).

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
            if self.fixed is None:
                self.covariates.random(out=x[done : done + here])
            self.errors.standard_normal(out=normals[done : done + here])
            self.next += here
            done += here
        if self.fixed is not None:
            x[...] = self.fixed
        elif not self.cell.design.is_default:
            make_covariates(self.cell.design, x)
        if not respond:
            return x, normals
        # Normal errors are the normals themselves: y takes their place.
        y = normals if self.cell.errors == DEFAULT_ERRORS else np.empty((count, self.cell.n))
        _responses(self.cell, x, normals, y)
        return x, y


def _responses(cell: Cell, x: np.ndarray, normals: np.ndarray, out: np.ndarray) -> None:
    """y = β₀ + Xβ₁ + σ · errors into ``out`` (which may be ``normals`` itself)."""
    errors = ERROR_MODELS[cell.errors][1](normals, x, cell)
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
    covariates : ndarray, shape (R, n, k)
        The covariates (the uniforms themselves for the default design).
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
    its cell's canonical parameters, key, truth and design names, label and replicate
    range). :meth:`record` passes
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
                "truth": cell.truth,
                "design": cell.design.name,
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
                cell = Cell.from_canonical(
                    unit["cell"],
                    truth=unit.get("truth", DEFAULT_TRUTH),
                    design=unit.get("design", DEFAULT_DESIGN),
                )
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
