"""One optimiser step without a host sync.

Everything the step returns is a device tensor (the loop reads them once per log interval); a
non-finite loss skips the optimiser step on the device (:func:`guarded_step`) instead of being
tested with ``if``; slerp's class indices come from the loader's CPU labels. Order as in the
reference: backbone features -> slerp (fp32) -> head -> loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.model import slerp_augment, slerp_expand
from .distributed import World, average_gradients, gather_features
from .engine import autocast
from .records import TERMS

# Per-step values, in the order the loop's log buffer stacks them.


@dataclass
class StepParts:
    """What a step needs besides the batch (built once per run)."""

    detector: torch.nn.Module
    opt: torch.optim.Optimizer
    loss_fn: object
    slerp: dict
    device: torch.device
    dtype: torch.dtype
    accumulate: int = 1
    world: World = World()


def _features(parts: StepParts, pixels: torch.Tensor) -> torch.Tensor:
    x = pixels.to(parts.device, non_blocking=True)
    x = parts.detector.normalize(x) if x.dtype == torch.uint8 else x
    with autocast(parts.device, parts.dtype):
        features = parts.detector.features(x)
    return features.float()  # the pooler output is a LayerNorm output: fp32 under autocast too


def _head_loss(parts: StepParts, features, labels_cpu, generator):
    """slerp (training) -> head -> loss; returns ``(loss, terms, logits, labels on the device)``."""
    y = labels_cpu.to(parts.device, non_blocking=True)
    if parts.slerp.get("enabled"):
        if parts.slerp.get("expand_to"):
            features, y_cpu = slerp_expand(features, labels_cpu, int(parts.slerp["expand_to"]), generator=generator)
            y = y_cpu.to(parts.device, non_blocking=True)
        else:
            features = slerp_augment(features, labels_cpu, generator=generator)
    with autocast(parts.device, parts.dtype):
        logits, z = parts.detector.head_forward(features)
    loss, terms = parts.loss_fn(logits.float(), z.float(), y, monitor=True)
    return loss, terms, logits, y


def _backward_accumulated(parts: StepParts, pixels, labels_cpu, generator):
    """Exact gradient accumulation for batch-wide losses (alignment, uniformity and slerp pair
    samples across the whole batch, so the loss does not split into micro-batch sums).

    Pass 1 takes every micro-batch's features without a graph; the loss and its gradient with
    respect to the features are computed on the full batch; pass 2 re-runs each micro-batch with a
    graph and back-propagates that gradient slice. Memory is one micro-batch's activations; the
    gradient equals the full batch's up to floating-point order (one extra forward per step)."""
    chunks = pixels.chunk(parts.accumulate)
    with torch.no_grad():
        features = torch.cat([_features(parts, c) for c in chunks])
    features.requires_grad_(True)
    loss, terms, logits, y = _head_loss(parts, features, labels_cpu, generator)
    loss.backward()
    if not parts.detector.ln_tuning:  # frozen backbone: the head's gradient is all there is
        return loss, terms, logits, y
    for chunk, grad in zip(chunks, features.grad.split([c.shape[0] for c in chunks])):
        _features(parts, chunk).backward(grad)
    return loss, terms, logits, y


def guarded_step(opt: torch.optim.Optimizer, finite: torch.Tensor) -> None:
    """``opt.step()`` whose effect is undone on the device when ``finite`` is False.

    The trainable tensors and the optimiser state are tiny (LayerNorms and head), so they are
    copied before the step and restored with ``torch.where`` - no ``if`` on a device value. A state
    the optimiser creates at its first step is restored to zeros (its initial value)."""
    params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
    before = {p: (p.detach().clone(), {k: v.clone() for k, v in opt.state.get(p, {}).items()
                                       if torch.is_tensor(v)}) for p in params}
    opt.step()
    with torch.no_grad():
        for p, (old, old_state) in before.items():
            p.copy_(torch.where(finite, p, old))
            for k, v in opt.state[p].items():
                if torch.is_tensor(v):
                    v.copy_(torch.where(finite.to(v.device), v, old_state.get(k, torch.zeros_like(v))))


def train_step(parts: StepParts, batch: dict, lr: float, generator: torch.Generator, labels=None) -> dict:
    """One optimiser step on ``batch`` at learning rate ``lr``; returns device scalars (:data:`TERMS`)
    and ``batch`` (the number of samples the loss saw, a Python int known without a sync).
    ``labels``: the whole global batch's labels (CPU) when this rank holds a slice of it."""
    for group in parts.opt.param_groups:
        group["lr"] = lr
    labels_cpu = batch["labels"] if labels is None else labels
    parts.opt.zero_grad(set_to_none=True)
    if parts.accumulate > 1:
        loss, terms, logits, y = _backward_accumulated(parts, batch["pixel_values"], labels_cpu, generator)
    else:
        features = gather_features(_features(parts, batch["pixel_values"]), parts.world)
        loss, terms, logits, y = _head_loss(parts, features, labels_cpu, generator)
        loss.backward()
    average_gradients(parts.detector.trainable_parameters().values(), parts.world)
    finite = torch.isfinite(loss.detach())
    guarded_step(parts.opt, finite)
    acc = (logits.detach().argmax(dim=1) == y).float().mean()
    fake_fraction = labels_cpu.to(parts.device, non_blocking=True).float().mean()
    return {**terms, "acc": acc, "fake_fraction": fake_fraction, "skipped": ~finite, "batch": int(y.shape[0])}
