# Manifest: one job per dataset, gathering every chunk the index checkpoint planned.


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
    localrule: True
    conda:
        ENV
    params:
        code=code("manifest.py"),
    message:
        "Manifest of {wildcards.ds}"
    script:
        "../scripts/manifest.py"
