"""The LNCLIP-DF detector: a CLIP vision tower with LN-tuning and a (L2-normalised) linear head.

As in arXiv 2508.06248 and its code. The backbone is ``transformers.CLIPVisionModel``; the
feature is its ``pooler_output`` (CLS token after ``post_layernorm``, before any projection).
LN-tuning makes every ``nn.LayerNorm`` of the backbone trainable in place (functionally identical
to peft's LNTuning wrapper); everything else in the backbone is frozen.

Weights we write are safetensors holding only the trainable tensors (an "adapter", ~0.4 MB for
ViT-L/14) plus a JSON of the model flags and backbone id in the safetensors metadata. Never pickle.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save

from .files import canonical_safetensors, replacing

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

ADAPTER_FORMAT = "lnclip-df-adapter/1"


# --------------------------------------------------------------------------------------------
# Backbone


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' load report (the text tower of a full CLIP checkpoint is UNEXPECTED)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_backbone(name_or_path: str | os.PathLike, attn_implementation: str | None = None):
    """Load the CLIP vision tower from a hub id or a local directory (same code path), in fp32.

    Works for a saved full ``CLIPModel`` (e.g. ``openai/clip-vit-large-patch14``; its text tower and
    projections are ignored) and for a saved ``CLIPVisionModel``. Raises if any vision weight is
    missing from the checkpoint (which would otherwise be silently random-initialised).
    ``attn_implementation``: transformers' attention kernel (``sdpa``, ``eager``, ...; None = its default).
    """
    from transformers import CLIPVisionModel

    with _quiet_transformers():
        model, info = CLIPVisionModel.from_pretrained(
            str(name_or_path), output_loading_info=True, dtype=torch.float32, attn_implementation=attn_implementation
        )
    missing = info.get("missing_keys") or []
    mismatched = info.get("mismatched_keys") or []
    if missing or mismatched:
        raise ValueError(
            f"{name_or_path}: not a CLIP vision checkpoint; missing {sorted(missing)[:5]}, "
            f"mismatched {list(mismatched)[:5]}"
        )
    return model


def save_random_backbone(out_dir, vision_config: dict, seed: int, with_text: bool = True) -> Path:
    """Save a randomly initialised (tiny) CLIP with ``save_pretrained`` - for the demo and tests.

    With ``with_text`` a full ``CLIPModel`` with a tiny text tower is saved, i.e. the same checkpoint
    format as ``openai/clip-vit-large-patch14``; otherwise a bare ``CLIPVisionModel``.
    """
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel

    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    if with_text:
        text = dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            vocab_size=128,
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
        config = CLIPConfig(text_config=text, vision_config=dict(vision_config), projection_dim=16)
        model = CLIPModel(config)
    else:
        model = CLIPVisionModel(CLIPVisionConfig(**vision_config))
    with _quiet_transformers():
        model.save_pretrained(out_dir)
    return out_dir


# --------------------------------------------------------------------------------------------
# Detector


class Detector(nn.Module):
    """CLIP vision backbone + linear head; logit 0 = real, 1 = fake.

    * ``ln_tuning``: every LayerNorm of the backbone is trainable (weight + bias), the rest frozen.
    * ``l2_norm``: the head sees the L2-normalised feature (LinearNorm head); else the raw feature.
    The normalised feature ``z`` is always returned too: the metric losses act on it.
    """

    def __init__(self, backbone: nn.Module, ln_tuning: bool, l2_norm: bool, num_classes: int = 2):
        super().__init__()
        self.backbone = backbone
        self.ln_tuning = bool(ln_tuning)
        self.l2_norm = bool(l2_norm)
        self.num_classes = int(num_classes)
        self.hidden_size = int(backbone.config.hidden_size)
        self.image_size = int(backbone.config.image_size)
        self.head = nn.Linear(self.hidden_size, self.num_classes, bias=True)
        backbone.requires_grad_(False)
        if self.ln_tuning:
            for module in backbone.modules():
                if isinstance(module, nn.LayerNorm):
                    module.requires_grad_(True)

    def config(self) -> dict:
        """The flags needed to rebuild this detector around the same backbone."""
        return {
            "ln_tuning": self.ln_tuning,
            "l2_norm": self.l2_norm,
            "num_classes": self.num_classes,
            "hidden_size": self.hidden_size,
            "image_size": self.image_size,
        }

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``pooler_output`` of the backbone, ``[B, hidden]``.

        When no backbone parameter is trainable (linear probe) it runs without building a graph.
        """
        grad = self.ln_tuning and torch.is_grad_enabled()
        with torch.set_grad_enabled(grad):
            return self.backbone(pixel_values=pixel_values).pooler_output

    def head_forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, z)`` with ``z = normalize(features)`` and logits from z (l2_norm) or features."""
        z = F.normalize(features, p=2, dim=1)
        logits = self.head(z if self.l2_norm else features)
        return logits, z

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head_forward(self.features(pixel_values))


# --------------------------------------------------------------------------------------------
# Adapter files


def save_adapter(detector: Detector, path, meta: dict) -> None:
    """Write ONLY the trainable tensors of ``detector`` to ``path`` (safetensors, atomic).

    The safetensors metadata holds ``format`` and ``meta`` (JSON): the caller's ``meta`` (backbone
    id, config, training summary) plus ``model`` = ``detector.config()``.
    """
    write_adapter(detector.trainable_parameters(), detector.config(), path, meta)


def write_adapter(tensors: dict, model_flags: dict, path, meta: dict) -> None:
    """Write an adapter file from named tensors and the detector flags (see :func:`save_adapter`);
    byte-identical for equal inputs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {n: t.detach().to("cpu", torch.float32).contiguous() for n, t in tensors.items()}
    full_meta = dict(meta)
    full_meta["model"] = dict(model_flags)
    data = save(tensors, metadata={"format": ADAPTER_FORMAT, "meta": json.dumps(full_meta, sort_keys=True)})
    with replacing(path) as tmp:
        tmp.write_bytes(canonical_safetensors(data))


def read_adapter_meta(path) -> dict:
    """The ``meta`` JSON of an adapter file (raises if the file is not one of ours)."""
    with safe_open(str(path), framework="pt") as f:
        md = f.metadata() or {}
    if md.get("format") != ADAPTER_FORMAT:
        raise ValueError(f"{path}: not an LNCLIP-DF adapter (format {md.get('format')!r})")
    return json.loads(md["meta"])


def load_detector(adapter_path, backbone_path, device="cpu") -> tuple[Detector, dict]:
    """Rebuild the detector described by an adapter file and load its tensors.

    Strict: every adapter tensor must name a trainable parameter of the rebuilt detector with the
    same shape, and every trainable parameter must be in the adapter.
    """
    meta = read_adapter_meta(adapter_path)
    flags = meta["model"]
    detector = Detector(
        load_backbone(backbone_path),
        ln_tuning=flags["ln_tuning"],
        l2_norm=flags["l2_norm"],
        num_classes=flags.get("num_classes", 2),
    )
    tensors = load_file(str(adapter_path))
    params = detector.trainable_parameters()
    unknown = sorted(set(tensors) - set(params))
    missing = sorted(set(params) - set(tensors))
    if unknown or missing:
        raise ValueError(
            f"{adapter_path} does not match backbone {backbone_path}: "
            f"unknown tensors {unknown[:5]}, missing tensors {missing[:5]}"
        )
    with torch.no_grad():
        for name, tensor in tensors.items():
            if params[name].shape != tensor.shape:
                raise ValueError(
                    f"{adapter_path}: {name} has shape {tuple(tensor.shape)}, "
                    f"the model expects {tuple(params[name].shape)}"
                )
            params[name].copy_(tensor)
    return detector.to(device).eval(), meta


# --------------------------------------------------------------------------------------------
# Device helpers


def pick_device(preferred: str | None = None) -> torch.device:
    """``preferred`` if given (error if it is CUDA and none is available), else cuda if available."""
    if preferred:
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {preferred!r} requested but CUDA is not available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device):
    """bf16 autocast on CUDA; a no-op context on CPU (training on CPU stays fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
