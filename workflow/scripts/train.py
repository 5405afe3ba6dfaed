from pipeline import logs
from pipeline.train import train_model

logs.setup(snakemake.log[0])
p, o = snakemake.params, snakemake.output
train_model(snakemake.input.frames, p.weights_dir, p.train["model"], o.adapter, o.log, p.work_dir,
            seed=p.train["seed"], threads=snakemake.threads, pairs_path=snakemake.input.pairs)
