"""Parquet files written a table at a time, and the chunks of fits of the simulate jobs.

Nothing here imports pandas: a simulate job builds its tables of fits with pyarrow
(``regsim.fits.fits_table``) and writes them with :class:`ChunkWriter`, so it pays for no
pandas import (about a fifth of a second of a job that fits the default study's cells of
one sample size in a tenth). A pandas DataFrame given to :class:`ParquetParts` is
converted by pyarrow, which imports pandas itself then.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from regsim.design import Unit
from regsim.schema import FIT_KEY

__all__ = ["CHUNK_FORMAT", "CHUNK_METADATA", "ChunkWriter", "ParquetParts", "arrow"]

#: Key of the chunk files' own metadata (a JSON document).
CHUNK_METADATA = b"regsim"

#: Version of the chunk file layout.
CHUNK_FORMAT = 1


def arrow() -> Any:
    """pyarrow, allocating from the C library's heap rather than its own pool.

    Its default pool (mimalloc) keeps freed memory for reuse, so a job's resident memory
    would stay at the sum of every table it has read; the system allocator gives large
    blocks back, keeping a job that reads a cell one fit at a time small.
    """
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
    return pa


def is_text(data_type: Any) -> bool:
    """Whether a pyarrow type is a string type."""
    pa = arrow()
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def row_runs(table: Any, by: Sequence[str]) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` over which the ``by`` columns stay the same.

    ``table`` is a pyarrow Table or a pandas DataFrame.
    """
    if not by or len(table) == 0:
        return [(0, len(table))]
    pa = arrow()
    if isinstance(table, pa.Table):
        import pyarrow.compute as pc

        changes = None
        for column in by:
            values = table.column(column)
            differs = pc.not_equal(values.slice(1), values.slice(0, len(table) - 1))
            # a missing value starts a run, as in pandas (fill_null's scalar would import it)
            differs = pc.or_kleene(differs, pc.is_null(differs))
            changes = differs if changes is None else pc.or_(changes, differs)
        # a few positions, as a list: pyarrow's to_numpy would import pandas
        edges = np.asarray(pc.indices_nonzero(changes).to_pylist(), dtype=np.int64) + 1
    else:
        change = np.zeros(len(table) - 1, dtype=bool)
        for column in by:
            values = table[column].to_numpy()
            change |= values[1:] != values[:-1]
        edges = np.flatnonzero(change) + 1
    bounds = [0, *edges.tolist(), len(table)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


class ParquetParts:
    """A parquet file written one table (row group) at a time, with page checksums.

    With ``text_dictionaries_only``, only text columns are dictionary-encoded (the files
    written are smaller and sooner; a reader gets the same table either way).
    """

    def __init__(self, path: Path, text_dictionaries_only: bool = False) -> None:
        self.path = path
        self.text_dictionaries_only = text_dictionaries_only
        self.writer: Any = None

    def write(self, part: Any, by: Sequence[str] = ()) -> int:
        """Append ``part`` (a pyarrow Table or a pandas DataFrame): one row group, or one
        per run of equal values of ``by``.

        Returns the number of row groups written.

        Row groups of one fit each (``by=("prior", "method")``) let a reader take one fit
        without decoding the others (``regsim.tableio.read_parquet`` with ``where``).
        """
        pa = arrow()
        import pyarrow.parquet as pq

        if isinstance(part, pa.Table):
            table = part
        else:
            table = pa.Table.from_pandas(part, preserve_index=False)
        if self.writer is None:
            dictionaries: bool | list[str] = True
            if self.text_dictionaries_only:
                # Text columns repeat a few labels; numbers hardly repeat a value, and
                # trying dictionaries on them first took a third of a chunk's writing.
                dictionaries = [f.name for f in table.schema if is_text(f.type)]
            self.writer = pq.ParquetWriter(
                self.path, table.schema, write_page_checksum=True, use_dictionary=dictionaries
            )
        runs = row_runs(part, by)
        for start, stop in runs:
            self.writer.write_table(table.slice(start, stop - start), row_group_size=stop - start)
        return len(runs)

    def __enter__(self) -> ParquetParts:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()


class ChunkWriter:
    """The fits of one simulate job, a parquet file written a table at a time.

    Every table written for a unit becomes row groups of one fit each; the file's metadata
    (key :data:`CHUNK_METADATA`) lists the job's units with their row groups, so a reader
    takes one cell's rows without decoding the others (``regsim.cells.cell_sources``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        job: str,
        fingerprint: Callable[[Unit], str] | None = None,
    ) -> None:
        self.parts = ParquetParts(Path(path), text_dictionaries_only=True)
        self.job = job
        self.fingerprint = fingerprint
        self.units: list[dict[str, Any]] = []
        self.row_groups = 0

    def __enter__(self) -> ChunkWriter:
        self.parts.__enter__()
        return self

    def write(self, unit: Unit, table: Any) -> None:
        """Append ``table`` (a pyarrow Table of ``regsim.fits.fits_table``), fits of
        ``unit``, as row groups of one fit each."""
        if not self.units or self.units[-1]["_unit"] is not unit:
            self.units.append(
                {
                    "_unit": unit,
                    "label": unit.cell.label,
                    "cell": unit.cell.canonical(),
                    "key": unit.cell.key,
                    "start": unit.start,
                    "stop": unit.stop,
                    "row_groups": [self.row_groups, self.row_groups],
                    "rows": 0,
                }
            )
            if self.fingerprint is not None:
                self.units[-1]["fingerprint"] = self.fingerprint(unit)
        self.row_groups += self.parts.write(table, FIT_KEY)
        self.units[-1]["row_groups"][1] = self.row_groups
        self.units[-1]["rows"] += len(table)

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None and self.parts.writer is not None:
            units = [{k: v for k, v in u.items() if k != "_unit"} for u in self.units]
            meta = {"format": CHUNK_FORMAT, "job": self.job, "units": units}
            self.parts.writer.add_key_value_metadata({CHUNK_METADATA: json.dumps(meta)})
        self.parts.__exit__(*exc)
