from pipeline import logs
from pipeline.index import build_index

logs.setup(snakemake.log[0])
spec, p = snakemake.params.spec, snakemake.params
build_index(snakemake.wildcards.ds, spec["adapter"], p.root, spec["options"], snakemake.output.videos,
            chunk_size=spec["chunk_size"], chunk_seed=spec["chunk_seed"], threads=snakemake.threads)
