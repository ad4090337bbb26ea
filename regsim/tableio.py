"""Reading and writing the stage tables: parquet with checksums, ``metrics.csv``, order.

Every table is written to a temporary file beside its name, flushed to disk and renamed
over it (:mod:`regsim.atomic`), so an interrupted job never leaves a partial output.
Parquet files carry page checksums verified on every read, so a damaged table is an
error naming the file (:class:`~regsim.errors.DataFileError`), never a silently different
number. Rows are sorted by fixed keys (:func:`sort_table`) and ``metrics.csv`` writes
floats with ``%.17g``, so the files are byte-identical whatever the number of cores, the
packing of replicates into jobs, or the order jobs ran in.

Grid factors are columns like any other: a table has the factor columns of its cells
(:mod:`regsim.schema`), and :func:`select_levels` picks one combination of the optional
factors' levels out of a table that has several.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regsim.atomic import write_atomic
from regsim.errors import DataFileError, InputDataError
from regsim.parquet import ParquetParts, arrow
from regsim.schema import (
    GROUP_FIELDS,
    METRIC_FIELDS,
    OPTIONAL_FACTORS,
    SORT_KEYS,
    factor_columns,
    format_number,
    with_factors,
)

#: What to do about a damaged file written by an earlier job.
REGENERATE = "delete it and rerun the workflow to regenerate it"


# --------------------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------------------


def write_parquet(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``table`` (without its index) to a parquet file with page checksums, atomically."""

    def write(tmp: Path) -> None:
        with ParquetParts(tmp) as writer:
            writer.write(table)

    write_atomic(path, write)


def read_parquet(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    *,
    only: Sequence[str] | None = None,
    where: Mapping[str, Any] | None = None,
    row_groups: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Read a parquet file written by a pipeline stage, verifying its page checksums.

    Parameters
    ----------
    path : path-like
        The file.
    columns : sequence of str, optional
        Columns the table must have (it may have more).
    only : sequence of str, optional
        Read just those of these columns the file has (and those of ``where``), to save
        memory.
    where : mapping, optional
        Read just the rows whose column equals the value, for every ``column: value``
        (e.g. one parameter of a cell's fits), to save memory.
    row_groups : sequence of int, optional
        Read just these row groups (e.g. one cell's in a job's chunk of fits).

    Raises
    ------
    DataFileError
        If the file is missing, truncated, corrupt or lacks a column; the one-line
        message names the file and says how to regenerate it.
    """
    arrow()
    with _reading(path):
        if only is None and not where and row_groups is None:
            table = pd.read_parquet(path, engine="pyarrow", page_checksum_verification=True)
        else:
            source = _opened(path)
            names = source.schema_arrow.names
            if only is not None:
                only = [c for c in dict.fromkeys([*only, *(where or {})]) if c in names]
            indices = range(source.num_row_groups) if row_groups is None else row_groups
            if where:
                joined = _rows_where(source, indices, only, where)
            else:
                joined = source.read_row_groups(list(indices), columns=only)
            # Column by column, each freed once converted: memory holds the rows once.
            table = joined.to_pandas(split_blocks=True, self_destruct=True)
            del joined
    missing = [c for c in columns or () if c not in table.columns]
    if missing:
        raise DataFileError(
            f"{path}: not a table of this workflow (no column {', '.join(missing)}); {REGENERATE}"
        )
    return table


def _rows_where(
    source: Any, indices: Sequence[int], only: Sequence[str] | None, where: Mapping[str, Any]
) -> Any:
    """The rows of row groups ``indices`` of ``source`` that hold the ``where`` values.

    Row group by row group, skipping those whose statistics rule them out, so memory
    holds the rows asked for, not the file.
    """
    import pyarrow.compute as pc

    pa = arrow()
    names = source.schema_arrow.names
    parts = []
    for index in indices:
        group = source.metadata.row_group(index)
        if not _may_hold(group, names, where):
            continue
        part = source.read_row_group(index, columns=only)
        for column, value in where.items():
            if not _holds_only(group, names, column, value):
                part = part.filter(pc.equal(part[column], value))
        parts.append(part)
    if not parts:
        return source.schema_arrow.empty_table().select(only or names)
    return pa.concat_tables(parts)


def _opened(path: str | os.PathLike[str]) -> Any:
    """``path`` opened for reading with page checksums verified, its footer parsed.

    The collect job reads each cell's row groups from a chunk whose footer describes
    hundreds of row groups: parsing it again for every cell took a third of the reading.
    An opened file is kept for the process that opened it while the file is the same
    (same inode, size and modification time); a replaced file is opened anew.
    """
    import pyarrow.parquet as pq

    status = os.stat(path)
    key = (os.fspath(path), os.getpid(), status.st_ino, status.st_size, status.st_mtime_ns)
    opened = _OPENED.get(key)
    if opened is None:
        opened = pq.ParquetFile(path, page_checksum_verification=True)
        if len(_OPENED) >= _MAX_OPENED:
            _OPENED.pop(next(iter(_OPENED)))
        _OPENED[key] = opened
    return opened


#: Files kept open by :func:`_opened`, oldest first, at most :data:`_MAX_OPENED`.
_OPENED: dict[tuple[str, int, int, int, int], Any] = {}
_MAX_OPENED = 4


def row_group_rows(path: str | os.PathLike[str]) -> list[int]:
    """The number of rows of each row group of a parquet file, from its footer.

    Lets a reader take a table one row group at a time (:func:`read_parquet` with
    ``row_groups``) and know its size before reading any row.

    Raises
    ------
    DataFileError
        If the file is missing or its footer is damaged; the one-line message names the
        file and says how to regenerate it.
    """
    arrow()
    import pyarrow.parquet as pq

    with _reading(path):
        metadata = pq.ParquetFile(path).metadata
        return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def _may_hold(row_group: Any, names: Sequence[str], where: Mapping[str, Any]) -> bool:
    """False if a parquet row group's min/max statistics exclude a ``where`` value."""
    for column, value in where.items():
        if column not in names:
            continue
        stats = row_group.column(list(names).index(column)).statistics
        if stats is not None and stats.has_min_max and not stats.min <= value <= stats.max:
            return False
    return True


def _holds_only(row_group: Any, names: Sequence[str], column: str, value: Any) -> bool:
    """True if a row group's statistics show every row has ``column == value``."""
    if column not in names:
        return False
    stats = row_group.column(list(names).index(column)).statistics
    return bool(stats is not None and stats.has_min_max and stats.min == value == stats.max)


@contextmanager
def _reading(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn any failure to read the parquet file ``path`` into a one-line DataFileError."""
    try:
        yield
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: table file not found") from error
    except DataFileError:
        raise
    except Exception as error:  # pyarrow raises several types for corrupt files
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise DataFileError(f"{path}: unreadable table file ({reason}); {REGENERATE}") from error


# --------------------------------------------------------------------------------------
# The metrics table
# --------------------------------------------------------------------------------------


#: How the study's CSV tables write their values: floats with 17 significant digits (they
#: read back to the same double), a missing value as an empty field, lines ending "\n".
CSV_FORMAT: dict[str, str] = {"float_format": "%.17g", "na_rep": "", "lineterminator": "\n"}


def write_csv_atomic(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write ``table`` (no index) as CSV in :data:`CSV_FORMAT`, atomically."""
    write_atomic(path, lambda tmp: table.to_csv(tmp, index=False, **CSV_FORMAT))


def write_metrics_csv(metrics: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write the metrics table as CSV, deterministically and atomically.

    Columns: the table's factor columns, then :data:`~regsim.schema.METRIC_FIELDS`;
    ``sigma`` and ``true`` are written as by :func:`~regsim.schema.format_number`, ``estimate`` and
    ``mcse`` with ``%.17g`` (exact round trip), missing values as empty fields, the prior of
    methods without one as an empty field, lines end with ``\\n``.
    """
    table = metrics.loc[:, list(with_factors(METRIC_FIELDS, metrics.columns))].copy()
    table["sigma"] = [format_number(s) for s in table["sigma"]]
    table["true"] = [format_number(v) for v in table["true"]]
    table["estimate"] = table["estimate"].astype(float)
    table["mcse"] = table["mcse"].astype(float)
    write_csv_atomic(table, path)


def read_metrics(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``metrics.csv`` with the intended types, checked once for every reader.

    Parameters
    ----------
    path : path-like
        A file written by :func:`write_metrics_csv`.

    Returns
    -------
    pandas.DataFrame
        Its factor columns then :data:`~regsim.schema.METRIC_FIELDS`: ``n`` int,
        ``sigma``, ``true``, ``estimate``, ``mcse`` float, the text columns as text (``prior`` is
        ``""`` for methods without one, never NaN).

    Raises
    ------
    DataFileError
        If the file is missing, empty, truncated or not a metrics table (a missing column,
        a value of the wrong type); the one-line message names the file.
    """
    text_columns = [f.name for f in OPTIONAL_FACTORS] + ["prior", "method", "parameter", "measure"]
    try:
        table = pd.read_csv(
            path,
            dtype=dict.fromkeys(text_columns, str),
            keep_default_na=False,
            na_values={"estimate": [""], "mcse": [""]},
        )
    except FileNotFoundError as error:
        raise DataFileError(f"{path}: metrics table not found") from error
    except Exception as error:  # pandas raises several types for a damaged CSV
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        raise DataFileError(f"{path}: unreadable metrics table ({reason}); {REGENERATE}") from error
    missing = [c for c in ("n", "sigma", *METRIC_FIELDS) if c not in table.columns]
    if missing:
        raise DataFileError(
            f"{path}: not a metrics table (no column {', '.join(missing)}); {REGENERATE}"
        )
    numbers = (("n", "int64"), ("sigma", float), ("true", float), ("estimate", float))
    for column, dtype in (*numbers, ("mcse", float)):
        try:
            table[column] = table[column].astype(dtype)
        except (TypeError, ValueError) as error:
            reason = " ".join(str(error).split())
            raise DataFileError(
                f"{path}: damaged metrics table (column {column}: {reason}); {REGENERATE}"
            ) from error
    return table


#: The frames :func:`check_metrics` returned (and slices of them), by ``id``, while they
#: live, with their columns and types then: the same object, as it was, is not checked
#: again. (Kept here, not in the frame's ``attrs``, which a Parquet file would carry.)
_CHECKED: dict[int, tuple[weakref.ref[pd.DataFrame], tuple[tuple[str, str], ...]]] = {}


def _layout(table: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    """Each column's name and type."""
    return tuple((str(name), str(dtype)) for name, dtype in table.dtypes.items())


def _stamped(table: pd.DataFrame) -> pd.DataFrame:
    key = id(table)
    _CHECKED[key] = (weakref.ref(table), _layout(table))
    weakref.finalize(table, _CHECKED.pop, key, None)
    return table


def _is_checked(table: pd.DataFrame) -> bool:
    entry = _CHECKED.get(id(table))
    if entry is None or entry[0]() is not table:
        return False
    # Cheap: a checked table with a column replaced since, or of another type, is checked
    # again.
    return entry[1] == _layout(table)


def check_metrics(table: pd.DataFrame, what: str = "metrics table") -> pd.DataFrame:
    """A metrics table given as a DataFrame, in the types :func:`read_metrics` gives.

    For the functions that take a metrics table (figures, paper tables, theory): ``prior``
    missing becomes ``""``, ``n`` int, ``sigma``, ``true``, ``estimate``, ``mcse`` float
    (``true`` NaN when the table has no such column).

    A table this function returned, or a slice of one (:func:`select_levels`), is checked
    once: given again (the same object, its columns and their types as they were), it
    comes back as a shallow copy at once, so that the paper job's figures and tables, each
    taking the table it was given, do not check and copy it again (about 40 ms a time for
    a grid of 378 cells).

    Raises
    ------
    InputDataError
        If it is not a DataFrame, has no rows, lacks a column, or ``n``/``sigma`` are not
        numbers; the message names ``what``.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputDataError(f"{what}: expected a pandas DataFrame, got {type(table).__name__}")
    if _is_checked(table) and len(table):
        return _stamped(table.copy(deep=False))
    missing = [c for c in ("n", "sigma", *METRIC_FIELDS) if c not in table.columns and c != "true"]
    if missing:
        raise InputDataError(f"{what}: missing column(s) {', '.join(missing)}")
    if len(table) == 0:
        raise InputDataError(f"{what}: the table has no rows")
    if "true" not in table.columns:  # only the rejection figure needs it
        table = table.assign(true=np.nan)
    out = table.loc[:, list(with_factors(METRIC_FIELDS, table.columns))].copy()
    out["prior"] = out["prior"].astype(object).where(out["prior"].notna(), "").astype(str)
    for column in ("method", "parameter", "measure"):
        out[column] = out[column].astype(str)
    for item in OPTIONAL_FACTORS:
        if item.name in out.columns:
            column = out[item.name]
            out[item.name] = column.astype(object).where(column.notna(), item.default).astype(str)
    try:
        out["n"] = pd.to_numeric(out["n"], errors="raise").astype("int64")
        out["sigma"] = pd.to_numeric(out["sigma"], errors="raise").astype(float)
    except (TypeError, ValueError):
        raise InputDataError(f"{what}: columns n and sigma must be numeric and complete") from None
    for column in ("true", "estimate", "mcse"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return _stamped(out)


# --------------------------------------------------------------------------------------
# Slices: one level of each optional factor
# --------------------------------------------------------------------------------------


def levels_of(table: pd.DataFrame) -> dict[str, str]:
    """The optional factors' levels of a table holding one slice (defaults when absent).

    Raises
    ------
    InputDataError
        If a factor column holds several levels: a figure or paper table shows one slice,
        and refuses to drop the others silently.
    """
    levels = {}
    for item in OPTIONAL_FACTORS:
        if item.name not in table.columns:
            levels[item.name] = str(item.default)
            continue
        found = sorted({str(v) for v in table[item.name].dropna().unique()}, key=item.rank)
        if len(found) > 1:
            raise InputDataError(
                f"metrics table: rows of several {item.name} levels ({', '.join(found)}); "
                f"select one at a time (regsim.tableio.select_levels)"
            )
        levels[item.name] = found[0] if found else str(item.default)
    return levels


def slices(table: pd.DataFrame) -> list[dict[str, str]]:
    """Every combination of the optional factors' levels in ``table``, in factor order."""
    present = [item for item in OPTIONAL_FACTORS if item.name in table.columns]
    if not present:
        return [{item.name: str(item.default) for item in OPTIONAL_FACTORS}]
    columns = [item.name for item in present]
    combos = table[columns].fillna({item.name: item.default for item in present}).drop_duplicates()
    found = [dict(zip(columns, map(str, row), strict=True)) for row in combos.to_numpy()]
    found.sort(key=lambda levels: tuple(item.rank(levels[item.name]) for item in present))
    defaults = {item.name: str(item.default) for item in OPTIONAL_FACTORS}
    return [{**defaults, **levels} for levels in found]


def select_levels(table: pd.DataFrame, levels: Mapping[str, str]) -> pd.DataFrame:
    """The rows at the given optional-factor levels, factor columns kept.

    A table without a factor's column is all at that factor's default: it is returned
    whole for the default level and empty for any other.
    """
    if not isinstance(table, pd.DataFrame):
        raise InputDataError(f"expected a pandas DataFrame, got {type(table).__name__}")
    keep = np.ones(len(table), dtype=bool)
    for name, value in levels.items():
        default = next(item.default for item in OPTIONAL_FACTORS if item.name == name)
        if name in table.columns:
            column = table[name].astype(object).where(table[name].notna(), default)
            keep &= (column.astype(str) == str(value)).to_numpy()
        elif str(value) != default:
            keep[:] = False
    rows = table.loc[keep].reset_index(drop=True)
    # The rows of a checked table keep its columns and types.
    return _stamped(rows) if _is_checked(table) else rows


# --------------------------------------------------------------------------------------
# Order
# --------------------------------------------------------------------------------------


def sort_table(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Sort rows by ``columns`` in the study's fixed order; return a new table.

    ``n``, ``sigma`` and ``replicate`` sort numerically, ``prior`` alphabetically (the
    empty prior of OLS/MLE first), and the columns of :data:`~regsim.schema.SORT_KEYS`
    (optional factors, ``method``, ``parameter``, ``measure``) in their own order. Ties
    keep their order; missing values sort last.
    """
    if len(table) == 0 or not columns:
        return table.reset_index(drop=True)
    # The last key varies fastest, as np.lexsort wants it (and pandas' sort_values uses).
    order = np.lexsort([_sort_labels(table[column]) for column in reversed(columns)])
    if (order[1:] > order[:-1]).all():  # already in order: nothing to move
        return table.reset_index(drop=True)
    return table.take(order).reset_index(drop=True)


def _sort_labels(column: pd.Series) -> np.ndarray:
    """An array that sorts (with ``np.lexsort``) as ``column`` in the study's order.

    The ranks ``DataFrame.sort_values`` would give, computed once per distinct value:
    a cell's table has ~10^5 rows but a handful of priors, methods and parameters.
    """
    function = SORT_KEYS.get(str(column.name))
    if function is not None:
        codes, distinct = pd.factorize(column, use_na_sentinel=False)
        ranks = np.empty(len(distinct), dtype=np.intp)
        ranks[sorted(range(len(distinct)), key=lambda i: function(distinct[i]))] = np.arange(
            len(distinct)
        )
        return ranks[codes]
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiub":
        return column.to_numpy()  # numbers sort as themselves (np.lexsort puts NaN last)
    codes, distinct = pd.factorize(column, sort=True)  # missing: -1
    return np.where(codes < 0, len(distinct), codes)


def group_columns(table: pd.DataFrame) -> tuple[str, ...]:
    """The columns identifying a group of replicates in ``table``: factors, then fields."""
    return with_factors(GROUP_FIELDS, table.columns)


__all__ = [
    "REGENERATE",
    "check_metrics",
    "factor_columns",
    "group_columns",
    "levels_of",
    "read_metrics",
    "read_parquet",
    "row_group_rows",
    "select_levels",
    "slices",
    "sort_table",
    "write_metrics_csv",
    "write_parquet",
]
