# Shared definitions: config checks, names, paths (from pipeline.layout), per-rule config slices.
import sys

sys.path.insert(0, workflow.basedir)  # the `pipeline` package of this checkout

from snakemake.exceptions import WorkflowError
from pipeline import config as pconfig
from pipeline import layout
from pipeline.provenance import code_digest
from pipeline.index import chunks
from pipeline.guard import damaged_outputs
from pipeline.robustness import plan as robustness_plan, models as robustness_models

try:
    pconfig.validate_config(
        config,
        f"{workflow.basedir}/workflow/schemas/config.schema.yaml",
        source=", ".join(map(str, workflow.configfiles)) or "config",
    )
    pconfig.check_config(config)
except pconfig.ConfigError as exc:
    raise WorkflowError(f"Invalid config: {exc}") from None

L = layout.from_config(config)
REPORT = L.report()
ENV = "../../envs/pipeline.yaml"

MODELS = list(config["models"])
BENCHMARKS = list(config["benchmarks"])
WEIGHTS = list(config["weights"])
# Only the datasets, and of them the splits, that a model or benchmark uses are fetched and cropped.
SPLITS = pconfig.dataset_splits(config)
DATASETS = list(SPLITS)
# Robustness benchmarks: base benchmark -> corruption kind -> strengths (pipeline.robustness).
ROBUSTNESS = robustness_plan(config)
ROBUSTNESS_MODELS = robustness_models(config)


wildcard_constraints:
    ds="|".join(config["datasets"]),
    model="|".join(MODELS),
    bench="|".join(BENCHMARKS),
    weights="|".join(WEIGHTS),
    split=r"[A-Za-z0-9]+",
    chunk=r"\d{5}",


# Snakemake does not rerun the consumers of an intermediate file that went missing (a failed index
# deletes its videos.parquet; so may a user) and would keep serving results built from the old file.
# Such files are forced (as `--forcerun FILE` would) while the DAG is built, so Snakemake rebuilds
# them and everything downstream of them in the same run.
_FORCED = []


def force_damaged(wildcards=None):
    """An input function without inputs: it runs while the DAG is built, when the DAG can be told."""
    if not _FORCED:
        from snakemake.io import IOFile

        built = lambda path: workflow.persistence.metadata(IOFile(path)) is not None
        damaged = damaged_outputs(config, was_built=built)
        for path, why in damaged.items():
            logger.warning(
                f"{path} is missing but {why}, built from it, exists: rebuilding them"
            )
        workflow._dag.forcefiles.update(damaged)
        _FORCED.append(damaged)
    return []


def code(script):
    """Digest of the pipeline modules a rule's script imports, transitively.

    Snakemake tracks the script file but not the modules it imports."""
    return code_digest(
        f"{workflow.basedir}/workflow/scripts/{script}", root=workflow.basedir
    )


def model_weights(model):
    return pconfig.model_config(config, model)["weights"]


def model_dataset(model):
    return pconfig.model_config(config, model)["data"]["dataset"]


def model_kind(model):
    return pconfig.model_kind(pconfig.model_config(config, model))


def train_inputs(wildcards):
    """What making one model reads: its crops (kind train), the cached features of its train and
    validation splits (logistic), or the published checkpoint (released); always its backbone.
    """
    cfg = pconfig.model_config(config, wildcards.model)
    kind, w = pconfig.model_kind(cfg), cfg["weights"]
    inputs = {"weights": L.weights_marker(w)}
    if kind == "released":
        inputs["released"] = L.weights_marker(cfg["released"])
    elif kind == "logistic":
        d = cfg["data"]
        inputs["train_features"] = L.features(w, d["dataset"], d["train_split"])
        inputs["val_features"] = [
            L.features(w, ds, s) for ds, s in pconfig.val_sets(cfg)
        ]
    else:
        ds = cfg["data"]["dataset"]
        inputs.update(
            frames=L.frames(ds),
            pairs=L.pairs(ds),
            val_frames=[L.frames(v) for v in model_val_datasets(wildcards.model)],
        )
    return inputs


def evaluate_inputs(wildcards):
    """A frozen-backbone model (kind logistic) is scored from the benchmark split's cached features."""
    cfg = pconfig.model_config(config, wildcards.model)
    if pconfig.model_kind(cfg) != "logistic":
        return {}
    bench = config["benchmarks"][wildcards.bench]
    return {"features": L.features(cfg["weights"], bench["dataset"], bench["split"])}


def model_val_datasets(model):
    """Datasets other than the training one that a model validates on (``data.val_sets``)."""
    cfg = pconfig.model_config(config, model)
    return sorted({ds for ds, _ in pconfig.val_sets(cfg)} - {cfg["data"]["dataset"]})


def bench_dataset(bench):
    return config["benchmarks"][bench]["dataset"]


def shard_files(wildcards):
    """Tables and tars of every chunk of the used splits that the index checkpoint planned."""
    ds = wildcards.ds
    videos = checkpoints.index.get(ds=ds).output.videos
    planned = chunks(videos, SPLITS[ds])
    return {
        "tables": [L.shard(ds, split, chunk, "parquet") for split, chunk in planned],
        "tars": [L.shard(ds, split, chunk, "tar") for split, chunk in planned],
    }


# ---- Job sizes (threads, GPUs, memory, runtime) -------------------------------------------------
# From the config (`resources:` section, loader workers, face threads), never from a profile: a
# cluster profile holds only site settings. Memory and runtime are attempt x the configured size,
# so a job resubmitted after an out-of-memory or time-limit kill asks for more.
from pipeline import jobs


def mem_mb(rule, times=None):
    """Memory of one attempt of `rule`, times `times(wildcards)` (e.g. its GPUs) when given."""

    def size(wc, attempt):
        factor = times(wc) if times else 1
        return jobs.job_size(config, rule, attempt)["mem_mb"] * factor

    return size


def runtime(rule):
    return lambda wc, attempt: jobs.job_size(config, rule, attempt)["runtime"]


def train_gpus(wc):
    return jobs.devices(pconfig.model_config(config, wc.model))


def train_cpus_per_gpu(wc):
    data = pconfig.model_config(config, wc.model)["data"]
    return jobs.cpus_per_device(data.get("workers", 0))


EVALUATE_CPUS = jobs.cpus_per_device(config.get("evaluate", {}).get("workers", 0))
