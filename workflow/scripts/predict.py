import logging

from pipeline.workflow.job import job

with job(snakemake) as sm:
    from pipeline.predict.bulk import gather

    counts = gather(list(sm.input.chunks), sm.config, sm.wildcards.pset, sm.output.table)
    logging.getLogger("pipeline.predict").info("%s: files by status %s", sm.output.table, counts)
