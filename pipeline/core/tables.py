"""Data contracts between stages: the columns of every Parquet table and the shard sample key.

One place defines them; every stage reads and writes through these helpers, so a table that a
stage produces is checked against its contract before it is written (``conform``).

Tables (README, Stages and outputs):

* ``videos.parquet`` (index): one row per video.
* ``{split}-{chunk}.parquet`` (faces) and ``frames.parquet`` (manifest): one row per sampled frame;
  ``status`` is ``ok`` for a stored crop; a frame that produced no crop, or a video that could not be
  read, has another ``status`` (``STATUSES``) and no ``key``.
* ``pairs.parquet`` (manifest): fake video -> its source real video.
* ``scores.parquet`` (evaluate): one row per evaluated frame with ``p_fake``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import lru_cache

import polars as pl

LABEL_REAL = 0
LABEL_FAKE = 1

VIDEOS = {
    "dataset": pl.String,
    "video_id": pl.String,  # unique within the dataset, e.g. "DF/000_003" or "real/000"
    "path": pl.String,  # readable from the workflow's working directory
    "label": pl.Int8,  # 0 real, 1 fake
    "method": pl.String,  # "real", "DF", "F2F", "Celeb-synthesis", ...
    "source_id": pl.String,  # video_id of the real video a fake was made from; = video_id for reals
    "split": pl.String,  # train / val / test
    "frame_count": pl.Int64,
    "fps": pl.Float64,
    "width": pl.Int32,
    "height": pl.Int32,
    "error": pl.String,  # why the video could not be probed; null when readable
    "mask_path": pl.String,  # optional manipulation-mask video (FF++ official tree, DFD); faces picks that face
    "chunk": pl.Int32,  # faces job that processes it (per split)
    # content fingerprint (size and first/last MiB): a changed file reruns the faces jobs, an identical
    # re-download does not
    "fingerprint": pl.String,
}

FRAMES = {
    "dataset": pl.String,
    "video_id": pl.String,
    "split": pl.String,
    "label": pl.Int8,
    "method": pl.String,
    "source_id": pl.String,
    "frame_idx": pl.Int64,  # source-video frame index; null for a video-level failure
    "shard": pl.String,  # the tar holding the crop (path from the working directory)
    "key": pl.String,  # WebDataset __key__ of the crop; null when no crop was stored
    "status": pl.String,  # ok when a crop was stored; else why not (STATUSES)
    "n_faces": pl.Int32,
    "det_score": pl.Float64,
    "box_x0": pl.Float64,
    "box_y0": pl.Float64,
    "box_x1": pl.Float64,
    "box_y1": pl.Float64,
}

PAIRS = {
    "dataset": pl.String,
    "fake_id": pl.String,
    "fake_method": pl.String,
    "fake_split": pl.String,
    "real_id": pl.String,
    "real_split": pl.String,
    "real_present": pl.Boolean,  # the source real video is in the index
}

SCORES = {
    "dataset": pl.String,
    "video_id": pl.String,
    "key": pl.String,
    "frame_idx": pl.Int64,
    "label": pl.Int8,
    "method": pl.String,
    "p_fake": pl.Float64,
}

# Per-frame outcome of the faces stage (the ``status`` column).
STATUS_OK = "ok"  # crop stored
STATUS_NO_FACE = "no_face"  # no face detected in the frame
STATUS_TOO_SMALL = "too_small"  # frame smaller than the faces stage's minimum side: not searched
STATUS_DECODE_ERROR = "decode_error"  # the video could not be opened or decoded at all (frame_idx null)
STATUS_READ_FAILED = "read_failed"  # decoding stopped before this frame index (video shorter than its header)
STATUS_DETECTOR_ERROR = "detector_error"  # the face detector raised on this frame
STATUS_LANDMARK_ERROR = "landmark_error"  # the landmark model raised or gave non-finite points
STATUS_ALIGN_ERROR = "align_error"  # fitting the transform, warping or encoding the crop raised
STATUS_VIDEO_ERROR = "video_error"  # an unexpected error ended this video (frame_idx null); see the job log
STATUSES = (STATUS_OK, STATUS_NO_FACE, STATUS_TOO_SMALL, STATUS_DECODE_ERROR, STATUS_READ_FAILED,
            STATUS_DETECTOR_ERROR, STATUS_LANDMARK_ERROR, STATUS_ALIGN_ERROR, STATUS_VIDEO_ERROR)

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def sample_key(video_id: str, frame_idx: int) -> str:
    """WebDataset key of one face crop.

    WebDataset splits a member name at its first dot and treats ``/`` as directories, so the
    video id is made safe (``/`` -> ``__``, any other unsafe character -> ``-``). The original
    ``video_id`` and ``frame_idx`` travel in the sample's JSON and in the manifest.
    """
    safe = _KEY_UNSAFE.sub("-", video_id.replace("/", "__"))
    return f"{safe}__f{int(frame_idx):06d}"


def empty(schema: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: dict, name: str) -> pl.DataFrame:
    """Return ``df`` with exactly the contract's columns, in order and with its dtypes.

    Missing optional columns are added as nulls; a column that cannot be cast raises a
    ``ValueError`` naming the table and the column.
    """
    cols = []
    for col, dtype in schema.items():
        if col in df.columns:
            try:
                cols.append(df.get_column(col).cast(dtype, strict=True))
            except Exception as exc:  # polars raises several exception types for casts
                raise ValueError(f"{name}: column {col!r} cannot be stored as {dtype}: {exc}") from exc
        else:
            cols.append(pl.Series(col, [None] * df.height, dtype=dtype))
    return pl.DataFrame(cols)


def write_parquet(df: pl.DataFrame, path, schema: dict, name: str) -> None:
    """Conform ``df`` to ``schema`` and write it atomically (temp file + rename)."""
    from pipeline.core.files import replacing

    with replacing(path) as tmp:
        conform(df, schema, name).write_parquet(tmp, statistics=True)


def frame_counts(frames: pl.DataFrame) -> dict:
    """Counts over FRAMES rows: sampled frames, stored crops, rows without a crop by ``status``, and
    the videos (ids, sorted) that have no crop at all. Shared by ``stats.json`` and ``metrics.json``."""
    keys = ["dataset", "video_id"]
    without = frames.filter(pl.col("key").is_null()).with_columns(pl.col("status").fill_null("unknown"))
    per_video = frames.group_by(keys).agg(crops=pl.col("key").is_not_null().sum())
    return {
        "frames_sampled": int(frames["frame_idx"].is_not_null().sum()),
        "crops": int(frames["key"].is_not_null().sum()),
        "failures": {str(r): int(n) for r, n in without.group_by("status").len().sort("status").iter_rows()},
        "videos_without_crops": per_video.filter(pl.col("crops") == 0).sort(keys)["video_id"].to_list(),
    }


# --------------------------------------------------------------------------------------------
# The chunks of an index: one faces (or import) job each


@lru_cache(maxsize=64)
def _videos(path: str, mtime_ns: int, size: int) -> pl.DataFrame:
    return pl.read_parquet(path)


def read_videos(videos_parquet) -> pl.DataFrame:
    """``videos.parquet``, read once per version of the file (planning asks for it once per job)."""
    st = os.stat(videos_parquet)
    return _videos(str(videos_parquet), st.st_mtime_ns, st.st_size)


def chunks(videos_parquet, splits: list[str] | None = None) -> list[tuple[str, int]]:
    """The (split, chunk) pairs of an index, one faces job each; only those of ``splits`` if given."""
    df = read_videos(videos_parquet).select("split", "chunk").unique().sort("split", "chunk")
    if splits is not None:
        df = df.filter(pl.col("split").is_in(splits))
    return [(s, int(c)) for s, c in df.iter_rows()]


def select_chunk(videos_parquet, split: str, chunk: int) -> pl.DataFrame:
    """The videos one faces job processes."""
    df = read_videos(videos_parquet).filter((pl.col("split") == split) & (pl.col("chunk") == chunk))
    if df.height == 0:
        raise ValueError(f"{videos_parquet} has no videos in split {split!r} chunk {chunk}; "
                         "the index changed since this job was planned: run the workflow again")
    return df


def rows_digest(df: pl.DataFrame) -> str:
    """A digest of a table's rows (every column, in video order): equal rows, equal digest."""
    rows = df.sort("video_id").to_dicts()
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]


def chunk_digest(videos_parquet, split: str, chunk: int) -> str:
    """What one faces job reads of the index: the digest of its chunk's rows."""
    return rows_digest(select_chunk(videos_parquet, split, chunk))


def splits_digest(videos_parquet, splits: list[str]) -> str:
    """What a manifest reads of the index: the digest of the rows of the splits it gathers."""
    return rows_digest(read_videos(videos_parquet).filter(pl.col("split").is_in(splits)))
