"""Rule report_pages: each figure fitted to the report's view, each table as HTML."""

from pathlib import Path

from regsim.pages import write_report_pages
from regsim.workflow import log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    inp, out = sm.input, sm.output
    write_report_pages(
        figures=zip(inp.figures, out.figures, strict=True),
        table_groups=dict(zip(out.tables, sm.params.groups, strict=True)),
        tables=Path(inp.tables[0]).parent,
        documents=zip(
            inp.documents, [out.failures, out.sensitivity, out.theory, out.protocol], strict=True
        ),
        workers=sm.threads,
    )
