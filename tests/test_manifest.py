import json

import polars as pl
import pytest

from pipeline.datasets import manifest
from pipeline.core import tables


def videos():
    return tables.conform(pl.DataFrame({
        "dataset": ["d"] * 4,
        "video_id": ["real/000", "DF/000_003", "DF/001_002", "real/005"],
        "path": ["a", "b", "c", "d"],
        "label": [0, 1, 1, 0],
        "method": ["real", "DF", "DF", "real"],
        "source_id": ["real/000", "real/000", "real/001", "real/005"],
        "split": ["train", "train", "val", "test"],
        "error": [None, None, None, "cannot open video"],
        "chunk": [0, 0, 0, 0],
    }), tables.VIDEOS, "videos")


def frame_rows(video_id, split, label, method, n_ok, n_fail=0, status=tables.STATUS_NO_FACE, shard="s.tar"):
    rows = []
    for i in range(n_ok + n_fail):
        ok = i < n_ok
        rows.append({"dataset": "d", "video_id": video_id, "split": split, "label": label, "method": method,
                     "frame_idx": i * 10, "shard": shard,
                     "key": tables.sample_key(video_id, i * 10) if ok else None,
                     "status": tables.STATUS_OK if ok else status})
    return rows


def test_pairs_link_fakes_to_source_reals():
    pairs = manifest.build_pairs(videos())
    assert pairs["fake_id"].to_list() == ["DF/000_003", "DF/001_002"]
    assert pairs["real_id"].to_list() == ["real/000", "real/001"]
    assert pairs["real_present"].to_list() == [True, False]
    assert pairs["real_split"].to_list() == ["train", None]


def test_manifest_concatenates_counts_and_checks(tmp_path):
    v = tmp_path / "videos.parquet"
    tables.write_parquet(videos(), v, tables.VIDEOS, "videos")
    a = frame_rows("real/000", "train", 0, "real", 3, 1) + frame_rows("DF/000_003", "train", 1, "DF", 4)
    b = frame_rows("DF/001_002", "val", 1, "DF", 0, 2) + [
        {"dataset": "d", "video_id": "real/005", "split": "test", "label": 0, "method": "real",
         "frame_idx": None, "shard": "t.tar", "key": None, "status": tables.STATUS_DECODE_ERROR}]
    tables.write_parquet(pl.DataFrame(a), tmp_path / "a.parquet", tables.FRAMES, "frames")
    tables.write_parquet(pl.DataFrame(b), tmp_path / "b.parquet", tables.FRAMES, "frames")
    out = [tmp_path / n for n in ("frames.parquet", "pairs.parquet", "stats.json")]
    stats = manifest.build_manifest(v, [tmp_path / "b.parquet", tmp_path / "a.parquet"], *out)
    frames = pl.read_parquet(out[0])
    assert frames.height == 11 and frames.columns == list(tables.FRAMES)
    assert frames["split"].to_list()[:1] == ["test"]  # sorted by split, video, frame
    assert json.loads(out[2].read_text()) == stats
    assert stats["faces"] == 7 and stats["frames_sampled"] == 10
    assert stats["failures"] == {"decode_error": 1, "no_face": 3}
    assert stats["frames_by_status"] == {"decode_error": 1, "no_face": 3, "ok": 7}
    assert stats["videos_without_crops"] == 2 and stats["unreadable_videos"] == 1
    assert stats["videos_by_label"] == {"real": 2, "fake": 2}


def test_manifest_refuses_an_incomplete_set_of_shards(tmp_path):
    v = tmp_path / "videos.parquet"
    tables.write_parquet(videos(), v, tables.VIDEOS, "videos")
    tables.write_parquet(pl.DataFrame(frame_rows("real/000", "train", 0, "real", 2)), tmp_path / "a.parquet",
                         tables.FRAMES, "frames")
    out = [tmp_path / n for n in ("frames.parquet", "pairs.parquet", "stats.json")]
    with pytest.raises(ValueError, match="3 videos .* have no row"):
        manifest.build_manifest(v, [tmp_path / "a.parquet"], *out)
    assert not out[0].exists()  # nothing half-written


def test_problem_videos_name_each_video_with_its_reasons():
    videos = pl.DataFrame({"video_id": ["ok", "cut", "gone", "dark"],
                           "error": [None, None, "cannot open", None]})
    rows = [("ok", 0, "ok", "k0"), ("ok", 5, "ok", "k1"),
            ("cut", 0, "ok", "k2"), ("cut", 5, "read_failed", None), ("cut", 9, "read_failed", None),
            ("gone", None, "decode_error", None),
            ("dark", 0, "no_face", None), ("dark", 5, "too_small", None)]
    frames = pl.DataFrame(rows, schema={"video_id": pl.String, "frame_idx": pl.Int64, "status": pl.String,
                                        "key": pl.String}, orient="row")
    assert manifest.problem_videos(videos, frames) == [
        {"video_id": "cut", "crops": 1, "reasons": {"read_failed": 2}, "error": None},
        {"video_id": "dark", "crops": 0, "reasons": {"no_face": 1, "too_small": 1}, "error": None},
        {"video_id": "gone", "crops": 0, "reasons": {"decode_error": 1}, "error": "cannot open"},
    ]
    assert manifest.problem_videos(videos, frames.filter(pl.col("video_id") == "ok")) == []
