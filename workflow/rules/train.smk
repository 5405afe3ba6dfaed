# Train: one job per model. Resumable state lives in an undeclared work directory (Snakemake
# deletes the declared outputs of a failed job); only the adapter and the log are outputs.


rule train:
    input:
        frames=lambda wc: f"{RESULTS}/{model_dataset(wc.model)}/frames.parquet",
        weights=lambda wc: ancient(weights_marker(model_weights(wc.model))),
    output:
        adapter=f"{RESULTS}/models/{{model}}/adapter.safetensors",
        log=f"{RESULTS}/models/{{model}}/train_log.parquet",
    log:
        f"{RESULTS}/logs/train/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{model}}.tsv"
    conda:
        ENV
    threads: lambda wc: train_gpus(wc) * train_cpus_per_gpu(wc)
    resources:
        gpu=train_gpus,
        cpus_per_gpu=train_cpus_per_gpu,
        mem_mb=mem_mb("train", times=train_gpus),
        runtime=runtime("train"),
    params:
        train=lambda wc: pconfig.train_params(config, wc.model),
        weights_dir=lambda wc: weights_dir(model_weights(wc.model)),
        work_dir=lambda wc: f"{RESULTS}/work/train/{wc.model}",
        code=code("train.py"),
    message:
        "Training {wildcards.model}"
    script:
        "../scripts/train.py"
