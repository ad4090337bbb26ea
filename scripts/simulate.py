"""Rule simulate: draw, save and fit replicates of one cell (and summarize a whole cell)."""

from regsim.pipeline import log_to
from regsim.stages import run_simulate

sm = snakemake  # noqa: F821 - injected by Snakemake's script directive
with log_to(sm.log[0]):
    p = sm.params
    run_simulate(
        p.cell,
        p.seed,
        p.start,
        p.stop,
        p.priors,
        p.methods,
        p.alpha,
        sm.output.datasets,
        sm.output.fits,
        getattr(sm.output, "metrics", None),  # only a whole-cell job summarizes
        p.map_max_iter,
    )
