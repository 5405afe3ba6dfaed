# Training: one job per model (pipeline.training.kinds decides what each kind reads and runs).
# Resumable state lives in an undeclared work directory (Snakemake deletes the declared outputs of a
# failed job); only the adapter and the log are outputs.


rule train:
    input:
        force_damaged,
        unpack(lambda wc: kinds.inputs(train_paths(wc))),
        selection=train_selection,
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
        train=lambda wc: kinds.settings(config, wc.model),
        paths=train_paths,
        code=code("train.py", "train", "{model}", kind_module),
    message:
        "Training {wildcards.model}"
    script:
        "../scripts/train.py"


# Frozen-backbone features of one dataset split: computed once, shared by every `kind: logistic`
# model on that backbone.


rule features:
    input:
        force_damaged,
        frames=lambda wc: L.frames(wc.ds),
        weights=lambda wc: L.weights_marker(wc.weights),
    output:
        L.features("{weights}", "{ds}", "{split}"),
    log:
        L.log("features", "{weights}/{ds}/{split}"),
    benchmark:
        L.benchmark("features", "{weights}/{ds}/{split}")
    conda:
        ENV
    threads: EVALUATE_CPUS
    resources:
        gpu=1,
        cpus_per_gpu=EVALUATE_CPUS,
        mem_mb=mem_mb("evaluate"),
        runtime=runtime("evaluate"),
    params:
        features=lambda wc: P.features(config, wc.weights),
        weights_dir=lambda wc: layout.weights_root(config, wc.weights),
        code=code("features.py", "features", "{weights}/{ds}/{split}"),
    message:
        "Backbone features of {wildcards.ds} {wildcards.split} ({wildcards.weights})"
    script:
        "../scripts/features.py"


# Proof that a model's validation videos are neither its training videos nor any benchmark's test
# videos (same dataset root + id, same file, same content); cheap, rerun when a benchmark is added.


rule selection:
    input:
        force_damaged,
        videos=selection_videos,
    output:
        selection_file("{model}"),
    log:
        L.log("selection", "{model}"),
    localrule: True
    conda:
        ENV
    params:
        spec=lambda wc: selection.spec(config, wc.model),
        datasets=lambda wc: selection_datasets(wc.model),
        rows=selection_rows,
        code=code("selection.py", "selection", "{model}"),
    message:
        "Checking that the validation videos of {wildcards.model} are neither training nor test videos"
    script:
        "../scripts/selection.py"
