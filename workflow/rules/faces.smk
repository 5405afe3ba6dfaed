# Faces: one job per chunk of videos (DESIGN.md §2: a few hundred jobs, not one per video).
# Videos are processed in parallel inside the job; output is one WebDataset tar of lossless PNG
# crops and one Parquet table of every sampled frame (crop key, or the reason there is none).


rule faces:
    input:
        videos=f"{RESULTS}/{{ds}}/videos.parquet",
        weights=(
            [ancient(f"{FACE_WEIGHTS['dest']}.done")]
            if config["faces"]["backend"] == "face_alignment"
            else []
        ),
    output:
        tar=f"{RESULTS}/{{ds}}/shards/{{split}}-{{chunk}}.tar",
        table=f"{RESULTS}/{{ds}}/shards/{{split}}-{{chunk}}.parquet",
    log:
        f"{RESULTS}/logs/faces/{{ds}}/{{split}}-{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/faces/{{ds}}/{{split}}-{{chunk}}.tsv"
    conda:
        ENV
    threads: config["faces"].get("threads", 4)
    resources:
        mem_mb=4000,
    params:
        faces=pconfig.faces_params(config),
        code=code("faces.py"),
    message:
        "Face crops of {wildcards.ds} {wildcards.split} chunk {wildcards.chunk}"
    script:
        "../scripts/faces.py"
