# Evaluation: one job per model x benchmark -> per-frame scores and frame/video metrics; and one per
# model x benchmark listed under robustness: every corruption at every strength.


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
        evaluate=lambda wc: P.evaluate(config, wc.bench),
        weights_dir=lambda wc: layout.weights_root(config, model_weights(wc.model)),
        code=code("evaluate.py", "evaluate", "{model}/{bench}"),
    message:
        "Evaluating {wildcards.model} on {wildcards.bench}"
    script:
        "../scripts/evaluate.py"


rule robustness:
    input:
        force_damaged,
        adapter=L.adapter("{model}"),
        frames=lambda wc: L.frames(bench_dataset(wc.bench)),
        weights=lambda wc: L.weights_marker(model_weights(wc.model)),
    output:
        json=L.robustness("{model}", "{bench}"),
    log:
        L.log("robustness", "{model}/{bench}"),
    benchmark:
        L.benchmark("robustness", "{model}/{bench}")
    conda:
        ENV
    threads: EVALUATE_CPUS
    resources:
        gpu=1,
        cpus_per_gpu=EVALUATE_CPUS,
        mem_mb=mem_mb("evaluate"),
        runtime=runtime("evaluate"),
    params:
        robustness=lambda wc: P.robustness(config, wc.bench),
        weights_dir=lambda wc: layout.weights_root(config, model_weights(wc.model)),
        code=code("robustness.py", "robustness", "{model}/{bench}"),
    message:
        "Evaluating {wildcards.model} on degraded copies of {wildcards.bench}"
    script:
        "../scripts/robustness.py"
