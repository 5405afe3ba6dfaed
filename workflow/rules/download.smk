# Download: one job per dataset and one per weight set, on the login node (localrules).
# Outputs are `.done` markers with checksums and nothing time-dependent: a re-download of the same
# data rewrites the same bytes, so nothing downstream reruns; a changed source re-indexes.


from pipeline.download import planning_warnings

# What will fail (a missing dataset folder, missing credentials), said before any job runs.
for message in planning_warnings(config):
    logger.warning(f"Warning: {message}")

# face-alignment's files (TORCH_HOME of the faces jobs when faces.backend is face_alignment)
FACE_WEIGHTS = pconfig.face_weights_params(config)


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


rule download_face_weights:
    output:
        marker=f"{FACE_WEIGHTS['dest']}.done",
    log:
        "logs/download/weights-face_alignment.log",
    localrule: True
    conda:
        ENV
    params:
        detector=FACE_WEIGHTS["detector"],
        dest=lambda wc, output: output.marker.removesuffix(".done"),
        code=code("download_face_weights.py"),
    message:
        "Fetching the face-alignment weight files into {params.dest}"
    script:
        "../scripts/download_face_weights.py"
