"""Where the workflow's files live: the one place that knows the results and resources layout.

The rule files, the command line and the report all ask a :class:`Layout` for paths; nothing else
spells them out. Arguments may be real names or Snakemake wildcards (``"{ds}"``), so the same
method gives a rule's output pattern and a concrete file::

    L = Layout("results")
    L.metrics("{model}", "{bench}")     # 'results/eval/{model}/{bench}/metrics.json'
    L.metrics("lnclip_df", "celebdf")   # 'results/eval/lnclip_df/celebdf/metrics.json'

Downloads (``resources/``) are shared by every config that names the same dataset or weights, so
they and their logs sit outside the results folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# face-alignment's weight files (its TORCH_HOME; ``faces.backend_options.weights_dir`` moves them)
FACE_WEIGHTS = "resources/weights/face_alignment"


@dataclass(frozen=True)
class Layout:
    results: str = "results"
    resources: str = "resources"

    # -- downloads (shared across configs) -----------------------------------------------------
    def dataset_download(self, ds: str) -> str:
        return f"{self.resources}/datasets/{ds}"

    def dataset_marker(self, ds: str) -> str:
        return f"{self.resources}/datasets/{ds}.done"

    def weights_download(self, name: str) -> str:
        return f"{self.resources}/weights/{name}"

    def weights_marker(self, name: str) -> str:
        return f"{self.resources}/weights/{name}.done"

    def download_log(self, kind: str, name: str) -> str:
        return f"logs/download/{kind}-{name}.log"

    # -- one dataset ---------------------------------------------------------------------------
    def videos(self, ds: str) -> str:
        return f"{self.results}/{ds}/videos.parquet"

    def completeness(self, ds: str) -> str:
        """The index's official-protocol checks, beside ``videos.parquet``."""
        return completeness_of(self.videos(ds))

    def shard(self, ds: str, split: str, chunk: int | str, ext: str) -> str:
        """``ext`` is ``tar`` (the crops) or ``parquet`` (the table of every sampled frame)."""
        chunk = f"{chunk:05d}" if isinstance(chunk, int) else chunk
        return f"{self.results}/{ds}/shards/{split}-{chunk}.{ext}"

    def frames(self, ds: str) -> str:
        return f"{self.results}/{ds}/frames.parquet"

    def pairs(self, ds: str) -> str:
        return f"{self.results}/{ds}/pairs.parquet"

    def subsets(self, ds: str) -> str:
        """The paired and unpaired training subsets of a dataset (``training.data.subset``)."""
        return f"{self.results}/{ds}/subsets.parquet"

    def stats(self, ds: str) -> str:
        return f"{self.results}/{ds}/stats.json"

    def features(self, weights: str, ds: str, split: str) -> str:
        """Frozen-backbone features of one split's crops, shared by every ``kind: logistic`` model."""
        return f"{self.results}/features/{weights}/{ds}/{split}.parquet"

    # -- models and evaluations ----------------------------------------------------------------
    def model_dir(self, model: str) -> str:
        """A trained model's folder (``predict --model`` takes it)."""
        return f"{self.results}/models/{model}"

    def adapter(self, model: str) -> str:
        return f"{self.model_dir(model)}/{ADAPTER}"

    def train_log(self, model: str) -> str:
        return f"{self.results}/models/{model}/train_log.parquet"

    def train_work(self, model: str) -> str:
        """Resumable training state: not a declared output, so a failed job does not delete it."""
        return f"{self.results}/work/train/{model}"

    def scores(self, model: str, bench: str) -> str:
        return f"{self.results}/eval/{model}/{bench}/scores.parquet"

    def metrics(self, model: str, bench: str) -> str:
        return f"{self.results}/eval/{model}/{bench}/metrics.json"

    def robustness(self, model: str, bench: str) -> str:
        """Every configured corruption at every strength (``pipeline.evaluation.robustness``)."""
        return f"{self.results}/eval/{model}/{bench}/robustness.json"

    def report(self) -> str:
        return f"{self.results}/report.html"

    def metrics_table(self) -> str:
        """Every metric of every evaluation, one tidy row each, next to the report."""
        return f"{self.results}/metrics.csv"

    # -- bulk scoring (the predict section) ------------------------------------------------------
    def predict_table(self, name: str) -> str:
        """One row per file of a predict set (``pipeline.predict.bulk``)."""
        return f"{self.results}/predict/{name}.parquet"

    def predict_chunk(self, name: str, chunk: str) -> str:
        """The rows of one scoring job; ``chunk`` is the digest of the files it scores."""
        return f"{self.results}/predict/{name}/chunks/{chunk}.parquet"

    def predict_members(self, name: str, chunk: str) -> str:
        """The files a scoring job was given, recorded when it ends (not an output: a rerun keeps it)."""
        return f"{self.results}/predict/{name}/chunks/{chunk}.members.json"

    # -- job logs and benchmarks ---------------------------------------------------------------
    def log(self, stage: str, name: str) -> str:
        return f"{self.results}/logs/{stage}/{name}.log"

    def benchmark(self, stage: str, name: str) -> str:
        return f"{self.results}/benchmarks/{stage}/{name}.tsv"


ADAPTER = "adapter.safetensors"  # a trained model's file in its folder


def completeness_of(videos: str) -> str:
    """The index's official-protocol checks written beside a ``videos.parquet``."""
    return str(Path(videos).with_name("completeness.json"))


def fetch_record(marker: str) -> str:
    """Where a fetch records what it fetched (``pipeline.fetch.verify``): beside its ``.done`` marker."""
    return marker.removesuffix(".done") + ".fetched.json"


def code_record(log: str) -> str:
    """Where a job records the modules it ran (``pipeline.workflow.codekeys``): beside its log."""
    return log.removesuffix(".log") + ".modules.json"


def from_config(config: dict) -> Layout:
    return Layout(results=config.get("results", "results"))


def dataset_root(config: dict, ds: str) -> str:
    """Where a dataset's files are read from: the user's folder for ``path`` sources, that entry's for
    ``dataset`` sources (the files of another entry), else the download."""
    source = config["datasets"][ds]["source"]
    if "dataset" in source:
        return dataset_root(config, source["dataset"])
    return source["path"] if "path" in source else from_config(config).dataset_download(ds)


def weights_root(config: dict, name: str) -> str:
    """Where a backbone is loaded from: the user's folder for ``path`` entries, else the download."""
    entry = config["weights"][name]
    return entry["path"] if "path" in entry else from_config(config).weights_download(name)
