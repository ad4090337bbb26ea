"""Shared end-to-end fixtures: complete smoke runs, each made once per test session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, int], Path]:
    """``get(cores, budget)``: the folder of a complete run of tests/smoke.yaml with that
    many cores and ``observations_budget``, run on first request and reused after. Tests
    must not change these folders; copy one (``shutil.copytree`` keeps mtimes) to modify
    it."""
    from test_workflow import smoke_run

    root = tmp_path_factory.mktemp("smoke")
    done: dict[tuple[int, int], Path] = {}

    def get(cores: int, budget: int) -> Path:
        if (cores, budget) not in done:
            done[cores, budget] = smoke_run(root / f"cores{cores}_per{budget}", cores, budget)
        return done[cores, budget]

    return get
