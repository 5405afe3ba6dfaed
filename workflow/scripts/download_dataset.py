from pipeline import logs
from pipeline.download import fetch_dataset

logs.setup(snakemake.log[0])
spec = snakemake.params.spec
upstream = snakemake.input.upstream[0] if snakemake.input.upstream else None
fetch_dataset(snakemake.wildcards.ds, spec["source"], snakemake.params.dest, snakemake.output.marker,
              spec["seed"] or 0, upstream=upstream)
