from pipeline.training.selection import check_selection
from pipeline.workflow.job import job

with job(snakemake) as sm:
    check_selection(sm.params.spec, dict(zip(sm.params.datasets, sm.input.videos)), sm.output[0])
