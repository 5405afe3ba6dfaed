"""Each rule's ``params``: the part of the settings its jobs depend on, and nothing else.

Snakemake reruns a job when its params change, so a rule that received the whole config would rerun on
any edit. Every value here is built from the config as :func:`pipeline.core.config.validate_config`
completed it (every default filled in, numbers of the schema's type) and returned in
:func:`~pipeline.core.config.canonical` form (keys sorted): a config re-saved with its keys in another
order, in another YAML style or with a default written out gives the same params, so nothing reruns.
"""

from __future__ import annotations

from pipeline.core import config as pconfig
from pipeline.core.config import canonical
from pipeline.core.layout import FACE_WEIGHTS


def _generated(config: dict, dataset: str) -> bool:
    return "demo" in config["datasets"][dataset]["source"]


def download(config: dict, dataset: str) -> dict:
    """What fetching one dataset depends on: its source only (an adapter option never re-downloads).

    The seed matters only to generated (demo) data: changing it must not re-download FF++."""
    return canonical({"source": config["datasets"][dataset]["source"],
                      "seed": config["seed"] if _generated(config, dataset) else None})


def weights(config: dict, name: str) -> dict:
    """What fetching one weight set depends on (the seed only for randomly initialised weights)."""
    entry = config["weights"][name]
    seed = pconfig.random_weights_seed(config, name) if "random" in entry else None
    return canonical({"entry": entry, "seed": seed})


def face_weights(config: dict) -> dict:
    """What fetching face-alignment's weight files depends on: its detector, where they go and where they
    come from (``mirror`` only when ``faces.weights_mirror`` is set: the package's URLs otherwise)."""
    opts, mirror = config["faces"]["backend_options"], config["faces"].get("weights_mirror")
    return canonical({"detector": opts.get("detector", "sfd"), "dest": opts.get("weights_dir", FACE_WEIGHTS),
                      **({"mirror": mirror} if mirror else {})})


def index(config: dict, dataset: str) -> dict:
    """What the index of one dataset depends on: the adapter, its options, where the files are, and how
    videos are dealt into faces jobs (the chunk order is seeded by ``faces.chunk_seed``, not the global
    seed, so a new training seed never re-crops real data)."""
    ds, faces = config["datasets"][dataset], config["faces"]
    return canonical({"adapter": ds["adapter"], "options": ds["options"], "source": ds["source"],
                      "chunk_size": faces["chunk_size"], "chunk_seed": faces["chunk_seed"]})


def subsets(config: dict) -> dict:
    """What a dataset's paired and unpaired training subsets depend on besides its pairs: the seed."""
    return canonical({"seed": config["seed"]})


def faces(config: dict) -> dict:
    """What face extraction depends on: the backend, its options and the crop settings (``threads`` and
    ``chunk_size`` do not change a crop)."""
    return canonical(pconfig.faces_settings(config))


def evaluate(config: dict, bench: str) -> dict:
    """What evaluating any model on one benchmark depends on (loader workers do not change a score)."""
    ev, b = config["evaluate"], config["benchmarks"][bench]
    return canonical({"dataset": b["dataset"], "split": b["split"], "video_reduce": ev["video_reduce"],
                      "bootstrap": ev["bootstrap"], "batch_size": ev["batch_size"], "seed": config["seed"]})


def robustness(config: dict, bench: str) -> dict:
    """What evaluating any model on the degraded copies of a benchmark depends on."""
    return canonical({**evaluate(config, bench), "corruptions": pconfig.corruptions(config)[bench]})


def features(config: dict, weights_name: str) -> dict:
    """What a split's frozen-backbone features depend on: the backbone and the batch (float order)."""
    return canonical({"backbone": pconfig.weights_id(config, weights_name),
                      "batch_size": config["evaluate"]["batch_size"]})


def predict(config: dict, name: str) -> dict:
    """What scoring the files of one predict set depends on, besides the files and the model's file: the
    model as named, the faces settings, the file score's reduction and the batch (float order)."""
    ev = config["evaluate"]
    return canonical({"model": config["predict"][name]["model"], "faces": pconfig.faces_settings(config),
                      "video_reduce": ev["video_reduce"], "batch_size": ev["batch_size"]})


def report(config: dict) -> dict:
    """The report shows the configuration as provenance, so it depends on all of it: every section as
    completed, every model with its full settings; but for the bulk scoring sets (``predict``), which
    it does not show."""
    models = {name: pconfig.model_settings(config, name) for name in config["models"]}
    return canonical({**{k: v for k, v in config.items() if k != "predict"}, "models": models})
