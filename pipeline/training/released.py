"""Published GenD weights (``kind: released``) as one of our adapters, evaluated without training.

A GenD checkpoint on the Hugging Face hub (``yermandy/GenD_CLIP_L_14``, ``yermandy/GenD_DINOv3_L``) is
a ``save_pretrained`` folder of the authors' ``GenD`` model: ``config.json`` (``model_type: GenD``,
``backbone``: the hub id it was trained from, ``head: linear | LinearNorm``) and ``model.safetensors``
with

* the backbone, LayerNorms tuned in place, everything else as in the backbone it was trained from:
  ``feature_extractor.vision_model.*`` for CLIP (plus ``feature_extractor.visual_projection.weight``,
  CLIP's projection, unused: the feature is the tower's ``pooler_output``, as ours), or
  ``feature_extractor.backbone.*`` for DINOv3 (a ``DINOv3ViTModel``; the feature is the CLS token of
  its ``last_hidden_state``, i.e. its ``pooler_output``);
* ``model.linear.weight`` ``[2, hidden]`` / ``model.linear.bias`` ``[2]``: the head, on the
  L2-normalised feature for ``LinearNorm``.

:func:`map_gend` loads the backbone tensors through transformers' own ``from_pretrained`` (which
knows each version's parameter names), checks that every frozen tensor equals the backbone's, and
puts the LayerNorms and head on :class:`pipeline.model.Detector`, so the adapter (LayerNorms + head)
rebuilds the published model exactly. GenD's Perception Encoder checkpoint (``GenD_PE_L``) is
refused with a message: GenD builds that backbone with timm, and transformers has no such model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from .records import write_log
from pipeline.model import Detector, load_backbone, quiet_transformers, write_adapter

log = logging.getLogger("pipeline.released")

HEAD = {"model.linear.weight": "head.weight", "model.linear.bias": "head.bias"}
HEADS = {"linear": False, "LinearNorm": True}  # GenD head -> l2_norm


@dataclass(frozen=True)
class Layout:
    """Where a GenD checkpoint keeps its backbone: ``prefix`` + the backbone's own checkpoint names
    (``rename`` put in front of them), and tensors that GenD saves but never uses."""

    prefix: str
    rename: str = ""
    unused: tuple[str, ...] = ()


LAYOUTS = {  # our backbone family (config model_type) -> layout
    "clip_vision_model": Layout("feature_extractor.vision_model.", "vision_model.",
                                ("feature_extractor.visual_projection.",)),
    "dinov3_vit": Layout("feature_extractor.backbone."),
}


class ReleasedError(ValueError):
    """A published checkpoint that does not map onto the detector."""


def read_gend(folder) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config.json, tensors)`` of a GenD ``save_pretrained`` folder (safetensors only, never pickle)."""
    folder = Path(folder)
    cfg_path = folder / "config.json"
    files = sorted(folder.glob("*.safetensors"))
    if not cfg_path.is_file() or not files:
        raise ReleasedError(f"{folder}: expected config.json and model.safetensors of a GenD checkpoint; "
                            f"found {sorted(p.name for p in folder.iterdir()) if folder.is_dir() else 'no folder'}")
    cfg = json.loads(cfg_path.read_text())
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(load_file(str(f)))
    return cfg, tensors


def gend_family(cfg: dict) -> str:
    """Our backbone family (config ``model_type``) for a GenD ``config.json``; raises
    :class:`ReleasedError` for checkpoints that do not map onto the detector, saying why."""
    if cfg.get("model_type") != "GenD":
        raise ReleasedError(f"not a GenD checkpoint (model_type {cfg.get('model_type')!r})")
    if cfg.get("head") not in HEADS:
        raise ReleasedError(f"unknown GenD head {cfg.get('head')!r} (known: {', '.join(HEADS)})")
    name = str(cfg.get("backbone", ""))
    low = name.lower()
    if "vit_pe" in low:
        raise ReleasedError(f"GenD backbone {name!r} is a Perception Encoder, which GenD builds with timm "
                            "(timm.create_model); transformers provides no such model, so this pipeline cannot "
                            "load it. Use yermandy/GenD_CLIP_L_14 or yermandy/GenD_DINOv3_L")
    if "clip" in low:
        return "clip_vision_model"
    if "dinov3" in low and "convnext" not in low:
        return "dinov3_vit"
    raise ReleasedError(f"GenD backbone {name!r} is neither a CLIP vision tower nor a DINOv3 ViT; only those "
                        "map onto this detector (yermandy/GenD_CLIP_L_14, yermandy/GenD_DINOv3_L)")


def _split(tensors: dict, layout: Layout) -> tuple[dict, dict, list, list]:
    """``(backbone state dict in its checkpoint names, head tensors, unused names, unknown names)``."""
    backbone, head, unused, unknown = {}, {}, [], []
    for name, tensor in tensors.items():
        if name in HEAD:
            head[HEAD[name]] = tensor
        elif name.startswith(layout.prefix):
            backbone[layout.rename + name[len(layout.prefix):]] = tensor
        elif layout.unused and name.startswith(layout.unused):
            unused.append(name)
        else:
            unknown.append(name)
    return backbone, head, sorted(unused), sorted(unknown)


def _load_tuned(backbone: torch.nn.Module, state: dict) -> tuple[torch.nn.Module, list, list]:
    """The checkpoint's backbone, built like ``backbone`` by transformers' ``from_pretrained``;
    ``(model, missing names, unexpected names)``."""
    try:
        with quiet_transformers():
            tuned, info = type(backbone).from_pretrained(None, config=backbone.config, state_dict=state,
                                                         output_loading_info=True, dtype=torch.float32)
    except RuntimeError as err:  # a tensor of another shape
        raise ReleasedError(f"checkpoint does not match the backbone ({type(backbone).__name__}, hidden size "
                            f"{backbone.config.hidden_size}): {str(err).splitlines()[0]}") from err
    missing = sorted(info.get("missing_keys") or []) + sorted(n for n, *_ in info.get("mismatched_keys") or [])
    return tuned, missing, sorted(info.get("unexpected_keys") or [])


def map_gend(cfg: dict, tensors: dict[str, torch.Tensor], backbone: torch.nn.Module) -> tuple[Detector, dict]:
    """A detector around ``backbone`` holding the checkpoint's LayerNorms and head, and the mapping
    report ``{"loaded", "unused", "frozen_max_diff"}``. Raises :class:`ReleasedError` on any tensor
    that is missing, unknown, of another shape, or (frozen ones) different from the backbone's."""
    family = gend_family(cfg)
    if backbone.config.model_type != family:
        raise ReleasedError(f"the checkpoint's backbone {cfg.get('backbone')!r} is a {family} model but the "
                            f"backbone weights given for it are {backbone.config.model_type}; point the model's "
                            f"weights at {cfg.get('backbone')!r}")
    state, head, unused, unknown = _split(tensors, LAYOUTS[family])
    tuned, missing, unexpected = _load_tuned(backbone, state)
    missing += sorted(set(HEAD.values()) - set(head))
    if unknown or missing or unexpected:
        raise ReleasedError(f"checkpoint does not match the backbone: unknown {(unknown + unexpected)[:5]}, "
                            f"missing {missing[:5]}")
    detector = Detector(backbone, ln_tuning=True, l2_norm=HEADS[cfg["head"]])
    max_diff = _take_layernorms(detector, tuned, exact=all(t.dtype == torch.float32 for t in state.values()))
    _take_head(detector, head)
    return detector, {"loaded": len(state) + len(head), "unused": unused, "frozen_max_diff": max_diff}


@torch.no_grad()
def _take_layernorms(detector: Detector, tuned: torch.nn.Module, exact: bool) -> float:
    """Copy the tuned backbone's trainable tensors (LayerNorms) into ``detector``; every other tensor
    must equal the detector's backbone's (exactly for an fp32 checkpoint). Returns the largest difference."""
    trainable = detector.trainable_parameters()
    sources = tuned.state_dict()
    max_diff = 0.0
    for name, target in detector.backbone.state_dict().items():
        source = sources[name]
        if f"backbone.{name}" in trainable:
            trainable[f"backbone.{name}"].copy_(source)
            continue
        diff = (target.float() - source.float()).abs().max().item() if target.numel() else 0.0
        tol = 0.0 if exact else 1e-2 * max(1.0, target.abs().max().item())
        if diff > tol:
            raise ReleasedError(f"{name}: frozen tensor differs from the backbone's by {diff:.3g}; the "
                                "checkpoint was trained from other weights (check models.<name>.weights)")
        max_diff = max(max_diff, diff)
    return max_diff


@torch.no_grad()
def _take_head(detector: Detector, head: dict[str, torch.Tensor]) -> None:
    trainable = detector.trainable_parameters()
    for name, tensor in head.items():
        if tuple(trainable[name].shape) != tuple(tensor.shape):
            raise ReleasedError(f"{name}: checkpoint shape {tuple(tensor.shape)}, "
                                f"detector {tuple(trainable[name].shape)}")
        trainable[name].copy_(tensor.to(torch.float32))


def convert_released(released_dir, backbone_dir, cfg: dict, adapter_path, log_path) -> dict:
    """The workflow's ``train`` job for ``kind: released``: write the published model as an adapter."""
    gend_cfg, tensors = read_gend(released_dir)
    detector, report = map_gend(gend_cfg, tensors, load_backbone(backbone_dir))
    summary = {"backbone": cfg["backbone"], "cfg": cfg, "released": cfg.get("checkpoint"),
               "gend_config": {k: gend_cfg.get(k) for k in ("backbone", "head")}, "selected_by": "released",
               "best_epoch": None, "mapping": report,
               "trainable_parameters": sum(p.numel() for p in detector.trainable_parameters().values())}
    write_adapter(detector.trainable_parameters(), detector.config(), adapter_path, summary)
    write_log([], log_path)
    log.info("released %s: %d tensors mapped, %d unused, frozen tensors equal the backbone's (max diff %.3g)",
             cfg.get("checkpoint"), report["loaded"], len(report["unused"]), report["frozen_max_diff"])
    return summary
