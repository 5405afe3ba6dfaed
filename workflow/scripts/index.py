from pipeline.datasets.index import build_index
from pipeline.workflow.job import job

with job(snakemake) as sm:
    spec = sm.params.spec
    build_index(sm.wildcards.ds, spec["adapter"], sm.params.root, spec["options"], sm.output.videos,
                chunk_size=spec["chunk_size"], chunk_seed=spec["chunk_seed"], threads=sm.threads)
