import sys

from pipeline import jobs

jobs.offline_job()  # compute jobs never reach the hub; set before transformers is imported
if jobs.launch_distributed(sys.argv[0], jobs.devices(snakemake.params.train["model"])):
    sys.exit(0)  # torchrun ran this script once per GPU (model entry `devices: N`)
from pipeline import logs

logs.setup(snakemake.log[0])
i, p, o = snakemake.input, snakemake.params, snakemake.output
cfg, seed = p.train["model"], p.train["seed"]
kind = cfg.get("kind", "train")
if kind == "released":
    from pipeline.released import convert_released

    convert_released(p.released_dir, p.weights_dir, cfg, o.adapter, o.log)
elif kind == "logistic":
    from pipeline.logistic import train_logistic

    train_logistic(i.train_features, dict(zip(p.val_sets, i.val_features)), p.weights_dir, cfg, o.adapter, o.log,
                   seed=seed)
else:
    from pipeline.train import train_model

    train_model(i.frames, p.weights_dir, cfg, o.adapter, o.log, p.work_dir, seed=seed, threads=snakemake.threads,
                pairs_path=i.pairs, val_frames=dict(zip(p.val_datasets, i.val_frames)))
