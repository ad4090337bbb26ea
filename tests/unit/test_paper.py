"""Tests of ``regsim.paper.write_paper``: the rule ``paper``'s outputs, whatever the workers."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_figures import synthetic_metrics

from regsim.errors import InputDataError
from regsim.figures import bias_figure, png_from_pdf, save_figure
from regsim.paper import write_paper
from regsim.specs import PaperJob
from regsim.tables import write_failure_report, write_paper_tables

EXPECTED = {"n": [10, 100], "sigma": [1.0], "methods": ["ols", "mle", "map"], "priors": ["weak"]}


JOB = PaperJob(
    figures=(("bias", {"errors": "normal"}), ("nested_loop", {"errors": "normal"})),
    figure_options={"nested_loop": {"parameter": "sigma"}},
    expected=EXPECTED,
    alpha=0.05,
    p=2,
    measures=("bias", "coverage"),
    parameters=("beta1", "sigma"),
    slices=({"errors": "normal"},),
)


def outputs(root: Path) -> dict:
    return {
        "figures": [root / "figures" / "bias.pdf", root / "figures" / "nested_loop.pdf"],
        "tables": root / "tables",
        "failures": root / "tables" / "failures.md",
    }


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def metrics():
    return synthetic_metrics(ns=(10, 100), sigmas=(1.0,), priors=("weak",))


def test_every_output_is_written_and_the_same_for_any_workers(metrics, tmp_path: Path) -> None:
    for workers in (1, 3):
        write_paper(metrics, JOB, **outputs(tmp_path / str(workers)), workers=workers)
    one, three = files(tmp_path / "1"), files(tmp_path / "3")
    assert one == three
    names = set(one)
    assert {"figures/bias.pdf", "figures/bias.png", "figures/nested_loop.png"} <= names
    assert {"tables/bias_beta1.tex", "tables/coverage_sigma.md", "tables/failures.md"} <= names
    assert not any("theory" in name for name in names)  # the collect job's (regsim.jobs)

    # each piece as the functions it runs write it alone
    alone = tmp_path / "alone"
    save_figure(bias_figure(metrics, expected=EXPECTED), alone / "bias", ("pdf",))
    png_from_pdf(alone / "bias.pdf")  # the PNG: the PDF rastered, in a worker of its own
    write_paper_tables(metrics, alone, ["bias", "coverage"], ["beta1", "sigma"], EXPECTED)
    write_failure_report(metrics, alone / "failures.md")
    for name in ("bias.pdf", "bias.png"):
        assert (alone / name).read_bytes() == one[f"figures/{name}"]
    for name in ("bias_beta1.tex", "coverage_sigma.md", "failures.md"):
        assert (alone / name).read_bytes() == one[f"tables/{name}"], name


def test_figures_may_be_named_by_either_file(metrics, tmp_path: Path) -> None:
    named = outputs(tmp_path)
    named["figures"] = [tmp_path / "figures" / "bias.png", tmp_path / "figures" / "nested_loop"]
    write_paper(metrics, JOB, **named, workers=2)
    written = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert written == ["bias.pdf", "bias.png", "nested_loop.pdf", "nested_loop.png"]


def test_a_bad_table_is_one_error_from_the_pieces(metrics, tmp_path: Path) -> None:
    with pytest.raises(InputDataError):
        write_paper(metrics.drop(columns="mcse"), JOB, **outputs(tmp_path), workers=2)
