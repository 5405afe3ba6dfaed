"""Published weights (``kind: released``) as one of our adapters, evaluated without training: GenD's
checkpoints and the LNCLIP-DF release.

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

The LNCLIP-DF release (``yermandy/deepfake-detection`` on the hub, arXiv 2503.19683) comes in two
layouts of one model, read as data only (:mod:`.release_files`). Its code (``src/model/dfdet.py``
of github.com/yermandy/deepfake-detection) wraps the CLIP vision tower in peft's LN-tuning
(``get_peft_model``), so a LayerNorm ``<ln>`` holds its tuned copy at
``<ln>.ln_tuning_layers.default.{weight,bias}`` and its frozen original at ``<ln>.base_layer.*``:

* ``model.ckpt``, a PyTorch Lightning checkpoint: ``state_dict`` with the tower under
  ``feature_extractor.base_model.model.vision_model.`` and the head ``model.linear.{weight,bias}``;
  ``hyper_parameters`` with the run's ``head`` (``LinearNorm``: logits of the L2-normalised
  feature; ``linear``: of the raw feature).
* ``model.torchscript``, the same model traced (16-bit, logits ``[B, 2]``, column 0 real): the
  same names under whatever prefix its wrapper adds; the head normalises when the traced graph holds
  a vector norm (tracing keeps only the operations the logits depend on).

:func:`map_lnclip` puts the tuned LayerNorms and the head on the detector (the frozen originals and
``position_ids`` are unused); every other tensor must equal the backbone's. A name that has no
place, a shape that differs, or a tensor missing refuses the checkpoint, naming it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from .records import write_log
from .release_files import ReleasedError, fields, plain, read_lightning, read_torchscript, release_layout
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
    exact = all(t.dtype == torch.float32 for t in state.values())
    max_diff = _take_layernorms(detector, tuned.state_dict(), exact=exact)
    _take_head(detector, head)
    return detector, {"loaded": len(state) + len(head), "unused": unused, "frozen_max_diff": max_diff}


@torch.no_grad()
def _take_layernorms(detector: Detector, sources: dict[str, torch.Tensor], exact: bool) -> float:
    """Copy the tuned backbone's trainable tensors (LayerNorms; ``sources``: its state dict) into
    ``detector``; every other tensor must equal the detector's backbone's (exactly for an fp32
    checkpoint). Returns the largest difference."""
    trainable = detector.trainable_parameters()
    max_diff = 0.0
    for name, target in detector.backbone.state_dict().items():
        source = sources.get(name)
        if source is None:  # position_ids of older transformers: a constant, not a weight
            continue
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


# ---------------------------------------------------------------------------- the LNCLIP-DF release

VISION = "vision_model."
PEFT_TUNED, PEFT_FROZEN = ".ln_tuning_layers.default.", ".base_layer."
HEAD_KEY = re.compile(r"(?:^|\.)linear\.(weight|bias)$")
NORM_OPS = {"aten::linalg_vector_norm", "aten::norm", "aten::frobenius_norm"}


@dataclass
class LnclipTensors:
    """A release's tensors sorted: the vision tower's in ``vision_model.`` names (``origin``: the
    checkpoint's name of each), the head's in the detector's names, and the names left over."""

    tower: dict
    origin: dict
    head: dict
    unused: list
    unknown: list


def split_lnclip(state: dict[str, torch.Tensor]) -> LnclipTensors:
    """Sort a release's state dict: ``<prefix>vision_model.<name>`` (one prefix for all; a peft
    tuned copy named as its LayerNorm, the frozen original and ``position_ids`` unused), the head
    ``<prefix>linear.{weight,bias}``, anything else unknown."""
    out = LnclipTensors({}, {}, {}, [], [])
    prefixes = set()
    for key, tensor in state.items():
        at, head = key.find(VISION), HEAD_KEY.search(key)
        if at >= 0:
            prefixes.add(key[:at])
            name = key[at:]
            if PEFT_FROZEN in name or name.endswith("position_ids"):
                out.unused.append(key)
                continue
            name = name.replace(PEFT_TUNED, ".")
            if name in out.tower:
                raise ReleasedError(f"{key} and {out.origin[name]} both hold {name}")
            out.tower[name], out.origin[name] = tensor, key
        elif head and f"head.{head.group(1)}" not in out.head:
            out.head[f"head.{head.group(1)}"] = tensor
        else:
            out.unknown.append(key)
    if len(prefixes) > 1:
        raise ReleasedError(f"the vision tower's tensors lie under several prefixes {sorted(prefixes)}")
    out.unused.sort()
    out.unknown.sort()
    return out


def _tower_sources(tensors: LnclipTensors, backbone: torch.nn.Module) -> tuple[dict, list[str]]:
    """The tower's tensors in the backbone's own state-dict names (with or without ``vision_model.``,
    as the installed transformers names them), and what does not fit: unknown names, other shapes,
    tensors missing."""
    expected = backbone.state_dict()
    sources, covered, problems = {}, set(), []
    for name, tensor in tensors.tower.items():
        ours = name if name in expected else name[len(VISION):]
        covered.add(ours)
        if ours not in expected:
            problems.append(f"{tensors.origin[name]}: no such tensor in the backbone")
        elif tuple(tensor.shape) != tuple(expected[ours].shape):
            problems.append(f"{tensors.origin[name]}: shape {tuple(tensor.shape)}, the backbone's "
                            f"{ours} is {tuple(expected[ours].shape)}")
        else:
            sources[ours] = tensor
    missing = [n for n in sorted(set(expected) - covered) if not n.endswith("position_ids")]
    return sources, problems + [f"the backbone's {n}: missing from the checkpoint" for n in missing]


def _head_problems(head: dict, hidden: int) -> list[str]:
    shapes = {"head.weight": (2, hidden), "head.bias": (2,)}
    return [f"model.linear.{n[5:]}: missing" if n not in head else
            f"model.linear.{n[5:]}: shape {tuple(head[n].shape)}, the detector's head.{n[5:]} is {shape}"
            for n, shape in shapes.items() if n not in head or tuple(head[n].shape) != shape]


def map_lnclip(state: dict[str, torch.Tensor], backbone: torch.nn.Module, l2_norm: bool) -> tuple[Detector, dict]:
    """A detector around ``backbone`` holding a release's tuned LayerNorms and head, and the mapping
    report ``{"loaded", "unused", "frozen_max_diff"}``. Raises :class:`ReleasedError` naming every
    tensor that has no place, has another shape or is missing, or (frozen ones) differs from the
    backbone's."""
    if backbone.config.model_type not in ("clip_vision_model", "clip"):
        raise ReleasedError(f"the LNCLIP-DF release is a CLIP vision tower but the backbone given for it is "
                            f"{backbone.config.model_type}; point the model's weights at openai/clip-vit-large-patch14")
    tensors = split_lnclip(state)
    sources, problems = _tower_sources(tensors, backbone)
    problems = [f"{k}: unknown" for k in tensors.unknown] + problems
    problems += _head_problems(tensors.head, backbone.config.hidden_size)
    if problems:
        raise ReleasedError(f"checkpoint does not match the backbone ({type(backbone).__name__}, hidden size "
                            f"{backbone.config.hidden_size}): " + "; ".join(problems[:8])
                            + (f"; and {len(problems) - 8} more" if len(problems) > 8 else ""))
    detector = Detector(backbone, ln_tuning=True, l2_norm=l2_norm)
    exact = all(t.dtype == torch.float32 for t in sources.values())
    max_diff = _take_layernorms(detector, sources, exact=exact)
    _take_head(detector, tensors.head)
    return detector, {"loaded": len(sources) + len(tensors.head), "unused": tensors.unused,
                      "frozen_max_diff": max_diff}


def lightning_head(ckpt: dict, path) -> bool:
    """``l2_norm`` of a Lightning checkpoint: its ``hyper_parameters``' ``head``."""
    head = plain(fields(ckpt.get("hyper_parameters")).get("head"))
    if head not in HEADS:
        raise ReleasedError(f"{path}: hyper_parameters name the head {head!r}; known: {', '.join(HEADS)}")
    return HEADS[head]


def torchscript_head(module: torch.jit.ScriptModule) -> bool:
    """``l2_norm`` of a traced model: whether its graph takes a vector norm (CLIP's tower takes none)."""
    return any(node.kind() in NORM_OPS for node in module.inlined_graph.nodes())


def read_lnclip(layout: str, path) -> tuple[dict, bool, dict]:
    """``(state dict, l2_norm, what was read)`` of the release's ``model.ckpt`` or ``model.torchscript``."""
    if layout == "lightning":
        ckpt, stand_ins = read_lightning(path)
        l2_norm = lightning_head(ckpt, path)
        return ckpt["state_dict"], l2_norm, {"head": "LinearNorm" if l2_norm else "linear", "stand_ins": stand_ins}
    state, module = read_torchscript(path)
    l2_norm = torchscript_head(module)
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in state.values() if t.is_floating_point()})
    return state, l2_norm, {"head": "LinearNorm" if l2_norm else "linear", "dtypes": dtypes}


# ---------------------------------------------------------------------------- the train job


def convert_released(released_dir, backbone_dir, cfg: dict, adapter_path, log_path) -> dict:
    """The workflow's ``train`` job for ``kind: released``: write the published model as an adapter.
    ``cfg["files"]``: the weights entry's files, where it lists them."""
    layout, source = release_layout(released_dir, cfg.get("files"))
    backbone = load_backbone(backbone_dir)
    if layout == "gend":
        gend_cfg, tensors = read_gend(source)
        detector, report = map_gend(gend_cfg, tensors, backbone)
        about = {"gend_config": {k: gend_cfg.get(k) for k in ("backbone", "head")}}
    else:
        state, l2_norm, read = read_lnclip(layout, source)
        detector, report = map_lnclip(state, backbone, l2_norm)
        about = {"release": {"layout": layout, "file": source.name, **read}}
    summary = {"backbone": cfg["backbone"], "cfg": cfg, "released": cfg.get("checkpoint"), **about,
               "selected_by": "released", "best_epoch": None, "mapping": report,
               "trainable_parameters": sum(p.numel() for p in detector.trainable_parameters().values())}
    write_adapter(detector.trainable_parameters(), detector.config(), adapter_path, summary)
    write_log([], log_path)
    log.info("released %s (%s): %d tensors mapped, %d unused, frozen tensors equal the backbone's (max diff %.3g)",
             cfg.get("checkpoint"), layout, report["loaded"], len(report["unused"]), report["frozen_max_diff"])
    return summary
