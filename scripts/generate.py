"""Rule generate: draw one chunk of replicate datasets of one data cell."""

from regsim.pipeline import log_to
from regsim.stages import run_generate

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    run_generate(sm.params.cell, sm.params.seed, sm.params.start, sm.params.stop, sm.output[0])
