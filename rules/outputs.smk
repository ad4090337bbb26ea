# What goes into a paper: figures, LaTeX/Markdown tables and provenance, from metrics.csv.


rule figure:
    input:
        "results/tables/metrics.csv",
    output:
        pdf="results/figures/{figure}.pdf",
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        "results/logs/figure/{figure}.log",
    benchmark:
        "results/benchmarks/figure/{figure}.tsv"
    conda:
        "../envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        family=lambda wc: FIGURES[wc.figure][0],
        errors=lambda wc: FIGURES[wc.figure][1],
        options=lambda wc: pipeline.figure_options(config, FIGURES[wc.figure][0]),
        expected=DESIGN,
        alpha=config["alpha"],
        p=len(config["beta"]),  # coefficients, for the exact-theory reference curves
    script:
        "../scripts/figure.py"


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
        "results/logs/figure/zip.log",
    benchmark:
        "results/benchmarks/figure/zip.tsv"
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


rule paper_tables:
    input:
        "results/tables/metrics.csv",
    output:
        [
            report(path, caption="../report/tables.rst", category="Tables")
            for path in PAPER_TABLES
        ],
        failures=report(
            FAILURES, caption="../report/failures.rst", category="Diagnostics"
        ),
    log:
        "results/logs/paper_tables.log",
    benchmark:
        "results/benchmarks/paper_tables.tsv"
    conda:
        "../envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        measures=TABLE_MEASURES,
        parameters=PARAMETERS,
        errors=ERRORS,
        expected=DESIGN,
    script:
        "../scripts/paper_tables.py"


rule theory:
    input:
        "results/tables/metrics.csv",
    output:
        csv="results/tables/theory.csv",
        md=report(
            "results/tables/theory.md",
            caption="../report/theory.rst",
            category="Validation",
        ),
    log:
        "results/logs/theory.log",
    benchmark:
        "results/benchmarks/theory.tsv"
    conda:
        "../envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        alpha=config["alpha"],
        p=len(config["beta"]),
    script:
        "../scripts/theory.py"


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
