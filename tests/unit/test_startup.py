"""The startup hook that makes Snakemake's own config reading one line (regsim.startup)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

from regsim import startup


def fake_module(error: BaseException) -> types.ModuleType:
    module = types.ModuleType("fake_configfile")

    def reader(path, filetype="Config"):
        raise error

    setattr(module, startup.READER, reader)
    return module


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            IsADirectoryError(21, "Is a directory"),
            "config error: x.yaml: is a folder, not a config file",
        ),
        (
            UnicodeDecodeError("utf-8", b"caf\xe9", 3, 4, "invalid continuation byte"),
            "config error: x.yaml: not UTF-8 text (byte 3); save the file as UTF-8",
        ),
    ],
)
def test_a_file_snakemake_cannot_open_is_one_line(error: BaseException, line: str) -> None:
    module = fake_module(error)
    startup.wrap(module)
    with pytest.raises(SystemExit) as info:
        getattr(module, startup.READER)("x.yaml")
    assert str(info.value) == line


def test_other_errors_are_left_to_snakemake() -> None:
    module = fake_module(ValueError("something else"))
    startup.wrap(module)
    startup.wrap(module)  # once only
    with pytest.raises(ValueError, match="something else"):
        getattr(module, startup.READER)("x.yaml")


def test_the_wrapped_reader_is_the_installed_snakemakes() -> None:
    """Fails on a Snakemake whose config files are read elsewhere: then a --configfile it
    cannot open is a traceback again, and regsim.startup must follow it."""
    module = importlib.import_module(startup.TARGET)
    assert callable(getattr(module, startup.READER))


def test_installed_in_a_fresh_interpreter(tmp_path: Path) -> None:
    code = (
        "import regsim.startup as s; s.install();"
        f"import {startup.TARGET} as m;"
        f"print(getattr(m.{startup.READER}, '__regsim__', False))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr
