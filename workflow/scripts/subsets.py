import logging

from pipeline.datasets.subsets import build_subsets
from pipeline.workflow.job import job

with job(snakemake) as sm:
    counts = build_subsets(sm.input.videos, sm.input.pairs, sm.output[0], seed=sm.params.spec["seed"])
    logging.getLogger("pipeline.subsets").info("videos per split/subset/class: %s", counts)
