"""Rule figures: every figure of the metrics table, each as PDF and 300 dpi PNG."""

from regsim.figures import draw_figures
from regsim.pipeline import log_to
from regsim.stages import read_metrics

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p = sm.params
    draw_figures(
        read_metrics(sm.input[0]),
        dict(zip(sm.output.pdf, p.figures, strict=True)),
        expected=p.expected,
        options=p.options,
        p=p.p,
        alpha=p.alpha,
        workers=sm.threads,
    )
