from pipeline import logs
from pipeline.importing import import_chunk
from pipeline.index import select_chunk

logs.setup(snakemake.log[0])
w = snakemake.wildcards
videos = select_chunk(snakemake.input.videos, w.split, int(w.chunk))
import_chunk(videos, snakemake.output.tar, snakemake.output.table, num_frames=snakemake.params.num_frames)
