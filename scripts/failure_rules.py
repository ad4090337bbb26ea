"""Rule failure_rules: the failing cells' main measures under both failure rules."""

from regsim.sensitivity import write_failure_rules
from regsim.tableio import read_metrics
from regsim.workflow import log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]) as logger:
    table = write_failure_rules(
        read_metrics(sm.input.metrics),
        list(sm.input.fits),
        sm.params.alpha,
        csv=sm.output.csv,
        markdown=sm.output.md,
        reference=sm.params.reference,
    )
    logger.info("%d rows under both failure rules", len(table))
