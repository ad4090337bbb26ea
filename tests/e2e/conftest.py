"""Shared end-to-end fixtures: complete smoke runs, each made once per test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, int], Path]:
    """``get(cores, per_job)``: the folder of a complete run of tests/smoke.yaml with that
    many cores and replicates per job, run on first request and reused after. Tests must
    not change these folders; copy one (``shutil.copytree`` keeps mtimes) to modify it."""
    from test_workflow import smoke_run

    root = tmp_path_factory.mktemp("smoke")
    done: dict[tuple[int, int], Path] = {}

    def get(cores: int, per_job: int) -> Path:
        if (cores, per_job) not in done:
            done[cores, per_job] = smoke_run(root / f"cores{cores}_per{per_job}", cores, per_job)
        return done[cores, per_job]

    return get
