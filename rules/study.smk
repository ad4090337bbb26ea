# Simulate, fit and summarize: config -> datasets -> fits -> metrics.csv.
#
# One simulate job draws a range of replicates of one cell, saves them (datasets/) and
# fits them (fits/). When one job covers all of a cell's replicates (replications <=
# replications_per_job, the default) it also writes the cell's metrics; otherwise each
# cell's chunks are combined and summarized by a summarize job. When all the cells of a
# sample size fit in one job together, one job does them all (wildcard n), one cell after
# the other: a small study then pays a job's start-up once per n instead of once per cell.
# The job of the zip plot's cell goes first, so that the plot is drawn while other cells
# are simulated rather than hold a core when the last outputs could use both.

SIMULATE_PARAMS = dict(
    seed=config["seed"],
    priors=PRIORS,
    methods=config["methods"],
    alpha=config["alpha"],
    map_max_iter=config["map_max_iter"],
)

if regsim.config.simulate_sample_sizes_together(config):
    (WHOLE_CELL,) = CHUNKS
    # The cells of one n: "n{n}_sigma1", "n{n}_sigma5", ... in grid order.
    CELLS_OF_N = [
        f"n{{n}}_{pipeline.noise_label(cell.sigma, cell.errors)}"
        for cell in CELLS.values()
        if cell.n == config["grid"]["n"][0]
    ]

    rule simulate:
        output:
            datasets=[
                f"results/datasets/{cell}/{WHOLE_CELL}.npz" for cell in CELLS_OF_N
            ],
            fits=[f"results/fits/{cell}.parquet" for cell in CELLS_OF_N],
            metrics=[f"results/metrics/{cell}.parquet" for cell in CELLS_OF_N],
        log:
            "results/logs/simulate/n{n}.log",
        benchmark:
            "results/benchmarks/simulate/n{n}.tsv"
        priority: lambda wc: int(int(wc.n) == ZIP["n"])
        conda:
            "../envs/regsim.yaml"
        threads: 1
        resources:
            mem_mb=pipeline.sample_size_resource(
                "mem_mb", config["replications"], len(CELLS_OF_N)
            ),
            runtime=pipeline.sample_size_resource(
                "runtime", config["replications"], len(CELLS_OF_N)
            ),
        params:
            **SIMULATE_PARAMS,
            cells=lambda wc: [
                pipeline.cell_params(CELLS[cell.format(n=wc.n)]) for cell in CELLS_OF_N
            ],
            start=0,
            stop=config["replications"],
        script:
            "../scripts/simulate.py"

elif len(CHUNKS) == 1:
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
        priority: lambda wc: int(wc.cell == ZIP["cell"])
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
            cells=lambda wc: [pipeline.cell_params(CELLS[wc.cell])],
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
        priority: lambda wc: int(wc.cell == ZIP["cell"])
        conda:
            "../envs/regsim.yaml"
        threads: 1
        resources:
            mem_mb=pipeline.job_resource("simulate", "mem_mb", CELLS, CHUNKS),
            runtime=pipeline.job_resource("simulate", "runtime", CELLS, CHUNKS),
        params:
            **SIMULATE_PARAMS,
            cells=lambda wc: [pipeline.cell_params(CELLS[wc.cell])],
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
