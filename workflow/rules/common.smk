# Shared definitions: config checks, names, paths, and the per-rule slices of the config.
import sys

sys.path.insert(0, workflow.basedir)  # the `pipeline` package of this checkout

from snakemake.exceptions import WorkflowError
from pipeline import config as pconfig
from pipeline.provenance import code_digest
from pipeline.index import chunks

try:
    pconfig.check_config(config)
except pconfig.ConfigError as exc:
    raise WorkflowError(f"Invalid config: {exc}")

RESULTS = config["results"]
REPORT = f"{RESULTS}/report.html"
ENV = "../../envs/pipeline.yaml"

MODELS = list(config["models"])
BENCHMARKS = list(config["benchmarks"])
WEIGHTS = list(config["weights"])
# Only the datasets something uses are fetched and processed.
DATASETS = sorted(
    {pconfig.model_config(config, m)["data"]["dataset"] for m in MODELS}
    | {b["dataset"] for b in config["benchmarks"].values()}
)


wildcard_constraints:
    ds="|".join(config["datasets"]),
    model="|".join(MODELS),
    bench="|".join(BENCHMARKS),
    weights="|".join(WEIGHTS),
    split=r"[A-Za-z0-9]+",
    chunk=r"\d{5}",


def code(script):
    """Digest of the pipeline modules a rule's script imports, transitively.

    Snakemake tracks the script file but not the modules it imports (DESIGN.md §4)."""
    return code_digest(
        f"{workflow.basedir}/workflow/scripts/{script}", root=workflow.basedir
    )


def dataset_marker(ds):
    return f"resources/datasets/{ds}.done"


def dataset_dir(ds):
    source = config["datasets"][ds]["source"]
    if "dataset" in source:  # the files of another entry
        return dataset_dir(source["dataset"])
    return source["path"] if "path" in source else f"resources/datasets/{ds}"


def weights_marker(name):
    return f"resources/weights/{name}.done"


def weights_dir(name):
    entry = config["weights"][name]
    return entry["path"] if "path" in entry else f"resources/weights/{name}"


def model_weights(model):
    return pconfig.model_config(config, model)["weights"]


def model_dataset(model):
    return pconfig.model_config(config, model)["data"]["dataset"]


def bench_dataset(bench):
    return config["benchmarks"][bench]["dataset"]


def shard_files(wildcards):
    """Tables and tars of every chunk that the index checkpoint planned for a dataset."""
    videos = checkpoints.index.get(ds=wildcards.ds).output.videos
    prefix = f"{RESULTS}/{wildcards.ds}/shards"
    parts = [f"{prefix}/{split}-{chunk:05d}" for split, chunk in chunks(videos)]
    return {
        "tables": [f"{p}.parquet" for p in parts],
        "tars": [f"{p}.tar" for p in parts],
    }
