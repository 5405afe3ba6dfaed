from pipeline.datasets.manifest import build_manifest
from pipeline.workflow.job import job

with job(snakemake) as sm:
    i, o = sm.input, sm.output
    build_manifest(i.videos, i.tables, o.frames, o.pairs, o.stats, splits=sm.params.splits)
