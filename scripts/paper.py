"""Rule paper: the figures, paper tables, failure report and exact-theory comparison."""

from pathlib import Path

from regsim.paper import write_paper
from regsim.pipeline import log_to
from regsim.stages import read_metrics

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p = sm.params
    out = sm.output
    write_paper(
        read_metrics(sm.input[0]),
        figures=dict(zip(out.pdf, p.figures, strict=True)),
        figure_options=p.figure_options,
        expected=p.expected,
        alpha=p.alpha,
        p=p.p,
        tables=Path(out.tables[0]).parent,
        measures=p.measures,
        parameters=p.parameters,
        errors=p.errors,
        failures=out.failures,
        theory_csv=out.theory_csv,
        theory_md=out.theory_md,
        workers=sm.threads,
    )
