# Datasets: a dataset's layout -> videos.parquet (index, one job per dataset, a checkpoint: the faces
# jobs are known once the videos are listed); crops that a dataset brings -> shards (import_crops,
# instead of faces); every shard table -> frames.parquet, pairs.parquet, stats.json (manifest); pairs ->
# paired and unpaired training subsets, subsets.parquet (subsets).


checkpoint index:
    input:
        force_damaged,
        marker=L.dataset_marker("{ds}"),
    output:
        videos=L.videos("{ds}"),
        completeness=L.completeness("{ds}"),
    log:
        L.log("index", "{ds}"),
    benchmark:
        L.benchmark("index", "{ds}")
    localrule: True
    conda:
        ENV
    threads: 4
    params:
        spec=lambda wc: P.index(config, wc.ds),
        root=lambda wc: layout.dataset_root(config, wc.ds),
        code=code("index.py", "index", "{ds}", adapter_module),
    message:
        "Indexing the videos of {wildcards.ds}"
    script:
        "../scripts/index.py"


ruleorder: import_crops > faces


rule import_crops:
    input:
        force_damaged,
        videos=ancient(L.videos("{ds}")),
    output:
        tar=L.shard("{ds}", "{split}", "{chunk}", "tar"),
        table=L.shard("{ds}", "{split}", "{chunk}", "parquet"),
    log:
        L.log("import", "{ds}/{split}-{chunk}"),
    benchmark:
        L.benchmark("import", "{ds}/{split}-{chunk}")
    wildcard_constraints:
        ds="|".join(IMPORTED) or "(?!)",
    conda:
        ENV
    resources:
        mem_mb=mem_mb("import_crops"),
        runtime=runtime("import_crops"),
    params:
        num_frames=config["faces"]["num_frames"],
        videos=chunk_rows,
        code=code("import_crops.py", "import", "{ds}/{split}-{chunk}"),
    message:
        "Importing the face crops of {wildcards.ds} {wildcards.split} chunk {wildcards.chunk}"
    script:
        "../scripts/import_crops.py"


rule manifest:
    input:
        unpack(shard_files),
        videos=ancient(L.videos("{ds}")),
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
        videos=split_rows,
        code=code("manifest.py", "manifest", "{ds}"),
    message:
        "Manifest of {wildcards.ds}"
    script:
        "../scripts/manifest.py"


# Paired and unpaired training subsets (training.data.subset): planned only for a model that sets one.
rule subsets:
    input:
        force_damaged,
        pairs=L.pairs("{ds}"),
        videos=ancient(L.videos("{ds}")),
    output:
        L.subsets("{ds}"),
    log:
        L.log("subsets", "{ds}"),
    localrule: True
    conda:
        ENV
    params:
        spec=lambda wc: P.subsets(config),
        code=code("subsets.py", "subsets", "{ds}"),
    message:
        "Paired and unpaired training subsets of {wildcards.ds}"
    script:
        "../scripts/subsets.py"
