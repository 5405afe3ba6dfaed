from pipeline import logs
from pipeline.report import report_from_workflow

logs.setup(snakemake.log[0])
report_from_workflow(snakemake.output.html, snakemake.params.config, csv=snakemake.output.csv)
