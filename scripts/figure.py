"""Rule figure: one figure of the metrics table for one error model, as PDF and 300 dpi PNG."""

from regsim.figures import FIGURES, save_figure
from regsim.pipeline import log_to
from regsim.stages import read_metrics
from regsim.tables import select_errors

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p = sm.params
    metrics = select_errors(read_metrics(sm.input[0]), p.errors)
    figure = FIGURES[p.family](metrics, expected=p.expected, **p.options)
    save_figure(figure, sm.output.pdf)
