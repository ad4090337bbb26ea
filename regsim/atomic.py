"""Atomic file output: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from regsim.errors import OutputError


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces it when the block ends without error.

    The block writes to the yielded path; on success the file is flushed to disk and
    renamed over ``path``, so a reader (or a rerun after a crash) sees either the old file
    or the whole new one, never a partial file under the final name. On an error the
    temporary file is removed and ``path`` is untouched; an operating-system error (a full
    disk, a read-only folder, a parent that is a file) becomes a one-line
    :class:`~regsim.errors.OutputError` naming the file. A process killed mid-write may
    leave the hidden temporary ``.<name>.<random>.tmp``, which nothing reads and the next
    write of the same file removes (one job writes one output, so no live writer owns it).
    The file gets the permissions a plain ``open()`` would give it (not ``mkstemp``'s
    0600), so that collaborators sharing a results folder can read it.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"{path}: cannot make its folder {path.parent} ({_reason(error)}); nothing was written"
        ) from error
    try:
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _output_error(path, error) from error
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise _output_error(path, error) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def output_file(text: str) -> Path:
    """A command's output file as typed (an ``argparse`` type): one ending in a path
    separator names a folder, which ``Path`` would silently read as a file of that name.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` ends in a separator.
    """
    if text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"{text} names a folder; give the file to write")
    return Path(text)


def require_folder(path: str | os.PathLike[str]) -> None:
    """Refuse a file the user named in a folder that does not exist.

    The workflow's jobs make their outputs' folders (:func:`replacing`); a command's output
    file, typed by hand, is written only where its folder is, as ``cp`` would: a mistyped
    path makes no folders.

    Raises
    ------
    regsim.errors.OutputError
        If the folder of ``path`` does not exist, or is not a folder.
    """
    folder = Path(path).parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise OutputError(f"{path}: its folder {folder} {what}; nothing was written")


def _output_error(path: Path, error: OSError) -> OutputError:
    """The one-line error for an operating-system error while writing ``path``."""
    return OutputError(f"{path}: cannot write it ({_reason(error)}); the old file, if any, is kept")


def _reason(error: OSError) -> str:
    """An operating-system error's reason, on one line."""
    return error.strerror or " ".join(str(error).split())


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` for a temporary file beside ``path``, then rename it over ``path``.

    See :func:`replacing`.
    """
    with replacing(path) as tmp:
        write(tmp)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`write_atomic`)."""
    write_atomic(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))
