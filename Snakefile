"""regsim: simulation study of OLS, MLE, MAP and exact Bayes estimators of Gaussian linear regression.

Run the whole study with `snakemake --cores 8`; execution settings come from
profiles/default/. What each rule writes: results/README.md.
"""

import sys

from snakemake.utils import min_version, validate

from regsim.provenance import git_state
from regsim.workflow import (
    cancel_scheduler_timers,
    check_report_results,
    load_study,
    warn_outdated_report,
    warn_stale_results,
)

min_version("9.0")


# The config layers (config.yaml, each --configfile, --config) are read, validated and
# checked by regsim (regsim.workflow.load_study): any problem stops here with one line.
STUDY = load_study(
    workflow.config_settings.configfiles,
    workflow.config_settings.config,
    replace_defaults=workflow.config_settings.replace_workflow_config,
    validate=lambda study: validate(study, "schemas/config.schema.yaml"),
)
config.clear()
config.update(STUDY.config)
# A report shows this study's files from results/: not those another config made.
check_report_results(STUDY, sys.argv)


report: "report/workflow.rst"


wildcard_constraints:
    job=r"n\d+-\d+",


localrules:
    all,
    protocol,
    provenance,


rule all:
    input:
        "results/tables/metrics.csv",
        # every job's outputs too, so that one deleted (e.g. damaged) is remade by a rerun
        expand("results/chunks/{job}.parquet", job=STUDY.plan),
        expand(
            "results/datasets/{job}.npz",
            job=STUDY.plan if STUDY.keep_datasets else [],
        ),
        expand(
            "results/{kind}/{cell}.parquet",
            kind=("fits", "metrics"),
            cell=STUDY.labels,
        ),
        expand(
            "results/figures/{figure}.{ext}",
            figure=STUDY.figure_files,
            ext=("pdf", "png"),
        ),
        expand(
            "results/figures/{figure}.{ext}",
            figure=STUDY.cell_figures,
            ext=("pdf", "png"),
        ),
        expand("results/tables/{table}", table=STUDY.paper_tables),
        "results/tables/failures.md",
        "results/tables/theory.csv",
        "results/tables/failures_sensitivity.md",
        "results/protocol.md",
        "results/provenance.json",
        "results/explorer.html",
        expand("results/report/{page}.html", page=STUDY.report_pages),


include: "rules/simulate.smk"
include: "rules/paper.smk"


# Snakemake re-checks its job queue on a one-second timer that the interpreter waits
# for at exit; once the run has ended there is nothing left to check.
onsuccess:
    cancel_scheduler_timers()
    warn_stale_results(STUDY)
    warn_outdated_report(argv=sys.argv)


onerror:
    cancel_scheduler_timers()
