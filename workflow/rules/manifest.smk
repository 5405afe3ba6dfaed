# Manifest: one job per dataset, gathering every chunk the index checkpoint planned.


rule manifest:
    input:
        unpack(shard_files),
        videos=L.videos("{ds}"),
    output:
        frames=L.frames("{ds}"),
        pairs=L.pairs("{ds}"),
        stats=L.stats("{ds}"),
    log:
        L.log("manifest", "{ds}"),
    localrule: True
    conda:
        ENV
    params:
        splits=lambda wc: SPLITS[wc.ds],
        code=code("manifest.py"),
    message:
        "Manifest of {wildcards.ds}"
    script:
        "../scripts/manifest.py"
