"""The workflow configuration: cross-reference checks and the per-rule slices of it.

``workflow/schemas/config.schema.yaml`` checks shapes and values; :func:`check_config` checks what a
JSON schema cannot (that names refer to entries that exist). The ``*_params`` functions return the
part of the config one rule depends on, and nothing else: Snakemake reruns a job when its params
change, so a rule that received the whole config would rerun on any edit (README, Configuration).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A config value that refers to something that does not exist."""


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` merged into a copy of ``base``; nested dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(path: str | Path) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def validate_config(config: dict, schema: str | Path = SCHEMA, source: str = "config") -> dict:
    """Check ``config`` against the JSON schema and fill in the schema's defaults (in place).

    Raises :class:`ConfigError` with one short line per problem, each naming the key (``faces.num_frame:
    unknown key; did you mean num_frames?``), instead of a dump of the schema and the config.
    """
    from jsonschema import Draft202012Validator
    from snakemake.utils import validate

    with open(schema) as fh:
        doc = yaml.safe_load(fh)
    errors = list(Draft202012Validator(doc).iter_errors(config))
    if errors:
        lines = sorted({line for e in errors for line in _schema_error(e).split("\n  ")})
        more = f"\n  ... and {len(lines) - 10} more" if len(lines) > 10 else ""
        raise ConfigError(f"{source} does not match {Path(schema).name}:\n  " + "\n  ".join(lines[:10]) + more)
    validate(config, str(schema), set_default=True)
    return config


def _schema_error(error) -> str:
    """One line for a jsonschema error: where, what is wrong, and what is allowed."""
    import difflib

    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known)) if known else [error.message]
        lines = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            lines.append(f"{where}.{key}: unknown key; {hint}allowed: {', '.join(known) or 'none'}"
                         .replace("(top level).", ""))
        return "\n  ".join(lines)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        return "\n  ".join(f"{where}.{k}: missing; this key is required".replace("(top level).", "")
                            for k in missing)
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    full = repr(error.instance)
    message = error.message.replace(full, full if len(full) <= 60 else full[:56] + "...}")
    return f"{where}: {message if len(message) <= 200 else message[:197] + '...'}"


def model_config(config: dict, model: str) -> dict:
    """The full configuration of one model: the training defaults with its overrides."""
    if model not in config["models"]:
        raise ConfigError(f"models: no model named {model!r} (known: {', '.join(config['models'])})")
    return deep_merge(config["training"], config["models"][model])


def check_config(config: dict) -> None:
    """Raise :class:`ConfigError` naming the key whose value refers to nothing."""
    datasets, weights = config["datasets"], config["weights"]
    for name in config["models"]:
        cfg = model_config(config, name)
        if cfg["weights"] not in weights:
            raise ConfigError(f"models.{name}.weights: {cfg['weights']!r} is not a name under weights "
                              f"(known: {', '.join(weights)})")
        if cfg["data"]["dataset"] not in datasets:
            raise ConfigError(f"models.{name}.data.dataset: {cfg['data']['dataset']!r} is not a name under "
                              f"datasets (known: {', '.join(datasets)})")
        slerp = cfg["slerp"]
        if slerp.get("expand_to") and not slerp.get("enabled"):
            raise ConfigError(f"models.{name}.slerp.expand_to is set but slerp.enabled is false")
        if cfg["optim"]["min_lr"] > cfg["optim"]["lr"]:
            raise ConfigError(f"models.{name}.optim.min_lr must not exceed optim.lr")
        _check_kind(config, name, cfg)
        if model_kind(cfg) != "released":
            _check_selection(config, name, cfg)
    for name in (config.get("robustness") or {}).get("benchmarks") or []:
        if name not in config["benchmarks"]:
            raise ConfigError(f"robustness.benchmarks: {name!r} is not a name under benchmarks "
                              f"(known: {', '.join(config['benchmarks'])})")
    for name in (config.get("robustness") or {}).get("models") or []:
        if name not in config["models"]:
            raise ConfigError(f"robustness.models: {name!r} is not a name under models "
                              f"(known: {', '.join(config['models'])})")
    for name, bench in config["benchmarks"].items():
        if bench["dataset"] not in datasets:
            raise ConfigError(f"benchmarks.{name}.dataset: {bench['dataset']!r} is not a name under datasets "
                              f"(known: {', '.join(datasets)})")
    for name, ds in datasets.items():
        if "demo" in ds["source"] and ds["adapter"] != "csv":
            raise ConfigError(f"datasets.{name}: a demo source writes labels.csv; use adapter: csv")
        other = ds["source"].get("dataset")
        if other is not None and (other not in datasets or "dataset" in datasets[other]["source"]):
            raise ConfigError(f"datasets.{name}.source.dataset: {other!r} must be another entry under datasets "
                              f"with its own source (known: {', '.join(datasets)})")


def val_sets(cfg: dict) -> list[tuple[str, str]]:
    """A model's validation sets as (dataset, split): its training dataset's ``val_split`` (if set)
    followed by ``data.val_sets``; the checkpoint is selected on the mean over them."""
    d = cfg["data"]
    first = [(d.get("dataset"), d["val_split"])] if d.get("val_split") else []
    return first + [(v["dataset"], v["split"]) for v in d.get("val_sets") or []]


KINDS = ("train", "logistic", "released")


def model_kind(cfg: dict) -> str:
    """How a model is made: ``train`` (default), ``logistic`` or ``released``."""
    return cfg.get("kind", "train")


def _check_kind(config: dict, name: str, cfg: dict) -> None:
    kind = model_kind(cfg)
    released = cfg.get("released")
    if kind == "released":
        entry = config["weights"].get(released) if released else None
        if entry is None or "random" in entry:
            raise ConfigError(f"models.{name}.released: name the weights entry that holds the published checkpoint "
                              f"(hub: or path:, e.g. yermandy/GenD_CLIP_L_14 or yermandy/GenD_DINOv3_L); got {released!r} "
                              f"(known: {', '.join(config['weights'])})")
    elif released is not None:
        raise ConfigError(f"models.{name}.released is set but kind is {kind!r}; add kind: released")
    if kind != "logistic" and cfg.get("logistic") is not None:
        raise ConfigError(f"models.{name}.logistic is set but kind is {kind!r}; add kind: logistic")


def _check_selection(config: dict, name: str, cfg: dict) -> None:
    """Refuse to pick a model's checkpoint on data that a benchmark reports (its test split)."""
    for i, (ds, split) in enumerate(val_sets(cfg)):
        key = "data.val_split" if i == 0 and cfg["data"].get("val_split") else "data.val_sets"
        if ds not in config["datasets"]:
            raise ConfigError(f"models.{name}.{key}: {ds!r} is not a name under datasets "
                              f"(known: {', '.join(config['datasets'])})")
        if cfg.get("select_metric", "video_auroc") == "last":
            continue
        for bench, b in config["benchmarks"].items():
            if (b["dataset"], b["split"]) == (ds, split):
                raise ConfigError(
                    f"models.{name}.{key}: {split!r} of dataset {ds!r} is benchmark {bench!r}'s test split; "
                    f"selecting checkpoints on it would leak the test set into the model. Use a validation "
                    f"split, or select_metric: last")


def used_datasets(config: dict) -> list[str]:
    """The datasets that some model trains or validates on, or some benchmark tests: only these are
    fetched and processed."""
    return sorted(dataset_splits(config))


def dataset_splits(config: dict) -> dict[str, list[str]]:
    """Dataset -> the splits that a model or benchmark reads. Only these get face crops (a dataset used
    only as a test benchmark is not cropped for its training videos)."""
    used: dict[str, set[str]] = {}
    for model in config["models"]:
        cfg = model_config(config, model)
        if model_kind(cfg) == "released":
            continue  # evaluated as published: no training or validation data
        used.setdefault(cfg["data"]["dataset"], set()).add(cfg["data"]["train_split"])
        for ds, split in val_sets(cfg):
            used.setdefault(ds, set()).add(split)
    for bench in config["benchmarks"].values():
        used.setdefault(bench["dataset"], set()).add(bench["split"])
    return {ds: sorted(splits) for ds, splits in sorted(used.items())}


def _generated(config: dict, dataset: str) -> bool:
    return "demo" in config["datasets"][dataset]["source"]


def download_params(config: dict, dataset: str) -> dict:
    """What fetching one dataset depends on: its source only (an adapter option never re-downloads).

    The seed matters only to generated (demo) data: changing it must not re-download FF++.
    """
    return {"source": config["datasets"][dataset]["source"],
            "seed": config["seed"] if _generated(config, dataset) else None}


def index_params(config: dict, dataset: str) -> dict:
    """What the index of one dataset depends on: the adapter, its options, where the files are, and
    how videos are dealt into faces jobs (the chunk order is seeded by ``faces.chunk_seed``, not the
    global seed, so a new training seed never re-crops real data)."""
    ds = config["datasets"][dataset]
    faces = config["faces"]
    return {"adapter": ds["adapter"], "options": ds.get("options", {}), "source": ds["source"],
            "chunk_size": faces["chunk_size"], "chunk_seed": faces.get("chunk_seed", 0)}


def weights_params(config: dict, name: str) -> dict:
    """What fetching one weight set depends on (the seed only for randomly initialised weights: the
    entry's own ``seed`` if it sets one, else the global seed)."""
    entry = config["weights"][name]
    return {"entry": entry, "seed": int(entry["random"].get("seed", config["seed"])) if "random" in entry else None}


FACES_CROP_KEYS = ("num_frames", "size", "scale", "points", "choice", "min_side", "codec", "png_level")


def faces_params(config: dict) -> dict:
    """What face extraction depends on: the backend, its options and the crop settings.

    ``threads`` and ``chunk_size`` are excluded (they do not change a crop); ``crop`` holds the
    ``FACES_CROP_KEYS`` present (the schema fills their defaults, ``pipeline.faces.CropSettings``
    has the same ones).
    """
    faces = config["faces"]
    crop = {k: faces[k] for k in FACES_CROP_KEYS if k in faces}
    return {"backend": faces["backend"], "backend_options": faces.get("backend_options") or {}, "crop": crop}


def face_weights_params(config: dict) -> dict:
    """What fetching face-alignment's weight files depends on: its detector and where they go."""
    from pipeline.faces.fan import DEFAULT_WEIGHTS_DIR

    opts = config["faces"].get("backend_options") or {}
    return {"detector": opts.get("detector", "sfd"), "dest": opts.get("weights_dir", DEFAULT_WEIGHTS_DIR)}


def train_params(config: dict, model: str) -> dict:
    """What training one model depends on (for a released model: the two weights entries only)."""
    cfg = model_config(config, model)
    cfg["backbone"] = weights_id(config, cfg["weights"])
    if model_kind(cfg) == "released":
        cfg = {"kind": "released", "backbone": cfg["backbone"], "weights": cfg["weights"],
               "released": cfg["released"], "checkpoint": weights_id(config, cfg["released"])}
    return {"model": cfg, "seed": cfg.pop("seed", config["seed"])}


def weights_id(config: dict, name: str) -> str:
    """A stable description of what a weights entry resolves to: the hub id or path, or for randomly
    initialised weights a digest of their settings and seed, so that any change retrains the models
    that use them."""
    entry = config["weights"][name]
    kind, value = next(iter(entry.items()))
    if kind in ("hub", "path"):
        return value
    spec = json.dumps(weights_params(config, name), sort_keys=True, default=str)
    return f"random:{name}:{hashlib.sha256(spec.encode()).hexdigest()[:16]}"


def evaluate_params(config: dict, bench: str) -> dict:
    """What evaluating any model on one benchmark depends on."""
    ev = config.get("evaluate", {})
    return {"dataset": config["benchmarks"][bench]["dataset"],
            "split": config["benchmarks"][bench]["split"],
            "video_reduce": ev.get("video_reduce", "mean"),
            "bootstrap": ev.get("bootstrap", 1000),
            "batch_size": ev.get("batch_size", 64),
            "seed": config["seed"]}


def robustness_params(config: dict, bench: str) -> dict:
    """What evaluating any model on the degraded copies of a benchmark depends on."""
    from pipeline.robustness import plan

    return {**evaluate_params(config, bench), "corruptions": plan(config)[bench]}


def report_params(config: dict) -> dict:
    """What the report shows besides its inputs."""
    return {"title": config.get("report", {}).get("title", "LNCLIP-DF"),
            "demo": bool(config.get("demo", False))}
