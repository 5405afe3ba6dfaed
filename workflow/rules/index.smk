# Index: one job per dataset. A checkpoint: the number of faces jobs (chunks of videos) is known
# only once the videos are listed.


checkpoint index:
    input:
        marker=lambda wc: ancient(dataset_marker(wc.ds)),
    output:
        videos=f"{RESULTS}/{{ds}}/videos.parquet",
        completeness=f"{RESULTS}/{{ds}}/completeness.json",
    log:
        f"{RESULTS}/logs/index/{{ds}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/index/{{ds}}.tsv"
    conda:
        ENV
    threads: 4
    params:
        spec=lambda wc: pconfig.dataset_params(config, wc.ds),
        root=lambda wc: dataset_dir(wc.ds),
        chunk_size=config["faces"]["chunk_size"],
        code=code("index.py"),
    message:
        "Indexing the videos of {wildcards.ds}"
    script:
        "../scripts/index.py"
