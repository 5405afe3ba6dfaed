# Download: one job per dataset and one per weight set, on the login node (localrules).
# Outputs are `.done` markers with checksums; consumers take them as ancient() inputs so that a
# re-download does not invalidate finished work (a changed *source* reruns through params).


from pipeline.download import missing_sources

for message in missing_sources(config):
    logger.warning(f"Warning: {message}")


rule download_dataset:
    input:
        # a `dataset:` source reads another entry's files: that entry's download comes first
        upstream=lambda wc: [
            dataset_marker(s)
            for s in [config["datasets"][wc.ds]["source"].get("dataset")]
            if s
        ],
    output:
        marker="resources/datasets/{ds}.done",
    log:
        "logs/download/{ds}.log",
    localrule: True
    conda:
        ENV
    params:
        spec=lambda wc: pconfig.dataset_params(config, wc.ds),
        dest=lambda wc: f"resources/datasets/{wc.ds}",
        code=code("download_dataset.py"),
    message:
        "Fetching dataset {wildcards.ds}"
    script:
        "../scripts/download_dataset.py"


rule download_weights:
    output:
        marker="resources/weights/{weights}.done",
    log:
        "logs/download/weights-{weights}.log",
    localrule: True
    conda:
        ENV
    params:
        spec=lambda wc: pconfig.weights_params(config, wc.weights),
        dest=lambda wc: f"resources/weights/{wc.weights}",
        code=code("download_weights.py"),
    message:
        "Fetching weights {wildcards.weights}"
    script:
        "../scripts/download_weights.py"
