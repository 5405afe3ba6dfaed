"""Frame scores: run a detector over the crops listed in a FRAMES table (SCORES contract)."""

from __future__ import annotations

import polars as pl
import torch

from . import tables
from .data import make_loader, shard_dataset
from .model import Detector, autocast


def predict_frames(
    detector: Detector,
    frames: pl.DataFrame,
    *,
    batch_size: int = 64,
    device="cpu",
    workers: int = 0,
    transform=None,
) -> pl.DataFrame:
    """``p_fake = softmax(logits)[:, 1]`` for every crop of ``frames`` (rows whose ``key`` is set).

    Reads the rows' shards (``shard`` column, paths as stored) without augmentation, in eval mode
    under ``torch.inference_mode`` (bf16 autocast on CUDA). Returns one row per crop, in the order of
    ``frames``, conformed to :data:`tables.SCORES`. Raises if a listed crop is not in its shard.
    """
    crops = frames.filter(pl.col("key").is_not_null())
    if crops.height == 0:
        return tables.empty(tables.SCORES)
    device = torch.device(device)
    shards = sorted(crops.get_column("shard").unique().to_list())
    keys = set(crops.get_column("key").to_list())
    dataset = shard_dataset(
        shards, keys, train=False, image_size=detector.image_size, seed=0, epoch=0, augment=None,
        transform=transform,
    )
    loader = make_loader(dataset, batch_size=batch_size, workers=workers, drop_last=False)
    was_training = detector.training
    detector.eval()
    got_shard, got_key, got_p = [], [], []
    with torch.inference_mode():
        for batch in loader:
            x = batch["pixel_values"].to(device, non_blocking=True)
            with autocast(device):
                logits, _ = detector(x)
            p = torch.softmax(logits.float(), dim=1)[:, 1]
            got_p.extend(p.cpu().tolist())
            got_key.extend(batch["keys"])
            got_shard.extend(batch["shards"])
    detector.train(was_training)
    scores = pl.DataFrame(
        {"shard": got_shard, "key": got_key, "p_fake": got_p},
        schema={"shard": pl.String, "key": pl.String, "p_fake": pl.Float64},
    ).unique(subset=["shard", "key"], keep="first")
    out = crops.join(scores, on=["shard", "key"], how="left", maintain_order="left")
    missing = out.filter(pl.col("p_fake").is_null())
    if missing.height:
        examples = missing.select("shard", "key").head(3).rows()
        raise ValueError(
            f"predict_frames: {missing.height} listed crops not found in their shards, e.g. {examples}"
        )
    return tables.conform(out, tables.SCORES, "scores")


def predict_images(detector: Detector, paths: list, *, batch_size: int = 64, device="cpu") -> list[float]:
    """p(fake) for face-crop image files (e.g. 256x256 DeepfakeBench crops), in the given order.

    The images must already be aligned face crops: no detection happens here.
    """
    from PIL import Image

    from .data import preprocess

    device = torch.device(device)
    detector.eval()
    out: list[float] = []
    with torch.inference_mode():
        for i in range(0, len(paths), batch_size):
            x = torch.stack([preprocess(Image.open(p), detector.image_size) for p in paths[i:i + batch_size]])
            with autocast(device):
                logits, _ = detector(x.to(device))
            out.extend(torch.softmax(logits.float(), dim=1)[:, 1].cpu().tolist())
    return out
