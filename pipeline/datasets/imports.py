"""The import stage: already-cropped faces (a folder of frame images per video) -> shards.

For datasets whose adapter ``imports`` (``deepfakebench``, ``crops``, ``wilddeepfake``), this
replaces the faces stage and writes exactly what it writes: one WebDataset tar per chunk
(``{key}.png`` + ``{key}.json``) and its per-shard ``tables.FRAMES`` table. PNG files are stored
byte for byte (the pixels the user had are the pixels the model sees); other image formats are
decoded and stored as lossless PNG. Frames are chosen like video frames: ``num_frames`` evenly
spread over the stored ones (``linspace`` over their positions, not DeepfakeBench's "first N").
``frame_idx`` is the frame number in the file name (DeepfakeBench names frames by their index in
the source video).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from pipeline.core import tables
from pipeline.core.shards import write_shard
from pipeline.datasets.adapters.base import IMAGE_EXTENSIONS, frame_number
from pipeline.core.video import ERROR_MISSING, ERROR_NO_FRAMES, sample_indices

log = logging.getLogger("pipeline.importing")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ERROR_CANNOT_OPEN_IMAGE = "cannot open the first image"
_VIDEO_FIELDS = ("dataset", "video_id", "split", "label", "method", "source_id")


def frame_files(folder: str | Path) -> list[Path]:
    """The images of a frame folder in frame order (the number in the name, then the name)."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: (frame_number(p) is None, frame_number(p) or 0, p.name))


def probe_frames(folder) -> dict:
    """``pipeline.core.video.probe``'s fields for a folder of frames (count, size of the first image)."""
    result = {"frame_count": None, "fps": None, "width": None, "height": None, "error": None}
    if not Path(folder).is_dir():
        result["error"] = ERROR_MISSING
        return result
    files = frame_files(folder)
    if not files:
        result["error"] = ERROR_NO_FRAMES
        return result
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(files[0]) as im:
            result.update(frame_count=len(files), width=im.width, height=im.height)
    except (OSError, UnidentifiedImageError) as exc:
        result["error"] = f"{ERROR_CANNOT_OPEN_IMAGE}: {files[0].name} ({exc})"
    return result


def as_png(data: bytes) -> bytes | None:
    """PNG bytes unchanged; any other image decoded and stored losslessly; None if undecodable."""
    if data.startswith(PNG_MAGIC):
        return data
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    ok, buf = cv2.imencode(".png", image)
    return buf.tobytes() if ok else None


def _record(video: dict, frame_idx, status=tables.STATUS_OK, key=None) -> dict:
    rec = {f: video.get(f) for f in _VIDEO_FIELDS}
    rec.update(frame_idx=frame_idx, key=key, status=status)
    return rec


def import_video(video: dict, num_frames: int) -> list[tuple[dict, bytes | None]]:
    """``(record, png)`` per selected frame of one imported video (a row of ``videos.parquet``)."""
    folder = Path(video["path"])
    files = frame_files(folder) if folder.is_dir() else []
    if video.get("error") or not files:
        return [(_record(video, None, tables.STATUS_DECODE_ERROR), None)]
    out = []
    for pos in sample_indices(len(files), num_frames):
        path = files[int(pos)]
        idx = frame_number(path)
        idx = int(pos) if idx is None else idx
        png = as_png(path.read_bytes())
        if png is None:
            out.append((_record(video, idx, tables.STATUS_DECODE_ERROR), None))
        else:
            out.append((_record(video, idx, key=tables.sample_key(video["video_id"], idx)) | {"file": path.name},
                        png))
    return out


def _shard_json(rec: dict) -> dict:
    meta = {k: rec[k] for k in ("dataset", "video_id", "frame_idx", "method", "split", "source_id")}
    meta.update(label=int(rec["label"]), box=[None] * 4, score=None, n_faces=None, points5=None,
                imported=rec["file"])
    return meta


def import_chunk(videos: pl.DataFrame, tar_path, parquet_path, num_frames: int = 32) -> dict:
    """Write one chunk's shard (tar + per-shard table), as ``pipeline.faces.extract_chunk`` does."""
    tar_path = Path(tar_path)
    with write_shard(tar_path, parquet_path) as shard:
        for video in videos.sort("video_id").to_dicts():
            for rec, png in import_video(video, num_frames):
                shard.add(rec, png, _shard_json(rec) if png is not None else None)
    records = shard.records
    crops = sum(r["key"] is not None for r in records)
    log.info("%s: %d videos, %d frames imported, %d without an image", tar_path, videos.height, crops,
             len(records) - crops)
    return {"videos": videos.height, "crops": crops, "failures": len(records) - crops}
