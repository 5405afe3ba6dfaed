from pipeline.fetch.face_weights import fetch_face_weights
from pipeline.workflow.job import job

with job(snakemake) as sm:
    fetch_face_weights(sm.params.spec["dest"], sm.params.spec["detector"], sm.output.marker)
