"""Every GPU path of the pipeline in one command, one JSON line out.

    python benchmarks/gpu_check.py            # on a CUDA machine (about 3-5 minutes on one GPU)
    python benchmarks/gpu_check.py --cpu      # the same code on the CPU, small sizes (the test suite)

Runs the pipeline's own code (no re-implementation) item by item; an item that fails records
``"ok": false`` and its error, and the others still run:

* ``train_tiny``, ``train_vit_l14``: bf16 training steps (:func:`pipeline.training.step.train_step`:
  frozen weights stored in bf16, autocast, fused AdamW) of the demo's tiny CLIP and of a randomly
  initialised CLIP ViT-L/14 vision tower at batch 128: images/s, peak memory, and for ViT-L/14 the
  MFU defined as images/s over 2,400 (the physical limit of LN-tuned ViT-L/14 on one H100);
* ``fused_adamw``: :func:`~pipeline.training.optimizers.make_optimizer` with ``fused=True`` gives the
  same parameters as the foreach AdamW, and keeps its step counters on the device;
* ``sync_free`` (CUDA only): training steps under ``torch.cuda.set_sync_debug_mode("error")``;
* ``evaluation``: :func:`pipeline.evaluation.predict_frames` (the evaluate rule's scoring) over a shard
  written by the pipeline's shard writer: crops/s;
* ``face_alignment``: the faces stage (:func:`pipeline.faces.extract_video`) with the face_alignment
  backend on the device: frames/s (random weights in the package's file format unless the real ones
  are in ``resources/weights/face_alignment`` or ``--face-weights``);
* ``ddp``: one step with one process per visible GPU (NCCL; with one GPU a world of 1, which still
  creates an NCCL communicator and all-reduces through it; 2 gloo processes with ``--cpu``) through
  :mod:`pipeline.training.distributed`, whose gradient must equal one process's;
* ``compile_inductor``: ``torch.compile`` with Inductor (:func:`~pipeline.training.engine.maybe_compile`):
  the same loss and gradient as eager, compiled images/s (and, on CUDA, no host sync).

With ``--cpu`` the ViT-L/14 items keep ViT-L/14's widths but one layer at 56 px and a small batch;
CUDA-only items are ``"status": "skipped"`` with their reason. Progress goes to stderr; stdout holds
only the JSON line. Exit status 0 when no item failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import socket
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from train_step import LOSS, VIT_L14, forward_flops, make_detector, timed  # noqa: E402

from pipeline.core import config  # noqa: E402

H100_LIMIT = 2400.0  # images/s: the physical limit of LN-tuned ViT-L/14 training on one H100 (bf16)
MFU_DEFINITION = "images_per_s / 2400 (2,400 images/s: the physical limit of LN-tuned ViT-L/14 training on one H100)"


@dataclass(frozen=True)
class Sizes:
    tiny_batch: int
    large: dict
    large_name: str
    large_batch: int
    steps: int
    fa_frames: int
    fa_frame_size: tuple[int, int]
    fa_detect_side: int | None
    eval_crops: int


GPU_SIZES = Sizes(128, VIT_L14, "ViT-L/14", 128, 10, 64, (1280, 720), 720, 4096)
CPU_SIZES = Sizes(8, VIT_L14 | {"num_hidden_layers": 1, "image_size": 28}, "ViT-L/14 widths, 1 of 24 layers, 28 px",
                  2, 2, 2, (320, 180), 90, 24)


@dataclass
class Ctx:
    device: torch.device
    sizes: Sizes
    tmp: Path
    face_weights: Path | None
    eval_workers: int

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


class Skip(Exception):
    """The item cannot run here (the reason is the message)."""


class Failed(Exception):
    """The item ran and its result is wrong; ``figures`` are kept in its entry."""

    def __init__(self, message: str, **figures):
        super().__init__(message)
        self.figures = figures


def log(msg: str) -> None:
    print(f"[gpu_check] {msg}", file=sys.stderr, flush=True)


def tiny_config() -> dict:
    """The demo's tiny CLIP (``weights.tiny_clip.random`` of config/demo.yaml) as CLIPVisionConfig fields."""
    cfg = dict(config.load(ROOT / "config" / "demo.yaml")["weights"]["tiny_clip"]["random"])
    cfg.pop("seed", None)
    return cfg


def build_parts(ctx: Ctx, cfg: dict, world=None, compile_: bool = False, precision: str = "bf16"):
    """The training run's pieces as :func:`pipeline.training.loop.prepare` builds them, around a random backbone."""
    from pipeline.model.losses import LossConfig
    from pipeline.training.distributed import World
    from pipeline.training.engine import Engine, cast_frozen, maybe_compile
    from pipeline.training.optimizers import make_optimizer
    from pipeline.training.step import StepParts

    dtype = Engine(precision=precision).dtype(ctx.device)
    with torch.device(ctx.device):  # random init on the device (ViT-L/14 in seconds)
        detector = make_detector(cfg, "sdpa", ctx.device)
    n_bf16 = cast_frozen(detector.backbone, dtype)
    maybe_compile(detector.backbone, compile_)
    opt = make_optimizer(detector.trainable_parameters(), config.defaults("model", "optim"), 1e-4, fused=True)
    parts = StepParts(detector, opt, LossConfig.from_dict(LOSS), {"enabled": True}, ctx.device, dtype,
                      world=world or World())
    return parts, n_bf16


def make_batch(ctx: Ctx, cfg: dict, n: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    size = cfg["image_size"]
    pixels = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return {"pixel_values": pixels.pin_memory() if ctx.cuda else pixels, "labels": torch.arange(n) % 2}


def peak_mib(ctx: Ctx):
    return round(torch.cuda.max_memory_allocated(ctx.device) / 2**20, 1) if ctx.cuda else None


def reset_peak(ctx: Ctx) -> None:
    if ctx.cuda:
        torch.cuda.synchronize(ctx.device)
        torch.cuda.reset_peak_memory_stats(ctx.device)


def train_figures(ctx: Ctx, cfg: dict, batch: int, name: str) -> dict:
    from pipeline.training.step import train_step

    reset_peak(ctx)
    parts, n_bf16 = build_parts(ctx, cfg)
    data, gen, outs = make_batch(ctx, cfg, batch), torch.Generator().manual_seed(0), []
    seconds = timed(lambda: outs.append(train_step(parts, data, 1e-4, gen)), ctx.sizes.steps, ctx.device)
    loss, skipped = float(outs[-1]["loss"]), bool(outs[-1]["skipped"])  # read once, after the timing
    figures = {"model": name, "config": cfg, "batch": batch, "dtype": str(parts.dtype).removeprefix("torch."),
               "frozen_params_bf16": n_bf16, "steps_timed": ctx.sizes.steps, "images_per_s": round(batch / seconds, 2),
               "ms_per_step": round(seconds * 1e3, 2), "peak_memory_mib": peak_mib(ctx), "last_loss": loss}
    if skipped or not math.isfinite(loss) or n_bf16 == 0:
        raise Failed(f"{name}: non-finite loss or nothing stored in bf16", **figures)
    return figures


def check_train_tiny(ctx: Ctx) -> dict:
    return train_figures(ctx, tiny_config(), ctx.sizes.tiny_batch, "demo tiny_clip")


def mfu_figures(ctx: Ctx, cfg: dict, images_per_s: float) -> dict:
    full = cfg == VIT_L14
    out = {"mfu": round(images_per_s / H100_LIMIT, 4) if full else None, "mfu_definition": MFU_DEFINITION,
           "model_tflops_per_s": float(f"{2 * forward_flops(cfg) * images_per_s / 1e12:.4g}"),
           "tflops_definition": "2 x forward FLOPs per image x images/s (LN-tuning: no weight gradients "
                                "of the frozen matmuls)"}
    return out if full else out | {"mfu_note": "only for the full ViT-L/14"}


def check_train_vit_l14(ctx: Ctx) -> dict:
    cfg = ctx.sizes.large
    figures = train_figures(ctx, cfg, ctx.sizes.large_batch, ctx.sizes.large_name)
    return figures | mfu_figures(ctx, cfg, figures["images_per_s"])


def check_fused_adamw(ctx: Ctx) -> dict:
    from pipeline.training.optimizers import make_optimizer

    parts, _ = build_parts(ctx, tiny_config())
    named = parts.detector.trainable_parameters()
    g = torch.Generator(device=ctx.device).manual_seed(0)
    grads = [{n: torch.randn(p.shape, generator=g, device=ctx.device) for n, p in named.items()} for _ in range(3)]
    result = {}
    for fused in (True, False):
        params = {n: p.detach().clone().requires_grad_(True) for n, p in named.items()}  # same start
        opt = make_optimizer(params, config.defaults("model", "optim"), 1e-3, fused=fused)
        for step in grads:
            for n, p in params.items():
                p.grad = step[n].clone()
            opt.step()
        result[fused] = (opt, params)
    opt, fused_params = result[True]
    diff = max(float((fused_params[n] - result[False][1][n]).detach().abs().max()) for n in named)
    moved = max(float((fused_params[n] - named[n]).detach().abs().max()) for n in named)
    steps_on = sorted({str(st["step"].device.type) for st in opt.state.values()})
    figures = {"fused": bool(opt.defaults.get("fused")), "params": sum(p.numel() for p in named.values()),
               "max_abs_diff_vs_foreach": diff, "max_abs_update": moved, "step_counter_on": steps_on}
    if not figures["fused"] or diff > 1e-5 or moved == 0 or steps_on != [ctx.device.type]:
        raise Failed("fused AdamW differs from foreach AdamW, moved nothing, or keeps its step off the device",
                     **figures)
    return figures


def check_sync_free(ctx: Ctx) -> dict:
    from pipeline.training.step import train_step

    if not ctx.cuda:
        raise Skip("CUDA only: torch.cuda.set_sync_debug_mode reports host syncs of CUDA work")
    models = []
    for cfg, batch, name in ((tiny_config(), ctx.sizes.tiny_batch, "demo tiny_clip"),
                             (ctx.sizes.large, ctx.sizes.large_batch, ctx.sizes.large_name)):
        parts, _ = build_parts(ctx, cfg)
        data, gen = make_batch(ctx, cfg, batch), torch.Generator().manual_seed(0)
        torch.cuda.synchronize(ctx.device)
        torch.cuda.set_sync_debug_mode("error")
        try:  # the first step (optimiser state created) and a later one
            for _ in range(2):
                train_step(parts, data, 1e-4, gen)
        finally:
            torch.cuda.set_sync_debug_mode(0)
        torch.cuda.synchronize(ctx.device)
        models.append(name)
        del parts
    return {"models": models, "steps_each": 2, "mode": "error"}


def write_eval_shard(ctx: Ctx, n: int):
    """``n`` 256-px QOI crops (the astronaut, shifted, 8 brightness levels) in one shard written by the
    pipeline's writer; returns its table and the encoded crops."""
    import cv2
    import numpy as np
    import polars as pl
    from skimage import data as skdata

    from pipeline.core import codec, tables
    from pipeline.core.shards import write_shard

    base = cv2.resize(np.ascontiguousarray(skdata.astronaut()[0:300, 100:400]), (256, 256))
    tar, table = ctx.tmp / "eval-00000.tar", ctx.tmp / "eval-00000.parquet"
    crops = []
    with write_shard(tar, table) as shard:
        for i in range(n):
            vid, label = f"v{i // 8:05d}", (i // 8) % 2
            shifted = np.roll(base, (i * 7) % 256, axis=1) * (0.3 + 0.1 * (i % 8))
            crop = codec.encode(np.ascontiguousarray(shifted.clip(0, 255).astype(np.uint8)))
            key = tables.sample_key(vid, i % 8)
            rec = {"dataset": "gpu_check", "video_id": vid, "split": "test", "label": label,
                   "method": "DF" if label else "real", "frame_idx": i % 8, "key": key, "status": "ok"}
            shard.add(rec, crop, {"video_id": vid, "label": label})
            crops.append(crop)
    return pl.read_parquet(table), crops


def check_evaluation(ctx: Ctx) -> dict:
    from pipeline.evaluation import predict_frames, score_crops

    frames, crops = write_eval_shard(ctx, ctx.sizes.eval_crops)
    with torch.device(ctx.device):
        detector = make_detector(ctx.sizes.large, "sdpa", ctx.device).eval()  # fp32, as load_detector gives it
        torch.nn.init.normal_(detector.head.weight, std=1.0)  # scores that differ between crops: a mix-up shows
    batch = config.defaults("evaluate")["batch_size"]
    kw = dict(batch_size=batch, device=ctx.device, workers=ctx.eval_workers)
    predict_frames(detector, frames.head(batch), **kw)  # warm-up
    reset_peak(ctx)
    t0 = time.perf_counter()
    scores = predict_frames(detector, frames, **kw)
    seconds = time.perf_counter() - t0
    again = score_crops(detector, crops[:8], batch_size=8, device=ctx.device)
    p = scores["p_fake"]
    gap, spread = max(abs(a - b) for a, b in zip(again, p.head(8).to_list())), max(again) - min(again)
    figures = {"model": ctx.sizes.large_name, "crops": scores.height, "batch_size": batch, "workers": ctx.eval_workers,
               "crops_per_s": round(scores.height / seconds, 2), "peak_memory_mib": peak_mib(ctx),
               "max_gap_vs_score_crops": gap, "p_fake_spread": spread}
    if scores.height != frames.height or not p.is_finite().all() or not p.is_between(0, 1).all() \
            or not gap <= 0.05 * spread:
        raise Failed("scores missing, out of [0, 1], or different from score_crops on the same crops", **figures)
    return figures


def random_face_weights(root: Path) -> Path:
    """2D-FAN and S3FD with random weights, saved as the state dicts face-alignment loads.

    S3FD's score and box heads are zeroed, with biases that make only its coarsest anchors (stride
    128) score as faces, at their anchor boxes: with all-random heads every anchor scores about 0.5
    and the package's per-anchor Python decoding and NMS of ~10^5 boxes per HD frame, not the
    networks, would be what is timed. Both networks' bodies stay random and run in full."""
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    from pipeline.faces import checkpoints_dir, weight_urls

    ckpt = checkpoints_dir(root)
    ckpt.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    detector = s3fd()
    with torch.no_grad():
        for name, module in detector.named_children():
            if name.endswith(("_mbox_conf", "_mbox_loc")):
                module.weight.zero_()
                module.bias.zero_()
            if name.endswith("_mbox_conf"):  # background first (3 max-out channels at stride 4), face last
                module.bias[:-1] = -4.0 if name == "conv7_2_mbox_conf" else 10.0
    names = list(weight_urls("sfd"))
    torch.save(FAN(4).state_dict(), ckpt / names[0])
    torch.save(detector.state_dict(), ckpt / names[1])
    return root


def face_weights(ctx: Ctx) -> tuple[Path, str]:
    from pipeline.faces import require_weights
    from pipeline.faces.fan import DEFAULT_WEIGHTS_DIR

    for where in (ctx.face_weights, ROOT / DEFAULT_WEIGHTS_DIR):
        if where is not None:
            try:
                require_weights({"weights_dir": str(where)})
                return Path(where), f"real ({where})"
            except FileNotFoundError:
                if where == ctx.face_weights:
                    raise
    return random_face_weights(ctx.tmp / "torch_home"), "random (S3FD heads: only stride-128 anchors fire)"


def check_face_alignment(ctx: Ctx) -> dict:
    from faces import make_video  # benchmarks/faces.py: the astronaut's head over a textured background

    from pipeline.faces import CropSettings, extract_video, make_backend

    weights, kind = face_weights(ctx)
    n, (w, h) = ctx.sizes.fa_frames, ctx.sizes.fa_frame_size
    backend = make_backend("face_alignment", weights_dir=str(weights), device=ctx.device.type,
                           detect_side=ctx.sizes.fa_detect_side, batch_size=8)
    path = make_video(ctx.tmp / "faces.mp4", w, h, n, seed=0)
    row = {"dataset": "gpu_check", "video_id": "faces", "path": str(path), "frame_count": n}
    extract_video(row, backend, CropSettings(num_frames=1))  # warm-up: numba compiles the package's heatmap decoding
    t0 = time.perf_counter()
    records = extract_video(row, backend, CropSettings(num_frames=n))
    if ctx.cuda:
        torch.cuda.synchronize(ctx.device)
    seconds = time.perf_counter() - t0
    statuses = dict(Counter(r["status"] for r, _ in records))
    on = sorted({p.device.type for p in backend.fa.face_alignment_net.parameters()})
    figures = {"weights": kind, "device": backend.device, "fan_on": on, "frame_size": [w, h], "frames": len(records),
               "frames_per_s": round(len(records) / seconds, 2), "statuses": statuses}
    if len(records) != n or set(statuses) - {"ok", "no_face"} or on != [ctx.device.type]:
        raise Failed("the faces stage did not crop every frame, or ran off the device", **figures)
    return figures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_step(ctx: Ctx, world, batch: int) -> tuple[dict, dict]:
    """One step on this rank's rows of the global batch: (loss terms, trainable gradients), on the CPU."""
    from pipeline.training.distributed import rank_rows
    from pipeline.training.step import train_step

    cfg = tiny_config()
    parts, _ = build_parts(ctx, cfg, world=world, precision="fp32")  # fp32: a sharp comparison
    data = make_batch(ctx, cfg, batch)
    mine = rank_rows(list(range(batch)), batch, world)
    local = {"pixel_values": data["pixel_values"][mine], "labels": data["labels"][mine]}
    out = train_step(parts, local, 1e-4, torch.Generator().manual_seed(0), data["labels"])
    grads = {n: p.grad.detach().float().cpu() for n, p in parts.detector.trainable_parameters().items()}
    return {k: v.float().cpu() for k, v in out.items() if torch.is_tensor(v)}, grads


def ddp_rank(rank: int, size: int, port: int, ctx: Ctx, batch: int) -> None:
    """One spawned process: join through :func:`pipeline.training.distributed.setup` (as under torchrun)."""
    import torch.distributed as dist

    from pipeline.training import distributed

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    if size == 1:  # only on CUDA: setup() leaves one process without a group; a world of 1 still builds an
        torch.cuda.set_device(0)  # NCCL communicator
        dist.init_process_group("nccl", rank=0, world_size=1)
        world, device = distributed.World(0, 1), torch.device("cuda", 0)
    else:
        world, device = distributed.setup(ctx.device)
    try:
        terms, grads = ddp_step(Ctx(device, ctx.sizes, ctx.tmp, None, 0), world, batch)
        probe = torch.full((1,), float(rank + 1), device=device)
        dist.all_reduce(probe)  # sum of 1..size through the backend
        if world.main:
            torch.save({"terms": terms, "grads": grads, "probe": float(probe), "backend": dist.get_backend(),
                        "device": str(device)}, ctx.tmp / "ddp_rank0.pt")
    finally:
        dist.destroy_process_group()


def check_ddp(ctx: Ctx) -> dict:
    import torch.multiprocessing as mp

    from pipeline.training.distributed import World

    size = torch.cuda.device_count() if ctx.cuda else 2
    batch = ctx.sizes.tiny_batch // size * size  # every rank the same share
    ref_terms, ref_grads = ddp_step(ctx, World(), batch)
    context = mp.spawn(ddp_rank, args=(size, free_port(), ctx, batch), nprocs=size, join=False)
    deadline = time.monotonic() + 240
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            raise TimeoutError(f"the {size} DDP processes did not finish in 240 s")
    got = torch.load(ctx.tmp / "ddp_rank0.pt")
    flat = torch.cat([got["grads"][n].flatten() for n in ref_grads])
    ref = torch.cat([g.flatten() for g in ref_grads.values()])
    cosine = float(torch.nn.functional.cosine_similarity(flat, ref, dim=0))
    rel = float((flat - ref).norm() / ref.norm())
    dloss = abs(float(got["terms"]["loss"] - ref_terms["loss"]))
    figures = {"backend": got["backend"], "world_size": size, "dtype": "float32", "device_rank0": got["device"],
               "global_batch": batch, "all_reduce_sum": got["probe"], "grad_rel_diff_vs_one_process": rel,
               "grad_cosine": cosine, "loss_abs_diff_vs_one_process": dloss}
    if size == 1:
        figures["note"] = "world of 1: the step's all_gather/all_reduce are no-ops; NCCL ran the probe all_reduce"
    # float32 (TF32 convolutions on CUDA): a gradient not averaged or rows mixed up between ranks is off by O(1)
    if got["probe"] != size * (size + 1) / 2 or rel > 1e-2 or dloss > 1e-3:
        raise Failed("the distributed step's gradient or loss differs from one process's", **figures)
    return figures


def check_compile_inductor(ctx: Ctx) -> dict:
    from pipeline.training.step import train_step

    cfg, batch, name = ((ctx.sizes.large, ctx.sizes.large_batch, ctx.sizes.large_name) if ctx.cuda
                        else (tiny_config(), ctx.sizes.tiny_batch, "demo tiny_clip"))
    data = make_batch(ctx, cfg, batch)
    from torch._dynamo.utils import counters

    runs, graphs = {}, counters["stats"]["unique_graphs"]
    for compiled in (False, True):  # the same first step, eager and compiled
        parts, _ = build_parts(ctx, cfg, compile_=compiled)
        t0 = time.perf_counter()
        out = train_step(parts, data, 1e-4, torch.Generator().manual_seed(0))
        grad = torch.cat([p.grad.float().flatten() for p in parts.detector.trainable_parameters().values()])
        runs[compiled] = (float(out["loss"]), grad, time.perf_counter() - t0)
    (l0, g0, _), (l1, g1, first) = runs[False], runs[True]
    gen = torch.Generator().manual_seed(0)  # parts: the compiled model, timed without its compilation
    reset_peak(ctx)
    seconds = timed(lambda: train_step(parts, data, 1e-4, gen), ctx.sizes.steps, ctx.device)
    graphs = counters["stats"]["unique_graphs"] - graphs
    figures = {"backend": "inductor", "model": name, "batch": batch, "graphs_compiled": graphs,
               "first_step_s": round(first, 1),
               "images_per_s": round(batch / seconds, 2), "peak_memory_mib": peak_mib(ctx),
               "loss_abs_diff_vs_eager": abs(l1 - l0),
               "grad_rel_diff_vs_eager": float((g1 - g0).norm() / g0.norm()),
               "grad_cosine_vs_eager": float(torch.nn.functional.cosine_similarity(g1, g0, dim=0))}
    if ctx.cuda:
        figures |= mfu_figures(ctx, cfg, figures["images_per_s"])
        torch.cuda.synchronize(ctx.device)
        torch.cuda.set_sync_debug_mode("error")
        try:
            train_step(parts, data, 1e-4, gen)
        finally:
            torch.cuda.set_sync_debug_mode(0)
        figures["sync_free"] = True
    if graphs < 1 or abs(l1 - l0) > 2e-2 * max(1.0, abs(l0)) or figures["grad_cosine_vs_eager"] < 0.99:
        raise Failed("nothing was compiled, or the compiled step's loss or gradient differs from eager", **figures)
    return figures


ITEMS = {
    "train_tiny": check_train_tiny,
    "train_vit_l14": check_train_vit_l14,
    "fused_adamw": check_fused_adamw,
    "sync_free": check_sync_free,
    "evaluation": check_evaluation,
    "face_alignment": check_face_alignment,
    "ddp": check_ddp,
    "compile_inductor": check_compile_inductor,
}


def run_item(name: str, fn, ctx: Ctx) -> dict:
    """One item's entry: ``status`` ok / failed (with ``error``) / skipped (with ``reason``), never raising."""
    log(f"{name} ...")
    t0 = time.perf_counter()
    try:
        entry = {"status": "ok", "ok": True, **fn(ctx)}
    except Skip as exc:
        entry = {"status": "skipped", "ok": None, "reason": str(exc)}
    except Exception as exc:  # an item's failure is its result; the others still run
        entry = {"status": "failed", "ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                 **getattr(exc, "figures", {})}
        if not isinstance(exc, Failed):
            entry["traceback"] = traceback.format_exc()[-3000:]
    entry["seconds"] = round(time.perf_counter() - t0, 1)
    log(f"{name}: {entry['status']} ({entry['seconds']} s) {entry.get('error') or entry.get('reason') or ''}")
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return entry


def describe(device: torch.device) -> dict:
    from pipeline.core.provenance import device_description

    info = {"device": device_description(device), "torch": torch.__version__, "cuda": torch.version.cuda}
    if device.type == "cuda":
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    else:
        info["threads"] = torch.get_num_threads()
    return info


def check(ctx: Ctx, items=ITEMS) -> dict:
    t0 = time.perf_counter()
    results = {name: run_item(name, fn, ctx) for name, fn in items.items()}
    failed = [n for n, e in results.items() if e["status"] == "failed"]
    return {"check": "gpu_check", "mode": ctx.device.type, "ok": not failed, "failed": failed,
            "skipped": [n for n, e in results.items() if e["status"] == "skipped"], **describe(ctx.device),
            "wall_s": round(time.perf_counter() - t0, 1), "items": results}


@contextlib.contextmanager
def stdout_to_stderr():
    """Everything written to fd 1 (libraries, child processes) goes to stderr; yields the real stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield os.fdopen(saved, "w")
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="run on the CPU with small sizes (the test suite's run)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads with --cpu")
    ap.add_argument("--face-weights", type=Path, help="TORCH_HOME holding face-alignment's real weights")
    ap.add_argument("--eval-workers", type=int, help="evaluation loader workers (default: 8 on CUDA, 0 on CPU)")
    ap.add_argument("--only", nargs="+", choices=sorted(ITEMS), help="run only these items")
    a = ap.parse_args(argv)
    with stdout_to_stderr() as out:
        if not a.cpu and not torch.cuda.is_available():
            msg = "no CUDA device visible: run it on a GPU machine, or with --cpu for the CPU check"
            log(msg)
            print(json.dumps({"check": "gpu_check", "ok": False, "error": msg}), file=out, flush=True)
            return 2
        if a.cpu:
            torch.set_num_threads(a.threads)
        device = torch.device("cpu" if a.cpu else "cuda", None if a.cpu else 0)
        workers = a.eval_workers if a.eval_workers is not None else (0 if a.cpu else min(8, os.cpu_count() or 1))
        items = {n: f for n, f in ITEMS.items() if not a.only or n in a.only}
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            ctx = Ctx(device, CPU_SIZES if a.cpu else GPU_SIZES, Path(tmp), a.face_weights, workers)
            result = check(ctx, items)
        print(json.dumps(result, default=str), file=out, flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
