from pipeline.workflow.job import job

with job(snakemake, compute=True) as sm:
    from pipeline.predict.bulk import score_chunk

    p = sm.params
    score_chunk(p.members, p.model, sm.config, sm.output.table, p.record, batch_size=p.predict["batch_size"])
