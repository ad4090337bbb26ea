"""Rule figure: one figure of the metrics table, as PDF and 300 dpi PNG."""

from regsim.figures import FIGURES, save_figure
from regsim.pipeline import log_to
from regsim.stages import read_metrics

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    draw = FIGURES[sm.wildcards.figure]
    figure = draw(read_metrics(sm.input[0]), expected=sm.params.expected, **sm.params.options)
    save_figure(figure, sm.output.pdf)
