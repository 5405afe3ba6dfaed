"""Training loop of LNCLIP-DF (arXiv 2508.06248), plain PyTorch, resumable.

``train_model`` trains one ``models:`` entry: LN-tuning and/or head on the train-split crops of a
``frames.parquet``, validates every epoch on the val split (frame and video AUROC), keeps the best
epoch, and writes the adapter (safetensors) and a Parquet log. At the end of every epoch the full
training state (trainable tensors, AdamW state, best tensors, RNG state, log so far) is saved into
an undeclared ``work_dir``; a restarted job with the same config and data resumes from it and ends
with the same adapter as an uninterrupted run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
from pathlib import Path

import polars as pl
import torch
from safetensors.torch import load_file, save_file

from . import logs
from .data import ShardCrops, derive_seed, make_loader
from .files import replacing, write_json
from .losses import LossConfig, slerp_augment, slerp_expand
from .metrics import binary_metrics, video_scores
from .model import Detector, autocast, load_backbone, pick_device, save_adapter
from .predict import predict_frames
from .optimizers import make_optimizer
from .sampling import order_for, video_fraction

log = logging.getLogger("pipeline.train")

STATE_FORMAT = "lnclip-df-train-state/1"

LOG_SCHEMA = {
    "kind": pl.String,  # "train" (one row per optimiser step), "val" (one row per epoch: the mean over the
    # validation sets) or "val:<dataset>/<split>" (each set, when there are several)
    "epoch": pl.Int32,
    "step": pl.Int64,  # global optimiser step (val rows: steps done so far)
    "lr": pl.Float64,
    "loss": pl.Float64,
    "ce": pl.Float64,
    "align": pl.Float64,
    "unif": pl.Float64,
    "acc": pl.Float64,  # train accuracy of the step (on the features the loss saw)
    "batch": pl.Int32,
    "fake_fraction": pl.Float64,  # share of fake crops in the step's batch (before slerp expansion)
    "seconds": pl.Float64,  # wall time of the step / of the validation
    "frame_auroc": pl.Float64,
    "video_auroc": pl.Float64,
    "n_frames": pl.Int64,
    "n_videos": pl.Int64,
}

SELECT_METRICS = ("video_auroc", "frame_auroc", "last")


def lr_at(
    step: int, steps_per_epoch: int, lr: float, min_lr: float, warmup_epochs: float, cycle_epochs: float
) -> float:
    """Learning rate before optimiser step ``step`` (0-based, global).

    Cycles of ``cycle_epochs`` epochs repeat; within a cycle: linear warm-up from ``min_lr`` to ``lr``
    over ``warmup_epochs`` epochs, then cosine decay from ``lr`` to ``min_lr`` over the rest of the
    cycle (the paper: 1 + 9 epochs, two cycles). ``warmup_epochs = 0`` starts each cycle at ``lr``.
    """
    cycle = round(cycle_epochs * steps_per_epoch)
    warm = round(warmup_epochs * steps_per_epoch)
    if cycle <= warm or cycle < 1:
        raise ValueError(f"cycle_epochs ({cycle_epochs}) must be longer than warmup_epochs ({warmup_epochs})")
    pos = step % cycle
    if pos < warm:
        return min_lr + (lr - min_lr) * pos / warm
    progress = (pos - warm) / (cycle - warm)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------------------------
# Validation


def validate_one(detector: Detector, val_frames: pl.DataFrame, *, batch_size: int, device, workers: int) -> dict:
    """Frame- and video-level AUROC of ``detector`` on the crops of ``val_frames``."""
    if val_frames.height == 0:
        return {"frame_auroc": math.nan, "video_auroc": math.nan, "n_frames": 0, "n_videos": 0}
    scores = predict_frames(detector, val_frames, batch_size=batch_size, device=device, workers=workers)
    videos = video_scores(scores)
    return {
        "frame_auroc": binary_metrics(scores["label"], scores["p_fake"])["auroc"],
        "video_auroc": binary_metrics(videos["label"], videos["p_fake"])["auroc"],
        "n_frames": scores.height,
        "n_videos": videos.height,
    }


def validate(detector: Detector, val_sets: dict[str, pl.DataFrame], **kw) -> tuple[dict, dict[str, dict]]:
    """Metrics on each validation set and their mean (AUROCs averaged over the sets that have crops,
    counts summed): the mean is what selects the checkpoint."""
    per_set = {name: validate_one(detector, frames, **kw) for name, frames in val_sets.items()}
    scored = [m for m in per_set.values() if m["n_frames"]]
    mean = {k: (sum(m[k] for m in scored) / len(scored) if scored else math.nan)
            for k in ("frame_auroc", "video_auroc")}
    mean.update({k: sum(m[k] for m in per_set.values()) for k in ("n_frames", "n_videos")})
    return mean, per_set


def read_val_sets(cfg: dict, frames_paths: dict[str, str]) -> dict[str, pl.DataFrame]:
    """``"dataset/split"`` -> the crops of each of the model's validation sets (``config.val_sets``),
    read from ``frames_paths[dataset]``."""
    from .config import val_sets

    out = {}
    for ds, split in val_sets(cfg):
        if ds not in frames_paths:
            raise ValueError(f"validation set {ds}/{split}: no frames table given for dataset {ds!r}")
        crops = pl.read_parquet(frames_paths[ds]).filter(pl.col("key").is_not_null())
        out[f"{ds}/{split}"] = crops.filter(_split_filter("split", split))
    return out


# --------------------------------------------------------------------------------------------
# Resumable state (safetensors + JSON, no pickle)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def state_hash(cfg: dict, seed: int, train: pl.DataFrame, val: pl.DataFrame) -> str:
    """Identity of a training run for resuming: config (minus ``optim.epochs``: the schedule does not
    depend on it, so a longer run may continue a shorter one), seed and the train/val crops."""
    c = copy.deepcopy(cfg)
    c.get("optim", {}).pop("epochs", None)
    rows = lambda df: sorted(map(list, df.select("shard", "key", "label").rows()))  # noqa: E731
    return _digest({"cfg": c, "seed": seed, "train": rows(train), "val": rows(val)})


def save_state(
    work_dir: Path, *, epoch: int, step: int, detector: Detector, opt, best: dict, rows: list, info: dict
) -> None:
    """Save everything needed to continue after ``epoch`` completed epochs.

    Files are written under new names first; ``state.json`` (written last, atomically) names them,
    so a crash at any point leaves either the previous complete state or the new one.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"param.{n}": p.detach().cpu().contiguous() for n, p in detector.trainable_parameters().items()
    }
    for n, t in (best.get("tensors") or {}).items():
        tensors[f"best.{n}"] = t
    opt_sd = opt.state_dict()
    for idx, st in opt_sd["state"].items():
        for k, v in st.items():
            tensors[f"opt.{idx}.{k}"] = (
                (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
            )
    tensors_name, log_name = f"state-{epoch:04d}.safetensors", f"log-{epoch:04d}.parquet"
    save_file(tensors, str(work_dir / tensors_name))
    pl.DataFrame(rows, schema=LOG_SCHEMA).write_parquet(work_dir / log_name)
    state = {
        "format": STATE_FORMAT,
        **info,
        "epoch": epoch,
        "step": step,
        "best_epoch": best.get("epoch"),
        "best_metric": best.get("metric"),
        "param_groups": opt_sd["param_groups"],
        "torch_rng": torch.get_rng_state().tolist(),
        "cuda_rng": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "tensors": tensors_name,
        "log": log_name,
    }
    write_json(work_dir / "state.json", state, indent=1)
    for old in work_dir.glob("state-*.safetensors"):
        if old.name != tensors_name:
            old.unlink()
    for old in work_dir.glob("log-*.parquet"):
        if old.name != log_name:
            old.unlink()


def load_state(work_dir: Path, cfg_hash: str) -> dict | None:
    """The saved state in ``work_dir`` if it is complete and belongs to ``cfg_hash``, else None."""
    path = work_dir / "state.json"
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if state.get("format") != STATE_FORMAT or state.get("cfg_hash") != cfg_hash:
        log.info("work dir %s holds a state of another config; starting from scratch", work_dir)
        return None
    if not (work_dir / state["tensors"]).exists() or not (work_dir / state["log"]).exists():
        return None
    state["tensor_data"] = load_file(str(work_dir / state["tensors"]))
    state["rows"] = pl.read_parquet(work_dir / state["log"]).to_dicts()
    return state


def restore_state(state: dict, detector: Detector, opt) -> dict:
    """Load a :func:`load_state` result into ``detector`` and ``opt``; returns the ``best`` record."""
    data = state["tensor_data"]
    params = detector.trainable_parameters()
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(data[f"param.{n}"])
    opt_state: dict = {}
    for name, t in data.items():
        if name.startswith("opt."):
            _, idx, k = name.split(".", 2)
            opt_state.setdefault(int(idx), {})[k] = t
    groups = state["param_groups"]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": opt_state, "param_groups": groups})
    torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda_rng"]])
    best_tensors = {n[len("best.") :]: t for n, t in data.items() if n.startswith("best.")}
    return {"epoch": state["best_epoch"], "metric": state["best_metric"], "tensors": best_tensors or None}


# --------------------------------------------------------------------------------------------
# Training


def _split_filter(col: str, value) -> pl.Expr:
    values = [value] if isinstance(value, str) else list(value)
    return pl.col(col).is_in(values)


def _is_better(metric: float, best: dict) -> bool:
    if math.isnan(metric):
        return False
    return best.get("metric") is None or metric > best["metric"]


def _write_log(rows: list, path: Path) -> None:
    with replacing(path) as tmp:
        pl.DataFrame(rows, schema=LOG_SCHEMA).write_parquet(tmp)


def train_step(detector, opt, batch, lr, loss_fn, slerp_cfg, slerp_gen, device) -> dict:
    """One optimiser step; returns the step's log values (lr, loss terms, accuracy, batch, seconds).

    Order as in the reference: backbone features -> slerp (training only, fp32) -> head -> loss.
    A non-finite loss skips the optimiser step.
    """
    t0 = time.time()
    for group in opt.param_groups:
        group["lr"] = lr
    x = batch["pixel_values"].to(device, non_blocking=True)
    y = batch["labels"].to(device, non_blocking=True)
    fake_fraction = float(batch["labels"].float().mean())

    with autocast(device):
        features = detector.features(x)
    features = features.float()  # the pooler output is a LayerNorm output: fp32 under autocast too
    if slerp_cfg.get("enabled"):
        if slerp_cfg.get("expand_to"):
            features, y = slerp_expand(features, y, int(slerp_cfg["expand_to"]), generator=slerp_gen)
        else:
            features = slerp_augment(features, y, generator=slerp_gen)
    with autocast(device):
        logits, z = detector.head_forward(features)
    loss, parts = loss_fn(logits.float(), z.float(), y, monitor=True)

    opt.zero_grad(set_to_none=True)
    if torch.isfinite(loss):
        loss.backward()
        opt.step()
    acc = (logits.argmax(dim=1) == y).float().mean()
    return {
        "lr": lr,
        **{k: float(v) for k, v in parts.items()},
        "acc": float(acc),
        "batch": int(y.shape[0]),
        "fake_fraction": fake_fraction,
        "seconds": time.time() - t0,
    }


def train_model(
    frames_path,
    backbone_dir,
    cfg: dict,
    adapter_path,
    log_path,
    work_dir,
    seed: int,
    threads: int = 1,
    device=None,
    on_epoch_end=None,
    pairs_path=None,
    val_frames: dict | None = None,
) -> dict:
    """Train one model entry ``cfg`` (see the module docstring); returns a summary dict.

    ``frames_path``: frames.parquet (FRAMES contract; shard paths relative to the working directory).
    ``backbone_dir``: hub id or directory of the CLIP checkpoint (``cfg["backbone"]`` is the id that
    is recorded). ``on_epoch_end(epoch, summary)`` is called after each epoch's state is saved
    (tests use it to simulate an interruption). ``pairs_path``: the dataset's pairs.parquet, read
    when ``cfg["data"]["order"]`` is ``paired``. ``val_frames``: dataset -> frames.parquet of the
    other datasets that ``cfg["data"]["val_sets"]`` names.
    """
    torch.set_num_threads(threads)
    device = pick_device(device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    adapter_path, log_path, work_dir = Path(adapter_path), Path(log_path), Path(work_dir)
    o, d = cfg["optim"], cfg["data"]
    select = cfg.get("select_metric", "video_auroc")
    if select not in SELECT_METRICS:
        raise ValueError(f"select_metric must be one of {SELECT_METRICS}, got {select!r}")
    loss_fn = LossConfig.from_dict(cfg["loss"])
    slerp_cfg = cfg.get("slerp") or {}
    workers = int(d.get("workers", 0))

    # Data: crops of the train / val splits.
    crops = pl.read_parquet(frames_path).filter(pl.col("key").is_not_null())
    train = crops.filter(_split_filter("split", d["train_split"]))
    vals = read_val_sets(cfg, {d.get("dataset"): frames_path, **(val_frames or {})})
    val = pl.concat([v.select("shard", "key", "label") for v in vals.values()]) if vals else crops.clear()
    if train.height == 0:
        raise ValueError(f"{frames_path}: no crops in train split {d['train_split']!r}")
    strategy, fraction = d.get("order", "shuffle"), float(d.get("fraction", 1.0))
    pairs = pl.read_parquet(pairs_path) if (strategy == "paired" or fraction < 1) and pairs_path else None
    train = video_fraction(train, pairs, fraction, seed)
    n_train = train.height
    batch_size = int(o["batch_size"])
    if n_train < batch_size:
        log.warning(
            "only %d training crops (< batch size %d): one batch of %d per epoch",
            n_train,
            batch_size,
            n_train,
        )
        batch_size = n_train
    steps_per_epoch = max(1, n_train // batch_size)
    epochs = int(o["epochs"])
    sched = lambda step: lr_at(
        step, steps_per_epoch, o["lr"], o["min_lr"], o["warmup_epochs"], o["cycle_epochs"]
    )  # noqa: E731

    # Model and optimiser (training.optim.name; biases and norms without weight decay, as the reference).
    torch.manual_seed(seed)
    detector = Detector(load_backbone(backbone_dir), ln_tuning=cfg["ln_tuning"], l2_norm=cfg["l2_norm"]).to(
        device
    )
    named = detector.trainable_parameters()
    opt = make_optimizer(named, o, sched(0))
    n_trainable = sum(p.numel() for p in named.values())

    # Resume.
    cfg_hash = state_hash(cfg, seed, train, val)
    rows: list[dict] = []
    best: dict = {"epoch": None, "metric": None, "tensors": None}
    start_epoch, resumed_from = 0, None
    state = load_state(work_dir, cfg_hash)
    if state is not None and state["epoch"] > epochs:
        log.info("saved state is at epoch %d > epochs %d; starting from scratch", state["epoch"], epochs)
        state = None
    if state is not None:
        best = restore_state(state, detector, opt)
        rows = state["rows"]
        start_epoch = resumed_from = state["epoch"]
        log.info("resumed from %s after epoch %d (step %d)", work_dir, start_epoch, state["step"])
    log.info(
        "training %s: %d train crops, batch %d, %d steps/epoch, %d epochs, %d trainable parameters, device %s",
        cfg["backbone"],
        n_train,
        batch_size,
        steps_per_epoch,
        epochs,
        n_trainable,
        device,
    )

    t_start = time.time()
    dataset = ShardCrops(train, image_size=detector.image_size, augment=cfg.get("augment"), seed=seed)
    for epoch in range(start_epoch, epochs):
        detector.train()
        dataset.set_epoch(epoch)
        order = order_for(strategy, train, seed, epoch, batch_size, pairs)
        loader = make_loader(dataset, batch_size=batch_size, workers=workers, drop_last=True, order=order)
        slerp_gen = torch.Generator().manual_seed(derive_seed(seed, epoch, "slerp"))
        n_steps = 0
        bar = logs.progress(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", unit="step")
        for i, batch in enumerate(loader):
            if i >= steps_per_epoch:
                break
            step = epoch * steps_per_epoch + i
            row = train_step(detector, opt, batch, sched(step), loss_fn, slerp_cfg, slerp_gen, device)
            rows.append({"kind": "train", "epoch": epoch, "step": step, **row})
            if math.isnan(row["loss"]) or math.isinf(row["loss"]):
                log.warning("epoch %d step %d: non-finite loss, optimiser step skipped", epoch, step)
            elif i % 50 == 0:
                log.info(
                    "epoch %d step %d: lr %.3g loss %.4f acc %.3f",
                    epoch,
                    step,
                    row["lr"],
                    row["loss"],
                    row["acc"],
                )
            n_steps += 1
            bar.update(1)
        bar.close()
        if n_steps < steps_per_epoch:
            log.warning("epoch %d: the loader gave %d of %d batches", epoch, n_steps, steps_per_epoch)

        t0 = time.time()
        metrics, per_set = validate(detector, vals, batch_size=batch_size, device=device, workers=workers)
        for kind, m in [("val", metrics)] + ([(f"val:{n}", m) for n, m in per_set.items()] if len(per_set) > 1 else []):
            rows.append({"kind": kind, "epoch": epoch, "step": (epoch + 1) * steps_per_epoch,
                         "seconds": time.time() - t0, **m})
        train_rows = [r for r in rows if r["kind"] == "train" and r["epoch"] == epoch]
        mean_loss = sum(r["loss"] for r in train_rows) / max(1, len(train_rows))
        log.info(
            "epoch %d/%d: train loss %.4f, val frame AUROC %.4f, video AUROC %.4f (%d videos)",
            epoch + 1,
            epochs,
            mean_loss,
            metrics["frame_auroc"],
            metrics["video_auroc"],
            metrics["n_videos"],
        )
        if select != "last" and _is_better(metrics[select], best):
            best = {
                "epoch": epoch,
                "metric": metrics[select],
                "tensors": {n: p.detach().cpu().clone() for n, p in detector.trainable_parameters().items()},
            }
        save_state(
            work_dir,
            epoch=epoch + 1,
            step=(epoch + 1) * steps_per_epoch,
            detector=detector,
            opt=opt,
            best=best,
            rows=rows,
            info={"cfg_hash": cfg_hash, "seed": seed},
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch, {"metrics": metrics, "mean_loss": mean_loss})

    # Final adapter: the best epoch by the selection metric, else the last epoch.
    last_epoch = epochs - 1
    if best["tensors"] is not None:
        with torch.no_grad():
            for n, p in detector.trainable_parameters().items():
                p.copy_(best["tensors"][n])
        chosen, selected_by = best["epoch"], select
    else:
        if select != "last":
            log.warning("no valid %s on the val split; keeping the last epoch", select)
        chosen, selected_by = last_epoch, "last"
    val_rows = {r["epoch"]: r for r in rows if r["kind"] == "val"}
    chosen_val = val_rows.get(chosen, {})
    summary = {
        "backbone": cfg["backbone"],
        "cfg": cfg,
        "seed": seed,
        "best_epoch": chosen,
        "selected_by": selected_by,
        "val": {k: chosen_val.get(k) for k in ("frame_auroc", "video_auroc", "n_frames", "n_videos")},
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "n_train_crops": n_train,
        "trainable_parameters": n_trainable,
        "resumed_from_epoch": resumed_from,
        "train_seconds": time.time() - t_start,
    }
    _write_log(rows, log_path)
    save_adapter(detector, adapter_path, meta={k: v for k, v in summary.items() if k != "train_seconds"})
    return summary
