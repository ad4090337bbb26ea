"""Rule zip_plot: zip plot of one cell's confidence intervals, as PDF and 300 dpi PNG."""

from regsim.figures import REPLICATE_COLUMNS, ZIP_PDF_RASTER_DPI, save_figure, zip_plot
from regsim.pipeline import log_to
from regsim.stages import read_parquet

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p = sm.params
    # one parameter's rows and the plotted columns (memory: a cell can hold 10^5 replicates)
    fits = read_parquet(
        sm.input[0], only=[*REPLICATE_COLUMNS, "errors"], where={"parameter": p.parameter}
    )
    figure = zip_plot(fits, n=p.n, sigma=p.sigma, parameter=p.parameter, alpha=p.alpha)
    save_figure(figure, sm.output.pdf, vector_raster_dpi=ZIP_PDF_RASTER_DPI)
