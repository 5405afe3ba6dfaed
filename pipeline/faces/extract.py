"""One frame and one video of the faces stage, with every outcome recorded per frame.

:func:`crop_frame` runs detection, face choice, landmarks and the warp on one frame and turns an
exception in any of them into the frame's status (``tables.STATUSES``), so one bad frame never
stops a video; :func:`extract_video` samples, decodes and crops one video and never raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.core import schema, tables
from pipeline.core.codec import CODECS, encode
from pipeline.core.video import probe, read_frames, sample_indices
from .base import Face, FaceBackend
from .choice import CHOICES, choose_face, mask_overlap
from .geometry import POINT_SETS, align_points, alignment_matrix, warp

log = logging.getLogger("pipeline.faces")


_DEFAULTS = schema.defaults("faces")


@dataclass(frozen=True)
class CropSettings:
    """What a crop depends on (all part of the faces rule's params); the defaults are the config
    schema's (``faces``).

    ``num_frames`` sampled at ``linspace(0, N-1, k)``; ``size`` px output with margin ``scale``;
    ``points``: the five alignment points (``geometry.POINT_SETS``); ``choice``: which face
    (``choice.CHOICES``); frames whose shorter side is below ``min_side`` px are not searched
    (``too_small``); ``codec``: the lossless format of the stored crop (:mod:`pipeline.core.codec`: ``qoi``
    or ``png``); ``png_level``: zlib level of a PNG (the crop is the same at any level or codec, only
    size and decode time change).
    """

    num_frames: int = _DEFAULTS["num_frames"]
    size: int = _DEFAULTS["size"]
    scale: float = _DEFAULTS["scale"]
    points: str = _DEFAULTS["points"]
    choice: str = _DEFAULTS["choice"]
    min_side: int = _DEFAULTS["min_side"]
    codec: str = _DEFAULTS["codec"]
    png_level: int = _DEFAULTS["png_level"]

    def __post_init__(self):
        if self.points not in POINT_SETS:
            raise ValueError(f"unknown alignment points {self.points!r}; known: {', '.join(POINT_SETS)}")
        if self.choice not in CHOICES:
            raise ValueError(f"unknown face choice {self.choice!r}; known: {', '.join(CHOICES)}")
        if self.codec not in CODECS:
            raise ValueError(f"unknown crop codec {self.codec!r}; known: {', '.join(CODECS)}")
        if not 0 <= self.png_level <= 9:
            raise ValueError(f"png_level must be 0..9, got {self.png_level}")


@dataclass
class FrameResult:
    """The outcome of one sampled frame: ``status`` and, when found, the face and its crop."""

    status: str
    face: Face | None = None
    n_faces: int | None = None
    points5: np.ndarray | None = None
    crop: np.ndarray | None = field(default=None, repr=False)


def crop_frame(frame: np.ndarray, backend: FaceBackend, settings: CropSettings = CropSettings(),
               mask: np.ndarray | None = None, where: str = "frame", detected=None) -> FrameResult:
    """Detect, choose, fit landmarks and warp one RGB frame; never raises for a bad frame.

    ``mask`` is the manipulation-mask frame for ``choice="mask"``; ``where`` names the frame in
    the log lines of a failed step; ``detected`` is this frame's result of
    ``backend.detect_batch`` (faces, or the exception), when detection already ran.
    """
    if min(frame.shape[:2]) < settings.min_side:
        return FrameResult(tables.STATUS_TOO_SMALL)
    try:
        if isinstance(detected, Exception):
            raise detected
        faces = backend.detect(frame) if detected is None else detected
    except Exception as exc:
        log.warning("%s: face detector failed: %r", where, exc)
        return FrameResult(tables.STATUS_DETECTOR_ERROR)
    if not faces:
        return FrameResult(tables.STATUS_NO_FACE, n_faces=0)
    if settings.choice == "mask" and mask is not None and not any(mask_overlap(f, mask) for f in faces):
        faces = _exhaustive(backend, frame, where) or faces  # the masked face may be a small one
    face = choose_face(faces, settings.choice, mask)
    try:
        face.landmarks = np.asarray(backend.landmarks(frame, face), dtype=np.float64)
        pts = align_points(face.landmarks, settings.points)
        if not np.isfinite(pts).all():
            raise ValueError("non-finite landmarks")
    except Exception as exc:
        log.warning("%s: landmarks failed: %r", where, exc)
        return FrameResult(tables.STATUS_LANDMARK_ERROR, face, len(faces))
    try:
        crop = warp(frame, alignment_matrix(pts, settings.size, settings.scale), settings.size)
    except Exception as exc:
        log.warning("%s: alignment failed: %r", where, exc)
        return FrameResult(tables.STATUS_ALIGN_ERROR, face, len(faces), pts)
    return FrameResult(tables.STATUS_OK, face, len(faces), pts, crop)


def _exhaustive(backend: FaceBackend, frame: np.ndarray, where: str) -> list[Face]:
    try:
        return backend.detect_exhaustive(frame)
    except Exception as exc:
        log.warning("%s: exhaustive face detection failed: %r", where, exc)
        return []


_VIDEO_FIELDS = ("dataset", "video_id", "split", "label", "method", "source_id")


def _record(video: dict, frame_idx, status: str, res: FrameResult | None = None) -> dict:
    rec = {f: video.get(f) for f in _VIDEO_FIELDS}
    face = res.face if res is not None else None
    box = face.box if face is not None else (None, None, None, None)
    ok = status == tables.STATUS_OK
    rec.update(
        frame_idx=None if frame_idx is None else int(frame_idx),
        key=tables.sample_key(video["video_id"], frame_idx) if ok else None,
        status=status,
        n_faces=res.n_faces if res is not None else None,
        det_score=float(face.score) if face is not None else None,
        box_x0=box[0], box_y0=box[1], box_x1=box[2], box_y1=box[3],
        points5=res.points5.tolist() if res is not None and res.points5 is not None else None,
    )
    return rec


def _frame_count(video: dict) -> int | None:
    """The index's frame count, or a fresh probe (counting by decoding) when it is missing or 0."""
    n = video.get("frame_count")
    if n is not None and n > 0:
        return int(n)
    info = probe(video["path"])
    return None if info["error"] else info["frame_count"]


def _next_mask(masks, idx: int, state: dict, shape) -> np.ndarray | None:
    """The mask frame of ``idx``, advancing the ``masks`` generator (:func:`read_frames` of the
    mask video with the same indices) in step with the video; None when it has no such frame."""
    if masks is None:
        return None
    while state.get("idx", -1) < idx:
        state["idx"], state["frame"] = next(masks, (float("inf"), None))
    mask = state["frame"] if state["idx"] == idx else None
    if mask is not None and mask.shape[:2] != tuple(shape[:2]):
        mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return mask


def _batches(frames, n: int):
    """Lists of up to ``n`` consecutive ``(idx, frame)`` items."""
    batch = []
    for item in frames:
        batch.append(item)
        if len(batch) >= max(1, n):
            yield batch
            batch = []
    if batch:
        yield batch


def _encoded(res: FrameResult, settings: CropSettings, video_id: str, idx: int) -> bytes | None:
    """The crop's bytes in ``settings.codec`` (None without a crop); an encoding failure turns the status
    to align_error."""
    if res.status != tables.STATUS_OK:
        return None
    try:
        return encode(res.crop, settings.codec, settings.png_level)
    except Exception as exc:  # pragma: no cover - imencode fails only on invalid images
        log.warning("%s frame %d: crop encoding failed: %r", video_id, idx, exc)
        res.status = tables.STATUS_ALIGN_ERROR
        return None


def _crop_video(video: dict, backend: FaceBackend, settings: CropSettings) -> list[tuple[dict, bytes | None]]:
    if video.get("error") or not video.get("path"):
        return [(_record(video, None, tables.STATUS_DECODE_ERROR), None)]
    indices = sample_indices(_frame_count(video), settings.num_frames)
    if len(indices) == 0:
        return [(_record(video, None, tables.STATUS_DECODE_ERROR), None)]
    masks = read_frames(video["mask_path"], indices) if video.get("mask_path") else None
    mask_state: dict = {}
    out: list[tuple[dict, bytes | None]] = []
    for batch in _batches(read_frames(video["path"], indices), backend.batch_size):
        searched = [fr for _, fr in batch if min(fr.shape[:2]) >= settings.min_side]
        detected = iter(backend.detect_batch(searched) if searched else [])
        for idx, frame in batch:
            mask = _next_mask(masks, idx, mask_state, frame.shape)
            det = next(detected) if min(frame.shape[:2]) >= settings.min_side else None
            res = crop_frame(frame, backend, settings, mask, where=f"{video['video_id']} frame {idx}", detected=det)
            out.append((_record(video, idx, res.status, res), _encoded(res, settings, video["video_id"], idx)))
    if not out:
        return [(_record(video, None, tables.STATUS_DECODE_ERROR), None)]
    seen = {r["frame_idx"] for r, _ in out}
    out += [(_record(video, int(i), tables.STATUS_READ_FAILED), None) for i in indices if int(i) not in seen]
    out.sort(key=lambda item: item[0]["frame_idx"])
    return out


def extract_video(video: dict, backend: FaceBackend, settings: CropSettings = CropSettings()
                  ) -> list[tuple[dict, bytes | None]]:
    """Crop the faces of one video (a row of ``videos.parquet`` as a dict); never raises.

    Returns one ``(record, crop)`` per sampled frame, in frame order. ``record`` holds the
    ``tables.FRAMES`` columns except ``shard`` plus ``points5`` (the five alignment points in
    source-frame coordinates, for the shard JSON); ``crop`` is the encoded lossless crop or None.

    * crop stored: ``status = "ok"``, ``key = tables.sample_key(video_id, frame_idx)``;
    * a frame without a crop: its status (``no_face``, ``too_small``, ``detector_error``,
      ``landmark_error``, ``align_error``; ``read_failed`` when decoding stopped before it);
    * the video has an ``error``, cannot be opened, or no frame decodes: one record with
      ``frame_idx`` None and ``decode_error``; an unexpected error: one ``video_error`` record.

    A missing or zero frame count is re-probed (frames counted by decoding). When the video has a
    ``mask_path``, its frames at the same indices guide ``choice="mask"``.
    """
    try:
        return _crop_video(video, backend, settings)
    except Exception as exc:
        log.error("%s: unexpected error, video skipped: %r", video.get("video_id"), exc)
        return [(_record(video, None, tables.STATUS_VIDEO_ERROR), None)]
