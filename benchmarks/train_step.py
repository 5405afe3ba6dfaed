"""Training images/s of our step vs a straightforward reference step, same model, same run.

    python benchmarks/train_step.py [--quick] [--steps 4] [--batch N] [--compile]

On a CUDA GPU: CLIP ViT-L/14 at batch 128 in bf16. On a CPU: a ViT-B/16-sized CLIP vision tower
(hidden 768, 12 layers, 224 px) at a small batch (default 8). Both in bf16 by default (``--precision`` sets ours).
Random weights (the speed does not depend on them); random uint8 images and labels.

* reference: eager HF CLIP (attn_implementation="eager"), fp32 weights under bf16 autocast (every
  frozen weight re-cast at every forward), the reference's slerp loop, ``.item()`` on every loss
  term and ``isfinite`` tested on the host before ``optimizer.step()`` (foreach AdamW), float32
  batches normalised on the host;
* ours: :func:`pipeline.training.step.train_step`: frozen weights stored in bf16 (LayerNorms and
  head fp32), SDPA attention, fused AdamW, uint8 batches normalised on the device, no host sync
  (values read once per run here), optionally ``torch.compile`` (``--compile``).

Prints training images/s of each and their ratio, inference images/s of ours, and on a GPU the
model FLOPs utilisation (MFU) from the forward FLOPs (backward through activations only: LN-tuning
needs no weight gradients of the frozen matmuls, so a step costs about 2x the forward).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from faces_workers import cpu_name  # noqa: E402

from pipeline.model.losses import LossConfig, slerp  # noqa: E402
from pipeline.model.detector import Detector  # noqa: E402
from pipeline.core.config import defaults  # noqa: E402
from pipeline.training.optimizers import make_optimizer  # noqa: E402
from pipeline.training.engine import Engine, autocast, cast_frozen, maybe_compile  # noqa: E402
from pipeline.training.step import StepParts, train_step  # noqa: E402

VIT_L14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
               image_size=224, patch_size=14)
VIT_B16 = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
               image_size=224, patch_size=16)
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, per GPU
LOSS = {"label_smoothing": 0.1, "alignment": 0.1, "uniformity": 0.5}


def forward_flops(cfg: dict) -> float:
    """Multiply-adds x 2 of one image's forward through the vision tower (matmuls and attention)."""
    d, m, n_layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    t = (cfg["image_size"] // cfg["patch_size"]) ** 2 + 1
    per_layer = 4 * t * d * d + 2 * t * d * m + 2 * t * t * d
    return 2.0 * (n_layers * per_layer + (t - 1) * 3 * cfg["patch_size"] ** 2 * d)


def make_detector(cfg: dict, attention: str, device) -> Detector:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    backbone = CLIPVisionModel(CLIPVisionConfig(**cfg, attn_implementation=attention))
    return Detector(backbone, ln_tuning=True, l2_norm=True).to(device).train()


def reference_slerp(features, labels):
    out = features.clone()
    for label in torch.unique(labels):
        idx = labels == label
        fc = out[idx]
        if fc.shape[0] < 2:
            continue
        perm = torch.randperm(fc.shape[0])
        t = torch.rand(fc.shape[0], 1, device=features.device)
        out[idx] = slerp(fc, fc[perm.to(features.device)], t)
    return out


def reference_step(detector, opt, loss_fn, pixels_u8, labels, device, logs):
    """The straightforward step: float batch built on the host, eager fp32 model under autocast."""
    x = detector.normalize(pixels_u8).to(device)
    y = labels.to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        features = detector.features(x)
    features = reference_slerp(features.float(), y)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        logits, z = detector.head_forward(features)
    loss, parts = loss_fn(logits.float(), z.float(), y, monitor=True)
    opt.zero_grad(set_to_none=True)
    if torch.isfinite(loss):
        loss.backward()
        opt.step()
    logs.append({k: v.item() for k, v in parts.items()} | {"acc": (logits.argmax(1) == y).float().mean().item()})


def timed(fn, steps: int, device) -> float:
    fn()  # warm-up (and compilation)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 timed steps")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also torch.compile our backbone")
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="bf16",
                    help="ours (engine.precision), bf16 like the reference by default")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    cfg = VIT_L14 if gpu else VIT_B16
    batch = a.batch or (128 if gpu else 8)
    steps = 2 if a.quick else a.steps
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (batch, 3, 224, 224), dtype=torch.uint8, generator=g)
    labels = torch.arange(batch) % 2
    loss_fn = LossConfig.from_dict(LOSS)

    ref = make_detector(cfg, "eager", device)
    ref_opt = make_optimizer(ref.trainable_parameters(), defaults("model", "optim"), 1e-4)
    logs: list = []
    t_ref = timed(lambda: reference_step(ref, ref_opt, loss_fn, pixels, labels, device, logs), steps, device)
    del ref, ref_opt

    dtype = Engine(precision=a.precision).dtype(device)
    ours = make_detector(cfg, "sdpa", device)
    cast_frozen(ours.backbone, dtype)
    maybe_compile(ours.backbone, a.compile)
    parts = StepParts(ours, make_optimizer(ours.trainable_parameters(), defaults("model", "optim"), 1e-4, fused=True),
                      loss_fn, {"enabled": True}, device, dtype)
    batch_in = {"pixel_values": pixels.pin_memory() if gpu else pixels, "labels": labels}
    gen = torch.Generator().manual_seed(0)
    t_ours = timed(lambda: train_step(parts, batch_in, 1e-4, gen), steps, device)

    def infer():
        with torch.inference_mode(), autocast(device, dtype):
            ours.eval()(ours.normalize(pixels.to(device, non_blocking=True)))
    t_inf = timed(infer, steps, device)

    name = torch.cuda.get_device_name() if gpu else f"{cpu_name()} ({a.threads} threads)"
    size = "ViT-L/14" if gpu else "ViT-B/16-sized"
    ours_ips, ref_ips = batch / t_ours, batch / t_ref
    print(f"device: {name}; {size} CLIP vision tower, batch {batch}, {steps} timed steps")
    print(f"reference step (fp32 weights, bf16 autocast): {ref_ips:.2f} images/s ({t_ref * 1e3:.0f} ms/step)")
    print(f"our step ({str(dtype).removeprefix('torch.')}{', compiled' if a.compile else ''}): {ours_ips:.2f} images/s "
          f"({t_ours * 1e3:.0f} ms/step)")
    print(f"inference (ours): {batch / t_inf:.2f} images/s")
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if gpu and k in name), None)
    if peak:
        print(f"MFU (ours, training, 2x forward FLOPs): {2 * forward_flops(cfg) * ours_ips / (peak * 1e12):.1%}")
    else:
        print("MFU: n/a (no peak bf16 figure for this device)")
    print(f"ours_images_per_s={ours_ips:.2f} reference_images_per_s={ref_ips:.2f} ratio={ours_ips / ref_ips:.2f}")


if __name__ == "__main__":
    main()
