# Fetch: one job per dataset and one per weight set, on the login node (localrules). Keyed to their
# source alone (no code key): no code edit refetches anything, and a fetch whose files are present and
# match its record touches no network. Markers are `.done` files with checksums and nothing
# time-dependent, so a fetch of the same data rewrites the same bytes.

from pipeline.workflow.warnings import planning_warnings

# What will fail (a missing dataset folder, missing credentials), said before any job runs.
for message in planning_warnings(config):
    logger.warning(f"Warning: {message}")

# face-alignment's files (TORCH_HOME of the faces jobs when faces.backend is face_alignment)
FACE_WEIGHTS = P.face_weights(config)


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
        spec=lambda wc: P.download(config, wc.ds),
        dest=lambda wc: L.dataset_download(wc.ds),
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
        spec=lambda wc: P.weights(config, wc.weights),
        dest=lambda wc: L.weights_download(wc.weights),
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
        spec=FACE_WEIGHTS,
    message:
        "Fetching the face-alignment weight files into {params.spec[dest]}"
    script:
        "../scripts/download_face_weights.py"
