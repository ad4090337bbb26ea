"""Rule collect: every cell's table of fits and metrics, metrics.csv, the failure rules, the
comparison with exact theory."""

from regsim.jobs import run_collect
from regsim.workflow import collect_job, log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    run_collect(
        collect_job(sm.config, sm.params.job_digest),
        chunks=list(sm.input),
        fits=list(sm.output.fits),
        metrics=list(sm.output.metrics),
        table=sm.output.table,
        sensitivity=(sm.output.sensitivity_csv, sm.output.sensitivity_md),
        workers=sm.threads,
        theory=(sm.output.theory_csv, sm.output.theory_md),
    )
