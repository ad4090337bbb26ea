"""Reading the header of a user's CSV file."""

from __future__ import annotations

import csv
import os

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
