# Shared definitions: config checks, names, paths (from pipeline.layout), per-rule config slices.
import sys

sys.path.insert(0, workflow.basedir)  # the `pipeline` package of this checkout

from snakemake.exceptions import WorkflowError
from pipeline import config as pconfig
from pipeline import layout
from pipeline.provenance import code_digest
from pipeline.index import chunks
from pipeline.guard import damaged_outputs

try:
    pconfig.check_config(config)
except pconfig.ConfigError as exc:
    raise WorkflowError(f"Invalid config: {exc}")

L = layout.from_config(config)
REPORT = L.report()
ENV = "../../envs/pipeline.yaml"

MODELS = list(config["models"])
BENCHMARKS = list(config["benchmarks"])
WEIGHTS = list(config["weights"])
# Only the datasets, and of them the splits, that a model or benchmark uses are fetched and cropped.
SPLITS = pconfig.dataset_splits(config)
DATASETS = list(SPLITS)


wildcard_constraints:
    ds="|".join(config["datasets"]),
    model="|".join(MODELS),
    bench="|".join(BENCHMARKS),
    weights="|".join(WEIGHTS),
    split=r"[A-Za-z0-9]+",
    chunk=r"\d{5}",


# Snakemake does not rerun the consumers of an intermediate file that went missing (a failed index
# deletes its videos.parquet; so does a user), and would keep serving results built from the old
# one. Such files are forced, so they and everything downstream of them are rebuilt in this run.
_damaged = damaged_outputs(config)
if _damaged:
    for path, why in _damaged.items():
        logger.warning(
            f"{path} is missing but {why} exists: rebuilding it and what depends on it"
        )
    workflow.dag_settings.forcerun = frozenset(workflow.dag_settings.forcerun) | set(
        _damaged
    )


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
