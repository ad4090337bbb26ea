"""Rule fit: fit every method and prior on one chunk of datasets."""

from regsim.pipeline import log_to
from regsim.stages import run_fit

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p = sm.params
    run_fit(sm.input[0], p.priors, p.methods, p.alpha, sm.output[0], p.map_max_iter)
