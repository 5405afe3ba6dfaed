"""Which validation videos a model is selected on, and which epoch is kept.

``data.val_sets`` entries may take ``max_videos``: a seeded, label-balanced sample of whole videos of
the split (:func:`sample_videos`), the same whether it is drawn from the index's rows (the ``selection``
rule's check, :mod:`.selection`) or from the crops' rows (training), because it depends only on the
video ids, their labels and the seed. The kept epoch is the best by ``select_metric``; a tie is
broken by ``select_tiebreak`` when set, then by the later epoch (:func:`better`).
"""

from __future__ import annotations

import hashlib
import math

import polars as pl

TIES = "later epoch"  # what an exact tie of every selection metric resolves to
METRICS = ("video_auroc", "video_ap", "frame_auroc")  # what validation measures; any may select or break ties


def val_set_specs(cfg: dict) -> list[dict]:
    """A model's validation sets (those of :func:`pipeline.core.config.val_sets`, in its order: the
    training dataset's ``val_split``, then ``data.val_sets``) as ``{dataset, split, max_videos, seed}``;
    ``max_videos`` None keeps every video of the split, ``seed`` defaults to 0 (the same sample for
    every model and training seed)."""
    d = cfg["data"]
    first = [{"dataset": d.get("dataset"), "split": d["val_split"]}] if d.get("val_split") else []
    return [{"dataset": v["dataset"], "split": v["split"], "max_videos": v.get("max_videos"),
             "seed": int(v.get("seed", 0))} for v in first + list(d.get("val_sets") or [])]


def _rank(video_id: str, seed: int) -> bytes:
    return hashlib.blake2b(f"{seed}\0{video_id}".encode(), digest_size=8).digest()


def sample_ids(videos: pl.DataFrame, max_videos: int | None, seed: int = 0) -> set[str] | None:
    """The ids of a seeded sample of ``max_videos`` videos of ``videos`` (columns ``video_id``,
    ``label``; one or more rows per video): half real and half fake, the rarer class whole and the
    other filling the rest when one is short. ``None`` when every video is kept (no ``max_videos``)."""
    if not max_videos:
        return None
    per_video = videos.group_by("video_id").agg(pl.col("label").first())
    by_label = {lab: sorted(per_video.filter(pl.col("label") == lab)["video_id"].to_list(),
                            key=lambda v: _rank(v, seed)) for lab in (0, 1)}
    want_fake = min(len(by_label[1]), max(max_videos // 2, max_videos - len(by_label[0])))
    want_real = min(len(by_label[0]), max_videos - want_fake)
    return set(by_label[0][:want_real]) | set(by_label[1][:want_fake])


def sample_videos(rows: pl.DataFrame, max_videos: int | None, seed: int = 0) -> pl.DataFrame:
    """``rows`` of the videos :func:`sample_ids` keeps (every row of them), in their order."""
    ids = sample_ids(rows, max_videos, seed)
    return rows if ids is None else rows.filter(pl.col("video_id").is_in(sorted(ids)))


def _value(x) -> float:
    return -math.inf if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def better(value: float, tie: float | None, best: dict) -> bool:
    """Whether an epoch scoring ``value`` (and ``tie`` on the tie-break metric) replaces ``best``
    (``{"metric", "tiebreak"}`` of the kept epoch; ``metric`` None before the first): higher wins, an
    equal ``value`` goes to the higher ``tie``, and a full tie to this (later) epoch."""
    if best.get("metric") is None:
        return True
    if _value(value) != _value(best["metric"]):
        return _value(value) > _value(best["metric"])
    return _value(tie) >= _value(best.get("tiebreak"))
