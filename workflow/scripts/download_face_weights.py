from pipeline import logs
from pipeline.faces.fan import fetch_weights

logs.setup(snakemake.log[0])
fetch_weights(snakemake.params.dest, snakemake.params.detector, snakemake.output.marker)
