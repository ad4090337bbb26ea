"""Rule protocol: the study's ADEMP protocol, from its configuration, before any dataset."""

from regsim.protocol import write_protocol
from regsim.study import Study
from regsim.workflow import log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    write_protocol(Study.from_config(sm.params.config), sm.output[0])
