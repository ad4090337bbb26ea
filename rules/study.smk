# Simulate, fit and summarize: config -> datasets -> fits -> metrics.csv.


rule generate:
    output:
        "results/datasets/{cell}/{chunk}.npz",
    log:
        "results/logs/generate/{cell}/{chunk}.log",
    benchmark:
        "results/benchmarks/generate/{cell}/{chunk}.tsv"
    conda:
        "../envs/regsim.yaml"
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
        "../scripts/generate.py"


rule fit:
    input:
        "results/datasets/{cell}/{chunk}.npz",
    output:
        "results/fits/{cell}/{chunk}.parquet",
    log:
        "results/logs/fit/{cell}/{chunk}.log",
    benchmark:
        "results/benchmarks/fit/{cell}/{chunk}.tsv"
    conda:
        "../envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=pipeline.job_resource("fit", "mem_mb", CELLS, CHUNKS),
        runtime=pipeline.job_resource("fit", "runtime", CELLS, CHUNKS),
    params:
        priors=PRIORS,
        methods=config["methods"],
        alpha=config["alpha"],
        map_max_iter=config["map_max_iter"],
    script:
        "../scripts/fit.py"


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
    benchmark:
        "results/benchmarks/summarize/{cell}.tsv"
    conda:
        "../envs/regsim.yaml"
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
        "../scripts/summarize.py"


rule collect:
    input:
        expand("results/metrics/{cell}.parquet", cell=CELLS),
    output:
        "results/tables/metrics.csv",
    log:
        "results/logs/collect.log",
    benchmark:
        "results/benchmarks/collect.tsv"
    conda:
        "../envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/collect.py"
