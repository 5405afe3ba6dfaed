# Import: datasets whose adapter brings its own face crops (deepfakebench, crops, wilddeepfake) skip
# face detection. This rule writes the same shard files as the faces rule (tar of PNGs + per-shard
# table) for those datasets only; ruleorder picks it over faces where both could.
from pipeline import adapters

IMPORTED = [
    ds for ds, d in config["datasets"].items() if adapters.imports(d["adapter"])
]


ruleorder: import_crops > faces


rule import_crops:
    input:
        force_damaged,
        videos=L.videos("{ds}"),
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
        code=code("import_crops.py"),
    message:
        "Importing the face crops of {wildcards.ds} {wildcards.split} chunk {wildcards.chunk}"
    script:
        "../scripts/import_crops.py"
