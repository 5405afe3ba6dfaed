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
from functools import lru_cache
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


def load(path: str | Path, root: str | Path | None = None) -> dict:
    """A config file, merged over its ``base`` (:func:`with_base`; ``root``: the workflow's folder,
    by default the nearest folder above the file that holds a ``Snakefile``)."""
    with open(path) as fh:
        config = yaml.safe_load(fh)
    return with_base(config, root or _workflow_root(Path(path)), source=str(path))


# Sections that a config's ``base`` does not lend it: a file that names one states the whole section.
REPLACED = ("models", "benchmarks", "predict", "robustness")


def with_base(config: dict, root: str | Path, source: str = "config") -> dict:
    """``config`` deep-merged over the file its top-level ``base`` names (a path relative to the
    workflow's folder ``root``; that file may name a base of its own), except the :data:`REPLACED`
    sections, which replace the base's; without ``base``, ``config`` itself. ``base`` is not kept."""
    chain, seen = [dict(config or {})], []
    while chain[-1].get("base") is not None:
        name = chain[-1]["base"]
        path = Path(root) / str(name)
        if str(path.resolve()) in seen:
            raise ConfigError(f"{source}: base {name!r} is a cycle ({' -> '.join(seen)})")
        seen.append(str(path.resolve()))
        if not path.is_file():
            raise ConfigError(f"{source}: base {name!r}: no such file under {root} (write the path from the "
                              f"workflow's folder, e.g. base: config.yaml)")
        with open(path) as fh:
            chain.append(yaml.safe_load(fh) or {})
    merged = {}
    for layer in reversed(chain):
        kept = {k: v for k, v in merged.items() if k not in REPLACED or k not in layer}
        merged = deep_merge(kept, {k: v for k, v in layer.items() if k != "base"})
    return merged


def _workflow_root(path: Path) -> Path:
    """The nearest folder at or above ``path``'s that holds a ``Snakefile`` (else the current folder)."""
    return next((d for d in path.resolve().parents if (d / "Snakefile").is_file()), Path.cwd())


SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@lru_cache(maxsize=4)
def _schema(path: str) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def validate_config(config: dict, schema: str | Path = SCHEMA, source: str = "config") -> dict:
    """Check ``config`` against the JSON schema and fill in the schema's defaults (in place).

    Raises :class:`ConfigError` with one short line per problem, each naming the key (``faces.num_frame:
    unknown key; did you mean num_frames?``), instead of a dump of the schema and the config. Model
    entries are overrides of ``training``: they get the defaults once merged (:func:`model_config`).
    """
    from jsonschema import Draft202012Validator

    doc = _schema(str(schema))
    errors = list(Draft202012Validator(doc).iter_errors(config))
    if errors:
        lines = sorted({line for e in errors for line in _schema_error(e).split("\n  ")})
        more = f"\n  ... and {len(lines) - 10} more" if len(lines) > 10 else ""
        raise ConfigError(f"{source} does not match {Path(schema).name}:\n  " + "\n  ".join(lines[:10]) + more)
    models = config.get("models")
    completed = complete(config, doc, doc)
    config.clear()
    config.update(completed)
    if models is not None:
        config["models"] = models  # overrides, completed only once merged with training
    return config


def complete(value, schema: dict, root: dict):
    """``value`` with the schema's defaults filled in wherever a key is absent (nested objects too, as
    far as the schema gives them defaults) and integers turned into floats where the schema asks for a
    number: the form in which two equal configs are equal whatever was written out."""
    for sub in _branches(schema, root):
        value = _complete_one(value, sub, root)
    return value


def _branches(schema: dict, root: dict) -> list[dict]:
    """The schema itself with its ``$ref`` resolved, and every ``allOf`` part."""
    if "$ref" in schema:
        node = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return _branches(node, root) + _branches({k: v for k, v in schema.items() if k != "$ref"}, root)
    return [schema] + [b for part in schema.get("allOf", []) for b in _branches(part, root)]


def _complete_one(value, schema: dict, root: dict):
    if isinstance(value, dict):
        out = dict(value)
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = complete(out[key], sub, root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in out:
                if key not in props:
                    out[key] = complete(out[key], extra, root)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [complete(v, schema["items"], root) for v in value]
    types = schema.get("type")
    if isinstance(value, int) and not isinstance(value, bool) and (types == "number" or (
            isinstance(types, list) and "number" in types and "integer" not in types)):
        return float(value)
    return value


def defaults(*path: str) -> dict:
    """The schema's defaults of one section, e.g. ``defaults("faces")`` or ``defaults("model", "augment")``
    (``model`` is a model entry's schema): what code that runs without a config (tests, benchmarks, the
    command line) takes, so every default has one owner."""
    doc = _schema(str(SCHEMA))
    node = doc["$defs"]["model"] if path[0] == "model" else doc["properties"][path[0]]
    for key in path[1:]:
        node = _branches(node, doc)[0]["properties"][key]
    return complete({}, node, doc)


def canonical(value):
    """``value`` with every mapping's keys in sorted order and tuples as lists: the form in which rule
    params compare equal when only the order of keys in the config differs."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


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
    """The full settings of one model: the ``training`` defaults with the entry's overrides, the schema's
    defaults for what neither sets, and the global ``seed`` unless the entry has its own."""
    if model not in config["models"]:
        raise ConfigError(f"models: no model named {model!r} (known: {', '.join(config['models'])})")
    cfg = complete_model(deep_merge(config["training"], config["models"][model]))
    cfg.setdefault("seed", config["seed"])
    return cfg


def complete_model(cfg: dict) -> dict:
    """A model's settings with the schema's defaults for every key they do not set (a copy)."""
    doc = _schema(str(SCHEMA))
    cfg = copy.deepcopy(cfg)
    if cfg.get("kind") == "logistic":
        cfg.setdefault("logistic", {})  # its settings get their defaults
    return complete(cfg, doc["$defs"]["model"], doc)


def check_config(config: dict) -> None:
    """Raise :class:`ConfigError` naming the key whose value refers to nothing."""
    datasets, weights = config["datasets"], config["weights"]
    for name, entry in weights.items():
        _check_weights(name, entry)
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
    for name, entry in config.get("predict", {}).items():
        model = entry["model"]
        if model not in config["models"] and "/" not in model:
            raise ConfigError(f"predict.{name}.model: {model!r} is neither a name under models (known: "
                              f"{', '.join(config['models'])}) nor a model folder (results/.../models/NAME)")
    for name, ds in datasets.items():
        if "demo" in ds["source"] and ds["adapter"] not in DEMO_ADAPTERS:
            raise ConfigError(f"datasets.{name}: a demo source writes labels.csv and one folder per class; "
                              f"use adapter: csv or folder")
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
DEMO_ADAPTERS = ("csv", "folder")  # the layouts a demo source writes


def model_kind(cfg: dict) -> str:
    """How a model is made: ``train`` (the default), ``logistic`` or ``released``."""
    return cfg["kind"]


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
    """Refuse to pick a model's checkpoint on data that a benchmark reports (its test split), or on none."""
    if not val_sets(cfg) and cfg["select_metric"] != "last":
        raise ConfigError(f"models.{name}: no validation set (data.val_split is null and data.val_sets empty) "
                          f"to select a checkpoint on; add one, or set select_metric: last")
    for i, (ds, split) in enumerate(val_sets(cfg)):
        key = "data.val_split" if i == 0 and cfg["data"].get("val_split") else "data.val_sets"
        if ds not in config["datasets"]:
            raise ConfigError(f"models.{name}.{key}: {ds!r} is not a name under datasets "
                              f"(known: {', '.join(config['datasets'])})")
        if cfg["select_metric"] == "last":
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


WEIGHTS_SOURCES = ("hub", "path", "random")


def weights_source(entry: dict) -> tuple[str, object]:
    """``(kind, value)`` of a weights entry: its one ``hub``, ``path`` or ``random`` key (besides
    ``files``)."""
    return next((k, v) for k, v in entry.items() if k in WEIGHTS_SOURCES)


def _check_weights(name: str, entry: dict) -> None:
    sources = [k for k in WEIGHTS_SOURCES if k in entry]
    if len(sources) != 1:
        raise ConfigError(f"weights.{name}: give exactly one of hub, path or random (got {sources or 'none'})")
    if "files" in entry and sources[0] == "random":
        raise ConfigError(f"weights.{name}.files: only for hub or path weights (random weights have no files)")


def weights_id(config: dict, name: str) -> str:
    """A stable description of what a weights entry resolves to: the hub id or path, or for randomly
    initialised weights a digest of their settings and seed, so that any change retrains the models
    that use them."""
    entry = config["weights"][name]
    kind, value = weights_source(entry)
    if kind in ("hub", "path"):
        return value
    spec = json.dumps(canonical({"entry": entry, "seed": random_weights_seed(config, name)}), default=str)
    return f"random:{name}:{hashlib.sha256(spec.encode()).hexdigest()[:16]}"


def random_weights_seed(config: dict, name: str) -> int:
    """The seed of randomly initialised weights: their own ``seed`` if the entry sets one, else the
    global seed."""
    return int(config["weights"][name]["random"].get("seed", config["seed"]))


FACES_CROP_KEYS = ("num_frames", "size", "scale", "points", "choice", "min_side", "codec", "png_level")


def faces_settings(config: dict) -> dict:
    """How a config crops faces: ``backend``, ``backend_options`` and ``crop`` (the crop settings of
    ``pipeline.faces.CropSettings``); the workflow's faces jobs and ``predict`` use the same."""
    f = config["faces"]
    return {"backend": f["backend"], "backend_options": f["backend_options"],
            "crop": {k: f[k] for k in FACES_CROP_KEYS}}


CORRUPTIONS = ("jpeg", "blur", "noise", "resize")  # robustness: the kinds of degradation


def corruptions(config: dict) -> dict[str, dict[str, list[float]]]:
    """Robustness: base benchmark -> corruption kind -> strengths (the ``robustness`` section)."""
    section = config["robustness"]
    kinds = {k: [float(s) for s in section[k]] for k in CORRUPTIONS if section[k]}
    return {b: kinds for b in section["benchmarks"]} if kinds else {}


def robustness_models(config: dict) -> list[str]:
    """The models evaluated on the robustness benchmarks (``robustness.models``; default: all)."""
    return list(config["robustness"].get("models") or config["models"])
