# Train: one job per model. Resumable state lives in an undeclared work directory (Snakemake
# deletes the declared outputs of a failed job); only the adapter and the log are outputs.


rule train:
    input:
        force_damaged,
        frames=lambda wc: L.frames(model_dataset(wc.model)),
        pairs=lambda wc: L.pairs(model_dataset(wc.model)),
        val_frames=lambda wc: [L.frames(ds) for ds in model_val_datasets(wc.model)],
        weights=lambda wc: L.weights_marker(model_weights(wc.model)),
    output:
        adapter=L.adapter("{model}"),
        log=L.train_log("{model}"),
    log:
        L.log("train", "{model}"),
    benchmark:
        L.benchmark("train", "{model}")
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
        weights_dir=lambda wc: layout.weights_root(config, model_weights(wc.model)),
        work_dir=lambda wc: L.train_work(wc.model),
        val_datasets=lambda wc: model_val_datasets(wc.model),
        code=code("train.py"),
    message:
        "Training {wildcards.model}"
    script:
        "../scripts/train.py"
