from pipeline import jobs

jobs.offline_job()  # compute jobs never reach the hub; set before transformers is imported
from pipeline import logs
from pipeline.evaluate import evaluate_benchmark

logs.setup(snakemake.log[0])
i, o, w, p = snakemake.input, snakemake.output, snakemake.wildcards, snakemake.params
# Loader workers do not change the scores, so they are read here and not in params (no rerun).
workers = snakemake.config.get("evaluate", {}).get("workers", 0)
evaluate_benchmark(i.adapter, p.weights_dir, i.frames, o.scores, o.metrics, model=w.model,
                   benchmark=w.bench, workers=workers, features_path=i.get("features"), **p.evaluate)
