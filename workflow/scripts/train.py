import sys

from pipeline.workflow.job import job, launch_distributed

if launch_distributed(sys.argv[0], snakemake.resources.gpu):
    sys.exit(0)  # torchrun ran this script once per GPU (model entry `devices: N`)
with job(snakemake, compute=True) as sm:
    from pipeline.training import kinds

    kinds.make(sm.params.train, sm.params.paths, runtime=kinds.runtime(sm.config, sm.wildcards.model),
               threads=sm.threads)
