from pipeline import jobs

jobs.offline_job()  # compute jobs never reach the hub; set before transformers is imported
from pipeline import logs
from pipeline.faces import extract_chunk
from pipeline.index import select_chunk

logs.setup(snakemake.log[0])
w, f = snakemake.wildcards, snakemake.params.faces
videos = select_chunk(snakemake.input.videos, w.split, int(w.chunk))
extract_chunk(videos, snakemake.output.tar, snakemake.output.table, backend=f["backend"],
              backend_options=f["backend_options"], threads=snakemake.threads, **f["crop"])
