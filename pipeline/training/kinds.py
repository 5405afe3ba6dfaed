"""How each kind of model is made: the one place that decides which code a ``kind`` runs, which of its
settings its result depends on, and which files it reads and writes.

* ``train``: gradient training of the detector on its dataset's crops (:mod:`.loop`);
* ``logistic``: scikit-learn's LogisticRegression on the backbone's cached features (:mod:`.logistic`);
* ``released``: published weights mapped onto the detector (:mod:`.released`).

The workflow's ``train`` rule (its params, its inputs, its script) and ``python -m pipeline train`` both
go through :func:`settings`, :func:`paths` and :func:`make`, so they make the same model from the same
files. This module imports nothing heavy: planning reads it.
"""

from __future__ import annotations

import copy
import importlib

from pipeline.core import config as pconfig
from pipeline.core import layout
from pipeline.core.config import canonical

# kind -> the module that makes it (imported by make() only for that kind)
MODULES = {"train": "pipeline.training.loop", "logistic": "pipeline.training.logistic",
           "released": "pipeline.training.released"}

# Settings that never change what gradient training produces: how many loader processes, how often the
# state is saved and the loss read, how many non-finite steps are tolerated.
RESULT_FREE = {"data": ("workers",), "engine": ("checkpoint_every", "log_every", "max_nonfinite")}
# Which training crops a model reads, when set (``data.methods``, ``data.subset``): absent by default.
FILTERS = ("methods", "subset")


def settings(config: dict, model: str) -> dict:
    """What making ``model`` depends on: ``{"model": its settings for its kind, "seed": ...}``, canonical.

    ``model["backbone"]`` identifies the backbone's weights (hub id, path, or a digest of random
    settings), so a changed backbone remakes the model."""
    cfg = pconfig.model_config(config, model)
    cfg["backbone"] = pconfig.weights_id(config, cfg["weights"])
    if cfg["kind"] == "released":
        cfg["checkpoint"] = pconfig.weights_id(config, cfg["released"])
        if "files" in config["weights"][cfg["released"]]:  # which file of the release (model.ckpt, ...)
            cfg["files"] = list(config["weights"][cfg["released"]]["files"])
    seed = cfg.pop("seed")
    return canonical({"model": project(cfg), "seed": None if cfg["kind"] == "released" else seed})


def project(cfg: dict) -> dict:
    """The part of a model's complete settings that what its kind makes depends on (a copy)."""
    kind = cfg["kind"]
    if kind == "released":
        return {k: cfg[k] for k in ("kind", "backbone", "weights", "released", "checkpoint", "files") if k in cfg}
    if kind == "logistic":
        d = cfg["data"]
        return {"kind": kind, "backbone": cfg["backbone"], "weights": cfg["weights"], "logistic": cfg["logistic"],
                "data": {k: d[k] for k in ("dataset", "train_split", "val_split", "val_sets", *FILTERS)
                         if d.get(k, "") is not None and k in d}}
    out = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in ("logistic", "released", "seed")}
    for key in FILTERS:  # unset and null are the same setting: every training video
        if out["data"].get(key, "") is None:
            out["data"].pop(key)
    for section, keys in RESULT_FREE.items():
        for key in keys:
            out.get(section, {}).pop(key, None)
    return out


def paths(config: dict, model: str, results: str | None = None) -> dict:
    """Every file or folder making ``model`` reads or writes, by role (the workflow's layout, under
    ``results`` when given): ``backbone`` (folder) and ``backbone_marker``, then per kind ``frames``,
    ``pairs`` and ``val_frames`` (dataset -> frames.parquet), ``train_features`` and ``val_features``
    (``dataset/split`` -> features), or ``released`` (folder) and ``released_marker``; ``subsets`` (the
    training dataset's subsets.parquet) only for a model that sets ``data.subset``; and the outputs
    ``adapter``, ``log`` and ``work_dir`` (the resumable state)."""
    L = layout.Layout(results=results or config["results"])
    cfg = pconfig.model_config(config, model)
    w, kind, d = cfg["weights"], cfg["kind"], cfg["data"]
    out = {"backbone": layout.weights_root(config, w), "backbone_marker": L.weights_marker(w),
           "adapter": L.adapter(model), "log": L.train_log(model), "work_dir": L.train_work(model)}
    if kind == "released":
        out.update(released=layout.weights_root(config, cfg["released"]),
                   released_marker=L.weights_marker(cfg["released"]))
    elif kind == "logistic":
        out.update(train_features=L.features(w, d["dataset"], d["train_split"]),
                   val_features={f"{ds}/{s}": L.features(w, ds, s) for ds, s in pconfig.val_sets(cfg)})
    else:
        others = sorted({ds for ds, _ in pconfig.val_sets(cfg)} - {d["dataset"]})
        out.update(frames=L.frames(d["dataset"]), pairs=L.pairs(d["dataset"]),
                   val_frames={ds: L.frames(ds) for ds in others})
    if kind != "released" and d.get("subset"):
        out["subsets"] = L.subsets(d["dataset"])
    return out


def runtime(config: dict, model: str) -> dict:
    """The :data:`RESULT_FREE` settings of ``model``: the job reads them from the config, not from its
    params, so changing one reruns nothing."""
    cfg = pconfig.model_config(config, model)
    return {section: {key: cfg[section][key] for key in keys} for section, keys in RESULT_FREE.items()}


INPUTS = ("backbone_marker", "released_marker", "frames", "pairs", "val_frames", "train_features", "val_features",
          "subsets")


def inputs(paths: dict) -> dict:
    """The files among :func:`paths` that must exist before the model is made (the rule's inputs)."""
    return {role: sorted(p.values()) if isinstance(p, dict) else p for role, p in paths.items() if role in INPUTS}


def make(settings: dict, paths: dict, *, runtime: dict | None = None, threads: int = 1) -> dict:
    """Make the model that :func:`settings` describes from the files of :func:`paths` (with the
    :func:`runtime` settings); returns a summary."""
    cfg, seed = settings["model"], settings["seed"]
    kind = cfg["kind"]
    module = importlib.import_module(MODULES[kind])  # by name: a job imports, and is keyed on, its kind's only
    if kind == "released":
        return module.convert_released(paths["released"], paths["backbone"], cfg, paths["adapter"], paths["log"])
    if kind == "logistic":
        return module.train_logistic(paths["train_features"], paths["val_features"], paths["backbone"], cfg,
                                     paths["adapter"], paths["log"], seed=seed, subsets_path=paths.get("subsets"))
    cfg = pconfig.deep_merge(cfg, runtime or {})
    return module.train_model(paths["frames"], paths["backbone"], cfg, paths["adapter"], paths["log"],
                              paths["work_dir"], seed=seed, threads=threads, pairs_path=paths["pairs"],
                              val_frames=paths["val_frames"], subsets_path=paths.get("subsets"))
