# Bulk scoring: each set under `predict:` -> results/predict/<set>.parquet, one row per file. The files
# are listed while planning; one predict_chunk job per chunk of files runs predict's own code on them
# (faces stage, model, file score); chunks are named by their files and kept, so files added later get
# jobs of their own and no existing chunk is redone (pipeline.predict.bulk; the planning functions are
# in common.smk).


rule predict_chunk:
    input:
        unpack(predict_model_inputs),
    output:
        table=L.predict_chunk("{pset}", "{pchunk}"),
    log:
        L.log("predict", "{pset}/{pchunk}"),
    benchmark:
        L.benchmark("predict", "{pset}/{pchunk}")
    wildcard_constraints:
        pset="|".join(PREDICT) or "(?!)",
        pchunk=r"[0-9a-f]{16}",
    conda:
        ENV
    threads: 1  # faces and scoring of a file run in one process: chunks run side by side
    resources:
        mem_mb=mem_mb("predict"),
        runtime=runtime("predict"),
    params:
        members=predict_members,
        predict=lambda wc: P.predict(config, wc.pset),
        model=lambda wc: bulk.model_dir(config, wc.pset),
        record=lambda wc: L.predict_members(wc.pset, wc.pchunk),
        code=code("predict_chunk.py", "predict", "{pset}/{pchunk}", backend_module),
    message:
        "Scoring {wildcards.pset} chunk {wildcards.pchunk}"
    script:
        "../scripts/predict_chunk.py"


rule predict:
    input:
        chunks=lambda wc: [
            L.predict_chunk(wc.pset, c) for c in predict_plan(wc.pset)["chunks"]
        ],
    output:
        table=L.predict_table("{pset}"),
    log:
        L.log("predict", "{pset}"),
    wildcard_constraints:
        pset="|".join(PREDICT) or "(?!)",
    localrule: True
    conda:
        ENV
    params:
        listing=lambda wc: predict_plan(wc.pset)["listing"],
        code=code("predict.py", "predict", "{pset}"),
    message:
        "Gathering the scores of {wildcards.pset}"
    script:
        "../scripts/predict.py"
