# Simulate, fit and summarize: config -> datasets -> fits -> metrics.csv.
#
# One simulate job draws a range of replicates of one cell, saves them (datasets/) and
# fits them (fits/). When one job covers all of a cell's replicates (replications <=
# replications_per_job, the default) it also writes the cell's metrics; otherwise each
# cell's chunks are combined and summarized by a summarize job.

SIMULATE_PARAMS = dict(
    seed=config["seed"],
    priors=PRIORS,
    methods=config["methods"],
    alpha=config["alpha"],
    map_max_iter=config["map_max_iter"],
)

if len(CHUNKS) == 1:
    (WHOLE_CELL,) = CHUNKS

    rule simulate:
        output:
            datasets=f"results/datasets/{{cell}}/{WHOLE_CELL}.npz",
            fits="results/fits/{cell}.parquet",
            metrics="results/metrics/{cell}.parquet",
        log:
            "results/logs/simulate/{cell}.log",
        benchmark:
            "results/benchmarks/simulate/{cell}.tsv"
        conda:
            "../envs/regsim.yaml"
        threads: 1
        resources:
            mem_mb=pipeline.job_resource(
                "simulate_cell", "mem_mb", CELLS, replications=config["replications"]
            ),
            runtime=pipeline.job_resource(
                "simulate_cell", "runtime", CELLS, replications=config["replications"]
            ),
        params:
            **SIMULATE_PARAMS,
            cell=lambda wc: pipeline.cell_params(CELLS[wc.cell]),
            start=0,
            stop=config["replications"],
        script:
            "../scripts/simulate.py"

else:

    rule simulate:
        output:
            datasets="results/datasets/{cell}/{chunk}.npz",
            fits="results/fits/{cell}/{chunk}.parquet",
        log:
            "results/logs/simulate/{cell}/{chunk}.log",
        benchmark:
            "results/benchmarks/simulate/{cell}/{chunk}.tsv"
        conda:
            "../envs/regsim.yaml"
        threads: 1
        resources:
            mem_mb=pipeline.job_resource("simulate", "mem_mb", CELLS, CHUNKS),
            runtime=pipeline.job_resource("simulate", "runtime", CELLS, CHUNKS),
        params:
            **SIMULATE_PARAMS,
            cell=lambda wc: pipeline.cell_params(CELLS[wc.cell]),
            start=lambda wc: CHUNKS[wc.chunk][0],
            stop=lambda wc: CHUNKS[wc.chunk][1],
        script:
            "../scripts/simulate.py"

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
