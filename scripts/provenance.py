"""Rule provenance: config, versions, commit and SHA-256 of every result table."""

from regsim.provenance import write_provenance
from regsim.workflow import log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    # the tables are recorded relative to the folder of provenance.json (results/)
    write_provenance(sm.output[0], sm.params.config, list(sm.input), repo=sm.scriptdir)
