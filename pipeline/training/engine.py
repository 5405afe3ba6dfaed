"""How a model is trained on the machine (the ``engine:`` entry of a model): precision, attention
kernel, ``torch.compile``, gradient accumulation, checkpoint and log intervals, non-finite limit.

None of these changes what is learnt beyond floating-point order, except ``precision`` (bf16 vs
fp32). The intervals and the limit are left out of the resume identity (changing them resumes).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields

import torch
import torch.nn as nn

from pipeline.core import schema

# precision (auto: bf16 on a GPU, fp32 on a CPU), attention (transformers' attn_implementation), compile
# (False, True: inductor, or a torch.compile backend name), accumulate (micro-batches per optimiser step),
# checkpoint_every (optimiser steps between saved training states, and each epoch's end), log_every
# (optimiser steps between reads of the loss terms from the device), max_nonfinite (consecutive
# non-finite steps tolerated before training stops): the config schema's defaults.
DEFAULTS = schema.defaults("model", "engine")
# Settings that do not change the result: not part of the resume identity.
RUNTIME_KEYS = ("compile", "checkpoint_every", "log_every", "max_nonfinite")


@dataclass(frozen=True)
class Engine:
    precision: str = DEFAULTS["precision"]
    attention: str = DEFAULTS["attention"]
    compile: bool | str = DEFAULTS["compile"]
    accumulate: int = DEFAULTS["accumulate"]
    checkpoint_every: int = DEFAULTS["checkpoint_every"]
    log_every: int = DEFAULTS["log_every"]
    max_nonfinite: int = DEFAULTS["max_nonfinite"]

    @classmethod
    def from_cfg(cls, cfg: dict | None) -> "Engine":
        cfg = dict(cfg or {})
        unknown = set(cfg) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"engine: unknown keys {sorted(unknown)} (known: {sorted(DEFAULTS)})")
        engine = cls(**cfg)
        if engine.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"engine.precision must be auto, bf16 or fp32, got {engine.precision!r}")
        for key in ("accumulate", "checkpoint_every", "log_every"):
            if int(getattr(engine, key)) < 1:
                raise ValueError(f"engine.{key} must be >= 1, got {getattr(engine, key)}")
        return engine

    def dtype(self, device: torch.device) -> torch.dtype:
        """The compute dtype: bf16 or fp32 (``auto``: bf16 on CUDA)."""
        if self.precision == "auto":
            return torch.bfloat16 if device.type == "cuda" else torch.float32
        return torch.bfloat16 if self.precision == "bf16" else torch.float32


def autocast(device: torch.device, dtype: torch.dtype):
    """Autocast to ``dtype`` on ``device`` (CPU included); a no-op context for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def cast_frozen(backbone: nn.Module, dtype: torch.dtype) -> int:
    """Store the backbone's frozen weights in ``dtype`` (autocast then re-casts nothing per step).

    LayerNorms stay fp32 whether trained or not (they are the tuned part and autocast runs them in
    fp32), as does anything trainable. Returns the number of parameters cast."""
    if dtype == torch.float32:
        return 0
    n = 0
    for module in backbone.modules():
        if isinstance(module, nn.LayerNorm):
            continue
        for p in module.parameters(recurse=False):
            if not p.requires_grad and p.is_floating_point():
                p.data = p.data.to(dtype)
                n += p.numel()
    return n


def maybe_compile(backbone: nn.Module, setting: bool | str) -> None:
    """``torch.compile`` the backbone in place (parameter names unchanged) when asked."""
    if setting:
        backbone.compile(backend="inductor" if setting is True else str(setting), dynamic=False)
