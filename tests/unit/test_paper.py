"""Tests of ``regsim.paper.write_paper``: the rule ``paper``'s outputs, whatever the workers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_figures import synthetic_metrics, synthetic_replicates

from regsim.errors import InputDataError
from regsim.figures import (
    ESTIMATE_PDF_RASTER_DPI,
    ZIP_PDF_RASTER_DPI,
    bias_figure,
    bland_altman_figure,
    estimate_se_figure,
    png_from_pdf,
    save_figure,
    zip_plot,
)
from regsim.paper import write_paper
from regsim.specs import PaperJob
from regsim.tableio import write_parquet
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
    write_paper_tables(
        metrics,
        alone,
        measures=["bias", "coverage"],
        parameters=["beta1", "sigma"],
        expected=EXPECTED,
    )
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


#: The figures of one cell's replicate fits: the zip plot and the estimate-level figures.
CELL_JOB = dataclasses.replace(
    JOB,
    reference="ols",
    cell_figures=(
        ("zip", "n20_sigma5", "beta1"),
        ("estimates", "n20_sigma5", "beta1"),
        ("bland_altman", "n20_sigma5", "sigma"),
    ),
)


def cell_outputs(root: Path, fits: Path) -> dict:
    stems = ("zip", "estimates_n20_sigma5", "bland_altman_n20_sigma5")
    return {
        **outputs(root),
        "cell_figures": [root / "figures" / f"{stem}.pdf" for stem in stems],
        "cell_fits": {"n20_sigma5": fits},
    }


def test_the_figures_of_a_cells_fits_are_drawn_from_its_table(metrics, tmp_path: Path) -> None:
    replicates = synthetic_replicates(n=20, sigma=5.0, replications=60)
    fits = tmp_path / "n20_sigma5.parquet"
    write_parquet(replicates, fits)
    for workers in (1, 3):
        write_paper(
            metrics, CELL_JOB, **cell_outputs(tmp_path / str(workers), fits), workers=workers
        )
    one, three = files(tmp_path / "1"), files(tmp_path / "3")
    assert one == three
    assert {"figures/zip.png", "figures/bland_altman_n20_sigma5.pdf"} <= set(one)

    # each as its function draws it from the rows of its parameter, PDF and PNG by matplotlib
    alone = tmp_path / "alone"
    beta1 = replicates[replicates["parameter"] == "beta1"].reset_index(drop=True)
    sigma = replicates[replicates["parameter"] == "sigma"].reset_index(drop=True)
    drawn = {
        "zip": (zip_plot(beta1, parameter="beta1", alpha=0.05), ZIP_PDF_RASTER_DPI),
        "estimates_n20_sigma5": (
            estimate_se_figure(beta1, parameter="beta1"),
            ESTIMATE_PDF_RASTER_DPI,
        ),
        "bland_altman_n20_sigma5": (
            bland_altman_figure(sigma, reference="ols", parameter="sigma"),
            ESTIMATE_PDF_RASTER_DPI,
        ),
    }
    for stem, (figure, dpi) in drawn.items():
        save_figure(figure, alone / stem, vector_raster_dpi=dpi)
        for ext in ("pdf", "png"):
            assert (alone / f"{stem}.{ext}").read_bytes() == one[f"figures/{stem}.{ext}"], stem


def test_a_cell_figure_without_its_table_of_fits_is_refused(metrics, tmp_path: Path) -> None:
    named = cell_outputs(tmp_path, tmp_path / "n20_sigma5.parquet")
    named["cell_fits"] = {}
    with pytest.raises(ValueError, match="no table of fits given for cell"):
        write_paper(metrics, CELL_JOB, **named, workers=2)
    assert not (tmp_path / "figures").exists()  # refused before anything is drawn
