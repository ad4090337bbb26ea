"""Rule figure: one figure of the metrics table for one error model, as PDF and 300 dpi PNG."""

from regsim.figures import FIGURES, save_figure, study_keywords
from regsim.pipeline import log_to
from regsim.stages import read_metrics
from regsim.tables import select_errors

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p = sm.params
    # select_errors drops the errors column; the figure needs it to name a non-normal model
    # and to leave out the exact curves, which hold for normal errors only.
    metrics = select_errors(read_metrics(sm.input[0]), p.errors).assign(errors=p.errors)
    study = study_keywords(p.family, p=p.p, alpha=p.alpha)
    figure = FIGURES[p.family](metrics, expected=p.expected, **{**study, **p.options})
    save_figure(figure, sm.output.pdf)
