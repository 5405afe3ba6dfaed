# Download: one job per dataset and one per weight set, on the login node (localrules).
# Outputs are `.done` markers with checksums; consumers take them as ancient() inputs so that a
# re-download does not invalidate finished work (a changed *source* reruns through params).

# face-alignment's files (TORCH_HOME of the faces jobs when faces.backend is face_alignment)
FACE_WEIGHTS = pconfig.face_weights_params(config)


rule download_dataset:
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
