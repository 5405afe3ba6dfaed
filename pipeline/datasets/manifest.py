"""The manifest stage: per-shard tables -> ``frames.parquet``, ``pairs.parquet``, ``stats.json``.

``frames.parquet`` concatenates the per-shard tables written by the faces stage (one row per
sampled frame, with its ``status`` and the shard and key of its crop when it is ``ok``), so any frame can be
found, counted, filtered and joined without opening a tar. ``pairs.parquet`` links each fake video
to the real video it was made from (FF++ ``A_B`` -> ``A``). ``stats.json`` counts what the report
shows about the data.
"""

from __future__ import annotations

import json

from pathlib import Path

import polars as pl

from pipeline.core import layout, tables
from pipeline.core.files import write_json


def build_pairs(videos: pl.DataFrame) -> pl.DataFrame:
    """Fake video -> its source real video, for fakes whose ``source_id`` is known."""
    fakes = videos.filter((pl.col("label") == tables.LABEL_FAKE) & pl.col("source_id").is_not_null())
    reals = videos.filter(pl.col("label") == tables.LABEL_REAL).select(
        real_id=pl.col("video_id"), real_split=pl.col("split"))
    pairs = fakes.select("dataset", fake_id=pl.col("video_id"), fake_method=pl.col("method"),
                         fake_split=pl.col("split"), real_id=pl.col("source_id"))
    pairs = pairs.join(reals, on="real_id", how="left").with_columns(
        real_present=pl.col("real_split").is_not_null())
    return pairs.sort("fake_id")


PROBLEM_VIDEOS_LISTED = 200  # stats.json and the report list at most this many videos with problems


def problem_videos(videos: pl.DataFrame, frames: pl.DataFrame) -> list[dict]:
    """The videos with a sampled frame (or, undecodable, the whole video) without a crop, by id: their
    crop count, rows without a crop per reason (``status``) and the index's error text, if any."""
    without = frames.filter(pl.col("key").is_null()).with_columns(pl.col("status").fill_null("unknown"))
    if not without.height:
        return []
    reasons: dict[str, dict] = {}
    for vid, status, n in without.group_by("video_id", "status").len().sort("video_id", "status").iter_rows():
        reasons.setdefault(vid, {})[status] = int(n)
    crops = dict(frames.group_by("video_id").agg(pl.col("key").is_not_null().sum()).iter_rows())
    errors = dict(videos.select("video_id", "error").iter_rows())
    return [{"video_id": vid, "crops": int(crops.get(vid, 0)), "reasons": why, "error": errors.get(vid)}
            for vid, why in reasons.items()]


def data_stats(dataset: str, videos: pl.DataFrame, frames: pl.DataFrame) -> dict:
    """Counts of videos, frames, faces and failures (the keys the report reads)."""
    def counts(df, col):
        return {str(k): int(n) for k, n in df.group_by(col).len().sort(col).iter_rows()}

    fc = tables.frame_counts(frames)
    crops = frames.filter(pl.col("key").is_not_null())
    problems = problem_videos(videos, frames)
    return {
        "dataset": dataset,
        "videos": videos.height,
        "videos_by_split": counts(videos, "split"),
        "videos_by_label": {"real": int((videos["label"] == 0).sum()), "fake": int((videos["label"] == 1).sum())},
        "videos_by_method": counts(videos, "method"),
        "unreadable_videos": int(videos["error"].is_not_null().sum()),
        "frames_sampled": fc["frames_sampled"],
        "faces": fc["crops"],
        "faces_by_split": counts(crops, "split") if crops.height else {},
        "failures": fc["failures"],
        "frames_by_status": counts(frames.with_columns(pl.col("status").fill_null("unknown")), "status"),
        "videos_without_crops": len(fc["videos_without_crops"]),
        "shards": int(frames["shard"].n_unique()),
        "problem_videos": problems[:PROBLEM_VIDEOS_LISTED],
        "problem_videos_total": len(problems),
    }


def completeness_summary(videos_parquet) -> list[dict]:
    """The index's official-protocol checks (``completeness.json`` beside ``videos.parquet``),
    without the full id lists, for ``stats.json`` and the report."""
    path = Path(layout.completeness_of(str(videos_parquet)))
    if not path.is_file():
        return []
    keys = ("name", "split", "complete", "message", "expected", "found")
    return [{k: c[k] for k in keys} for c in json.loads(path.read_text())["checks"]]


def build_manifest(videos_parquet, shard_parquets: list, out_frames, out_pairs, out_stats,
                   splits: list[str] | None = None) -> dict:
    """Concatenate the shard tables, check them against the index, write the three outputs.

    ``splits``: the splits whose faces were extracted (all when None); pairs always cover the whole
    index, the frame table and the statistics only these splits."""
    all_videos = pl.read_parquet(videos_parquet)
    videos = all_videos if splits is None else all_videos.filter(pl.col("split").is_in(splits))
    dataset = videos["dataset"][0] if videos.height else "?"
    parts = [pl.read_parquet(p) for p in sorted(map(str, shard_parquets))]
    frames = pl.concat(parts) if parts else tables.empty(tables.FRAMES)
    frames = tables.conform(frames, tables.FRAMES, "frames").sort(
        "split", "video_id", "frame_idx", nulls_last=True)

    missing = set(videos["video_id"].to_list()) - set(frames["video_id"].unique().to_list())
    if missing:
        raise ValueError(f"{dataset}: {len(missing)} videos of {videos_parquet} have no row in the shard "
                         f"tables (e.g. {sorted(missing)[:3]}); rerun the faces jobs of their chunks")
    dup = frames.filter(pl.col("key").is_not_null() & pl.col("key").is_duplicated())
    if dup.height:
        raise ValueError(f"{dataset}: duplicate shard keys, e.g. {dup['key'][0]!r}")

    tables.write_parquet(frames, out_frames, tables.FRAMES, "frames")
    tables.write_parquet(build_pairs(all_videos), out_pairs, tables.PAIRS, "pairs")
    stats = data_stats(dataset, videos, frames)
    stats["completeness"] = completeness_summary(videos_parquet)
    write_json(out_stats, stats, sort_keys=True)
    return stats
