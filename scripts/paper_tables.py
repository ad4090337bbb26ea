"""Rule paper_tables: LaTeX and Markdown tables of bias, coverage and RMSE per parameter."""

from pathlib import Path

from regsim.pipeline import log_to
from regsim.stages import read_metrics
from regsim.tables import write_failure_report, write_paper_tables

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]) as log:
    p = sm.params
    metrics = read_metrics(sm.input[0])
    directory = Path(sm.output[0]).parent
    written = write_paper_tables(
        metrics, directory, p.measures, p.parameters, p.expected, errors=p.errors
    )
    log.info("%d table files in %s", len(written), directory)
    write_failure_report(metrics, sm.output.failures)
