"""The training loop of LNCLIP-DF (arXiv 2508.06248), plain PyTorch, resumable mid-epoch.

:func:`train_model` trains one ``models:`` entry: LN-tuning and/or head on the train-split crops of
a ``frames.parquet``, validates every epoch on its validation sets (frame and video AUROC, video AP; the mean
over the sets selects), keeps the best epoch (ties: :mod:`.choice`) and writes the adapter (safetensors) and the Parquet log. The training state is saved every
``engine.checkpoint_every`` steps and at each epoch's end (:mod:`.state`); a job killed at any point
and started again with the same command ends with the same adapter as an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import torch

from pipeline.core import logs
from pipeline.core.files import replacing
from pipeline.core.schema import complete_model
from pipeline.datasets import select_training
from pipeline.model import Detector, LossConfig, ShardCrops, derive_seed, load_backbone, pick_device, save_adapter
from pipeline.evaluation import binary_metrics, video_scores
from .optimizers import make_optimizer
from .sampling import order_for, video_fraction
from . import distributed
from .distributed import World
from .engine import Engine, autocast, cast_frozen, maybe_compile
from .loader import eval_loader, train_loader
from .choice import METRICS, TIES, better, sample_videos, val_set_specs
from .records import NonFiniteLoss, StepBuffer
from .schedule import lr_at
from .state import TRAIN_LOG_SCHEMA, load_state, restore_state, save_state, state_hash
from .step import StepParts, train_step

log = logging.getLogger("pipeline.train")

SELECT_METRICS = (*METRICS, "last")


@dataclass
class Run:
    """Everything one training run holds; the loop's functions read and advance it."""

    cfg: dict
    seed: int
    name: str  # the model entry (named by errors)
    engine: Engine
    work_dir: Path
    train: pl.DataFrame
    val_sets: dict  # "dataset/split" -> (crops, eval loader)
    pairs: pl.DataFrame | None
    batch_size: int
    steps_per_epoch: int
    parts: StepParts
    loader: object
    sampler: object
    cfg_hash: str
    world: World = World()
    slerp_gen: torch.Generator = field(default_factory=torch.Generator)
    buffer: StepBuffer | None = None
    rows: list = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"epoch": None, "metric": None, "tiebreak": None, "tensors": None})
    step: int = 0  # optimiser steps done
    epochs_done: int = 0  # epochs trained and validated
    resumed_from: int | None = None

    @property
    def epochs(self) -> int:
        return int(self.cfg["optim"]["epochs"])

    def lr(self, step: int) -> float:
        o = self.cfg["optim"]
        return lr_at(step, self.steps_per_epoch, o["lr"], o["min_lr"], o["warmup_epochs"], o["cycle_epochs"])


# --------------------------------------------------------------------------------------------
# Validation


def validate(detector: Detector, frames: pl.DataFrame, loader, *, device, dtype) -> dict:
    """Frame- and video-level AUROC of ``detector`` on the crops of ``frames`` (read by ``loader``,
    an :func:`~.loader.eval_loader` over the same rows in the same order)."""
    if frames.height == 0:
        return {**dict.fromkeys(METRICS, math.nan), "n_frames": 0, "n_videos": 0}
    was_training, probs = detector.training, []
    detector.eval()
    with torch.inference_mode(), autocast(device, dtype):
        for batch in loader:
            logits, _ = detector(detector.normalize(batch["pixel_values"].to(device, non_blocking=True)))
            probs.append(torch.softmax(logits.float(), dim=1)[:, 1])
    detector.train(was_training)
    keep = [c for c in ("dataset", "video_id", "label") if c in frames.columns]
    scores = frames.select(keep).with_columns(p_fake=pl.Series(torch.cat(probs).double().cpu().numpy()))
    videos = video_scores(scores)
    video = binary_metrics(videos["label"], videos["p_fake"])
    return {
        "frame_auroc": binary_metrics(scores["label"], scores["p_fake"])["auroc"],
        "video_auroc": video["auroc"],
        "video_ap": video["ap"],
        "n_frames": scores.height,
        "n_videos": videos.height,
    }


def validate_sets(detector: Detector, val_sets: dict, **kw) -> tuple[dict, dict[str, dict]]:
    """Metrics on each validation set (``name -> (crops, loader)``) and their mean (AUROCs averaged
    over the sets that have crops, counts summed): the mean is what selects the checkpoint."""
    per_set = {name: validate(detector, frames, loader, **kw) for name, (frames, loader) in val_sets.items()}
    scored = [m for m in per_set.values() if m["n_frames"]]
    mean = {k: (sum(m[k] for m in scored) / len(scored) if scored else math.nan) for k in METRICS}
    mean.update({k: sum(m[k] for m in per_set.values()) for k in ("n_frames", "n_videos")})
    return mean, per_set


def read_val_sets(cfg: dict, frames_paths: dict[str, str], name: str = "this model") -> dict[str, pl.DataFrame]:
    """``"dataset/split"`` -> the crops of each of the model's validation sets (``config.val_set_specs``:
    the ``max_videos`` sample when set), read from ``frames_paths[dataset]``. A set without a crop is an
    error naming the model (``name``), the dataset and the split."""
    out = {}
    for v in val_set_specs(cfg):
        ds, split = v["dataset"], v["split"]
        if ds not in frames_paths:
            raise ValueError(f"validation set {ds}/{split}: no frames table given for dataset {ds!r}")
        rows = sample_videos(_split(pl.read_parquet(frames_paths[ds]), split), v["max_videos"], v["seed"])
        crops = rows.filter(pl.col("key").is_not_null())
        if crops.height == 0:
            raise ValueError(
                f"model {name}: validation set {ds}/{split} has no face crop ({rows['video_id'].n_unique()} videos "
                f"listed in split {split!r} of {frames_paths[ds]}): check that dataset {ds!r} lists that split (an "
                "adapter option such as options: {splits: [...]}) and that its videos show faces, or remove the set")
        out[f"{ds}/{split}"] = crops
    return out


# --------------------------------------------------------------------------------------------
# Set-up


def _split(crops: pl.DataFrame, value) -> pl.DataFrame:
    return crops.filter(pl.col("split").is_in([value] if isinstance(value, str) else list(value)))


def _read_data(frames_path, cfg: dict, seed: int, pairs_path, val_frames: dict | None, name: str,
               subsets_path=None) -> tuple:
    """``(train, vals, pairs)``: the training crops (of ``data.methods`` and ``data.subset`` when set,
    thinned by ``data.fraction``) and the validation sets (the training dataset's of ``data.methods``)."""
    d = cfg["data"]
    train = _split(pl.read_parquet(frames_path).filter(pl.col("key").is_not_null()), d["train_split"])
    train = select_training(train, d, subsets_path)
    if train.height == 0:
        raise ValueError(f"{frames_path}: no crops in train split {d['train_split']!r}"
                         + (f" of methods {d['methods']}" if d.get("methods") else "")
                         + (f" in subset {d['subset']!r}" if d.get("subset") else ""))
    vals = read_val_sets(cfg, {d.get("dataset"): frames_path, **(val_frames or {})}, name)
    if d.get("methods"):
        vals = {key: select_training(v, {"methods": d["methods"]}) if key.split("/")[0] == d.get("dataset") else v
                for key, v in vals.items()}
    strategy, fraction = d["order"], float(d["fraction"])
    pairs = pl.read_parquet(pairs_path) if (strategy == "paired" or fraction < 1) and pairs_path else None
    return video_fraction(train, pairs, fraction, seed), vals, pairs


def _batch_size(cfg: dict, n_train: int) -> int:
    batch_size = int(cfg["optim"]["batch_size"])
    if n_train < batch_size:
        log.warning("only %d training crops (< batch size %d): one batch of %d per epoch",
                    n_train, batch_size, n_train)
        return n_train
    return batch_size


def _detector(backbone_dir, cfg: dict, engine: Engine, device, dtype, seed: int) -> Detector:
    torch.manual_seed(seed)
    backbone = load_backbone(backbone_dir, attn_implementation=engine.attention)
    detector = Detector(backbone, ln_tuning=cfg["ln_tuning"], l2_norm=cfg["l2_norm"]).to(device)
    cast_frozen(detector.backbone, dtype)
    maybe_compile(detector.backbone, engine.compile)
    return detector


def prepare(frames_path, backbone_dir, cfg, work_dir, seed, device, pairs_path, val_frames=None,
            world: World = World(), name: str = "this model", subsets_path=None) -> Run:
    """Read the data, build the model, optimiser and loaders of a run (from scratch: see :func:`resume`)."""
    engine = Engine.from_cfg(cfg.get("engine"))
    dtype = engine.dtype(device)
    if cfg["select_metric"] not in SELECT_METRICS or cfg.get("select_tiebreak") not in (None, *METRICS):
        raise ValueError(f"select_metric must be one of {SELECT_METRICS} and select_tiebreak one of {METRICS}, got "
                         f"{cfg.get('select_metric')!r} and {cfg.get('select_tiebreak')!r}")
    train, vals, pairs = _read_data(frames_path, cfg, seed, pairs_path, val_frames, name, subsets_path)
    batch_size = _batch_size(cfg, train.height)
    if batch_size % (engine.accumulate * world.size):
        raise ValueError(f"batch size {batch_size} is not a multiple of engine.accumulate ({engine.accumulate}) "
                         f"x devices ({world.size})")
    if engine.accumulate > 1 and world.size > 1:
        raise ValueError("engine.accumulate with several devices is not supported: use one or the other")
    detector = _detector(backbone_dir, cfg, engine, device, dtype, seed)
    opt = make_optimizer(detector.trainable_parameters(), cfg["optim"], 0.0, fused=True)
    parts = StepParts(detector, opt, LossConfig.from_dict(cfg["loss"]), cfg.get("slerp") or {}, device, dtype,
                      engine.accumulate, world)
    workers = int(cfg["data"]["workers"])
    size = detector.image_size
    loader, sampler = train_loader(ShardCrops(train, image_size=size, augment=cfg.get("augment"), seed=seed),
                                   batch_size // world.size, workers)
    val_sets = {name: (v, eval_loader(ShardCrops(v, image_size=size, augment=None, seed=seed), batch_size, workers))
                for name, v in vals.items()}
    val_keys = pl.concat([v.select("shard", "key", "label") for v in vals.values()]) if vals else train.clear()
    return Run(cfg=cfg, seed=seed, name=name, engine=engine, work_dir=Path(work_dir), train=train, val_sets=val_sets,
               pairs=pairs, batch_size=batch_size, steps_per_epoch=max(1, train.height // batch_size), parts=parts,
               loader=loader, sampler=sampler, cfg_hash=state_hash(cfg, seed, train, val_keys), world=world,
               buffer=StepBuffer(device))


def resume(run: Run) -> None:
    """Continue from the work directory's state when it belongs to this run."""
    state = load_state(run.work_dir, run.cfg_hash)
    if state is not None and state["step"] > run.epochs * run.steps_per_epoch:
        log.info("saved state is at step %d, beyond %d epochs; starting from scratch", state["step"], run.epochs)
        state = None
    if state is None:
        return
    run.best = restore_state(state, run.parts.detector, run.parts.opt, run.slerp_gen)
    run.rows, run.step, run.epochs_done = state["rows"], state["step"], state["epoch"]
    run.resumed_from = run.epochs_done
    log.info("resumed from %s at step %d (epoch %d)", run.work_dir, run.step, run.epochs_done)


# --------------------------------------------------------------------------------------------
# Training


def flush(run: Run) -> None:
    """Read the pending step values from the device into the log; stop on too many non-finite steps."""
    rows, worst = run.buffer.flush()
    run.rows.extend(rows)
    skipped = [r["step"] for r in rows if r["skipped"]]
    if skipped:
        log.warning("non-finite loss at step(s) %s: optimiser step skipped", skipped)
    if worst > run.engine.max_nonfinite:
        raise NonFiniteLoss(
            f"{worst} consecutive steps had a non-finite loss (limit engine.max_nonfinite = "
            f"{run.engine.max_nonfinite}); training stopped. The last good state is kept in {run.work_dir}: "
            "lower optim.lr or check the data, then run the same command to resume from it.")
    if rows:
        r = rows[-1]
        log.info("epoch %d step %d: lr %.3g loss %.4f acc %.3f", r["epoch"], r["step"], r["lr"], r["loss"], r["acc"])


def checkpoint(run: Run) -> None:
    flush(run)
    if run.world.main:
        save_state(run.work_dir, step=run.step, epochs_done=run.epochs_done, detector=run.parts.detector,
                   opt=run.parts.opt, best=run.best, rows=run.rows, slerp_gen=run.slerp_gen,
                   info={"cfg_hash": run.cfg_hash, "seed": run.seed})
    distributed.barrier(run.world)


def train_epoch(run: Run, epoch: int) -> None:
    """The optimiser steps of ``epoch`` not done yet (all of them unless resuming inside it)."""
    spe, bs, e = run.steps_per_epoch, run.batch_size, run.engine
    start = run.step - epoch * spe
    if start == 0:
        run.slerp_gen.manual_seed(derive_seed(run.seed, epoch, "slerp"))
    order = order_for(run.cfg["data"]["order"], run.train, run.seed, epoch, bs, run.pairs)
    rows = order[start * bs: spe * bs]
    run.sampler.set(epoch, distributed.rank_rows(rows, bs, run.world), 0, len(rows))
    labels = torch.tensor(run.train["label"].to_list())
    run.parts.detector.train()
    bar = logs.progress(total=spe, initial=start, desc=f"epoch {epoch + 1}/{run.epochs}", unit="step",
                        disable=not run.world.main)
    for i, batch in enumerate(run.loader):
        lr = run.lr(run.step)
        batch_labels = labels[rows[i * bs:(i + 1) * bs]] if run.world.size > 1 else None
        values = train_step(run.parts, batch, lr, run.slerp_gen, batch_labels)
        run.buffer.add({"epoch": epoch, "step": run.step, "lr": lr, "batch": values.pop("batch")}, values)
        run.step += 1
        if run.step % e.checkpoint_every == 0 and run.step < (epoch + 1) * spe:
            checkpoint(run)
        elif run.step % e.log_every == 0:
            flush(run)
        bar.update(1)
    bar.close()
    flush(run)
    if run.step < (epoch + 1) * spe:
        log.warning("epoch %d: the loader gave %d of %d batches", epoch, run.step - epoch * spe, spe)
        run.step = (epoch + 1) * spe


def end_epoch(run: Run, epoch: int) -> dict:
    """Validate, keep the best epoch's tensors, save the state; returns the validation metrics."""
    t0, p = time.time(), run.parts
    metrics, per_set = validate_sets(p.detector, run.val_sets, device=p.device, dtype=p.dtype)
    for kind, m in [("val", metrics)] + ([(f"val:{n}", m) for n, m in per_set.items()] if len(per_set) > 1 else []):
        run.rows.append({"kind": kind, "epoch": epoch, "step": run.step, "seconds": time.time() - t0, **m})
    losses = [r["loss"] for r in run.rows if r["kind"] == "train" and r["epoch"] == epoch]
    log.info("epoch %d/%d: train loss %.4f, val frame AUROC %.4f, video AUROC %.4f, video AP %.4f (%d videos)",
             epoch + 1, run.epochs, sum(losses) / max(1, len(losses)), metrics["frame_auroc"], metrics["video_auroc"],
             metrics["video_ap"], metrics["n_videos"])
    select, tiebreak = run.cfg["select_metric"], run.cfg.get("select_tiebreak")
    value, tie = metrics.get(select, math.nan), metrics.get(tiebreak) if tiebreak else None
    if select != "last" and not math.isnan(value) and better(value, tie, run.best):
        tensors = {n: t.detach().cpu().clone() for n, t in p.detector.trainable_parameters().items()}
        run.best = {"epoch": epoch, "metric": value, "tiebreak": tie, "tensors": tensors}
    run.epochs_done = epoch + 1
    checkpoint(run)
    return {"metrics": metrics, "mean_loss": sum(losses) / max(1, len(losses))}


def selection_record(run: Run, chosen: int, selected_by: str) -> dict:
    """How the kept epoch was chosen, for the adapter's metadata and the report: the epoch (of how many),
    the metric, the tie rule, and each validation set with its videos (real + fake) and sample size."""
    specs = {f"{v['dataset']}/{v['split']}": v for v in val_set_specs(run.cfg)}
    sets = []
    for name, (frames, _) in run.val_sets.items():
        labels = frames.group_by("video_id").agg(pl.col("label").first())["label"]
        sets.append({"name": name, "videos": labels.len(), "real": int((labels == 0).sum()),
                     "fake": int((labels == 1).sum()), "max_videos": specs[name]["max_videos"]})
    tiebreak = run.cfg.get("select_tiebreak") if selected_by != "last" else None
    return {"epoch": chosen, "epochs": run.epochs, "metric": selected_by, "tiebreak": tiebreak,
            "ties": TIES if selected_by != "last" else None, "value": run.best["metric"] if selected_by != "last"
            else None, "val_sets": sets}


def finish(run: Run, adapter_path: Path, log_path: Path, t_start: float) -> dict:
    """Load the best epoch's tensors (else keep the last) and write the adapter and the log."""
    detector, select = run.parts.detector, run.cfg["select_metric"]
    if run.best["tensors"] is not None:
        with torch.no_grad():
            for n, t in detector.trainable_parameters().items():
                t.copy_(run.best["tensors"][n])
        chosen, selected_by = run.best["epoch"], select
    else:
        if select != "last":
            log.warning("no valid %s on the val split; keeping the last epoch", select)
        chosen, selected_by = run.epochs - 1, "last"
    chosen_val = {r["epoch"]: r for r in run.rows if r["kind"] == "val"}.get(chosen, {})
    summary = {
        "backbone": run.cfg["backbone"], "cfg": run.cfg, "seed": run.seed, "best_epoch": chosen,
        "selected_by": selected_by, "selection": selection_record(run, chosen, selected_by),
        "val": {k: chosen_val.get(k) for k in (*METRICS, "n_frames", "n_videos")},
        "epochs": run.epochs, "steps_per_epoch": run.steps_per_epoch, "batch_size": run.batch_size,
        "n_train_crops": run.train.height,
        "trainable_parameters": sum(t.numel() for t in detector.trainable_parameters().values()),
        "nonfinite_steps": sum(1 for r in run.rows if r["kind"] == "train" and r["skipped"]),
        "resumed_from_epoch": run.resumed_from,
        "train_seconds": time.time() - t_start,
    }
    if run.world.main:
        with replacing(log_path) as tmp:
            pl.DataFrame(run.rows, schema=TRAIN_LOG_SCHEMA).write_parquet(tmp)
        # the run's history (time taken, where it resumed) is not the adapter's content: an adapter is
        # byte-identical whether or not its training was interrupted
        save_adapter(detector, adapter_path, meta={k: v for k, v in summary.items()
                                                   if k not in ("train_seconds", "resumed_from_epoch")})
    distributed.barrier(run.world)
    return summary


def train_model(frames_path, backbone_dir, cfg: dict, adapter_path, log_path, work_dir, seed: int,
                threads: int = 1, device=None, on_epoch_end=None, pairs_path=None, val_frames: dict | None = None,
                name: str | None = None, subsets_path=None) -> dict:
    """Train one model entry ``cfg`` (see the module docstring); returns a summary dict.

    ``frames_path``: frames.parquet (FRAMES contract; shard paths relative to the working directory).
    ``backbone_dir``: hub id or directory of the CLIP checkpoint (``cfg["backbone"]`` is the id that is
    recorded). ``on_epoch_end(epoch, summary)`` is called after each epoch's state is saved (tests use
    it to simulate an interruption). ``pairs_path``: the dataset's pairs.parquet (``data.order: paired``).
    ``val_frames``: dataset -> frames.parquet of the other datasets that ``data.val_sets`` names.
    ``name``: the model entry, named by errors (e.g. a validation set without crops); default: the
    adapter's folder (``models/<model>/`` in the workflow's layout).
    ``subsets_path``: the dataset's subsets.parquet (``data.subset``).
    """
    cfg = complete_model(cfg)  # the config schema's defaults for what ``cfg`` does not set
    torch.set_num_threads(threads)
    world, device = distributed.setup(pick_device(device))
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    t_start = time.time()
    name = name or Path(adapter_path).parent.name
    run = prepare(frames_path, backbone_dir, cfg, work_dir, seed, device, pairs_path, val_frames, world, name,
                  subsets_path)
    resume(run)
    log.info("training %s: %d train crops, batch %d, %d steps/epoch, %d epochs, %s on %s", cfg["backbone"],
             run.train.height, run.batch_size, run.steps_per_epoch, run.epochs, run.parts.dtype, device)
    for epoch in range(run.epochs_done, run.epochs):
        train_epoch(run, epoch)
        summary = end_epoch(run, epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch, summary)
    summary = finish(run, Path(adapter_path), Path(log_path), t_start)
    distributed.teardown(world)
    return summary
