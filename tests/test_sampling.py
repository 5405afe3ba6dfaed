"""Epoch order strategies: plain shuffle, class-balanced batches, in-batch fake/source-real pairing."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipeline.model.inputs import epoch_order
from pipeline.training.sampling import balanced_order, order_for, paired_order


def ffpp_like(n_real: int = 20, frames: int = 8, methods=("DF", "F2F", "FS", "NT"), missing_reals=()):
    """FRAMES and PAIRS tables shaped like FF++: each real has one fake per method (target_source)."""
    rows, pairs = [], []
    for v in range(n_real):
        real = f"real/{v:03d}"
        if real not in missing_reals:
            rows += [{"video_id": real, "label": 0} for _ in range(frames)]
        for m in methods:
            fake = f"{m}/{(v + 1) % n_real:03d}_{v:03d}"
            rows += [{"video_id": fake, "label": 1} for _ in range(frames)]
            pairs.append({"fake_id": fake, "real_id": real})
    return pl.DataFrame(rows), pl.DataFrame(pairs)


def batches(order, batch_size):
    steps = len(order) // batch_size
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def test_shuffle_is_the_plain_permutation():
    frames, pairs = ffpp_like()
    assert order_for("shuffle", frames, 3, 1, 16, pairs) == epoch_order(frames.height, 3, 1)


@pytest.mark.parametrize("batch_size", [16, 15])
def test_balanced_batches_hold_both_classes_equally(batch_size):
    frames, _ = ffpp_like()  # 160 real, 640 fake crops: 1:4
    labels = frames["label"].to_numpy()
    order = balanced_order(labels, seed=5, epoch=0, batch_size=batch_size)
    fakes = [int(labels[b].sum()) for b in batches(order, batch_size)]
    assert set(fakes) <= {batch_size // 2, batch_size - batch_size // 2}
    assert abs(labels[order].mean() - 0.5) < 0.01
    assert set(np.flatnonzero(labels == 1)) <= set(order)  # every fake crop once per epoch
    assert order == balanced_order(labels, 5, 0, batch_size) != balanced_order(labels, 5, 1, batch_size)


def test_balanced_refuses_a_single_class():
    with pytest.raises(ValueError, match="both classes"):
        balanced_order(np.ones(10, int), 0, 0, 4)


@pytest.mark.parametrize("batch_size", [16, 7])
def test_paired_batches_hold_each_fake_with_its_source_real(batch_size):
    frames, pairs = ffpp_like(missing_reals=("real/003",))
    video = frames["video_id"].to_list()
    label = frames["label"].to_list()
    source = dict(zip(pairs["fake_id"], pairs["real_id"]))
    order = paired_order(frames, pairs, seed=1, epoch=0, batch_size=batch_size)
    assert set(np.flatnonzero(np.asarray(label) == 1)) <= set(order)  # every fake crop
    checked = 0
    for batch in batches(order, batch_size):
        videos = {video[i] for i in batch}
        for i in batch:
            if label[i] == 1 and source[video[i]] != "real/003":
                assert source[video[i]] in videos
                checked += 1
    assert checked > 0.8 * (len(order) // batch_size) * (batch_size // 2)  # nearly every slot pair
    assert order == paired_order(frames, pairs, 1, 0, batch_size) != paired_order(frames, pairs, 1, 1, batch_size)


def test_unknown_strategy_is_named():
    frames, pairs = ffpp_like(2, 2)
    with pytest.raises(ValueError, match="'pairs'"):
        order_for("pairs", frames, 0, 0, 4, pairs)
    with pytest.raises(ValueError, match="pairs.parquet"):
        order_for("paired", frames, 0, 0, 4, None)


def test_video_fraction_keeps_whole_videos_with_their_fakes_seeded():
    from pipeline.training.sampling import video_fraction
    frames, pairs = ffpp_like(n_real=40, frames=4, missing_reals=("real/007",))
    source = dict(zip(pairs["fake_id"], pairs["real_id"]))
    counts = frames.group_by("video_id").len()
    for fraction in (0.25, 0.5, 0.75):
        part = video_fraction(frames, pairs, fraction, seed=3)
        kept = part.group_by("video_id").len()
        assert kept.join(counts, on="video_id", suffix="_all").filter(pl.col("len") != pl.col("len_all")).height == 0
        reals = set(part.filter(pl.col("label") == 0)["video_id"])
        fakes = set(part.filter(pl.col("label") == 1)["video_id"])
        orphans = {f for f in fakes if source[f] == "real/007"}  # their real has no crops: own groups
        assert len(reals) + len(orphans) == round(fraction * (39 + 4))
        for fake in fakes:  # a fake comes with its source real when that real has crops
            assert source[fake] in reals or source[fake] == "real/007"
        for real in reals:  # and a real with all of its fakes
            assert {f for f, r in source.items() if r == real} <= fakes
        assert part.equals(video_fraction(frames, pairs, fraction, seed=3))
        assert not part.equals(video_fraction(frames, pairs, fraction, seed=4))
    assert video_fraction(frames, pairs, 1.0, seed=3).equals(frames)
    with pytest.raises(ValueError, match="fraction"):
        video_fraction(frames, pairs, 0.0, seed=3)
