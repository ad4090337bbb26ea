"""regsim: simulation study of OLS, MLE and MAP estimators of Gaussian linear regression.

Run the whole study with `snakemake --cores 8`; execution settings come from
profiles/default/. Outputs are described in results/README.md.
"""

import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

import regsim.config
from regsim import pipeline, provenance
from regsim.errors import ConfigError

min_version("9.0")


# The config is built here rather than with `configfile:`, whose recursive merge would add
# the default grid and priors to a user's own: defaults (config.yaml) <- each --configfile
# <- --config (profile included), each layer replacing the top-level keys it names
# wholesale. Files are read as plain data (safe YAML, no templates). Any problem stops the
# run here with one line naming the key, before any job starts.
_files = [*workflow.overwrite_configfiles]
if not workflow.config_settings.replace_workflow_config:
    if Path("config.yaml").exists() or not _files:
        _files.insert(0, "config.yaml")
try:
    _study = regsim.config.resolve(
        regsim.config.load_layers(_files, overrides=workflow.config_settings.config),
        validate=lambda study: validate(study, "schemas/config.schema.yaml"),
    )
except ConfigError as error:
    sys.exit(f"config error: {error}")
config.clear()
config.update(_study)

CELLS = {pipeline.cell_label(cell): cell for cell in regsim.config.cells(config)}
CHUNKS = {pipeline.chunk_label(*chunk): chunk for chunk in regsim.config.chunks(config)}
PRIORS = pipeline.prior_params(regsim.config.priors(config))
if not regsim.config.PRIOR_METHODS.intersection(config["methods"]):
    PRIORS = []  # priors unused: changing them must not rerun the fits

# Figures, paper tables and provenance (options: the optional `figures` config key). One
# figure file per family and error model: bias.pdf for normal errors, bias_t3.pdf, ...
ERRORS = regsim.config.error_models(config)
FIGURES = pipeline.figure_files(ERRORS)
DESIGN = {
    "n": config["grid"]["n"],
    "sigma": config["grid"]["sigma"],
    "methods": config["methods"],
    "priors": list(config["priors"]),
}
PARAMETERS = [f"beta{j}" for j in range(len(config["beta"]))] + ["sigma"]
TABLE_MEASURES = ("bias", "coverage", "rmse")
PAPER_TABLES = expand(
    "results/tables/{measure}_{parameter}{suffix}.{ext}",
    measure=TABLE_MEASURES,
    parameter=PARAMETERS,
    suffix=[pipeline.error_suffix(errors) for errors in ERRORS],
    ext=("tex", "md"),
)
# Which replicates failed (not converged or not finite), for the report.
FAILURES = "results/tables/failures.md"
try:
    ZIP = pipeline.zip_settings(config, CELLS)
except ConfigError as error:
    sys.exit(f"config error: {error}")


report: "report/workflow.rst"


wildcard_constraints:
    cell=r"n\d+_sigma[0-9.e+-]+(?:_t3|_hetero)?",
    chunk=r"reps\d+-\d+",
    n=r"\d+",


localrules:
    all,
    collect,
    provenance,


rule all:
    input:
        "results/tables/metrics.csv",
        # per-cell tables and datasets too, so that one deleted (e.g. damaged) is remade
        # by a rerun
        expand("results/{kind}/{cell}.parquet", kind=("fits", "metrics"), cell=CELLS),
        expand("results/datasets/{cell}/{chunk}.npz", cell=CELLS, chunk=CHUNKS),
        expand("results/figures/{figure}.{ext}", figure=FIGURES, ext=("pdf", "png")),
        expand("results/figures/zip.{ext}", ext=("pdf", "png")),
        PAPER_TABLES,
        FAILURES,
        "results/tables/theory.csv",
        "results/provenance.json",


include: "rules/study.smk"
include: "rules/outputs.smk"


# Snakemake re-checks its job queue on a one-second timer that the interpreter waits
# for at exit; once the run has ended there is nothing left to check.
onsuccess:
    pipeline.cancel_scheduler_timers()


onerror:
    pipeline.cancel_scheduler_timers()
