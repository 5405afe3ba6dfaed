from pipeline.fetch.datasets import fetch_dataset
from pipeline.workflow.job import job

with job(snakemake) as sm:
    spec, upstream = sm.params.spec, sm.input.upstream
    fetch_dataset(sm.wildcards.ds, spec["source"], sm.params.dest, sm.output.marker, spec["seed"] or 0,
                  upstream=upstream[0] if upstream else None)
