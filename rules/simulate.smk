# config -> simulate jobs (each draws and fits its units: ranges of cells' replicates) ->
# collect (each cell's tables from the jobs' chunks of fits, then metrics.csv, the failure
# rules side by side and the comparison with exact theory). The plan
# (regsim.design.plan_jobs) packs units into jobs by observations_per_job.


rule simulate:
    output:
        **({"datasets": "results/datasets/{job}.npz"} if STUDY.keep_datasets else {}),
        fits="results/chunks/{job}.parquet",
    log:
        "results/logs/simulate/{job}.log",
    benchmark:
        "results/benchmarks/simulate/{job}.tsv"
    priority: lambda wc: STUDY.job_priority(wc.job)
    conda:
        "../envs/regsim.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc: STUDY.simulate_resources(wc.job)["mem_mb"],
        runtime=lambda wc: STUDY.simulate_resources(wc.job)["runtime"],
    params:
        # The spec lists the job's units of cells, and Snakemake prints a job's params
        # before and after a change: a digest here, the job rebuilds the spec from the
        # configuration.
        job_digest=lambda wc: STUDY.simulate_job(wc.job).digest(),
        # computed once here, so that the job need not import scipy.special for them
        ols_quantiles=lambda wc: STUDY.simulate_job(wc.job).ols_quantiles(),
    script:
        "../scripts/simulate.py"


rule collect:
    input:
        expand("results/chunks/{job}.parquet", job=STUDY.plan),
    output:
        fits=expand("results/fits/{cell}.parquet", cell=STUDY.labels),
        metrics=expand("results/metrics/{cell}.parquet", cell=STUDY.labels),
        table="results/tables/metrics.csv",
        # The failure rules side by side, from the tables of fits of the cells with a
        # failed replicate. Written here, not by the paper job: Snakemake checksums every
        # input under 1 MB of a job for each of its outputs, and the paper job has an
        # output per figure and table (on a 378-cell grid, with every cell's table of fits
        # as its inputs, that took longer than drawing the figures).
        sensitivity_csv="results/tables/failures_sensitivity.csv",
        sensitivity_md="results/tables/failures_sensitivity.md",
        # OLS and MLE against exact theory, each over the replicates it fitted itself:
        # under the common failure rule, the cells with a failure are summarized again
        # from their tables of fits, which this job has.
        theory_csv="results/tables/theory.csv",
        theory_md="results/tables/theory.md",
    log:
        "results/logs/collect.log",
    benchmark:
        "results/benchmarks/collect.tsv"
    conda:
        "../envs/regsim.yaml"
    # Cells are written in processes forked from the job, as many at once as it has threads.
    threads: min(len(STUDY.labels), 8)
    resources:
        mem_mb=lambda wc, threads: STUDY.collect_resources(threads)["mem_mb"],
        runtime=lambda wc, threads: STUDY.collect_resources(threads)["runtime"],
    params:
        # The spec lists every cell, and Snakemake keeps the params in its record of each
        # output: a digest here, the job rebuilds the spec from the configuration.
        job_digest=STUDY.collect_job.digest(),
    script:
        "../scripts/collect.py"
