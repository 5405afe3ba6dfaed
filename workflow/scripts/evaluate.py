from pipeline.workflow.job import job

with job(snakemake, compute=True) as sm:
    from pipeline.evaluation.benchmark import evaluate_benchmark

    i, o, w, p = sm.input, sm.output, sm.wildcards, sm.params
    # Loader workers do not change the scores, so they are read here and not in params (no rerun).
    evaluate_benchmark(i.adapter, p.weights_dir, i.frames, o.scores, o.metrics, model=w.model, benchmark=w.bench,
                       workers=sm.config["evaluate"]["workers"], features_path=i.get("features"), **p.evaluate)
