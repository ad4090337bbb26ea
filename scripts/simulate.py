"""Rule simulate: draw and fit one job's units of replicates; write its chunk of fits."""

from regsim.jobs import run_simulate
from regsim.workflow import log_to, simulate_job

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    run_simulate(
        simulate_job(sm.config, sm.wildcards.job, sm.params.job_digest),
        fits=sm.output.fits,
        datasets=sm.output.get("datasets"),
        quantiles=sm.params.ols_quantiles,
    )
