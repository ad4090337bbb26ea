"""Atomic writes: whole file or old file, plain permissions, no leftovers."""

from __future__ import annotations

import os

import pytest

from regsim.atomic import write_atomic, write_bytes_atomic
from regsim.design import Cell
from regsim.errors import OutputError
from regsim.simulate import draw, save_datasets


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "a.bin", b"abc")
        save_datasets(tmp_path / "d.npz", [draw(Cell(5, 1.0, (1.0, 2.0)), 1, 0, 2)])
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d.npz").stat().st_mode & 0o777 == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomic(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_a_write_removes_what_a_killed_write_left(tmp_path):
    target = tmp_path / "chunk.parquet"
    stale = tmp_path / ".chunk.parquet.abc123.tmp"
    stale.write_text("half written by a killed job")
    other = tmp_path / ".other.parquet.abc123.tmp"
    other.write_text("another output's temporary")
    write_bytes_atomic(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert not stale.exists() and other.exists()


def test_a_folder_that_cannot_be_made_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match=r"file/out\.csv: cannot make its folder .*file \("):
        write_bytes_atomic(tmp_path / "file" / "out.csv", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
