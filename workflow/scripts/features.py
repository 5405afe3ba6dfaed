from pipeline import jobs

jobs.offline_job()  # compute jobs never reach the hub; set before transformers is imported
from pipeline import logs
from pipeline.features import extract_features

logs.setup(snakemake.log[0])
w, p = snakemake.wildcards, snakemake.params
extract_features(snakemake.input.frames, w.split, p.weights_dir, snakemake.output[0], batch_size=p.batch_size,
                 workers=snakemake.config.get("evaluate", {}).get("workers", 0))
