"""Reading a user's CSV file as a table, its header checked first."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from regsim.errors import InputDataError


def read_csv_table(
    path: str | os.PathLike[str], text_columns: Sequence[str] = (), **options: Any
) -> pd.DataFrame:
    """``pandas.read_csv(path, **options)``, the ``text_columns`` its header has read as
    text, refusing a header that names a column twice or a first data row longer than it.

    pandas reads a file with a longer first row as if its first columns were an unnamed
    index, shifting every value one column to the left (and reporting, at best, a missing
    value in the last column); a longer row further down it refuses itself, naming the
    line.

    Raises
    ------
    InputDataError
        If a column name appears twice in the header (the message names it and the file),
        or the first data row has more fields than the header, or ``path`` is a folder.
    """
    if os.path.isdir(path):
        raise InputDataError(f"{path}: is a folder, not a CSV file")
    header, first = _leading_rows(path)
    _check_names(path, header)
    if len(first) > len(header):
        raise InputDataError(
            f"{path}: cannot parse as CSV (the first data row has {len(first)} fields, "
            f"the header {len(header)})"
        )
    text = [c for c in dict.fromkeys(text_columns) if c in header]
    if text:
        options = {**options, "dtype": dict.fromkeys(text, str)}
    return pd.read_csv(path, **options)


def data_lines(path: str | os.PathLike[str]) -> list[int]:
    """The line of the file (the first is 1) on which each data row pandas reads starts,
    in order: the header is the first row that is not blank, and blank lines (empty, or
    spaces and tabs only), which pandas skips, are skipped here too. Empty where the file
    cannot be read so (a value longer than the ``csv`` module takes).

    A message about a row names its line in the file, which its position in the table
    gives only where no line is blank and no quoted value spans lines.
    """
    lines: list[int] = []
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            rows = csv.reader(handle)
            read = 0  # lines read before the row
            header = False
            for row in rows:
                start, read = read + 1, rows.line_num
                if _blank(row):
                    continue
                if header:
                    lines.append(start)
                header = True
    except csv.Error:
        return []
    return lines


def _leading_rows(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """The header of a CSV file and its first data row (blank lines skipped, as pandas
    skips them); both empty where the ``csv`` module cannot read them (pandas then reads
    the file, or names what is wrong)."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            rows = (row for row in csv.reader(handle) if not _blank(row))
            return next(rows, []), next(rows, [])
    except csv.Error:
        return [], []


def _blank(row: list[str]) -> bool:
    """Whether a row read by ``csv`` is a line pandas skips: empty, or spaces and tabs
    only (a quoted empty value, ``""``, is a row)."""
    return not row or (len(row) == 1 and row[0] != "" and not row[0].strip(" \t"))


def _check_names(path: str | os.PathLike[str], names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputDataError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
