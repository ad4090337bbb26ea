"""Rule paper: the figures, paper tables and failure report."""

from pathlib import Path

from regsim.paper import write_paper
from regsim.specs import PaperJob
from regsim.tableio import read_metrics
from regsim.workflow import log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    out = sm.output
    write_paper(
        read_metrics(sm.input.metrics),
        PaperJob.from_params(sm.params.job),
        figures=list(out.pdf),
        tables=Path(out.tables[0]).parent,
        failures=out.failures,
        cell_figures=list(out.cell_pdf),
        cell_fits={Path(path).stem: path for path in sm.input.cell_fits},
        workers=sm.threads,
    )
