from pipeline.report import report_from_workflow
from pipeline.workflow.job import job

with job(snakemake) as sm:
    report_from_workflow(sm.output.html, sm.params.config, csv=sm.output.csv, selections=list(sm.input.selections))
