"""Rule explorer: the results explorer, one self-contained HTML page of the study."""

from regsim.explorer import write_explorer
from regsim.workflow import log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    write_explorer(
        sm.output[0],
        sm.params.config,
        metrics=sm.input.metrics,
        provenance=sm.input.provenance,
        tables=list(sm.input.tables),
        zip_fits=sm.input.zip_fits,
    )
