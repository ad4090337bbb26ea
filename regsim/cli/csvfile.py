"""Reading a user's CSV file: its header, and its rows as a table."""

from __future__ import annotations

import csv
import os
from typing import Any

import pandas as pd

from regsim.errors import InputDataError


def csv_header(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a CSV file, refusing a name given twice.

    pandas would read a second ``x`` as ``x.1`` and go on as if the file had said so.

    Raises
    ------
    InputDataError
        If a column name appears twice; the message names it and the file.
    """
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        names = next(csv.reader(handle), [])
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputDataError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
    return names


def read_csv_table(path: str | os.PathLike[str], **options: Any) -> pd.DataFrame:
    """``pandas.read_csv(path, **options)``, refusing a first data row longer than the
    header.

    pandas reads such a file as if its first columns were an unnamed index, shifting every
    value one column to the left (and reporting, at best, a missing value in the last
    column); a longer row further down it refuses itself, naming the line.

    Raises
    ------
    InputDataError
        If the first data row has more fields than the header.
    """
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        rows = csv.reader(handle)
        header = next(rows, [])
        first = next((row for row in rows if row), [])
    if len(first) > len(header):
        raise InputDataError(
            f"{path}: cannot parse as CSV (the first data row has {len(first)} fields, "
            f"the header {len(header)})"
        )
    return pd.read_csv(path, **options)
