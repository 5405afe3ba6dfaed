from pipeline import logs
from pipeline.report import report_from_workflow

logs.setup(snakemake.log[0])
i, p = snakemake.input, snakemake.params
report_from_workflow(snakemake.output.html, metrics=i.metrics, scores=i.scores, train_logs=i.train_logs,
                     stats=i.stats, markers=i.markers, models=p.models, benchmarks=p.benchmarks,
                     datasets=p.datasets, config=p.config, **p.report)
