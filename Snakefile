"""regsim: simulation study of OLS, MLE and MAP estimators of Gaussian linear regression.

Run the whole study with `snakemake --cores 8`; execution settings come from
profiles/default/. Outputs are described in results/README.md.
"""

import sys
from pathlib import Path

from snakemake.common.configfile import load_configfile
from snakemake.utils import min_version, validate

import regsim.config
from regsim import pipeline
from regsim.errors import ConfigError
from regsim.estimators import ESTIMATORS

min_version("9.0")


# The config is built here rather than with `configfile:`, whose recursive merge would add
# the default grid and priors to a user's own: defaults (config.yaml) <- each --configfile
# <- --config (profile included), each layer replacing the top-level keys it names
# wholesale. Any problem stops the run here with one line naming the key.
_files = [*workflow.overwrite_configfiles]
if not workflow.config_settings.replace_workflow_config:
    if Path("config.yaml").exists() or not _files:
        _files.insert(0, "config.yaml")
try:
    _study = regsim.config.resolve(
        regsim.config.load_layers(
            _files, load_configfile, workflow.config_settings.config
        ),
        validate=lambda study: validate(study, "schemas/config.schema.yaml"),
        known_methods=tuple(ESTIMATORS),
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


wildcard_constraints:
    cell=r"n\d+_sigma[0-9.e+-]+",
    chunk=r"reps\d+-\d+",


localrules:
    all,
    collect,


rule all:
    input:
        "results/tables/metrics.csv",


rule generate:
    output:
        "results/datasets/{cell}/{chunk}.npz",
    log:
        "results/logs/generate/{cell}/{chunk}.log",
    conda:
        "envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=pipeline.job_resource("generate", "mem_mb", CELLS, CHUNKS),
        runtime=pipeline.job_resource("generate", "runtime", CELLS, CHUNKS),
    params:
        cell=lambda wc: pipeline.cell_params(CELLS[wc.cell]),
        seed=config["seed"],
        start=lambda wc: CHUNKS[wc.chunk][0],
        stop=lambda wc: CHUNKS[wc.chunk][1],
    script:
        "scripts/generate.py"


rule fit:
    input:
        "results/datasets/{cell}/{chunk}.npz",
    output:
        "results/fits/{cell}/{chunk}.parquet",
    log:
        "results/logs/fit/{cell}/{chunk}.log",
    conda:
        "envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=pipeline.job_resource("fit", "mem_mb", CELLS, CHUNKS),
        runtime=pipeline.job_resource("fit", "runtime", CELLS, CHUNKS),
    params:
        priors=PRIORS,
        methods=config["methods"],
        alpha=config["alpha"],
    script:
        "scripts/fit.py"


rule summarize:
    input:
        lambda wc: expand(
            "results/fits/{cell}/{chunk}.parquet", cell=wc.cell, chunk=CHUNKS
        ),
    output:
        fits="results/fits/{cell}.parquet",
        metrics="results/metrics/{cell}.parquet",
    log:
        "results/logs/summarize/{cell}.log",
    conda:
        "envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=pipeline.job_resource(
            "summarize", "mem_mb", CELLS, replications=config["replications"]
        ),
        runtime=pipeline.job_resource(
            "summarize", "runtime", CELLS, replications=config["replications"]
        ),
    params:
        alpha=config["alpha"],
    script:
        "scripts/summarize.py"


rule collect:
    input:
        expand("results/metrics/{cell}.parquet", cell=CELLS),
    output:
        "results/tables/metrics.csv",
    log:
        "results/logs/collect.log",
    conda:
        "envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "scripts/collect.py"
