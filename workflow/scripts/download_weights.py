from pipeline.fetch.weights import fetch_weights
from pipeline.workflow.job import job

with job(snakemake) as sm:
    spec = sm.params.spec
    fetch_weights(sm.wildcards.weights, spec["entry"], sm.params.dest, sm.output.marker, spec["seed"] or 0)
