"""Rule views: each figure fitted to the report's view, each table as HTML, and the
results explorer."""

from pathlib import Path

from regsim.pages import write_views
from regsim.workflow import log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    inp, out = sm.input, sm.output
    write_views(
        figures=zip(inp.figures, out.figures, strict=True),
        table_groups=dict(zip(out.tables, sm.params.groups, strict=True)),
        tables=Path(inp.tables[0]).parent,
        documents=zip(
            inp.documents, [out.failures, out.sensitivity, out.theory, out.protocol], strict=True
        ),
        explorer=out.explorer,
        config=sm.params.config,
        metrics=inp.metrics,
        provenance=inp.provenance,
        # the paper tables in Markdown, the failure report, the rules side by side, theory
        explorer_tables=[
            *(table for table in inp.tables if table.endswith(".md")),
            *inp.documents[:3],
        ],
        zip_fits=inp.zip_fits,
        workers=sm.threads,
    )
