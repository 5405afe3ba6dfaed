"""The workflow configuration: cross-reference checks and the per-rule slices of it.

``workflow/schemas/config.schema.yaml`` checks shapes and values; :func:`check_config` checks what a
JSON schema cannot (that names refer to entries that exist). The ``*_params`` functions return the
part of the config one rule depends on, and nothing else: Snakemake reruns a job when its params
change, so a rule that received the whole config would rerun on any edit (README, Configuration).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

# the schema's defaults and the canonical form live in .schema (jobs import that, not this module)
from pipeline.core.schema import SCHEMA, _schema, canonical, complete, complete_model, deep_merge, defaults  # noqa: F401


class ConfigError(ValueError):
    """A config value that refers to something that does not exist."""


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


SEED_TAG = "-seed"  # a seeded run's name: <model>-seed<N> (model names have no hyphen, so it never clashes)


def model_seeds(config: dict, model: str) -> list[int] | None:
    """The training seeds of ``model``, one run each: its own ``seeds``, else the top-level ``seeds`` for a
    model that is trained (not ``kind: released``) and sets no ``seed`` of its own; None: one run, named
    as the model, with its ``seed`` (or the global one)."""
    entry = config["models"][model]
    if "seeds" in entry:
        return list(entry["seeds"])
    if config.get("seeds") is None or "seed" in entry:
        return None
    kind = entry.get("kind", config["training"].get("kind", "train"))
    return None if kind == "released" else list(config["seeds"])


def runs(config: dict) -> list[str]:
    """Every run of the config, in model order: an unseeded model's one run is named as the model, a
    seeded model's runs ``<model>-seed<N>``, one per seed. Training, evaluation and robustness jobs are
    one per run."""
    return [run for model in config["models"] for run in model_runs(config, model)]


def run_of(name: str) -> tuple[str, int | None]:
    """``(model, seed)`` of a run's name: ``("lnclip_df", 2)`` for ``lnclip_df-seed2``, ``(name, None)``
    for an unseeded run (named as its model)."""
    model, tag, seed = name.rpartition(SEED_TAG)
    if tag and model and seed.isdigit():
        return model, int(seed)
    return name, None


def model_runs(config: dict, model: str) -> list[str]:
    """The runs of one model (see :func:`runs`)."""
    seeds = model_seeds(config, model)
    return [model] if seeds is None else [f"{model}{SEED_TAG}{s}" for s in seeds]


def model_config(config: dict, run: str) -> dict:
    """The full settings of one run (an unseeded model's name, or ``<model>-seed<N>``): the ``training``
    defaults with the model entry's overrides, the schema's defaults for what neither sets, and its seed:
    the run's, else the entry's own ``seed``, else the global one."""
    model, seed = run_of(run)
    if model not in config["models"]:
        raise ConfigError(f"models: no model named {model!r} (known: {', '.join(config['models'])})")
    if run not in model_runs(config, model):
        raise ConfigError(f"models.{model}: no run named {run!r}; its runs: {', '.join(model_runs(config, model))}")
    cfg = complete_model(deep_merge(config["training"], config["models"][model]))
    cfg.pop("seeds", None)
    cfg["seed"] = seed if seed is not None else cfg.get("seed", config["seed"])
    return cfg


def model_settings(config: dict, model: str) -> dict:
    """A model's complete settings as one entry: its run's (:func:`model_config`), or for a model with
    seeds its first run's with ``seeds`` in place of ``seed`` (its runs differ in nothing else). A config
    whose ``models`` are these entries has the same runs."""
    seeds = model_seeds(config, model)
    cfg = model_config(config, model_runs(config, model)[0])
    return cfg if seeds is None else {**{k: v for k, v in cfg.items() if k != "seed"}, "seeds": seeds}


def check_config(config: dict) -> None:
    """Raise :class:`ConfigError` naming the key whose value refers to nothing."""
    datasets, weights = config["datasets"], config["weights"]
    for name, entry in weights.items():
        _check_weights(name, entry)
    _check_seeds(config)
    for name in config["models"]:
        cfg = model_config(config, model_runs(config, name)[0])  # its runs differ only in their seed
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
        if name not in config["models"] and name not in runs(config):
            raise ConfigError(f"robustness.models: {name!r} is neither a name under models nor one of their runs "
                              f"(known: {', '.join(config['models'])})")
    for name, bench in config["benchmarks"].items():
        if bench["dataset"] not in datasets:
            raise ConfigError(f"benchmarks.{name}.dataset: {bench['dataset']!r} is not a name under datasets "
                              f"(known: {', '.join(datasets)})")
    for name, entry in config.get("predict", {}).items():
        _check_predict_model(config, name, entry["model"])
    for name, ds in datasets.items():
        if "demo" in ds["source"] and ds["adapter"] not in DEMO_ADAPTERS:
            raise ConfigError(f"datasets.{name}: a demo source writes labels.csv and one folder per class; "
                              f"use adapter: csv or folder")
        other = ds["source"].get("dataset")
        if other is not None and (other not in datasets or "dataset" in datasets[other]["source"]):
            raise ConfigError(f"datasets.{name}.source.dataset: {other!r} must be another entry under datasets "
                              f"with its own source (known: {', '.join(datasets)})")


def _check_seeds(config: dict) -> None:
    """``seeds`` belong at the top level or in a model entry that is trained, and never beside its ``seed``."""
    if "seeds" in config["training"]:
        raise ConfigError("training.seeds: put seeds at the top level (every trained model) or in a model entry")
    for name, entry in config["models"].items():
        if "seeds" not in entry:
            continue
        if "seed" in entry:
            raise ConfigError(f"models.{name}: set seed (one run) or seeds (one run per seed), not both")
        if entry.get("kind", config["training"].get("kind")) == "released":
            raise ConfigError(f"models.{name}.seeds: a released model is evaluated as published, without training; "
                              f"remove seeds")


def _check_predict_model(config: dict, name: str, model: str) -> None:
    """A predict set's model: a run of this config (an unseeded model's name, or ``<model>-seed<N>``) or a
    model folder."""
    if model in runs(config) or "/" in model:
        return
    if model in config["models"]:
        raise ConfigError(f"predict.{name}.model: {model!r} has seeds, one trained model each; name one of its "
                          f"runs: {', '.join(model_runs(config, model))}")
    raise ConfigError(f"predict.{name}.model: {model!r} is neither a name under models (known: "
                      f"{', '.join(runs(config))}) nor a model folder (results/.../models/NAME)")


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
    for run in runs(config):  # a model's seeds read the same data: cropped once
        cfg = model_config(config, run)
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
    """The runs evaluated on the robustness benchmarks (``robustness.models``, a model standing for each of
    its runs; default: all)."""
    named = config["robustness"].get("models") or config["models"]
    return [run for name in named for run in (model_runs(config, name) if name in config["models"] else [name])]
