# What goes into a paper: figures, LaTeX/Markdown tables and provenance, from metrics.csv.


rule zip_plot:
    input:
        f"results/fits/{ZIP['cell']}.parquet",
    output:
        pdf="results/figures/zip.pdf",
        png=report(
            "results/figures/zip.png",
            caption="../report/zip.rst",
            category="Figures",
            labels={"figure": "zip"},
        ),
    log:
        "results/logs/zip_plot.log",
    benchmark:
        "results/benchmarks/zip_plot.tsv"
    conda:
        "../envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        n=ZIP["n"],
        sigma=ZIP["sigma"],
        parameter=ZIP["parameter"],
        alpha=config["alpha"],
    script:
        "../scripts/zip_plot.py"


rule paper:
    input:
        "results/tables/metrics.csv",
    output:
        pdf=[f"results/figures/{figure}.pdf" for figure in FIGURES],
        png=[
            report(
                f"results/figures/{figure}.png",
                caption=f"../report/figures/{family}.rst",
                category="Figures",
                labels={"figure": figure},
            )
            for figure, (family, _) in FIGURES.items()
        ],
        tables=[
            report(path, caption="../report/tables.rst", category="Tables")
            for path in PAPER_TABLES
        ],
        failures=report(
            FAILURES, caption="../report/failures.rst", category="Diagnostics"
        ),
        theory_csv="results/tables/theory.csv",
        theory_md=report(
            "results/tables/theory.md",
            caption="../report/theory.rst",
            category="Validation",
        ),
    log:
        "results/logs/paper.log",
    benchmark:
        "results/benchmarks/paper.tsv"
    conda:
        "../envs/regsim.yaml"
    # One job writes everything drawn from metrics.csv, each figure, the tables and the
    # theory comparison in a process forked from it (a figure per thread at most):
    # matplotlib and pandas are imported once rather than once per output.
    threads: min(len(FIGURES), 8)
    resources:
        # the parent's libraries and table, and one figure's canvas per worker
        mem_mb=lambda wc, threads: 300 + 150 * threads,
        runtime=5,
    params:
        figures=list(FIGURES.values()),  # (family, error model), in the order of output.pdf
        figure_options={
            family: pipeline.figure_options(config, family)
            for family in dict.fromkeys(family for family, _ in FIGURES.values())
        },
        expected=DESIGN,
        alpha=config["alpha"],
        p=len(config["beta"]),  # coefficients, for the exact-theory curves and table
        measures=TABLE_MEASURES,
        parameters=PARAMETERS,
        errors=ERRORS,
    script:
        "../scripts/paper.py"


rule provenance:
    input:
        "results/tables/metrics.csv",
        PAPER_TABLES,
        FAILURES,
        "results/tables/theory.csv",
        "results/tables/theory.md",
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
        config=config,
        root=lambda wc, output: os.path.dirname(output[0]),
        # A new commit reruns this job alone.
        commit=provenance.git_state(workflow.basedir)["commit"],
    script:
        "../scripts/provenance.py"
