# Evaluate: one job per model x benchmark -> per-frame scores and frame/video metrics.


rule evaluate:
    input:
        adapter=f"{RESULTS}/models/{{model}}/adapter.safetensors",
        frames=lambda wc: f"{RESULTS}/{bench_dataset(wc.bench)}/frames.parquet",
        weights=lambda wc: ancient(weights_marker(model_weights(wc.model))),
    output:
        scores=f"{RESULTS}/eval/{{model}}/{{bench}}/scores.parquet",
        metrics=f"{RESULTS}/eval/{{model}}/{{bench}}/metrics.json",
    log:
        f"{RESULTS}/logs/evaluate/{{model}}/{{bench}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{model}}/{{bench}}.tsv"
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
        weights_dir=lambda wc: weights_dir(model_weights(wc.model)),
        code=code("evaluate.py"),
    message:
        "Evaluating {wildcards.model} on {wildcards.bench}"
    script:
        "../scripts/evaluate.py"
