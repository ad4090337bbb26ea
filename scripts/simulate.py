"""Rule simulate: draw, save and fit replicates of one cell or of several whole cells."""

from regsim.pipeline import as_paths, log_to
from regsim.stages import run_simulate_cells

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p = sm.params
    metrics = getattr(sm.output, "metrics", None)  # only whole-cell jobs summarize
    run_simulate_cells(
        p.cells,
        p.seed,
        p.start,
        p.stop,
        p.priors,
        p.methods,
        p.alpha,
        as_paths(sm.output.datasets),
        as_paths(sm.output.fits),
        None if metrics is None else as_paths(metrics),
        p.map_max_iter,
    )
