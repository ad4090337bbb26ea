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
        (FileNotFoundError(2, "No such file or directory"), "config error: x.yaml: no such file"),
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
        f"print(getattr(m.{startup.READER}, '__regsim__', False),"
        f" getattr(m.{startup.LOADER}, '__regsim__', False))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "True True", result.stderr


def loading_module(content: object) -> types.ModuleType:
    """A config module whose reader gives ``content`` and whose loader refuses all but a
    mapping, as Snakemake's does (with a message that does not name the file)."""
    module = types.ModuleType("fake_configfile")
    setattr(module, startup.READER, lambda path, filetype="Config": content)

    def loader(path):
        config = getattr(module, startup.READER)(path)
        if not isinstance(config, dict):
            raise RuntimeError("Config file must be given as JSON or YAML with keys at top level.")
        return config

    setattr(module, startup.LOADER, loader)
    return module


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (None, "config error: x.yaml: empty; a config file sets keys (key: value)"),
        ([1, 2], "config error: x.yaml: holds a list, not keys with values (key: value)"),
        ("seed", "config error: x.yaml: holds text, not keys with values (key: value)"),
    ],
)
def test_a_config_file_without_keys_is_one_line(content: object, line: str) -> None:
    module = loading_module(content)
    startup.wrap(module)
    with pytest.raises(SystemExit) as info:
        getattr(module, startup.LOADER)("x.yaml")
    assert str(info.value) == line


def test_a_mapping_and_other_loader_errors_are_left_to_snakemake() -> None:
    module = loading_module({"seed": 1})
    startup.wrap(module)
    assert getattr(module, startup.LOADER)("x.yaml") == {"seed": 1}

    def broken(path):
        raise RuntimeError("something else")

    setattr(module, startup.LOADER, broken)
    startup.wrap(module)
    with pytest.raises(RuntimeError, match="something else"):
        getattr(module, startup.LOADER)("x.yaml")


def test_the_wrapped_loader_is_the_installed_snakemakes() -> None:
    """As the reader: fails on a Snakemake that checks the content elsewhere."""
    module = importlib.import_module(startup.TARGET)
    assert callable(getattr(module, startup.LOADER))


def test_a_yaml_mistake_says_where(tmp_path: Path) -> None:
    """Snakemake's loader says only that the file is not JSON or YAML; regsim's reader
    then gives the file, line and column."""
    path = tmp_path / "bad.yaml"
    path.write_text("seed: 1\nreplications: [\n")
    module = types.ModuleType("fake_configfile")

    def reader(path, filetype="Config"):
        raise RuntimeError("Config file is not valid JSON or YAML.")

    setattr(module, startup.READER, reader)
    setattr(module, startup.LOADER, lambda path: getattr(module, startup.READER)(path))
    startup.wrap(module)
    with pytest.raises(SystemExit) as info:
        getattr(module, startup.LOADER)(str(path))
    assert str(info.value).startswith(f"config error: {path}: line 3, column 1: YAML syntax error")


def test_a_config_entry_snakemake_cannot_read_is_one_line() -> None:
    module = types.ModuleType("fake_cli")

    def parse_config(entries):
        raise ValueError(
            "Invalid config definition: Config entries have to be defined as name=value pairs."
        )

    setattr(module, startup.CLI_CONFIG, parse_config)
    startup.wrap_cli(module)
    reader = getattr(module, startup.CLI_CONFIG)
    with pytest.raises(SystemExit) as info:
        reader(["seed=7", "seed"])
    assert str(info.value) == "config error: --config seed: not KEY=VALUE"
    for entry in ("grid.n=[10]", "n=5"):
        with pytest.raises(SystemExit) as info:
            reader([entry])
        assert str(info.value).startswith(
            f"config error: --config {entry}: Snakemake's --config takes a key of two or more"
        )
    # another error stays Snakemake's
    with pytest.raises(ValueError):
        reader(["seed=7"])


def test_the_wrapped_config_entry_reader_is_the_installed_snakemakes(tmp_path: Path) -> None:
    """Fails on a Snakemake that reads --config elsewhere: the entry would be a traceback
    again. Run as a user runs it, with the setup's startup hook."""
    module = importlib.import_module(startup.CLI)
    assert callable(getattr(module, startup.CLI_CONFIG))
    code = (
        "import regsim.startup as s; s.install();"
        f"import {startup.CLI} as m;"
        f"print(getattr(m.{startup.CLI_CONFIG}, '__regsim__', False))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr
    snakemake = Path(sys.executable).with_name("snakemake")
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [str(snakemake), "-n", "--snakefile", str(root / "Snakefile"), "--config", "seed"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == "config error: --config seed: not KEY=VALUE"
    assert "Traceback" not in run.stderr


def test_the_commands_read_a_bad_config_entry_as_one_line_without_the_hook(monkeypatch) -> None:
    # python -m regsim protocol | dataset | refit --config: the same line where Snakemake's
    # reader is not wrapped (an environment set up otherwise)
    import snakemake.cli

    from regsim.cli import studyconfig
    from regsim.errors import ConfigError

    def unwrapped(entries):
        raise ValueError("Invalid config definition: Config entries have to be name=value pairs.")

    monkeypatch.setattr(snakemake.cli, "parse_config", unwrapped)
    with pytest.raises(ConfigError) as info:
        studyconfig._overrides(["seed"])
    # printed as "config error: " + this, as the workflow prints it
    assert str(info.value) == "--config seed: not KEY=VALUE"
