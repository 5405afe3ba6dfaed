# Faces: one job per chunk of videos (a few hundred jobs per dataset, not one per video). Videos are
# processed in parallel inside the job; output is one WebDataset tar of lossless crops and one Parquet
# table of every sampled frame (crop key, or the reason there is none).


rule faces:
    input:
        force_damaged,
        videos=ancient(L.videos("{ds}")),
        weights=(
            [ancient(f"{FACE_WEIGHTS['dest']}.done")]
            if config["faces"]["backend"] == "face_alignment"
            else []
        ),
    output:
        tar=L.shard("{ds}", "{split}", "{chunk}", "tar"),
        table=L.shard("{ds}", "{split}", "{chunk}", "parquet"),
    log:
        L.log("faces", "{ds}/{split}-{chunk}"),
    benchmark:
        L.benchmark("faces", "{ds}/{split}-{chunk}")
    conda:
        ENV
    threads: config["faces"]["threads"]
    resources:
        mem_mb=mem_mb("faces"),
        runtime=runtime("faces"),
    params:
        faces=P.faces(config),
        videos=chunk_rows,
        code=code("faces.py", "faces", "{ds}/{split}-{chunk}", backend_module),
    message:
        "Face crops of {wildcards.ds} {wildcards.split} chunk {wildcards.chunk}"
    script:
        "../scripts/faces.py"
