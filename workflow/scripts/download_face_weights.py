from pipeline.fetch.face_weights import fetch_face_weights
from pipeline.workflow.job import job

with job(snakemake) as sm:
    spec = sm.params.spec
    fetch_face_weights(spec["dest"], spec["detector"], sm.output.marker, spec.get("mirror"))
