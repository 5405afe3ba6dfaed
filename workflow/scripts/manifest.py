from pipeline import logs
from pipeline.manifest import build_manifest

logs.setup(snakemake.log[0])
i, o = snakemake.input, snakemake.output
build_manifest(i.videos, i.tables, o.frames, o.pairs, o.stats, splits=snakemake.params.splits)
