# Evaluate: one job per model x benchmark -> per-frame scores and frame/video metrics.


rule evaluate:
    input:
        force_damaged,
        unpack(evaluate_inputs),
        adapter=L.adapter("{model}"),
        frames=lambda wc: L.frames(bench_dataset(wc.bench)),
        weights=lambda wc: L.weights_marker(model_weights(wc.model)),
    output:
        scores=L.scores("{model}", "{bench}"),
        metrics=L.metrics("{model}", "{bench}"),
    log:
        L.log("evaluate", "{model}/{bench}"),
    benchmark:
        L.benchmark("evaluate", "{model}/{bench}")
    conda:
        ENV
    threads: EVALUATE_CPUS
    resources:
        gpu=1,
        cpus_per_gpu=EVALUATE_CPUS,
        mem_mb=mem_mb("evaluate"),
        runtime=runtime("evaluate"),
    params:
        evaluate=lambda wc: pconfig.evaluate_params(config, wc.bench),
        weights_dir=lambda wc: layout.weights_root(config, model_weights(wc.model)),
        code=code("evaluate.py"),
    message:
        "Evaluating {wildcards.model} on {wildcards.bench}"
    script:
        "../scripts/evaluate.py"
