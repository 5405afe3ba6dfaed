from pipeline.core.tables import select_chunk
from pipeline.datasets.imports import import_chunk
from pipeline.workflow.job import job

with job(snakemake) as sm:
    w = sm.wildcards
    import_chunk(select_chunk(sm.input.videos, w.split, int(w.chunk)), sm.output.tar, sm.output.table,
                 num_frames=sm.params.num_frames)
