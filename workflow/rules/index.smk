# Index: one job per dataset. A checkpoint: the number of faces jobs (chunks of videos) is known
# only once the videos are listed.


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
        spec=lambda wc: pconfig.index_params(config, wc.ds),
        root=lambda wc: layout.dataset_root(config, wc.ds),
        code=code("index.py"),
    message:
        "Indexing the videos of {wildcards.ds}"
    script:
        "../scripts/index.py"
