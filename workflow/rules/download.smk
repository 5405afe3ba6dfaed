# Download: one job per dataset and one per weight set, on the login node (localrules).
# Outputs are `.done` markers with checksums and nothing time-dependent: a re-download of the same
# data rewrites the same bytes, so nothing downstream reruns; a changed source re-indexes.


from pipeline.download import missing_sources

for message in missing_sources(config):
    logger.warning(f"Warning: {message}")


rule download_dataset:
    input:
        # a `dataset:` source reads another entry's files: that entry's download comes first
        upstream=lambda wc: [
            L.dataset_marker(s)
            for s in [config["datasets"][wc.ds]["source"].get("dataset")]
            if s
        ],
    output:
        marker=L.dataset_marker("{ds}"),
    log:
        L.download_log("dataset", "{ds}"),
    localrule: True
    conda:
        ENV
    params:
        spec=lambda wc: pconfig.download_params(config, wc.ds),
        dest=lambda wc: L.dataset_download(wc.ds),
        code=code("download_dataset.py"),
    message:
        "Fetching dataset {wildcards.ds}"
    script:
        "../scripts/download_dataset.py"


rule download_weights:
    output:
        marker=L.weights_marker("{weights}"),
    log:
        L.download_log("weights", "{weights}"),
    localrule: True
    conda:
        ENV
    params:
        spec=lambda wc: pconfig.weights_params(config, wc.weights),
        dest=lambda wc: L.weights_download(wc.weights),
        code=code("download_weights.py"),
    message:
        "Fetching weights {wildcards.weights}"
    script:
        "../scripts/download_weights.py"
