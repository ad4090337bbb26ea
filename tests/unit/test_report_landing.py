"""The report's landing page (report/workflow.rst), rendered as Snakemake renders it."""

from __future__ import annotations

import re
import types
from pathlib import Path

import jinja2
import pytest
from docutils.core import publish_parts

from regsim.workflow import load_study

ROOT = Path(__file__).resolve().parents[2]


def landing_html(files: list[str], overrides: dict | None = None) -> tuple[str, str, dict]:
    """The landing page's text, its HTML body and the config, for the config layers."""
    config = load_study(
        [str(ROOT / f) for f in files], overrides, defaults=str(ROOT / "config.yaml")
    ).config
    # Snakemake's report environment (snakemake.report): both options on.
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    text = env.from_string((ROOT / "report" / "workflow.rst").read_text()).render(
        snakemake=types.SimpleNamespace(config=config)
    )
    body = publish_parts(text, writer="html", settings_overrides={"report_level": 2})["body"]
    return text, body, config


@pytest.mark.parametrize(
    ("files", "overrides", "items"),
    [
        # beta, the grid, the methods, the four default priors and the prior on sigma
        ([], None, 8),
        # two truths, three designs, the grid and the methods; no method takes a prior
        (["examples/factors.yaml"], {"methods": ["ols", "ols_hc3", "mle"]}, 7),
    ],
    ids=["default", "factors"],
)
def test_every_setting_is_a_bullet_of_its_own(files, overrides, items) -> None:
    text, body, config = landing_html(files, overrides)
    bullets = re.findall(r"<li>(.*?)</li>", body, flags=re.S)
    assert len(bullets) == items, bullets
    # no bullet runs into the next one (a block tag ending a line takes its newline)
    assert not any(" - " in " ".join(b.split()) for b in bullets), bullets
    assert "{{" not in text and "{%" not in text
    names = [b.split(":")[0] for b in bullets]
    assert names.count("methods") == 1 and sum(n.startswith("grid") for n in names) == 1


def test_the_opening_names_the_studys_methods() -> None:
    text, _, _ = landing_html(["examples/factors.yaml"], {"methods": ["ols", "ols_hc3", "mle"]})
    opening = " ".join(text.split("\n\n")[0].split())
    assert "OLS with HC3 standard errors" in opening and "(MLE)" in opening
    assert "MAP" not in opening and "prior ``" not in text
    text, _, _ = landing_html(["examples/bayes.yaml"])
    assert "the exact posterior under the same priors (Bayes)" in " ".join(text.split())


def test_the_prior_on_sigma_is_named_where_a_method_takes_it() -> None:
    _, body, _ = landing_html([], {"sigma_prior": "jeffreys"})
    assert "prior on σ (MAP): Jeffreys, p(σ) ∝ 1/σ" in " ".join(body.split())
    _, body, _ = landing_html(["examples/bayes.yaml"])
    assert "prior on σ (MAP and Bayes): flat, p(σ) ∝ 1" in " ".join(body.split())
    _, body, _ = landing_html([], {"methods": ["ols", "mle"]})
    assert "prior on σ" not in body
    _, body, _ = landing_html(["examples/bayes.yaml"], {"methods": ["ols", "bayes"]})
    assert "prior on σ (Bayes): flat" in " ".join(body.split())
