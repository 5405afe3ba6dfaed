# Report: one self-contained HTML page over every model x benchmark. Its inputs are expanded
# over the configured benchmarks, so adding one adds exactly that branch.


rule report:
    input:
        metrics=expand(
            f"{RESULTS}/eval/{{model}}/{{bench}}/metrics.json",
            model=MODELS,
            bench=BENCHMARKS,
        ),
        scores=expand(
            f"{RESULTS}/eval/{{model}}/{{bench}}/scores.parquet",
            model=MODELS,
            bench=BENCHMARKS,
        ),
        train_logs=expand(f"{RESULTS}/models/{{model}}/train_log.parquet", model=MODELS),
        stats=expand(f"{RESULTS}/{{ds}}/stats.json", ds=DATASETS),
        markers=[ancient(dataset_marker(ds)) for ds in DATASETS],
    output:
        html=REPORT,
    log:
        f"{RESULTS}/logs/report.log",
    localrule: True
    conda:
        ENV
    params:
        models=MODELS,
        benchmarks=BENCHMARKS,
        datasets=DATASETS,
        report=pconfig.report_params(config),
        # The report shows the configuration as provenance, so it depends on all of it.
        config=config,
        code=code("report.py"),
    message:
        "Writing the report"
    script:
        "../scripts/report.py"
