"""Every replicate fit of a study as one long table, for R's rsimsum and Stata's simsum/siman.

:func:`export_fits` reads the tables of fits of a results folder (``fits/<cell>.parquet``,
see docs/outputs.md) and writes them as one table in the layout those summarisers read:
a row per replicate, method (with its prior) and parameter, with the columns
:data:`COLUMNS`:

* ``rep``: the replicate index, 0 … R − 1 (the same dataset for every method of a cell);
* one column per grid factor (:data:`regsim.schema.FACTORS`): ``n``, ``sigma``,
  ``errors``, ``truth``, ``design``;
* ``method``: ``ols``, ``ols_hc3``, ``mle``, or ``map_<prior>`` (``map_weak``, …), one
  name per series compared;
* ``parameter``: ``beta0``, ``beta1``, …, ``sigma``;
* ``est``, ``se``, ``lower``, ``upper``: the estimate, its standard error and the limits
  of its 1 − α interval, as in the tables of fits;
* ``true``: the parameter's data-generating value;
* ``converged``: 1, or 0 for a failed fit (kept, so that the summariser's rule for
  failures can be chosen; the study's own measures leave them out);
* ``df``: n − p (p coefficients) on the rows whose interval is a t interval, the
  coefficients of ``ols`` and ``ols_hc3`` (:mod:`regsim.estimators.linear`); missing
  elsewhere (σ's exact chi-square interval, and the normal-quantile intervals of MLE and
  MAP).

Rows come cell by cell in the study's order (n, σ, error model, truth, design), and
within a cell in the order of its table of fits (prior, method, parameter, replicate).

Formats (:data:`FORMATS`): CSV and Parquet are written a fit at a time, so memory holds
one fit's rows whatever the size of the study, and the same results give the same bytes:
CSV with ``sigma`` and ``true`` as in ``metrics.csv`` and the other floats with
``%.17g`` (both read back as the same doubles), missing values as empty fields, ``\\n``
line ends; Parquet with page checksums, a row group per fit. Stata's ``.dta`` (version
118) is built in memory by pandas, so it is refused, before anything is written, for a
study of more than :data:`DTA_MAX_ROWS` rows; its text columns are fixed-width ``str#``,
its floats doubles, and a non-finite value (which Stata cannot hold) is missing. Its
header carries the time it was written, as Stata's files do.

The output is written atomically (:mod:`regsim.atomic`) and never replaces an existing
file unless asked to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from regsim.atomic import replacing, require_folder
from regsim.errors import DataFileError, InputDataError, OutputError
from regsim.provenance import PROVENANCE_NAME, read_provenance
from regsim.schema import FACTOR_NAMES, FACTORS, FIT_FIELDS, cell_label, format_number
from regsim.tableio import CSV_FORMAT, REGENERATE, read_parquet, row_group_rows

__all__ = [
    "COLUMNS",
    "COMPRESSED",
    "DTA_MAX_ROWS",
    "FORMATS",
    "T_INTERVAL_METHODS",
    "CellFits",
    "Export",
    "export_fits",
    "export_format",
    "export_rows",
    "find_cells",
    "fits_files",
    "iter_export",
]

#: Output formats, by name.
FORMATS: tuple[str, ...] = ("csv", "parquet", "dta")

#: The format each file name suffix stands for (compared in lower case).
SUFFIXES: dict[str, str] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".dta": "dta"}

#: Suffixes of compressed files: an export is never compressed, so such a name would lie.
COMPRESSED: tuple[str, ...] = (".gz", ".bz2", ".xz", ".zip", ".zst", ".7z")

#: Columns of the export, in order.
COLUMNS: tuple[str, ...] = (
    "rep",
    *FACTOR_NAMES,
    "method",
    "parameter",
    "est",
    "se",
    "lower",
    "upper",
    "true",
    "converged",
    "df",
)

#: Methods whose coefficient intervals are t intervals with n − p degrees of freedom.
T_INTERVAL_METHODS: frozenset[str] = frozenset({"ols", "ols_hc3"})

#: The most rows a ``.dta`` export is written with: pandas builds it in memory, about
#: 1.5 GB at this size, four times the default study (CSV and Parquet have no limit).
DTA_MAX_ROWS = 2_000_000

#: Stata's largest double; larger magnitudes, and non-finite values, are missing in a .dta.
_STATA_DOUBLE_MAX = 8.988465674311579e307

#: Columns of a table of fits that the export reads: all but the multimodal flag.
_FIT_COLUMNS: tuple[str, ...] = (
    *FACTOR_NAMES,
    *(field for field in FIT_FIELDS if field != "multimodal"),
)

_COEFFICIENT = re.compile(r"^beta\d+$")

_LABELS: dict[str, str] = {
    "rep": "replicate (simulated dataset) index",
    "n": "observations per dataset",
    "sigma": "true error standard deviation",
    "errors": "error model",
    "truth": "true coefficient vector (name)",
    "design": "covariate design (name)",
    "method": "method, with its prior for map",
    "parameter": "parameter: beta0, beta1, ..., sigma",
    "est": "point estimate",
    "se": "standard error",
    "lower": "lower limit of the 1 - alpha interval",
    "upper": "upper limit of the 1 - alpha interval",
    "true": "data-generating value of the parameter",
    "converged": "1 if the fit converged, 0 if it failed",
    "df": "degrees of freedom of the t interval (n - p), else missing",
}


@dataclass(frozen=True)
class CellFits:
    """One cell's table of fits, as the export reads it.

    Attributes
    ----------
    path : pathlib.Path
        ``fits/<cell>.parquet``.
    levels : tuple
        The cell's level of each factor, in :data:`~regsim.schema.FACTORS` order.
    coefficients : int
        p, the number of coefficients (``beta0 … beta{p-1}``).
    row_groups : tuple of int
        Rows of each row group (one fit each), read one at a time.
    """

    path: Path
    levels: tuple[Any, ...]
    coefficients: int
    row_groups: tuple[int, ...]

    @property
    def rows(self) -> int:
        """Fit rows of the cell."""
        return sum(self.row_groups)

    @property
    def label(self) -> str:
        """The cell's label, e.g. ``n20_sigma1``."""
        return cell_label(dict(zip(FACTOR_NAMES, self.levels, strict=True)))


@dataclass(frozen=True)
class Export:
    """What :func:`export_fits` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The file written.
    format : str
        One of :data:`FORMATS`.
    rows : int
        Fit rows written (every row of every cell).
    cells : int
        Cells exported.
    source : str
        Where the cells were listed: ``provenance.json`` or ``fits/*.parquet``.
    """

    path: Path
    format: str
    rows: int
    cells: int
    source: str


def export_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The format to write ``path`` in: ``format`` if given, else the one its suffix names.

    Raises
    ------
    InputDataError
        If ``format`` is not one of :data:`FORMATS`, or contradicts the suffix (a Stata
        file named ``.csv`` would mislead whoever opens it), or the name ends in a
        compressed file's suffix (:data:`COMPRESSED`), or none is given and the suffix is
        not ``.csv``, ``.parquet`` (``.pq``) or ``.dta``.
    """
    suffix = Path(path).suffix.lower()
    if suffix in COMPRESSED:
        raise InputDataError(
            f"{path}: an export is not compressed; name it without {Path(path).suffix} "
            "(.csv, .parquet or .dta)"
        )
    if format is not None:
        if format not in FORMATS:
            raise InputDataError(f"unknown export format {format!r}; use {', '.join(FORMATS)}")
        named = SUFFIXES.get(suffix)
        if named is not None and named != format:
            raise InputDataError(
                f"{path}: --format {format} contradicts the name, which says {named}; "
                f"rename the file or leave out --format"
            )
        return format
    if suffix not in SUFFIXES:
        raise InputDataError(
            f"{path}: cannot tell the format from the name; end it in .csv, .parquet or "
            f".dta, or give --format ({'|'.join(FORMATS)})"
        )
    return SUFFIXES[suffix]


def fits_files(results: str | os.PathLike[str]) -> tuple[list[Path], str]:
    """The tables of fits of a results folder, and where they were listed.

    The cells are those ``provenance.json`` lists (``fits/<cell>.parquet``) when the
    folder has one, so that files of an earlier configuration left in ``fits/`` are not
    exported; otherwise every ``fits/*.parquet`` found, in name order.

    Parameters
    ----------
    results : path-like
        A results folder written by the workflow.

    Returns
    -------
    list of pathlib.Path, str
        The files, and ``"provenance.json"`` or ``"fits/*.parquet"``.

    Raises
    ------
    DataFileError
        If the folder does not exist, its ``provenance.json`` is damaged or lists no table
        of fits, or it has neither ``provenance.json`` nor a ``fits/*.parquet``.
    """
    root = Path(results)
    if not root.is_dir():
        raise DataFileError(f"{root}: no such results folder; give the folder the workflow wrote")
    if (root / PROVENANCE_NAME).exists():
        record = read_provenance(root)
        listed = [key for key in record["tables"] if _is_fits_table(key)]
        if not listed:
            raise DataFileError(
                f"{root / PROVENANCE_NAME} lists no fits/<cell>.parquet; run the workflow to "
                "write the study's tables of fits"
            )
        return [root.joinpath(*PurePosixPath(key).parts) for key in listed], PROVENANCE_NAME
    found = sorted(p for p in (root / "fits").glob("*.parquet") if not p.name.startswith("."))
    if not found:
        raise DataFileError(
            f"{root}: no {PROVENANCE_NAME} and no fits/*.parquet; give the results folder of a "
            "study the workflow has run"
        )
    return found, "fits/*.parquet"


def _is_fits_table(key: str) -> bool:
    """Whether a provenance path is ``fits/<cell>.parquet``."""
    parts = PurePosixPath(key).parts
    return len(parts) == 2 and parts[0] == "fits" and parts[1].endswith(".parquet")


def find_cells(paths: Iterable[str | os.PathLike[str]]) -> list[CellFits]:
    """Read what the export needs to know of each table of fits, in the study's order.

    Each file's footer (its row groups) and the factor and parameter columns of its first
    fit are read, not its rows.

    Parameters
    ----------
    paths : iterable of path-like
        Tables of fits, one per cell.

    Returns
    -------
    list of CellFits
        Sorted by the factors' levels (n and σ numerically, the error model in its order,
        truth and design by name).

    Raises
    ------
    DataFileError
        If a file is missing, damaged, not a table of fits or empty, or two files hold the
        same cell.
    """
    cells = []
    for item in paths:
        path = Path(item)
        sizes = row_group_rows(path)
        if not sizes or sum(sizes) == 0:
            raise DataFileError(f"{path}: the table of fits has no rows; {REGENERATE}")
        head = read_parquet(
            path, [*FACTOR_NAMES, "parameter"], only=[*FACTOR_NAMES, "parameter"], row_groups=[0]
        )
        levels = tuple(_plain(head[name].iloc[0]) for name in FACTOR_NAMES)
        coefficients = sum(bool(_COEFFICIENT.match(str(p))) for p in head["parameter"].unique())
        cells.append(CellFits(path, levels, coefficients, tuple(sizes)))
    cells.sort(key=lambda cell: tuple(f.rank(v) for f, v in zip(FACTORS, cell.levels, strict=True)))
    for first, second in zip(cells, cells[1:], strict=False):
        if first.levels == second.levels:
            raise DataFileError(
                f"{first.path} and {second.path} hold the same cell ({first.label}); a study "
                "has one table of fits per cell: remove the copy"
            )
    return cells


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number or text it holds."""
    return value.item() if isinstance(value, np.generic) else value


def export_rows(fits: pd.DataFrame, coefficients: int) -> pd.DataFrame:
    """Rows of a table of fits in the export layout.

    Parameters
    ----------
    fits : pandas.DataFrame
        Rows of one cell's table of fits (docs/outputs.md), e.g. one fit's.
    coefficients : int
        p, the cell's number of coefficients: ``df`` is n − p.

    Returns
    -------
    pandas.DataFrame
        The columns :data:`COLUMNS`, the rows in the same order: ``rep``, ``n`` int64,
        ``converged`` int8 (0/1), ``df`` nullable Int64, the floats float64, the text str.
    """
    prior = fits["prior"].fillna("").astype(str)
    method = fits["method"].astype(str)
    parameter = fits["parameter"].astype(str)
    n = fits["n"].astype("int64")
    t_rows = (method.isin(T_INTERVAL_METHODS) & parameter.str.match(_COEFFICIENT)).to_numpy()
    df = (n - coefficients).astype("Int64").where(t_rows, pd.NA)
    columns: dict[str, Any] = {"rep": fits["replicate"].astype("int64")}
    for name in FACTOR_NAMES:
        columns[name] = fits[name]
    columns["n"] = n
    columns["sigma"] = fits["sigma"].astype("float64")
    columns["method"] = method.where(prior == "", method + "_" + prior)
    columns["parameter"] = parameter
    for out, source in (("est", "estimate"), ("se", "se"), ("lower", "lower"), ("upper", "upper")):
        columns[out] = fits[source].astype("float64")
    columns["true"] = fits["true"].astype("float64")
    columns["converged"] = fits["converged"].astype(bool).astype("int8")
    columns["df"] = df
    return pd.DataFrame(columns).loc[:, list(COLUMNS)]


def iter_export(cells: Sequence[CellFits]) -> Iterator[pd.DataFrame]:
    """The export's rows, a fit (one row group of a table of fits) at a time.

    Nothing is read before the first row group is asked for, and each is read only when
    the one before has been used, so memory holds one fit's rows.

    Raises
    ------
    DataFileError
        If a table of fits is damaged (its page checksums disagree) or lacks a column.
    """
    for cell in cells:
        for index in range(len(cell.row_groups)):
            fits = read_parquet(cell.path, _FIT_COLUMNS, only=_FIT_COLUMNS, row_groups=[index])
            yield export_rows(fits, cell.coefficients)
            del fits


def export_fits(
    results: str | os.PathLike[str],
    out: str | os.PathLike[str],
    format: str | None = None,
    *,
    force: bool = False,
) -> Export:
    """Write every replicate fit of a study as one long table (see the module docstring).

    Parameters
    ----------
    results : path-like
        The study's results folder: its cells are those ``provenance.json`` lists, or
        every ``fits/*.parquet`` without one (:func:`fits_files`).
    out : path-like
        The file to write.
    format : {"csv", "parquet", "dta"}, optional
        Default: from ``out``'s suffix (:func:`export_format`).
    force : bool
        Replace ``out`` if it exists.

    Returns
    -------
    Export
        What was written.

    Raises
    ------
    InputDataError
        If the format is unknown or cannot be told from the name.
    OutputError
        If ``out`` exists (without ``force``), is a folder or in the results folder, a
        ``.dta`` export would exceed :data:`DTA_MAX_ROWS` rows, or the file cannot be
        written. Nothing is written or replaced.
    DataFileError
        If the results folder or a table of fits is missing or damaged; nothing is written.
    """
    target = Path(out)
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; give the file to write")
    require_folder(target)
    kind = export_format(target, format)
    if target.exists() and not force:
        raise OutputError(f"{target}: exists; give --force to replace it")
    paths, source = fits_files(results)
    study = [*paths, Path(results) / PROVENANCE_NAME]
    # Anywhere in the results folder: its files are the study's (metrics.csv, a chunk,
    # the explorer), and a new one is a file the study did not write (regsim verify).
    inside = target.resolve().is_relative_to(Path(results).resolve())
    if inside or any(_same_file(target, path) for path in study):
        raise OutputError(f"{target}: is in the results folder it exports; write elsewhere")
    cells = find_cells(paths)
    rows = sum(cell.rows for cell in cells)
    if kind == "dta" and rows > DTA_MAX_ROWS:
        raise OutputError(
            f"{target}: the study has {rows:,} fit rows, more than the {DTA_MAX_ROWS:,} a .dta "
            "export is built with (in memory); export csv or parquet instead"
        )
    writers = {"csv": _write_csv, "parquet": _write_parquet, "dta": _write_dta}
    with replacing(target) as tmp:
        writers[kind](tmp, iter_export(cells))
    return Export(target, kind, rows, len(cells), source)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (following symlinks)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


# --------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------


def _write_csv(path: Path, parts: Iterable[pd.DataFrame]) -> None:
    """CSV, a part at a time: ``sigma`` and ``true`` as in metrics.csv, floats ``%.17g``."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for part in parts:
            text = part.assign(sigma=_numbers(part["sigma"]), true=_numbers(part["true"]))
            text.to_csv(handle, header=False, index=False, **CSV_FORMAT)


def _numbers(column: pd.Series) -> np.ndarray:
    """A float column as :func:`~regsim.schema.format_number` text, formatted once per value."""
    codes, distinct = pd.factorize(column, use_na_sentinel=False)
    return np.array([format_number(v) for v in distinct], dtype=object)[codes]


def _arrow_schema() -> Any:
    """The export's Parquet schema."""
    import pyarrow as pa

    types = {"rep": pa.int64(), "n": pa.int64(), "converged": pa.int8(), "df": pa.int64()}
    floats = {"sigma", "est", "se", "lower", "upper", "true"}
    return pa.schema(
        [pa.field(c, types.get(c, pa.float64() if c in floats else pa.string())) for c in COLUMNS]
    )


def _write_parquet(path: Path, parts: Iterable[pd.DataFrame]) -> None:
    """Parquet with page checksums, a row group per part."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    with pq.ParquetWriter(path, schema, write_page_checksum=True) as writer:
        for part in parts:
            table = pa.Table.from_pandas(part, schema=schema, preserve_index=False)
            writer.write_table(table.replace_schema_metadata(None), row_group_size=len(part))


def _write_dta(path: Path, parts: Iterable[pd.DataFrame]) -> None:
    """Stata 118 (Stata 14 or later), every row in one frame; non-finite floats missing."""
    table = pd.concat(list(parts), ignore_index=True)
    for column in ("est", "se", "lower", "upper", "true"):
        values = table[column].to_numpy()
        table[column] = np.where(np.abs(values) <= _STATA_DOUBLE_MAX, values, np.nan)
    text = [c for c in COLUMNS if pd.api.types.is_string_dtype(table[c])]
    long_text = [c for c in text if table[c].str.len().max() > 2045]  # strL: str# holds 2045
    table.to_stata(
        path,
        write_index=False,
        version=118,
        data_label="regsim: every replicate fit",
        variable_labels=_LABELS,
        convert_strl=long_text,
    )
