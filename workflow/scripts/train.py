import sys

from pipeline import jobs

jobs.offline_job()  # compute jobs never reach the hub; set before transformers is imported
if jobs.launch_distributed(sys.argv[0], jobs.devices(snakemake.params.train["model"])):
    sys.exit(0)  # torchrun ran this script once per GPU (model entry `devices: N`)
from pipeline import logs
from pipeline.train import train_model

logs.setup(snakemake.log[0])
p, o = snakemake.params, snakemake.output
train_model(snakemake.input.frames, p.weights_dir, p.train["model"], o.adapter, o.log, p.work_dir,
            seed=p.train["seed"], threads=snakemake.threads, pairs_path=snakemake.input.pairs,
            val_frames=dict(zip(p.val_datasets, snakemake.input.val_frames)))
