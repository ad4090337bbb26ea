"""Rule theory: the normal-error cells' coverage and σ estimates against exact theory."""

from regsim.exact import write_theory
from regsim.pipeline import log_to
from regsim.stages import read_metrics

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]) as log:
    p = sm.params
    table = write_theory(read_metrics(sm.input[0]), p.alpha, p.p, sm.output.csv, sm.output.md)
    log.info("%d rows compared with exact theory", len(table))
