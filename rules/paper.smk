# What goes into a paper, drawn from the fits and metrics.csv: figures, LaTeX/Markdown
# tables, the failure report; and the record of every result.


rule paper:
    input:
        metrics="results/tables/metrics.csv",
        # the cells of the zip plot and the estimate-level figures
        cell_fits=[f"results/fits/{cell}.parquet" for cell in STUDY.cell_figure_cells],
    output:
        pdf=[f"results/figures/{figure}.pdf" for figure in STUDY.figure_files],
        png=[f"results/figures/{figure}.png" for figure in STUDY.figure_files],
        cell_pdf=[f"results/figures/{figure}.pdf" for figure in STUDY.cell_figures],
        cell_png=[f"results/figures/{figure}.png" for figure in STUDY.cell_figures],
        tables=[f"results/tables/{table}" for table in STUDY.paper_tables],
        failures="results/tables/failures.md",
    log:
        "results/logs/paper.log",
    benchmark:
        "results/benchmarks/paper.tsv"
    conda:
        "../envs/regsim.yaml"
    # One job writes every figure and table, each figure of the metrics, the figures of
    # cells' fits together and the tables in processes forked from it (one a thread at
    # most): matplotlib and pandas are imported, and matplotlib warmed up, once rather
    # than once per output.
    threads: min(len(STUDY.figure_files) + 1, 8)
    resources:
        # the parent's libraries and table, and one figure's canvas per worker
        mem_mb=lambda wc, threads: 300 + 150 * threads,
        runtime=5,
    params:
        job=STUDY.paper_job.to_params(),
    script:
        "../scripts/paper.py"


rule protocol:
    output:
        "results/protocol.md",
    log:
        "results/logs/protocol.log",
    conda:
        "../envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=300,
        runtime=2,
    params:
        # the protocol is a function of the resolved configuration alone
        config=STUDY.config,
    script:
        "../scripts/protocol.py"


rule provenance:
    input:
        "results/protocol.md",
        # every result of the study, so that `regsim verify` can tell it from stale files
        expand("results/chunks/{job}.parquet", job=STUDY.plan),
        # nothing reads a dataset file back: one touched (or damaged) reruns nothing
        ancient(
            expand(
                "results/datasets/{job}.npz",
                job=STUDY.plan if STUDY.keep_datasets else [],
            )
        ),
        expand(
            "results/{kind}/{cell}.parquet",
            kind=("fits", "metrics"),
            cell=STUDY.labels,
        ),
        "results/tables/metrics.csv",
        expand("results/tables/{table}", table=STUDY.paper_tables),
        "results/tables/failures.md",
        "results/tables/theory.csv",
        "results/tables/theory.md",
        "results/tables/failures_sensitivity.csv",
        "results/tables/failures_sensitivity.md",
        expand(
            "results/figures/{figure}.{ext}",
            figure=[*STUDY.figure_files, *STUDY.cell_figures],
            ext=("pdf", "png"),
        ),
    output:
        "results/provenance.json",
    log:
        "results/logs/provenance.log",
    benchmark:
        "results/benchmarks/provenance.tsv"
    conda:
        "../envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        config=STUDY.config,
        # A new commit reruns this job alone.
        commit=git_state(workflow.basedir)["commit"],
    script:
        "../scripts/provenance.py"


# Views of the results, drawn from recorded files and recording nothing themselves (so
# `regsim verify` does not list them): the report's pages and the results explorer, one
# job writing both at once.


localrules:
    views,


# The report caption of each figure family not drawn from the metrics table (those are
# report/figures/<family>.rst).
FIGURE_CAPTIONS = {
    "zip": "../report/zip.rst",
    "estimates": "../report/estimates_se.rst",
    "bland_altman": "../report/bland_altman.rst",
}


# The report shows a PNG at its natural aspect in a panel as tall as the window (a tall
# figure is cut off) and an HTML output in a frame that fills the panel: each figure gets
# a page that fits it to the frame, each group of tables a page of HTML tables. The
# explorer shows the record, so the views come after provenance.
rule views:
    input:
        figures=[f"results/figures/{figure}.png" for figure in STUDY.figures],
        tables=[f"results/tables/{table}" for table in STUDY.paper_tables],
        documents=[
            "results/tables/failures.md",
            "results/tables/failures_sensitivity.md",
            "results/tables/theory.md",
            "results/protocol.md",
        ],
        metrics="results/tables/metrics.csv",
        zip_fits=f"results/fits/{STUDY.zip['cell']}.parquet",
        provenance="results/provenance.json",
    output:
        figures=[
            report(
                f"results/report/figures/{figure}.html",
                caption=FIGURE_CAPTIONS.get(family, f"../report/figures/{family}.rst"),
                category="Figures",
                labels={"figure": figure},
            )
            for figure, family in STUDY.figures.items()
        ],
        tables=[
            report(
                f"results/report/tables/{group}.html",
                caption="../report/tables.rst",
                category="Tables",
                labels={"table": group},
            )
            for group in STUDY.table_groups
        ],
        failures=report(
            "results/report/failures.html",
            caption="../report/failures.rst",
            category="Diagnostics",
        ),
        sensitivity=report(
            "results/report/failures_sensitivity.html",
            caption="../report/failures_sensitivity.rst",
            category="Diagnostics",
        ),
        theory=report(
            "results/report/theory.html",
            caption="../report/theory.rst",
            category="Validation",
        ),
        # Snakemake offers a Markdown output as a download: the protocol is a page too.
        protocol=report(
            "results/report/protocol.html",
            caption="../report/protocol.rst",
            category="Protocol",
        ),
        explorer="results/explorer.html",
    log:
        "results/logs/views.log",
    benchmark:
        "results/benchmarks/views.tsv"
    conda:
        "../envs/regsim.yaml"
    # The explorer and each figure's page are written in processes forked from the job,
    # as many at once as it has threads.
    threads: min(len(STUDY.figures) + 1, 8)
    resources:
        mem_mb=lambda wc, threads: 1000 + 150 * threads,
        runtime=5,
    params:
        groups=list(STUDY.table_groups.values()),
        config=STUDY.config,
    script:
        "../scripts/views.py"
