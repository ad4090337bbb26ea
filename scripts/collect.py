"""Rule collect: write results/tables/metrics.csv from every cell's metrics."""

from regsim.pipeline import log_to
from regsim.stages import run_collect

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    run_collect(list(sm.input), sm.output[0])
