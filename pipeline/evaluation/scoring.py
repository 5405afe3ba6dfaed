"""p(fake) of face crops: stored in shards (the SCORES contract), or given as PNG bytes or image files."""

from __future__ import annotations


import polars as pl
import torch
from PIL import Image

from pipeline.core import codec, logs, tables
from pipeline.model import Detector, autocast, make_loader, shard_dataset, to_uint8


def p_fake(detector: Detector, pixel_values: torch.Tensor, device) -> list[float]:
    """``softmax(logits)[:, 1]`` of one batch of ``uint8`` crops, normalised on ``device`` with the
    detector's mean/std (bf16 autocast on CUDA), as floats."""
    with torch.inference_mode(), autocast(device):
        logits, _ = detector(detector.normalize(pixel_values.to(device, non_blocking=True)))
    return torch.softmax(logits.float(), dim=1)[:, 1].cpu().tolist()


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

    Reads the rows' shards (``shard`` column, paths as stored) without augmentation (``transform``, if
    given, is applied to each decoded crop first: the robustness corruptions), in eval mode
    under ``torch.inference_mode`` (bf16 autocast on CUDA), with a progress bar counting crops.
    Returns one row per crop, in the order of ``frames``, conformed to :data:`tables.SCORES`. Raises
    if a listed crop is not in its shard.
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
    with logs.progress(total=crops.height, desc="scoring", unit="crop") as bar:
        for batch in loader:
            got_p.extend(p_fake(detector, batch["pixel_values"], device))
            got_key.extend(batch["keys"])
            got_shard.extend(batch["shards"])
            bar.update(len(batch["keys"]))
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


def _score_images(detector: Detector, images, *, batch_size: int, device) -> list[float]:
    """p(fake) of PIL images (any size: resized as in training), in order, in batches."""
    device = torch.device(device)
    was_training = detector.training
    detector.eval()
    out: list[float] = []
    images = list(images)
    for i in range(0, len(images), batch_size):
        x = torch.stack([to_uint8(img, detector.image_size) for img in images[i:i + batch_size]])
        out.extend(p_fake(detector, x, device))
    detector.train(was_training)
    return out


def score_crops(detector: Detector, crops: list[bytes], *, batch_size: int = 64, device="cpu") -> list[float]:
    """p(fake) of face crops given as encoded bytes (QOI or PNG, as the faces stage stores them), decoded
    as the workflow's evaluation decodes a shard's crop."""
    images = (Image.fromarray(codec.decode(b, "crop")) for b in crops)
    return _score_images(detector, images, batch_size=batch_size, device=device)


def predict_images(detector: Detector, paths: list, *, batch_size: int = 64, device="cpu") -> list[float]:
    """p(fake) for image files that are already aligned face crops (e.g. 256x256 DeepfakeBench crops),
    in the given order. No face detection happens here: :func:`pipeline.predict.predict_files` runs
    the faces stage on unaligned images and videos."""
    return _score_images(detector, (Image.open(p) for p in paths), batch_size=batch_size, device=device)
