"""Property-based tests (hypothesis): the metrics and the manifest's shard <-> index check."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.datasets import manifest
from pipeline.core import tables
from pipeline.evaluation.metrics import RANKING_KEYS, THRESHOLD_KEYS, binary_metrics

VALUE_KEYS = RANKING_KEYS + THRESHOLD_KEYS
FRACTION_KEYS = tuple(k for k in VALUE_KEYS if k != "eer_threshold")

# Scores on a coarse grid as well as free floats, so ties (within and across classes) are common.
# Multiples of 1/1000 keep 1 - p exactly order-reversing (a float next to 0 would tie with 0 in 1 - p).
score = st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), st.integers(0, 1000).map(lambda k: k / 1000))


@st.composite
def labelled(draw, min_size=2, both=True):
    n = draw(st.integers(min_size, 60))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    if both:
        y[0], y[1] = 0, 1
    s = draw(st.lists(score, min_size=n, max_size=n))
    return np.array(y), np.array(s, dtype=np.float64)


def _same(a: dict, b: dict, keys=VALUE_KEYS):
    for k in keys:
        if math.isnan(a[k]):
            assert math.isnan(b[k]), k
        else:
            assert b[k] == pytest.approx(a[k], abs=1e-9), k


@settings(max_examples=60, deadline=None)
@given(labelled(), st.randoms(use_true_random=False))
def test_metrics_do_not_depend_on_order(data, rnd):
    y, s = data
    perm = list(range(y.size))
    rnd.shuffle(perm)
    _same(binary_metrics(y, s), binary_metrics(y[perm], s[perm]))


@settings(max_examples=60, deadline=None)
@given(labelled(), st.integers(2, 4))
def test_metrics_do_not_change_when_the_whole_set_is_repeated(data, k):
    y, s = data
    a, b = binary_metrics(y, s), binary_metrics(np.tile(y, k), np.tile(s, k))
    _same(a, b)
    assert (b["n"], b["n_real"], b["n_fake"]) == (k * a["n"], k * a["n_real"], k * a["n_fake"])


@settings(max_examples=80, deadline=None)
@given(labelled(min_size=1, both=False))
def test_metrics_stay_in_bounds(data):
    y, s = data
    m = binary_metrics(y, s)
    for k in FRACTION_KEYS:
        assert math.isnan(m[k]) or 0.0 <= m[k] <= 1.0, (k, m[k])
    one_class = y.min() == y.max()
    assert all(math.isnan(m[k]) for k in RANKING_KEYS) == one_class
    assert set(m["notes"]) >= (set(RANKING_KEYS) if one_class else set())
    if not one_class:
        assert m["tpr_at_fpr_1"] <= m["tpr_at_fpr_5"]
        assert m["ap"] >= 0.0 and m["eer"] <= 1.0


@settings(max_examples=60, deadline=None)
@given(labelled())
def test_auroc_of_the_complement_is_one_minus_auroc(data):
    y, s = data
    assert binary_metrics(y, 1.0 - s)["auroc"] == pytest.approx(1.0 - binary_metrics(y, s)["auroc"], abs=1e-12)


# --------------------------------------------------------------- manifest: shard tables vs the index

VIDEO_IDS = [f"v{i}" for i in range(8)]


@st.composite
def shard_tables(draw):
    """An index of 1-8 videos and shard tables covering some of them; sometimes a duplicated key."""
    vids = draw(st.lists(st.sampled_from(VIDEO_IDS), min_size=1, max_size=8, unique=True))
    covered = draw(st.lists(st.sampled_from(vids), unique=True, max_size=len(vids)))
    rows = []
    for v in covered:
        n_rows = draw(st.integers(1, 4))
        n_ok = draw(st.integers(0, n_rows))
        for i in range(n_rows):
            ok = i < n_ok
            rows.append({"dataset": "d", "video_id": v, "split": "test", "label": int(v[1:]) % 2, "method": "m",
                         "frame_idx": 10 * i, "shard": "s.tar", "key": tables.sample_key(v, 10 * i) if ok else None,
                         "status": tables.STATUS_OK if ok else tables.STATUS_NO_FACE})
    keyed = [r for r in rows if r["key"]]
    if keyed and draw(st.booleans()):
        rows.append(dict(draw(st.sampled_from(keyed))))  # the same crop listed twice
    n_shards = draw(st.integers(1, 3))
    parts = [rows[i::n_shards] for i in range(n_shards)]
    return vids, covered, parts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shard_tables())
def test_manifest_accepts_exactly_consistent_shard_tables(case):
    vids, covered, parts = case
    videos = tables.conform(pl.DataFrame({
        "dataset": ["d"] * len(vids), "video_id": vids, "path": vids, "label": [int(v[1:]) % 2 for v in vids],
        "method": ["m"] * len(vids), "split": ["test"] * len(vids), "chunk": [0] * len(vids)}), tables.VIDEOS, "videos")
    rows = [r for p in parts for r in p]
    keys = [r["key"] for r in rows if r["key"]]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        tables.write_parquet(videos, d / "videos.parquet", tables.VIDEOS, "videos")
        shard_paths = []
        for i, p in enumerate(parts):
            tables.write_parquet(pl.DataFrame(p, schema={k: tables.FRAMES[k] for k in p[0]}) if p
                                 else tables.empty(tables.FRAMES), d / f"{i}.parquet", tables.FRAMES, "frames")
            shard_paths.append(d / f"{i}.parquet")
        outs = [d / "frames.parquet", d / "pairs.parquet", d / "stats.json"]
        missing = set(vids) - set(covered)
        duplicated = len(keys) != len(set(keys))
        if missing or duplicated:
            with pytest.raises(ValueError, match="have no row in the shard tables" if missing else "duplicate"):
                manifest.build_manifest(d / "videos.parquet", shard_paths, *outs)
            assert not any(o.exists() for o in outs)  # nothing written when the check fails
            return
        stats = manifest.build_manifest(d / "videos.parquet", shard_paths, *outs)
        frames = pl.read_parquet(outs[0])
    # every row of every shard table is in the manifest once; the counts add up
    assert frames.height == len(rows)
    assert sorted(frames["key"].drop_nulls().to_list()) == sorted(keys)
    assert stats["faces"] + sum(stats["failures"].values()) == len(rows) == stats["frames_sampled"]
    assert stats["videos_without_crops"] == sum(1 for v in vids if not any(r["video_id"] == v and r["key"]
                                                                            for r in rows))
