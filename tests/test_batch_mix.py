"""Training batches are a fair sample of the training set however the shards are laid out on disk.

FF++ lists its videos grouped by method (every real, then every Deepfakes fake, ...). The worst case
for a streaming loader is a shard per method: these tests build exactly that, at the real protocol's
shape where it matters, and check the batches the training loop sees.
"""

from __future__ import annotations

import io
import json

import numpy as np
import polars as pl
import pytest
import webdataset as wds
from PIL import Image

from pipeline.core import tables
from pipeline.model.inputs import epoch_order
from pipeline.model.detector import save_random_backbone
from pipeline.training import train_model

from conftest import TINY_CLIP

METHODS = ("real", "DF", "F2F", "FS", "NT")


def grouped_frames(n_real: int, frames_per_video: int, videos_per_shard: int) -> pl.DataFrame:
    """A FRAMES-shaped table of FF++'s train split in disk order: shards filled method by method."""
    rows = []
    for m_idx, method in enumerate(METHODS):
        for v in range(n_real):
            video_id = f"{method}/{v:03d}" if method == "real" else f"{method}/{v:03d}_{(v + 1) % n_real:03d}"
            shard = f"shards/train-{m_idx:02d}{v // videos_per_shard:03d}.tar"
            for f in range(frames_per_video):
                rows.append({"video_id": video_id, "label": int(method != "real"), "method": method,
                             "shard": shard, "key": tables.sample_key(video_id, f)})
    return pl.DataFrame(rows)


def batch_fake_fractions(labels: np.ndarray, order: list[int], batch: int) -> np.ndarray:
    steps = len(order) // batch
    return labels[np.asarray(order[: steps * batch])].reshape(steps, batch).mean(axis=1)


def test_epoch_order_mixes_ffpp_at_real_scale():
    """FF++ c23 train: 720 reals x 5 sources x 32 frames = 115,200 crops in shards of 64 videos,
    each shard one method. Every 128-batch of two epochs is within 0.15 of the 80 % fake share."""
    frames = grouped_frames(720, 32, 64)
    assert frames.group_by("shard").agg(pl.col("label").n_unique())["label"].max() == 1  # one class per shard
    labels = frames["label"].to_numpy()
    for epoch in range(2):
        order = epoch_order(len(labels), seed=42, epoch=epoch)
        assert sorted(order) == list(range(len(labels)))  # every crop once
        fractions = batch_fake_fractions(labels, order, 128)
        assert len(fractions) == 900
        assert np.abs(fractions - labels.mean()).max() < 0.15
    assert epoch_order(1000, 1, 0) == epoch_order(1000, 1, 0) != epoch_order(1000, 1, 1)


@pytest.fixture(scope="module")
def grouped_shards(tmp_path_factory):
    """240 training videos (48 real + 4 x 48 fake) x 12 frames = 2,880 crops (more than a 2,000-sample
    shuffle buffer), written method by method into 10 shards of 24 videos: one class per shard."""
    root = tmp_path_factory.mktemp("grouped")
    table = grouped_frames(48, 12, 24).with_columns(
        shard=pl.lit(str(root) + "/") + pl.col("shard"), dataset=pl.lit("ffpp_like"), split=pl.lit("train"),
        source_id=pl.lit(None, dtype=pl.String), frame_idx=pl.col("key").str.extract(r"(\d+)$").cast(pl.Int64))
    (root / "shards").mkdir()
    rng = np.random.default_rng(0)
    sinks: dict[str, wds.TarWriter] = {}
    for row in table.iter_rows(named=True):
        if row["shard"] not in sinks:
            sinks[row["shard"]] = wds.TarWriter(row["shard"])
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
        info = {"video_id": row["video_id"], "label": row["label"]}
        sinks[row["shard"]].write({"__key__": row["key"], "png": buf.getvalue(), "json": json.dumps(info).encode()})
    for sink in sinks.values():
        sink.close()
    tables.write_parquet(table, root / "frames.parquet", tables.FRAMES, "frames")
    return {"frames": root / "frames.parquet", "root": root, "n": table.height, "fake": table["label"].mean(),
            "shards": len(sinks)}


def test_one_epoch_on_method_grouped_shards_logs_mixed_batches(grouped_shards, tmp_path):
    g = grouped_shards
    assert g["n"] > 2000 and g["shards"] == 10
    backbone = save_random_backbone(tmp_path / "backbone", TINY_CLIP, seed=0)
    cfg = {
        "backbone": "tiny", "ln_tuning": True, "l2_norm": True,
        "loss": {"label_smoothing": 0.1, "alignment": 0.1, "uniformity": 0.5},
        "slerp": {"enabled": True, "expand_to": None},
        "optim": {"lr": 1e-3, "min_lr": 1e-4, "weight_decay": 0.0, "batch_size": 128, "epochs": 1,
                  "warmup_epochs": 0, "cycle_epochs": 1},
        "augment": None,
        "data": {"train_split": "train", "val_split": None, "workers": 0},
        "select_metric": "last",
    }
    train_model(g["frames"], backbone, cfg, tmp_path / "adapter.safetensors", tmp_path / "log.parquet",
                tmp_path / "work", seed=0)
    steps = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "train")
    assert steps.height == g["n"] // 128
    close = (steps["fake_fraction"] - g["fake"]).abs() <= 0.15
    assert close.mean() >= 0.95, steps["fake_fraction"].to_list()
    assert steps["fake_fraction"].min() > 0.0 and steps["fake_fraction"].max() < 1.0


@pytest.mark.parametrize("order", ["balanced", "paired"])
def test_balanced_and_paired_orders_give_even_batches_in_training(grouped_shards, tmp_path, order):
    """training.data.order reaches the loop: on the 1:4 table every 128-batch is close to half fake."""
    g = grouped_shards
    frames = pl.read_parquet(g["frames"])
    fakes = frames.filter(pl.col("label") == 1)["video_id"].unique()
    pairs = pl.DataFrame({"fake_id": fakes}).with_columns(
        real_id="real/" + pl.col("fake_id").str.extract(r"_(\d+)$"))
    pairs.write_parquet(tmp_path / "pairs.parquet")
    backbone = save_random_backbone(tmp_path / "backbone", TINY_CLIP, seed=0)
    cfg = {
        "backbone": "tiny", "ln_tuning": False, "l2_norm": True,
        "loss": {"label_smoothing": 0.0, "alignment": 0.0, "uniformity": 0.0},
        "slerp": {"enabled": False},
        "optim": {"lr": 1e-3, "min_lr": 1e-4, "weight_decay": 0.0, "batch_size": 128, "epochs": 1,
                  "warmup_epochs": 0, "cycle_epochs": 1},
        "augment": None,
        "data": {"train_split": "train", "val_split": None, "workers": 0, "order": order},
        "select_metric": "last",
    }
    train_model(g["frames"], backbone, cfg, tmp_path / "adapter.safetensors", tmp_path / "log.parquet",
                tmp_path / "work", seed=0, pairs_path=tmp_path / "pairs.parquet")
    steps = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "train")
    assert steps.height == g["n"] // 128
    assert (steps["fake_fraction"] - 0.5).abs().max() <= 0.02, steps["fake_fraction"].to_list()


def test_a_data_fraction_trains_on_that_share_of_the_videos(grouped_shards, tmp_path):
    g = grouped_shards
    frames = pl.read_parquet(g["frames"])
    fakes = frames.filter(pl.col("label") == 1)["video_id"].unique()
    pl.DataFrame({"fake_id": fakes}).with_columns(real_id="real/" + pl.col("fake_id").str.extract(r"_(\d+)$")
                                                  ).write_parquet(tmp_path / "pairs.parquet")
    backbone = save_random_backbone(tmp_path / "backbone", TINY_CLIP, seed=0)
    cfg = {
        "backbone": "tiny", "ln_tuning": False, "l2_norm": False,
        "loss": {"label_smoothing": 0.0, "alignment": 0.0, "uniformity": 0.0}, "slerp": {"enabled": False},
        "optim": {"lr": 1e-3, "min_lr": 1e-4, "weight_decay": 0.0, "batch_size": 64, "epochs": 1,
                  "warmup_epochs": 0, "cycle_epochs": 1},
        "augment": None, "select_metric": "last",
        "data": {"train_split": "train", "val_split": None, "workers": 0, "fraction": 0.25},
    }
    train_model(g["frames"], backbone, cfg, tmp_path / "adapter.safetensors", tmp_path / "log.parquet",
                tmp_path / "work", seed=0, pairs_path=tmp_path / "pairs.parquet")
    steps = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "train")
    assert steps.height == (g["n"] // 4) // 64  # 12 of 48 reals, each with its 4 fakes
