from pipeline.workflow.job import job

with job(snakemake, compute=True) as sm:
    from pipeline.core.tables import select_chunk
    from pipeline.faces import extract_chunk

    w, f = sm.wildcards, sm.params.faces
    extract_chunk(select_chunk(sm.input.videos, w.split, int(w.chunk)), sm.output.tar, sm.output.table,
                  backend=f["backend"], backend_options=f["backend_options"], threads=sm.threads, **f["crop"])
