"""The LNCLIP-DF detector: a ViT backbone with LN-tuning and a (L2-normalised) linear head.

As in arXiv 2508.06248 and its code. The backbone is ``transformers.CLIPVisionModel`` (LNCLIP-DF)
or ``transformers.DINOv3ViTModel`` (GenD's DINOv3 variant); the feature is its ``pooler_output``:
the CLS token after the final LayerNorm (CLIP's ``post_layernorm``, before any projection; DINOv3's
``norm``). LN-tuning makes every ``nn.LayerNorm`` of the backbone trainable in place (functionally
identical to peft's LNTuning wrapper); everything else in the backbone is frozen. Each backbone
family brings the pixel mean/std its image processor uses (:data:`BACKBONES`);
:meth:`Detector.normalize` applies them.

Weights we write are safetensors holding only the trainable tensors (an "adapter", ~0.4 MB for
ViT-L/14) plus a JSON of the model flags and backbone id in the safetensors metadata. Never pickle.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save

from pipeline.core.files import canonical_safetensors, replacing

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # DINOv3ViTImageProcessor's
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Family:
    """A backbone family: its transformers class and the pixel statistics of its image processor."""

    model_class: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# ``model_type`` of a checkpoint's config.json -> family (a full CLIPModel checkpoint loads its vision tower).
BACKBONES = {
    "clip": Family("CLIPVisionModel", CLIP_MEAN, CLIP_STD),
    "clip_vision_model": Family("CLIPVisionModel", CLIP_MEAN, CLIP_STD),
    "dinov3_vit": Family("DINOv3ViTModel", IMAGENET_MEAN, IMAGENET_STD),
}


def family(model_type: str, where="backbone") -> Family:
    """The :class:`Family` of a config's ``model_type``; raises naming what is supported."""
    try:
        return BACKBONES[model_type]
    except KeyError:
        raise ValueError(f"{where}: model_type {model_type!r} is not a supported backbone; use a CLIP "
                         "(e.g. openai/clip-vit-large-patch14) or DINOv3 ViT (e.g. "
                         "facebook/dinov3-vitl16-pretrain-lvd1689m) checkpoint") from None


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """``uint8 [..., 3, H, W]`` (any device) -> float32 scaled to [0, 1], minus ``mean``, over ``std``."""
    mean = torch.as_tensor(mean, dtype=torch.float32).view(3, 1, 1).to(x.device, non_blocking=True)
    std = torch.as_tensor(std, dtype=torch.float32).view(3, 1, 1).to(x.device, non_blocking=True)
    return (x.to(torch.float32) / 255.0 - mean) / std


ADAPTER_FORMAT = "lnclip-df-adapter/1"


# --------------------------------------------------------------------------------------------
# Backbone


@contextlib.contextmanager
def quiet_transformers():
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
    """Load a backbone from a hub id or a local directory (same code path), in fp32.

    A CLIP vision tower, from a saved full ``CLIPModel`` (e.g. ``openai/clip-vit-large-patch14``; its
    text tower and projections are ignored) or a saved ``CLIPVisionModel``; or a ``DINOv3ViTModel``
    (e.g. ``facebook/dinov3-vitl16-pretrain-lvd1689m``). The family comes from the checkpoint's
    ``config.json``. Raises if any backbone weight is missing from the checkpoint (which would
    otherwise be silently random-initialised).
    ``attn_implementation``: transformers' attention kernel (``sdpa``, ``eager``, ...; None = its default).
    """
    import transformers
    from transformers import AutoConfig

    with quiet_transformers():
        model_type = AutoConfig.from_pretrained(str(name_or_path)).model_type
        model_class = getattr(transformers, family(model_type, str(name_or_path)).model_class)
        model, info = model_class.from_pretrained(
            str(name_or_path), output_loading_info=True, dtype=torch.float32, attn_implementation=attn_implementation
        )
    missing = info.get("missing_keys") or []
    mismatched = info.get("mismatched_keys") or []
    if missing or mismatched:
        raise ValueError(
            f"{name_or_path}: not a complete {model_class.__name__} checkpoint; missing {sorted(missing)[:5]}, "
            f"mismatched {list(mismatched)[:5]}"
        )
    return model


def save_random_backbone(out_dir, config: dict, seed: int, with_text: bool = True) -> Path:
    """Save a randomly initialised (tiny) backbone with ``save_pretrained`` - for the demo and tests.

    ``config`` holds a ``CLIPVisionConfig``'s fields, or ``model_type: dinov3_vit`` and a
    ``DINOv3ViTConfig``'s fields (a bare ``DINOv3ViTModel``, the format of the hub's DINOv3). For
    CLIP with ``with_text`` a full ``CLIPModel`` with a tiny text tower is saved, i.e. the same
    checkpoint format as ``openai/clip-vit-large-patch14``; otherwise a bare ``CLIPVisionModel``.
    """
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel, DINOv3ViTConfig, DINOv3ViTModel

    out_dir = Path(out_dir)
    config = dict(config)
    torch.manual_seed(seed)
    model_type = config.pop("model_type", "clip_vision_model")
    if model_type not in ("clip_vision_model", "dinov3_vit"):
        raise ValueError(f"random backbone: model_type {model_type!r}; use clip_vision_model (default) or dinov3_vit")
    if model_type == "dinov3_vit":
        model = DINOv3ViTModel(DINOv3ViTConfig(**config))
    elif with_text:
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
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=config, projection_dim=16))
    else:
        model = CLIPVisionModel(CLIPVisionConfig(**config))
    with quiet_transformers():
        model.save_pretrained(out_dir)
    return out_dir


def square_size(image_size) -> int:
    """A config's ``image_size`` (an int, or ``[h, w]`` with h == w) as one int."""
    sizes = {int(s) for s in image_size} if isinstance(image_size, (list, tuple)) else {int(image_size)}
    if len(sizes) != 1:
        raise ValueError(f"backbone image_size {image_size!r} is not square; the detector takes square crops")
    return sizes.pop()


# --------------------------------------------------------------------------------------------
# Detector


class Detector(nn.Module):
    """ViT backbone (CLIP vision tower or DINOv3) + linear head; logit 0 = real, 1 = fake.

    * ``ln_tuning``: every LayerNorm of the backbone is trainable (weight + bias), the rest frozen.
    * ``l2_norm``: the head sees the L2-normalised feature (LinearNorm head); else the raw feature.
    The normalised feature ``z`` is always returned too: the metric losses act on it.
    :meth:`forward` takes normalised pixels: :meth:`normalize` makes them from ``uint8`` crops with
    the backbone family's mean/std.
    """

    def __init__(self, backbone: nn.Module, ln_tuning: bool, l2_norm: bool, num_classes: int = 2):
        super().__init__()
        self.backbone = backbone
        self.ln_tuning = bool(ln_tuning)
        self.l2_norm = bool(l2_norm)
        self.num_classes = int(num_classes)
        self.hidden_size = int(backbone.config.hidden_size)
        self.image_size = square_size(backbone.config.image_size)
        stats = family(backbone.config.model_type)
        for name, values in (("pixel_mean", stats.mean), ("pixel_std", stats.std)):  # constants: never saved
            self.register_buffer(name, torch.tensor(values, dtype=torch.float32).view(3, 1, 1), persistent=False)
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

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """``uint8 [..., 3, H, W]`` crops -> the backbone's float32 input (its family's mean/std)."""
        return normalize(pixels, self.pixel_mean, self.pixel_std)

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``pooler_output`` of the backbone (the CLS token after its last LayerNorm), ``[B, hidden]``.

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
