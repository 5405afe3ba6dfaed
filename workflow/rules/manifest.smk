# Manifest: one job per dataset, gathering every chunk the index checkpoint planned.


def shard_files(wildcards):
    videos = checkpoints.index.get(ds=wildcards.ds).output.videos
    prefix = f"{RESULTS}/{wildcards.ds}/shards"
    parts = [f"{prefix}/{split}-{chunk:05d}" for split, chunk in chunks(videos)]
    return {
        "tables": [f"{p}.parquet" for p in parts],
        "tars": [f"{p}.tar" for p in parts],
    }


rule manifest:
    input:
        unpack(shard_files),
        videos=f"{RESULTS}/{{ds}}/videos.parquet",
    output:
        frames=f"{RESULTS}/{{ds}}/frames.parquet",
        pairs=f"{RESULTS}/{{ds}}/pairs.parquet",
        stats=f"{RESULTS}/{{ds}}/stats.json",
    log:
        f"{RESULTS}/logs/manifest/{{ds}}.log",
    conda:
        ENV
    params:
        code=code("manifest.py"),
    message:
        "Manifest of {wildcards.ds}"
    script:
        "../scripts/manifest.py"
