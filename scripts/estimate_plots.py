"""Rule estimate_plots: one cell's estimates against their model SEs, and Bland-Altman."""

from regsim.cells import cell_rows
from regsim.figures import (
    ESTIMATE_PDF_RASTER_DPI,
    REPLICATE_COLUMNS,
    bland_altman_figure,
    estimate_se_figure,
    save_figure,
)
from regsim.schema import OPTIONAL_FACTORS
from regsim.workflow import log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p, out = sm.params, sm.output
    # one parameter's rows (memory: a cell can hold 10^5 replicates), from the jobs' chunks
    columns = [*REPLICATE_COLUMNS, *(f.name for f in OPTIONAL_FACTORS)]
    fits = cell_rows(
        list(sm.input), sm.wildcards.cell, columns=columns, where={"parameter": p.parameter}
    )
    figure = estimate_se_figure(fits, parameter=p.parameter)
    save_figure(figure, out.estimates_pdf, vector_raster_dpi=ESTIMATE_PDF_RASTER_DPI)
    if p.reference is not None:
        figure = bland_altman_figure(fits, reference=p.reference, parameter=p.parameter)
        save_figure(figure, out.bland_altman_pdf, vector_raster_dpi=ESTIMATE_PDF_RASTER_DPI)
