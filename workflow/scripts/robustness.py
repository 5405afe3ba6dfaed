from pipeline.workflow.job import job

with job(snakemake, compute=True) as sm:
    from pipeline.evaluation.robustness import evaluate_robustness

    i, o, w, p = sm.input, sm.output, sm.wildcards, sm.params
    # Loader workers do not change the scores, so they are read here and not in params (no rerun).
    evaluate_robustness(i.adapter, p.weights_dir, i.frames, o.json, model=w.model, benchmark=w.bench,
                        workers=sm.config["evaluate"]["workers"], **p.robustness)
