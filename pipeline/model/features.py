"""Frozen-backbone features, extracted once per backbone and dataset split and shared by every
frozen-backbone model (``kind: logistic``): adding such a baseline then costs seconds, not a pass
of the backbone over every crop.

``features.parquet`` = the split's crop rows of ``frames.parquet`` (FRAMES columns) plus ``feature``:
the backbone's ``pooler_output`` of each crop (float32, no augmentation), in the order of the frames
table, so the same inputs give the same bytes.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import torch

from pipeline.core import tables
from .detector import Detector, autocast, load_backbone, pick_device, read_adapter_meta
from .inputs import make_loader, shard_dataset

log = logging.getLogger("pipeline.features")


def split_crops(frames_path, split: str) -> pl.DataFrame:
    """The rows of ``split`` in ``frames_path`` that have a stored crop."""
    frames = pl.read_parquet(frames_path)
    return frames.filter((pl.col("split") == split) & pl.col("key").is_not_null())


def backbone_features(detector: Detector, crops: pl.DataFrame, *, batch_size: int = 64, device="cpu",
                      workers: int = 0) -> np.ndarray:
    """``pooler_output`` of every crop of ``crops`` (in its row order), float32 ``[N, hidden]``."""
    if crops.height == 0:
        return np.zeros((0, detector.hidden_size), dtype=np.float32)
    device = torch.device(device)
    shards = sorted(crops.get_column("shard").unique().to_list())
    dataset = shard_dataset(shards, set(crops.get_column("key").to_list()), train=False,
                            image_size=detector.image_size, seed=0, epoch=0, augment=None)
    got: dict[tuple[str, str], np.ndarray] = {}
    detector.eval()
    with torch.inference_mode():
        for batch in make_loader(dataset, batch_size=batch_size, workers=workers, drop_last=False):
            with autocast(device):
                feats = detector.features(detector.normalize(batch["pixel_values"].to(device, non_blocking=True)))
            for shard, key, f in zip(batch["shards"], batch["keys"], feats.float().cpu().numpy()):
                got[(shard, key)] = f
    order = list(zip(crops.get_column("shard").to_list(), crops.get_column("key").to_list()))
    missing = [k for k in order if k not in got]
    if missing:
        raise ValueError(f"{len(missing)} listed crops not found in their shards, e.g. {missing[:3]}")
    return np.stack([got[k] for k in order]).astype(np.float32)


def with_features(crops: pl.DataFrame, feats: np.ndarray) -> pl.DataFrame:
    """``crops`` (FRAMES columns) with the ``feature`` column (fixed-size float32 arrays)."""
    crops = tables.conform(crops, tables.FRAMES, "frames")
    column = pl.Series("feature", feats, dtype=pl.Array(pl.Float32, feats.shape[1]))
    return crops.with_columns(column)


def extract_features(frames_path, split: str, backbone_dir, out_path, *, batch_size: int = 64,
                     device: str | None = None, workers: int = 0) -> pl.DataFrame:
    """Write ``features.parquet`` for one dataset split (the workflow's ``features`` rule)."""
    from pipeline.core.files import replacing

    crops = split_crops(frames_path, split)
    device = pick_device(device)
    detector = Detector(load_backbone(backbone_dir), ln_tuning=False, l2_norm=False).to(device)
    log.info("extracting %s features of %d crops (%s split) on %s", backbone_dir, crops.height, split, device)
    table = with_features(crops, backbone_features(detector, crops, batch_size=batch_size, device=device,
                                                   workers=workers))
    with replacing(out_path) as tmp:
        table.write_parquet(tmp, statistics=False)
    return table


def read_features(path) -> tuple[pl.DataFrame, np.ndarray]:
    """``(rows without the feature column, features [N, hidden] float32)`` of a features.parquet."""
    table = pl.read_parquet(path)
    if "feature" not in table.columns:
        raise ValueError(f"{path}: not a features table (no 'feature' column)")
    feats = table.get_column("feature").to_numpy().astype(np.float32, copy=False)
    return table.drop("feature"), feats.reshape(table.height, -1)


def head_scores(rows: pl.DataFrame, features: np.ndarray, head: dict[str, torch.Tensor]) -> pl.DataFrame:
    """SCORES rows: p(fake) of each feature under a linear head (computed in float64)."""
    w = head["head.weight"].double().numpy()
    b = head["head.bias"].double().numpy()
    logits = features.astype(np.float64) @ w.T + b
    p = torch.softmax(torch.from_numpy(logits), dim=1)[:, 1].numpy() if len(rows) else np.zeros(0)
    return tables.conform(rows.with_columns(pl.Series("p_fake", p, dtype=pl.Float64)), tables.SCORES, "scores")


def score_features_file(adapter_path, features_path) -> pl.DataFrame:
    """SCORES of every crop of a features table under a frozen-backbone adapter (head tensors only)."""
    from safetensors.torch import load_file

    meta = read_adapter_meta(adapter_path)
    if meta["model"].get("ln_tuning"):
        raise ValueError(f"{adapter_path}: an LN-tuned model cannot be scored from frozen features")
    tensors = load_file(str(adapter_path))
    rows, x = read_features(features_path)
    if meta["model"].get("l2_norm"):
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return head_scores(rows, x, tensors)
