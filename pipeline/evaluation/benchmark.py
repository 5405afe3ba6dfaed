"""Evaluate stage: frame scores of one model on one benchmark -> ``scores.parquet`` + ``metrics.json``.

The scores come from ``pipeline.predict.predict_frames`` (one row per scored face crop, the SCORES
contract). ``metrics.json`` holds the metrics of ``pipeline.evaluation.metrics.evaluate_scores`` plus ``data``:
what the evaluated split's manifest (FRAMES rows) says about frames, crops and failures, and how many
videos could not be scored because no face crop was stored for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipeline.core import schema, tables
from pipeline.core.files import write_json
from .metrics import evaluate_scores, jsonable


def data_counts(frames: pl.DataFrame, scores: pl.DataFrame) -> dict:
    """Counts of the evaluated split's manifest rows (FRAMES) and how many videos were scored.

    * ``videos``: distinct videos in the manifest; ``frames_sampled``: rows with a frame index (a
      video-level failure such as ``decode_error`` has none); ``crops``: rows with a stored crop;
    * ``failures``: manifest rows without a crop, by reason; ``videos_by_failure``: videos with at
      least one row of that reason;
    * ``videos_without_crops``: videos with no crop at all (they cannot be scored; ``videos_dropped``
      counts the manifest videos absent from the scores, which should be the same videos), with up to
      20 of their ids in ``videos_without_crops_examples``.
    """
    keys = ["dataset", "video_id"]
    f = frames
    if f.height == 0:
        f = tables.empty(tables.FRAMES)
    counts = tables.frame_counts(f)
    per_video = f.group_by(keys).agg(pl.col("label").first())
    reasons = f.filter(pl.col("key").is_null()).with_columns(pl.col("status").fill_null("unknown"))
    fail_videos = {
        str(r): int(n)
        for r, n in reasons.group_by("status").agg(pl.struct(keys).n_unique().alias("n")).sort("status").rows()
    }
    scored = scores.select(keys).unique() if scores.height else pl.DataFrame(schema={k: pl.String for k in keys})
    manifest_videos = per_video.select(keys)
    dropped = manifest_videos.join(scored, on=keys, how="anti")
    extra = scored.join(manifest_videos, on=keys, how="anti")
    return {
        "videos": int(per_video.height),
        "videos_real": int((per_video.get_column("label") == tables.LABEL_REAL).sum()),
        "videos_fake": int((per_video.get_column("label") == tables.LABEL_FAKE).sum()),
        "frames_sampled": counts["frames_sampled"],
        "crops": counts["crops"],
        "failures": counts["failures"],
        "videos_by_failure": fail_videos,
        "videos_without_crops": len(counts["videos_without_crops"]),
        "videos_without_crops_examples": counts["videos_without_crops"][:20],
        "videos_scored": int(scored.height),
        "videos_dropped": int(dropped.height),
        "videos_scored_not_in_manifest": int(extra.height),
        "frames_scored": int(scores.height),
    }


def evaluate_model(
    scores: pl.DataFrame,
    out_scores,
    out_metrics,
    *,
    frames: pl.DataFrame,
    video_reduce: str = "mean",
    bootstrap: int = 1000,
    seed: int = 0,
    extra_meta: dict | None = None,
) -> dict:
    """Write ``scores.parquet`` (SCORES contract) and ``metrics.json``; return the metrics dict.

    ``metrics.json`` = ``extra_meta`` (e.g. model, benchmark, dataset, split; top-level keys) +
    ``evaluate_scores(...)`` (frame, video, per_method, counts, settings) + ``data``
    (:func:`data_counts` of ``frames``, the FRAMES rows of the evaluated split). Both files are
    written atomically; the scores first, so a ``metrics.json`` never exists without its scores.
    """
    scores = tables.conform(scores, tables.SCORES, "scores")
    metrics = evaluate_scores(scores, video_reduce=video_reduce, bootstrap=bootstrap, seed=seed)
    metrics["data"] = data_counts(tables.conform(frames, tables.FRAMES, "frames"), scores)
    meta = dict(extra_meta or {})
    clash = sorted(set(meta) & set(metrics))
    if clash:
        raise ValueError(f"evaluate_model: extra_meta keys {clash} clash with metric keys")
    result = {**meta, **metrics}
    tables.write_parquet(scores, out_scores, tables.SCORES, "scores")
    write_json(out_metrics, jsonable(result), allow_nan=False)
    return result


def _split_frames(frames_path, split: str, benchmark: str) -> pl.DataFrame:
    frames = pl.read_parquet(frames_path).filter(pl.col("split") == split)
    if frames.height == 0:
        present = sorted(pl.read_parquet(frames_path, columns=["split"])["split"].unique().to_list())
        raise ValueError(f"benchmark {benchmark!r}: {frames_path} has no frames in split {split!r} "
                         f"(splits present: {present}); check benchmarks.{benchmark}.split")
    return frames


def _detector(adapter, weights_dir, device):
    """The detector, its metadata, the device and the metadata keys every metrics file records."""
    from pipeline.model import load_detector, pick_device
    from pipeline.core.markers import sha256_file
    from pipeline.core.provenance import device_description

    device = pick_device(device)
    detector, meta = load_detector(adapter, weights_dir, device=device)
    extra = {"backbone": meta.get("model", {}).get("backbone") or meta.get("backbone"),
             "device": device_description(device), "adapter_sha256": sha256_file(adapter)}
    return detector, device, extra


_DEFAULTS = schema.defaults("evaluate")


@dataclass(frozen=True)
class Settings:
    """What an evaluation job is and how it scores: names, split, video reduction, bootstrap resamples,
    batch size, seed, device (None: CUDA when available) and loader workers (defaults: the config
    schema's ``evaluate``)."""

    model: str
    benchmark: str
    dataset: str
    split: str
    video_reduce: str = _DEFAULTS["video_reduce"]
    bootstrap: int = _DEFAULTS["bootstrap"]
    batch_size: int = _DEFAULTS["batch_size"]
    seed: int = 0
    device: str | None = None
    workers: int = _DEFAULTS["workers"]

    def meta(self) -> dict:
        return {"model": self.model, "benchmark": self.benchmark, "dataset": self.dataset, "split": self.split}


def _scores(detector, device, frames: pl.DataFrame, s: Settings, transform=None) -> pl.DataFrame:
    from .scoring import predict_frames

    return predict_frames(detector, frames, batch_size=s.batch_size, device=device, workers=s.workers,
                          transform=transform)


def _from_features(adapter, features_path) -> tuple[pl.DataFrame, dict]:
    """Scores of a frozen-backbone model from the split's cached backbone features (on the CPU)."""
    from pipeline.core.markers import sha256_file
    from pipeline.model import score_features_file
    from pipeline.model import read_adapter_meta
    from pipeline.core.provenance import device_description

    meta = read_adapter_meta(adapter)
    extra = {"backbone": meta.get("model", {}).get("backbone") or meta.get("backbone"),
             "device": device_description("cpu"), "adapter_sha256": sha256_file(adapter)}
    return score_features_file(adapter, features_path), extra


def evaluate_benchmark(adapter, weights_dir, frames_path, out_scores, out_metrics, *, features_path=None,
                       **settings) -> dict:
    """Score every crop of one benchmark split with a trained adapter and write its metrics.

    The entry point of the workflow's ``evaluate`` rule (and ``python -m pipeline evaluate``):
    load the detector (backbone from ``weights_dir`` + the adapter), predict p(fake) for every
    stored crop of the split in ``frames_path``, then :func:`evaluate_model`. With ``features_path``
    (a frozen-backbone model), the scores come from the split's cached backbone features instead.
    ``settings``: the fields of :class:`Settings`. ``metrics.json`` also records the backbone, the
    device (GPU or CPU model) and the adapter's SHA-256.
    """
    s = Settings(**settings)
    frames = _split_frames(frames_path, s.split, s.benchmark)
    if features_path is not None:
        scores, extra = _from_features(adapter, features_path)
    else:
        detector, device, extra = _detector(adapter, weights_dir, s.device)
        scores = _scores(detector, device, frames, s)
    return evaluate_model(scores, out_scores, out_metrics, frames=frames, video_reduce=s.video_reduce,
                          bootstrap=s.bootstrap, seed=s.seed, extra_meta={**s.meta(), **extra})
