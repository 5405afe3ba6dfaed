# Shared definitions: the config (validated and completed once), names, paths (pipeline.core.layout),
# each rule's params (pipeline.workflow.params), code keys and job sizes. Planning imports only
# Snakemake, PyYAML, polars and the standard library: no compute package.
import os
import re
import sys

sys.path.insert(0, workflow.basedir)  # the `pipeline` package of this checkout

from snakemake.exceptions import WorkflowError
from pipeline.core import config as pconfig
from pipeline.core import layout
from pipeline.core import tables
from pipeline.datasets import adapters
from pipeline.faces import backends as face_backends
from pipeline.predict import bulk
from pipeline.training import kinds
from pipeline.training import selection
from pipeline.workflow import codekeys, resources
from pipeline.workflow import params as P
from pipeline.workflow.guard import damaged_outputs

try:
    # `base: FILE` in a config file: merged over that file first (pipeline.core.config.with_base)
    _source = ", ".join(map(str, workflow.configfiles)) or "config"
    _merged = pconfig.with_base(config, workflow.basedir, source=_source)
    config.clear()
    config.update(_merged)
    pconfig.validate_config(
        config,
        f"{workflow.basedir}/workflow/schemas/config.schema.yaml",
        source=_source,
    )
    pconfig.check_config(config)
    selection.check_config(config)
except pconfig.ConfigError as exc:
    raise WorkflowError(f"Invalid config: {exc}") from None

L = layout.from_config(config)
REPORT = L.report()
ENV = "../../envs/pipeline.yaml"

# Runs: a model without `seeds` is one run named as the model; with seeds, one run per seed,
# `<model>-seed<N>` (pipeline.core.config.runs). Training and evaluation jobs are one per run.
MODELS = pconfig.runs(config)
BENCHMARKS = list(config["benchmarks"])
WEIGHTS = list(config["weights"])
# Only the datasets, and of them the splits, that a model or benchmark uses are fetched and cropped.
SPLITS = pconfig.dataset_splits(config)
DATASETS = list(SPLITS)
# Datasets that bring their own face crops: import_crops instead of faces.
IMPORTED = [
    ds for ds, d in config["datasets"].items() if adapters.imports(d["adapter"])
]
# Robustness benchmarks: base benchmark -> corruption kind -> strengths.
ROBUSTNESS = pconfig.corruptions(config)
ROBUSTNESS_MODELS = pconfig.robustness_models(config)
# Models whose checkpoint is chosen on validation sets: each gets a selection check (training.smk).
SELECTED = selection.selected(config)


wildcard_constraints:
    ds="|".join(config["datasets"]),
    model="|".join(map(re.escape, MODELS)),
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
        # Snakemake has no public way to force files once the DAG exists; its DAG's own set is
        # used (tests/test_workflow.py::test_missing_index_rebuilds_everything_built_from_it proves it
        # with the versions in constraints.txt).
        forced = getattr(getattr(workflow, "_dag", None), "forcefiles", None)
        if damaged and not isinstance(forced, set):
            raise WorkflowError(
                "this Snakemake version cannot be told to rebuild damaged outputs; install the "
                "versions CI ran: pip install -c constraints.txt -e ."
            )
        if damaged:
            forced.update(damaged)
        _FORCED.append(damaged)
    return []


def code(script, stage, name, entries=None):
    """The `code` param of a rule: the key of the pipeline modules its job runs (pipeline.workflow.codekeys),
    read from the record the job left beside its log `L.log(stage, name)` (name may hold wildcards).
    `entries(wildcards)`: modules a registry picks for the job by name (the static key follows them).
    """
    path = f"{workflow.basedir}/workflow/scripts/{script}"

    def key(wildcards):
        record = layout.code_record(L.log(stage, name.format(**wildcards)))
        extra = tuple(entries(wildcards)) if entries else ()
        return codekeys.code_key(path, record, workflow.basedir, extra)

    return key


def adapter_module(wildcards):
    return [adapters.module(config["datasets"][wildcards.ds]["adapter"])]


def backend_module(wildcards):
    return [face_backends.module(config["faces"]["backend"])]


def kind_module(wildcards):
    return [kinds.MODULES[model_settings(wildcards.model)["kind"]]]


def model_settings(model):
    return pconfig.model_config(config, model)


def model_weights(model):
    return model_settings(model)["weights"]


def train_paths(wildcards):
    return kinds.paths(config, wildcards.model)


def evaluate_inputs(wildcards):
    """A frozen-backbone model (kind logistic) is scored from the benchmark split's cached features."""
    cfg = model_settings(wildcards.model)
    if cfg["kind"] != "logistic":
        return {}
    bench = config["benchmarks"][wildcards.bench]
    return {"features": L.features(cfg["weights"], bench["dataset"], bench["split"])}


def selection_file(model):
    return selection.path(L, model)


def selection_datasets(model):
    return list(selection.splits_read(selection.spec(config, model)))


def selection_videos(wildcards):
    """The index of every dataset the check reads, as ancient(): it is keyed on their rows instead."""
    return [ancient(videos_table(ds)) for ds in selection_datasets(wildcards.model)]


def selection_rows(wildcards):
    """What the check reads of the indexes: the digest of the rows of each split it compares."""
    read = selection.splits_read(selection.spec(config, wildcards.model))
    return {
        ds: tables.splits_digest(L.videos(ds), splits) for ds, splits in read.items()
    }


def train_selection(wildcards):
    """A gradient-trained model's selection check, as ancient(): rerunning the cheap check (a new
    benchmark) never retrains; a failing check stops the training. Only a missing record retrains
    (Snakemake cannot tell it from a new one): said while planning, with the way around it.
    """
    model = wildcards.model
    if model not in SELECTED:
        return []
    path = selection_file(model)
    if (
        model not in _WARNED
        and os.path.exists(L.adapter(model))
        and not os.path.exists(path)
    ):
        _WARNED.append(model)
        logger.warning(
            f"{path} is missing (a refused or deleted check): once the check runs, {model} is retrained; "
            f"to keep its adapter, run `snakemake {path}` (same config) first"
        )
    return [ancient(path)]


_WARNED = []


def bench_dataset(bench):
    return config["benchmarks"][bench]["dataset"]


# The index is a checkpoint: the faces jobs are known once its videos.parquet exists. Its consumers take
# it as ancient() and are keyed on the rows they read instead (a digest in their params), so an index
# that reruns and writes the same rows (an edit to an adapter that changes no row) reruns nothing else.
# After the index has run Snakemake replans its consumers with the new rows; before a first run the
# manifest waits for the checkpoint.
def videos_table(ds):
    path = L.videos(ds)
    return path if os.path.exists(path) else checkpoints.index.get(ds=ds).output.videos


def shard_files(wildcards):
    """Tables and tars of every chunk of the used splits of the dataset's index."""
    ds = wildcards.ds
    planned = tables.chunks(videos_table(ds), SPLITS[ds])
    return {
        "tables": [L.shard(ds, split, chunk, "parquet") for split, chunk in planned],
        "tars": [L.shard(ds, split, chunk, "tar") for split, chunk in planned],
    }


def chunk_rows(wildcards):
    return tables.chunk_digest(
        L.videos(wildcards.ds), wildcards.split, int(wildcards.chunk)
    )


def split_rows(wildcards):
    return tables.splits_digest(L.videos(wildcards.ds), SPLITS[wildcards.ds])


# ---- Job sizes (threads, GPUs, memory, runtime) -------------------------------------------------
# From the config (`resources:` section, loader workers, face threads), never from a profile: a
# cluster profile holds only site settings. Memory and runtime are attempt x the configured size,
# so a job resubmitted after an out-of-memory or time-limit kill asks for more.


def mem_mb(rule, times=None):
    """Memory of one attempt of `rule`, times `times(wildcards)` (e.g. its GPUs) when given."""

    def size(wc, attempt):
        factor = times(wc) if times else 1
        return resources.job_size(config, rule, attempt)["mem_mb"] * factor

    return size


def runtime(rule):
    return lambda wc, attempt: resources.job_size(config, rule, attempt)["runtime"]


def train_gpus(wc):
    return model_settings(wc.model)["devices"]


def train_cpus_per_gpu(wc):
    return resources.cpus_per_device(model_settings(wc.model)["data"]["workers"])


EVALUATE_CPUS = resources.cpus_per_device(config["evaluate"]["workers"])


# ---- bulk scoring (predict.smk): the sets' files and chunks, listed while planning ----
PREDICT = list(config["predict"])
_PREDICT_PLANS = {}


def predict_plan(name):
    """The set's files and chunks, listed once per planning (a cluster job plans again, the same way)."""
    if name not in _PREDICT_PLANS:
        _PREDICT_PLANS[name] = bulk.plan_set(config, name)
        for path, why in _PREDICT_PLANS[name]["problems"]:
            logger.warning(f"predict.{name}: {path}: {why}")
    return _PREDICT_PLANS[name]


def predict_members(wildcards):
    chunks = predict_plan(wildcards.pset)["chunks"]
    if wildcards.pchunk not in chunks:
        raise WorkflowError(
            f"predict.{wildcards.pset}: chunk {wildcards.pchunk} is not among the chunks of the files listed "
            "now (files were added, changed or removed after this run was planned): run the same command again"
        )
    return chunks[wildcards.pchunk]


def predict_model_inputs(wildcards):
    """The model's adapter (trained first when it is a model of this config) and, then, its backbone."""
    model = config["predict"][wildcards.pset]["model"]
    adapter = f"{bulk.model_dir(config, wildcards.pset)}/{layout.ADAPTER}"
    if model not in MODELS:
        return {"adapter": adapter}
    return {"adapter": adapter, "weights": L.weights_marker(model_weights(model))}
