# Report: one self-contained HTML page over every model x benchmark. Its inputs are expanded
# over the configured benchmarks, so adding one adds exactly that branch.


rule report:
    input:
        force_damaged,
        metrics=[L.metrics(m, b) for m in MODELS for b in BENCHMARKS],
        scores=[L.scores(m, b) for m in MODELS for b in BENCHMARKS],
        robustness=[L.robustness(m, b) for m in ROBUSTNESS_MODELS for b in ROBUSTNESS],
        train_logs=[L.train_log(m) for m in MODELS],
        selections=[selection_file(m) for m in SELECTED],
        stats=[L.stats(ds) for ds in DATASETS],
        markers=[ancient(L.dataset_marker(ds)) for ds in DATASETS],
        # provenance: the backbones' checksums
        weights=sorted({ancient(L.weights_marker(model_weights(m))) for m in MODELS}),
    output:
        html=REPORT,
        csv=L.metrics_table(),
    log:
        L.log("report", "report"),
    localrule: True
    conda:
        ENV
    params:
        # The report shows the configuration as provenance, so it depends on all of it.
        config=lambda wc: P.report(config),
        code=code("report.py", "report", "report"),
    message:
        "Writing the report"
    script:
        "../scripts/report.py"
