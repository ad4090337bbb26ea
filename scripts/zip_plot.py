"""Rule zip_plot: zip plot of one cell's confidence intervals, as PDF and 300 dpi PNG."""

from regsim.cells import cell_rows
from regsim.figures import REPLICATE_COLUMNS, ZIP_PDF_RASTER_DPI, save_figure, zip_plot
from regsim.schema import OPTIONAL_FACTORS
from regsim.workflow import log_to

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p = sm.params
    # one parameter's rows (memory: a cell can hold 10^5 replicates), from the jobs' chunks
    columns = [*REPLICATE_COLUMNS, *(f.name for f in OPTIONAL_FACTORS)]
    fits = cell_rows(list(sm.input), p.cell, columns=columns, where={"parameter": p.parameter})
    figure = zip_plot(fits, n=p.n, sigma=p.sigma, parameter=p.parameter, alpha=p.alpha)
    save_figure(figure, sm.output.pdf, vector_raster_dpi=ZIP_PDF_RASTER_DPI)
