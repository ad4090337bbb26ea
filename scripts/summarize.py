"""Rule summarize: combine one cell's fit chunks and compute its performance measures."""

from regsim.pipeline import log_to
from regsim.stages import run_summarize

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    run_summarize(list(sm.input), sm.params.alpha, sm.output.fits, sm.output.metrics)
