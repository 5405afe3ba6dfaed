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

import re

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
    from pipeline.files import replacing

    with replacing(path) as tmp:
        conform(df, schema, name).write_parquet(tmp, statistics=True)
