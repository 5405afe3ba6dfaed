from pipeline import logs
from pipeline.weights import fetch_weights

logs.setup(snakemake.log[0])
p = snakemake.params
fetch_weights(snakemake.wildcards.weights, p.spec["entry"], p.dest, snakemake.output.marker, p.spec["seed"] or 0)
