# Bulk scoring: each set under `predict:` -> results/predict/<set>.parquet, one row per file. The files
# are listed while planning; one predict_chunk job per chunk of files runs predict's own code on them
# (faces stage, model, file score); chunks are named by their files and kept, so files added later get
# jobs of their own and no existing chunk is redone (pipeline.predict.bulk).
from pipeline.predict import bulk

PREDICT = list(config["predict"])
_PREDICT_PLANS = {}


def predict_plan(name):
    """The set's files and chunks, listed once per planning (a cluster job plans again, the same way)."""
    if name not in _PREDICT_PLANS:
        _PREDICT_PLANS[name] = bulk.plan_set(config, name)
        for path, why in _PREDICT_PLANS[name]["problems"]:
            logger.warning(f"predict.{name}: {path}: {why}")
    return _PREDICT_PLANS[name]


def predict_members(wildcards):
    chunks = predict_plan(wildcards.pset)["chunks"]
    if wildcards.pchunk not in chunks:
        raise WorkflowError(
            f"predict.{wildcards.pset}: chunk {wildcards.pchunk} is not among the chunks of the files listed "
            "now (files were added, changed or removed after this run was planned): run the same command again"
        )
    return chunks[wildcards.pchunk]


def predict_model_inputs(wildcards):
    """The model's adapter (trained first when it is a model of this config) and, then, its backbone."""
    model = config["predict"][wildcards.pset]["model"]
    adapter = f"{bulk.model_dir(config, wildcards.pset)}/{layout.ADAPTER}"
    if model not in config["models"]:
        return {"adapter": adapter}
    return {"adapter": adapter, "weights": L.weights_marker(model_weights(model))}


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
        chunks=lambda wc: [L.predict_chunk(wc.pset, c) for c in predict_plan(wc.pset)["chunks"]],
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
