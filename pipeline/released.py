"""Published GenD weights (``kind: released``) as one of our adapters, evaluated without training.

``yermandy/GenD_CLIP_L_14`` on the Hugging Face hub is a ``save_pretrained`` folder of the authors'
``GenD`` model: ``config.json`` (``model_type: GenD``, ``backbone: openai/clip-vit-large-patch14``,
``head: linear | LinearNorm``) and ``model.safetensors`` with

* ``feature_extractor.vision_model.*``: the CLIP vision tower, LayerNorms tuned in place, everything
  else as in the backbone it was trained from;
* ``feature_extractor.visual_projection.weight``: CLIP's projection, unused (the feature is the
  tower's ``pooler_output``, as ours);
* ``model.linear.weight`` ``[2, hidden]`` / ``model.linear.bias`` ``[2]``: the head, on the
  L2-normalised feature for ``LinearNorm``.

:func:`map_gend` renames these onto :class:`pipeline.model.Detector` (``vision_model.*`` of the
backbone, ``head.*``) and checks that every frozen tensor equals the backbone's, so the adapter
(LayerNorms + head) rebuilds the published model exactly. GenD's PE and DINOv3 checkpoints use
backbones that this detector does not build; they are refused with a message.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl
import torch
from safetensors.torch import load_file

from .model import Detector, load_backbone, write_adapter

log = logging.getLogger("pipeline.released")

TOWER = "feature_extractor.vision_model."
UNUSED = ("feature_extractor.visual_projection.",)
HEAD = {"model.linear.weight": "head.weight", "model.linear.bias": "head.bias"}
HEADS = {"linear": False, "LinearNorm": True}  # GenD head -> l2_norm


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


def map_gend(cfg: dict, tensors: dict[str, torch.Tensor], backbone: torch.nn.Module) -> tuple[Detector, dict]:
    """A detector around ``backbone`` holding the checkpoint's LayerNorms and head, and the mapping
    report ``{"loaded", "unused", "frozen_max_diff"}``. Raises :class:`ReleasedError` on any tensor
    that is missing, unknown, of another shape, or (frozen ones) different from the backbone's."""
    if cfg.get("model_type") != "GenD":
        raise ReleasedError(f"not a GenD checkpoint (model_type {cfg.get('model_type')!r})")
    if "clip" not in str(cfg.get("backbone", "")).lower():
        raise ReleasedError(f"GenD backbone {cfg.get('backbone')!r} is not a CLIP vision tower; only the CLIP "
                            "checkpoints (e.g. yermandy/GenD_CLIP_L_14) map onto this detector")
    if cfg.get("head") not in HEADS:
        raise ReleasedError(f"unknown GenD head {cfg.get('head')!r} (known: {', '.join(HEADS)})")
    detector = Detector(backbone, ln_tuning=True, l2_norm=HEADS[cfg["head"]])
    ours = dict(detector.named_parameters())
    ours.update({f"backbone.{n}": b for n, b in detector.backbone.named_buffers()})
    # The vision tower's own names (``vision_model.`` inside CLIPVisionModel in older transformers).
    tower = "backbone.vision_model." if any(n.startswith("backbone.vision_model.") for n in ours) else "backbone."
    mapped: dict[str, torch.Tensor] = {}
    unused, unknown = [], []
    for name, tensor in tensors.items():
        if name in HEAD:
            mapped[HEAD[name]] = tensor
        elif name.startswith(TOWER):
            mapped[tower + name[len(TOWER):]] = tensor
        elif name.startswith(UNUSED):
            unused.append(name)
        else:
            unknown.append(name)
    params = {n for n, p in detector.named_parameters()}
    missing = sorted(params - set(mapped))
    extra = sorted(set(mapped) - set(ours))
    if unknown or missing or extra:
        raise ReleasedError(f"checkpoint does not match the backbone: unknown {unknown[:5]}, "
                            f"missing {missing[:5]}, not in the detector {extra[:5]}")
    trainable = detector.trainable_parameters()
    max_diff = 0.0
    with torch.no_grad():
        for name, tensor in mapped.items():
            target = ours[name]
            if tuple(target.shape) != tuple(tensor.shape):
                raise ReleasedError(f"{name}: checkpoint shape {tuple(tensor.shape)}, detector {tuple(target.shape)}")
            if name in trainable:
                target.copy_(tensor.to(target.dtype))
            else:
                diff = (target.float() - tensor.float()).abs().max().item() if target.numel() else 0.0
                tol = 0.0 if tensor.dtype == torch.float32 else 1e-2 * max(1.0, target.abs().max().item())
                if diff > tol:
                    raise ReleasedError(f"{name}: frozen tensor differs from the backbone's by {diff:.3g}; the "
                                        "checkpoint was trained from other weights (check models.<name>.weights)")
                max_diff = max(max_diff, diff)
    return detector, {"loaded": len(mapped), "unused": unused, "frozen_max_diff": max_diff}


def convert_released(released_dir, backbone_dir, cfg: dict, adapter_path, log_path) -> dict:
    """The workflow's ``train`` job for ``kind: released``: write the published model as an adapter."""
    from .files import replacing
    from .train import LOG_SCHEMA

    gend_cfg, tensors = read_gend(released_dir)
    detector, report = map_gend(gend_cfg, tensors, load_backbone(backbone_dir))
    summary = {"backbone": cfg["backbone"], "cfg": cfg, "released": cfg.get("checkpoint"),
               "gend_config": {k: gend_cfg.get(k) for k in ("backbone", "head")}, "selected_by": "released",
               "best_epoch": None, "mapping": report,
               "trainable_parameters": sum(p.numel() for p in detector.trainable_parameters().values())}
    write_adapter(detector.trainable_parameters(), detector.config(), adapter_path, summary)
    with replacing(log_path) as tmp:
        pl.DataFrame([], schema=LOG_SCHEMA).write_parquet(tmp)
    log.info("released %s: %d tensors mapped, %d unused, frozen tensors equal the backbone's (max diff %.3g)",
             cfg.get("checkpoint"), report["loaded"], len(report["unused"]), report["frozen_max_diff"])
    return summary
