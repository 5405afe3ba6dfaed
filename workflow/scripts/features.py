from pipeline.workflow.job import job

with job(snakemake, compute=True) as sm:
    from pipeline.model.features import extract_features

    # Loader workers do not change the features, so they are read here and not in params (no rerun).
    extract_features(sm.input.frames, sm.wildcards.split, sm.params.weights_dir, sm.output[0],
                     batch_size=sm.params.features["batch_size"], workers=sm.config["evaluate"]["workers"])
