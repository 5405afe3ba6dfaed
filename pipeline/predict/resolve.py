"""A trained model as ``predict`` names it: adapter, backbone and the faces settings of its workflow.

``--model results/models/<name>`` (the folder, or its ``adapter.safetensors``). The adapter's metadata
names the backbone it was trained on (a hub id, a local folder, or the digest of randomly initialised
weights) and the workflow's weights entry; the backbone is read from where the workflow fetched it
(``resources/weights/<entry>``, checked against its ``.done`` marker) unless ``--weights`` is given.
The faces settings (frames per video, crop, backend) and the video score reduction are those of the
workflow config that trained the model: found in the current folder (``config.yaml``,
``config/*.yaml``) as the one whose results folder holds the model, or given with ``--config``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core import config as pconfig
from pipeline.core import layout
from pipeline.core.config import canonical
from pipeline.model import read_adapter_meta
from pipeline.training import project, settings as model_settings

log = logging.getLogger("pipeline.predict")

ADAPTER = layout.ADAPTER


class PredictError(Exception):
    """Input that ``predict`` cannot use; the message names it and says what to do."""


@dataclass
class ResolvedModel:
    """Everything needed to score files the way the workflow scores its videos."""

    name: str
    adapter: Path
    meta: dict
    weights: Path
    config_path: Path | None
    faces: dict  # pipeline.core.config.faces_settings: backend, backend_options, crop
    video_reduce: str = "mean"
    notes: list[str] = field(default_factory=list)


def adapter_path(model: str | Path) -> Path:
    """The adapter file of ``model`` (a model folder or the file itself); :class:`PredictError` if none."""
    given = Path(model)
    path = given / ADAPTER if given.is_dir() or given.suffix != ".safetensors" else given
    if not path.is_file():
        known = _known_models(given)
        hint = f"; trained models found: {', '.join(known)}" if known else ""
        raise PredictError(f"no trained model at {model}: {path} does not exist. Train it with the workflow "
                           f"(snakemake ... {path}) and run predict from the workflow's folder{hint}")
    return path


def _known_models(given: Path) -> list[str]:
    default = Path(layout.Layout().model_dir("x")).parent  # results/models, and results/<config>/models
    folders = [given.parent, default] + sorted(default.parent.glob(f"*/{default.name}"))
    found = {str(p.parent) for d in folders if d.is_dir() for p in d.glob(f"*/{ADAPTER}")}
    return sorted(found)[:10]


def workflow_config(adapter: Path, config_path: str | Path | None = None, cwd: Path = Path("."),
                    config: dict | None = None) -> tuple[Path | None, dict | None]:
    """The (validated) workflow config that trained the model of ``adapter``, or ``(None, None)``.

    ``config`` (already validated: a workflow job's) or ``config_path`` when given; else the config in
    ``cwd`` (``config.yaml``, ``config/*.yaml``) that has a model of this name and whose ``results`` folder
    is the one holding the adapter.
    """
    if config is not None:
        return None, config
    if config_path is not None:
        try:
            return Path(config_path), pconfig.validate_config(pconfig.load(config_path), source=str(config_path))
        except (OSError, pconfig.ConfigError) as err:
            raise PredictError(f"--config {config_path}: {err}") from None
    name, home = adapter.parent.name, adapter.parent.parent.parent.resolve()
    for candidate in [cwd / "config.yaml", *sorted((cwd / "config").glob("*.y*ml"))]:
        try:
            cfg = pconfig.validate_config(pconfig.load(candidate), source=str(candidate))
        except Exception:  # not a workflow config, or a broken one: not the one that trained this model
            continue
        if name in cfg.get("models", {}) and (cwd / layout.from_config(cfg).results).resolve() == home:
            return candidate, cfg
    return None, None


def backbone_dir(adapter: Path, meta: dict, config: dict | None, weights: str | Path | None = None,
                 cwd: Path = Path(".")) -> Path:
    """The backbone folder of the model: ``weights`` if given, else the one its workflow fetched."""
    if weights is not None:
        if not (Path(weights) / "config.json").is_file():
            raise PredictError(f"--weights {weights}: no config.json there; give the folder of a CLIP model saved "
                               "with save_pretrained (the workflow's resources/weights/<name>)")
        return Path(weights)
    backbone, entry = meta.get("backbone"), meta.get("cfg", {}).get("weights")
    if backbone and Path(backbone).is_dir():  # a `path:` weights entry: the user's own folder
        return Path(backbone)
    candidates = []
    if config is not None and entry in config.get("weights", {}):
        candidates.append(cwd / layout.weights_root(config, entry))
    if entry:
        candidates += [d / layout.Layout().weights_download(entry) for d in [cwd, *adapter.resolve().parents]]
    for folder in dict.fromkeys(candidates):
        if (folder / "config.json").is_file():
            _check_marker(folder, entry, backbone)
            return folder
    raise PredictError(f"the backbone {backbone!r} of {adapter} (weights entry {entry!r}) is not on this machine: "
                       f"run predict from the workflow's folder after the workflow fetched it (snakemake "
                       f"--cores 1 {layout.Layout().weights_marker(entry or '<entry>')}), or give its folder "
                       "with --weights")


def _check_marker(folder: Path, entry: str, backbone: str | None) -> None:
    """Refuse a fetched backbone that is not the one the model was trained on (its ``.done`` marker)."""
    from pipeline.core.markers import read_marker

    marker = folder.with_name(folder.name + ".done")
    if backbone is None or not marker.is_file():
        return
    info = read_marker(marker)
    if info.get("kind") == "random":
        fetched = pconfig.weights_id({"weights": {entry: {"random": info["config"]}}, "seed": info["seed"]}, entry)
    else:
        fetched = info.get("hub") or info.get("path")
    if fetched != backbone:
        raise PredictError(f"{folder} holds the backbone {fetched!r}, but the model was trained on {backbone!r}: "
                           "fetch that one with the workflow, or give its folder with --weights")


def resolve_model(model: str | Path, *, weights=None, config_path=None, faces: dict | None = None,
                  video_reduce: str | None = None, cwd: Path = Path("."), config: dict | None = None
                  ) -> ResolvedModel:
    """The adapter, backbone folder, faces settings and video reduction for ``predict``.

    ``faces`` overrides the workflow's settings: ``backend``, ``backend_options`` and any crop key
    (``num_frames``, ``size``, ``scale``, ``points``, ``choice``, ``min_side``). ``config``: the validated
    workflow config to take them from (a workflow job's), instead of ``config_path`` or the search."""
    adapter = adapter_path(model)
    try:
        meta = read_adapter_meta(adapter)
    except Exception as err:
        raise PredictError(f"{adapter} is not a model written by this pipeline's training ({err})") from None
    found, cfg = workflow_config(adapter, config_path, cwd, config)
    notes = []
    if cfg is None:
        notes.append(f"no workflow config in {cwd.resolve()} trained {adapter.parent}: default faces settings "
                     "(run from the workflow's folder, or pass --config)")
        settings = {"backend": "dlib", "backend_options": {}, "crop": {}}
        reduce = "mean"
    else:
        settings = pconfig.faces_settings(cfg)
        reduce = cfg.get("evaluate", {}).get("video_reduce", "mean")
        known = adapter.parent.name in cfg.get("models", {})  # a model folder of another config: not compared
        now = model_settings(cfg, adapter.parent.name)["model"] if known else {}
        then = canonical(project(pconfig.complete_model(meta["cfg"]))) if meta.get("cfg") and known else {}
        changed = sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k))
        if then and changed:
            notes.append(f"{found}: the entry of model {adapter.parent.name!r} changed since it was trained "
                         f"({', '.join(changed)}); its faces settings are used as they are now")
    settings = _override(settings, faces or {})
    return ResolvedModel(name=adapter.parent.name, adapter=adapter, meta=meta,
                         weights=backbone_dir(adapter, meta, cfg, weights, cwd), config_path=found, faces=settings,
                         video_reduce=video_reduce or reduce, notes=notes)


def _override(settings: dict, faces: dict) -> dict:
    out = {"backend": settings["backend"], "backend_options": dict(settings["backend_options"]),
           "crop": dict(settings["crop"])}
    for key, value in faces.items():
        if value is None:
            continue
        if key == "backend" and value != out["backend"]:
            out["backend"], out["backend_options"] = value, {}  # the other backend's options do not apply
        elif key == "backend_options":
            out["backend_options"] = dict(value)
        elif key in pconfig.FACES_CROP_KEYS:
            out["crop"][key] = value
        elif key != "backend":
            raise ValueError(f"unknown faces setting {key!r}")
    return out
