"""Training loop: schedule values, learning on a separable toy set, logs, resume."""

import copy
import io
import json
import logging
import math

import numpy as np
import polars as pl
import pytest
import torch
import webdataset as wds
from PIL import Image
from safetensors.torch import load_file

from pipeline.core import tables
from pipeline.model.detector import load_detector, save_random_backbone
from pipeline.evaluation import predict_frames
from pipeline.training import LOG_SCHEMA, lr_at, train_model

from conftest import TINY_CLIP as TINY


# ---------------------------------------------------------------------------- schedule


def test_lr_schedule_boundaries():
    # The paper's schedule: 1 epoch warm-up 1e-5 -> 3e-4, 9 epochs cosine back to 1e-5, cycles of 10 epochs.
    spe, hi, lo = 100, 3e-4, 1e-5
    f = lambda s: lr_at(s, spe, hi, lo, warmup_epochs=1, cycle_epochs=10)  # noqa: E731
    assert f(0) == pytest.approx(lo, rel=1e-12)
    assert f(50) == pytest.approx(lo + (hi - lo) * 0.5, rel=1e-12)  # half-way through the warm-up
    assert f(100) == pytest.approx(hi, rel=1e-12)  # end of warm-up = peak
    assert f(550) == pytest.approx(lo + (hi - lo) * 0.5, rel=1e-12)  # cosine half-way (450 of 900 steps)
    assert f(999) == pytest.approx(lo + (hi - lo) * 0.5 * (1 + math.cos(math.pi * 899 / 900)), rel=1e-12)
    assert f(1000) == pytest.approx(lo, rel=1e-12)  # second cycle restarts the warm-up
    assert f(1100) == pytest.approx(hi, rel=1e-12)
    assert f(1550) == pytest.approx(f(550), rel=1e-12)
    # No warm-up: one plain cosine over the cycle.
    assert lr_at(0, 10, 1.0, 0.0, 0, 2) == 1.0 and lr_at(10, 10, 1.0, 0.0, 0, 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        lr_at(0, 10, 1.0, 0.0, 2, 2)


# ---------------------------------------------------------------------------- toy data


def toy_image(label, rng):
    """64x64 "crop": reals are grey-brown noise, fakes are bluer and carry a bright square."""
    base = np.array([130, 110, 100]) if label == 0 else np.array([100, 110, 150])
    img = np.clip(base + rng.normal(0, 25, (64, 64, 3)), 0, 255)
    if label == 1:
        x, y = rng.integers(8, 32, size=2)
        img[y : y + 24, x : x + 24] = 250
    return Image.fromarray(img.astype(np.uint8))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """24 videos x 4 frames in 2 shards: 16 train videos (64 crops), 8 val videos (32 crops)."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    rows = []
    sinks = [wds.TarWriter(str(root / f"toy-{s:05d}.tar")) for s in range(2)]
    for v in range(24):
        label = v % 2
        split = "train" if v < 16 else "val"
        video_id = f"real/{v:03d}" if label == 0 else f"DF/{v:03d}_{v + 100:03d}"
        shard = root / f"toy-{v % 2:05d}.tar"
        for frame_idx in (0, 10, 20, 30):
            key = tables.sample_key(video_id, frame_idx)
            buf = io.BytesIO()
            toy_image(label, rng).save(buf, format="PNG")
            info = {
                "video_id": video_id,
                "frame_idx": frame_idx,
                "label": label,
                "method": ["real", "DF"][label],
                "split": split,
            }
            sinks[v % 2].write({"__key__": key, "png": buf.getvalue(), "json": json.dumps(info).encode()})
            rows.append(
                {
                    "dataset": "toy",
                    "video_id": video_id,
                    "split": split,
                    "label": label,
                    "method": ["real", "DF"][label],
                    "source_id": f"real/{v:03d}",
                    "frame_idx": frame_idx,
                    "shard": str(shard),
                    "key": key,
                }
            )
        # A sampled frame without a crop must be ignored.
        rows.append(
            {
                "dataset": "toy",
                "video_id": video_id,
                "split": split,
                "label": label,
                "frame_idx": 40,
                "status": "no_face",
            }
        )
    for sink in sinks:
        sink.close()
    tables.write_parquet(pl.DataFrame(rows), root / "frames.parquet", tables.FRAMES, "frames")
    backbone = save_random_backbone(root / "backbone", TINY, seed=0, with_text=True)
    return {"frames": root / "frames.parquet", "backbone": backbone}


def make_cfg(epochs=4, **optim):
    return {
        "backbone": "tiny-random-clip",
        "ln_tuning": True,
        "l2_norm": True,
        "loss": {"label_smoothing": 0.1, "alignment": 0.1, "uniformity": 0.5},
        "slerp": {"enabled": True, "expand_to": None},
        "optim": {
            "lr": 1e-2,
            "min_lr": 1e-3,
            "weight_decay": 0.0,
            "batch_size": 16,
            "epochs": epochs,
            "warmup_epochs": 1,
            "cycle_epochs": 4,
            **optim,
        },
        "augment": {"blur": {"p": 0.1}},
        "data": {"train_split": "train", "val_split": "val", "workers": 0},
        "select_metric": "video_auroc",
    }


def last_best(values) -> int:
    """The epoch the selection keeps: the best value, the later epoch of a tie."""
    v = values.to_numpy()
    return int(len(v) - 1 - np.nanargmax(v[::-1]))


def run(toy, out, cfg, seed=0, **kw):
    return train_model(
        toy["frames"],
        toy["backbone"],
        cfg,
        out / "adapter.safetensors",
        out / "log.parquet",
        out / "work",
        seed=seed,
        threads=1,
        **kw,
    )


# ---------------------------------------------------------------------------- learning


def test_learns_separable_toy_set(toy, tmp_path):
    summary = run(toy, tmp_path, make_cfg())
    logs = pl.read_parquet(tmp_path / "log.parquet")
    assert logs.columns == list(LOG_SCHEMA) + ["video_ap"]  # a gradient-trained model's log adds video AP
    train = logs.filter(pl.col("kind") == "train")
    val = logs.filter(pl.col("kind") == "val")
    assert train.height == 4 * 4 and val.height == 4  # 64 crops / batch 16 = 4 steps x 4 epochs
    assert train["step"].to_list() == list(range(16))
    per_epoch = train.group_by("epoch").agg(pl.col("loss").mean(), pl.col("acc").mean()).sort("epoch")
    assert per_epoch["loss"][-1] < per_epoch["loss"][0]
    assert per_epoch["acc"][-1] > per_epoch["acc"][0]
    assert val["n_frames"].to_list() == [32] * 4 and val["n_videos"].to_list() == [8] * 4
    assert max(val["video_auroc"]) > 0.9 and max(val["frame_auroc"]) > 0.9
    assert train["lr"][0] == pytest.approx(1e-3) and train["lr"][4] == pytest.approx(1e-2)
    assert not train["align"].is_nan().any() and not train["unif"].is_nan().any()

    best = last_best(val["video_auroc"])  # ties go to the later epoch
    assert summary["best_epoch"] == best and summary["selected_by"] == "video_auroc"
    assert summary["trainable_parameters"] == 6 * 2 * 32 + 32 * 2 + 2

    detector, meta = load_detector(tmp_path / "adapter.safetensors", toy["backbone"])
    assert meta["best_epoch"] == best and meta["backbone"] == "tiny-random-clip" and meta["seed"] == 0
    assert meta["cfg"]["slerp"]["enabled"] is True
    frames = pl.read_parquet(toy["frames"])
    scores = predict_frames(detector, frames.filter(pl.col("split") == "val"), batch_size=7)
    assert scores.columns == list(tables.SCORES) and scores.height == 32
    assert (
        scores["key"].to_list()
        == frames.filter((pl.col("split") == "val") & pl.col("key").is_not_null())["key"].to_list()
    )
    vids = scores.group_by("video_id").agg(pl.col("label").first(), pl.col("p_fake").mean())
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(vids["label"], vids["p_fake"]) == pytest.approx(val["video_auroc"][best], abs=1e-9)


def test_ln_tuning_trains_a_dinov3_backbone(toy, dinov3_dir, tmp_path):
    """GenD's DINOv3 variant: the same loop on a DINOv3 ViT tunes its LayerNorms and the head only."""
    from conftest import TINY_DINOV3

    cfg = make_cfg(epochs=2)
    cfg["backbone"] = "tiny-random-dinov3"
    summary = train_model(toy["frames"], dinov3_dir, cfg, tmp_path / "adapter.safetensors", tmp_path / "log.parquet",
                          tmp_path / "work", seed=0, threads=1)
    hidden, layers = TINY_DINOV3["hidden_size"], TINY_DINOV3["num_hidden_layers"]
    assert summary["trainable_parameters"] == (2 * layers + 1) * 2 * hidden + hidden * 2 + 2  # norm1/2 x 2, norm
    tensors = load_file(str(tmp_path / "adapter.safetensors"))
    assert set(tensors) == {f"backbone.model.layer.{i}.norm{j}.{w}" for i in range(layers) for j in (1, 2)
                            for w in ("weight", "bias")} | {"backbone.norm.weight", "backbone.norm.bias",
                                                           "head.weight", "head.bias"}
    train = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "train")
    assert train.height == 2 * 4 and train["loss"].is_finite().all()
    initial = load_file(str(dinov3_dir / "model.safetensors"))
    assert not torch.equal(tensors["backbone.model.layer.1.norm2.weight"], initial["layer.1.norm2.weight"])

    # Evaluation rebuilds the same model from the adapter and scores as validation did.
    detector, meta = load_detector(tmp_path / "adapter.safetensors", dinov3_dir)
    val = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "val")
    frames = pl.read_parquet(toy["frames"])
    scores = predict_frames(detector, frames.filter(pl.col("split") == "val"), batch_size=7)
    vids = scores.group_by("video_id").agg(pl.col("label").first(), pl.col("p_fake").mean())
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(vids["label"], vids["p_fake"]) == pytest.approx(val["video_auroc"][meta["best_epoch"]],
                                                                         abs=1e-9)


def test_linear_probe_and_expand_and_no_val(toy, tmp_path):
    cfg = make_cfg(epochs=1)
    cfg.update(ln_tuning=False, l2_norm=False, slerp={"enabled": True, "expand_to": 64})
    cfg["data"]["val_split"] = None  # no validation set: the last epoch
    summary = run(toy, tmp_path, cfg)
    assert summary["selected_by"] == "last" and summary["best_epoch"] == 0
    assert math.isnan(summary["val"]["video_auroc"])
    train = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "train")
    assert train["batch"].to_list() == [64] * 4  # slerp grew each batch of 16 to 64 samples
    assert set(load_file(str(tmp_path / "adapter.safetensors"))) == {"head.weight", "head.bias"}


def test_several_validation_sets_select_on_their_mean(toy, tmp_path):
    cfg = make_cfg(epochs=2)
    cfg["data"]["val_sets"] = [{"dataset": "other", "split": "train"}]
    summary = run(toy, tmp_path, cfg, val_frames={"other": toy["frames"]})
    logs = pl.read_parquet(tmp_path / "log.parquet")
    mean = logs.filter(pl.col("kind") == "val").sort("epoch")
    own = logs.filter(pl.col("kind") == "val:None/val").sort("epoch")
    other = logs.filter(pl.col("kind") == "val:other/train").sort("epoch")
    assert mean.height == own.height == other.height == 2
    expected = (own["video_auroc"] + other["video_auroc"]) / 2
    assert mean["video_auroc"].to_list() == pytest.approx(expected.to_list())
    assert mean["n_frames"].to_list() == [32 + 64] * 2  # 32 val crops + 64 train crops
    best = last_best(mean["video_auroc"])
    assert summary["best_epoch"] == best and summary["val"]["video_auroc"] == pytest.approx(expected[best])
    with pytest.raises(ValueError, match="no frames table given for dataset 'missing'"):
        cfg["data"]["val_sets"] = [{"dataset": "missing", "split": "val"}]
        run(toy, tmp_path / "again", cfg)


def test_fewer_crops_than_a_batch(toy, tmp_path, caplog):
    cfg = make_cfg(epochs=1, batch_size=500)
    with caplog.at_level(logging.WARNING, logger="pipeline.train"):
        summary = run(toy, tmp_path, cfg)
    assert summary["batch_size"] == 64 and summary["steps_per_epoch"] == 1
    assert "one batch of 64" in caplog.text


# ---------------------------------------------------------------------------- resume


class Interrupt(Exception):
    pass


def test_resume_gives_the_uninterrupted_result(toy, tmp_path, caplog):
    cfg = make_cfg(epochs=3)
    full = tmp_path / "full"
    run(toy, full, cfg)
    reference = load_file(str(full / "adapter.safetensors"))

    # Interrupted after the first epoch: no declared outputs, a complete state in the work dir.
    part = tmp_path / "part"

    def stop(epoch, summary):
        if epoch == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(toy, part, cfg, on_epoch_end=stop)
    assert not (part / "adapter.safetensors").exists() and (part / "work" / "state.json").exists()
    assert json.loads((part / "work" / "state.json").read_text())["epoch"] == 1

    with caplog.at_level(logging.INFO, logger="pipeline.train"):
        summary = run(toy, part, cfg)
    assert "resumed" in caplog.text and summary["resumed_from_epoch"] == 1
    resumed = load_file(str(part / "adapter.safetensors"))
    assert (part / "adapter.safetensors").read_bytes() == (full / "adapter.safetensors").read_bytes()
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.equal(resumed[name], reference[name]), name
    logs_full = pl.read_parquet(full / "log.parquet").drop("seconds")
    logs_part = pl.read_parquet(part / "log.parquet").drop("seconds")
    assert logs_part.equals(logs_full)

    # A shorter run continued to more epochs (epochs is not part of the state's identity).
    grow = tmp_path / "grow"
    run(toy, grow, make_cfg(epochs=2))
    summary = run(toy, grow, cfg)
    assert summary["resumed_from_epoch"] == 2
    grown = load_file(str(grow / "adapter.safetensors"))
    assert all(torch.equal(grown[n], reference[n]) for n in reference)

    # A different config does not resume from another config's state.
    other = copy.deepcopy(cfg)
    other["loss"]["alignment"] = 0.0
    assert run(toy, grow, other)["resumed_from_epoch"] is None


# ---------------------------------------------------------------------------- reproducible, readable outputs


def test_adapter_bytes_are_reproducible_and_outputs_group_readable(toy, tmp_path):
    """Two runs give byte-identical adapters (the safetensors header is canonical: its metadata keys
    used to come out in varying order); every file written is 0644 and every folder 0755 under
    umask 022 (safetensors itself writes 0600), the resumable state included."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        cfg = make_cfg(epochs=1)
        run(toy, tmp_path / "a", cfg)
        run(toy, tmp_path / "b", cfg)
    finally:
        os.umask(old)
    a, b = (tmp_path / d / "adapter.safetensors" for d in "ab")
    assert a.read_bytes() == b.read_bytes()
    header = a.read_bytes()[8:8 + int.from_bytes(a.read_bytes()[:8], "little")]
    keys = list(json.loads(header))
    assert keys == sorted(keys) and list(json.loads(header)["__metadata__"]) == ["format", "meta"]
    written = [p for p in (tmp_path / "a").rglob("*")]
    assert {p.name for p in written} >= {"adapter.safetensors", "log.parquet", "work", "state.json"}
    assert any(p.suffix == ".safetensors" and p.parent.name == "work" for p in written)
    for p in written:
        assert stat.S_IMODE(p.stat().st_mode) == (0o755 if p.is_dir() else 0o644), p
