"""``predict`` on files: the workflow's faces stage and model on each video or (unaligned) image.

A video goes through the same steps as a video of a benchmark: probed (:func:`pipeline.core.video.probe`,
as the index does), ``num_frames`` frames sampled and cropped by :func:`pipeline.faces.extract_video`
into lossless PNG crops, each crop scored as the evaluation scores a stored crop, and the file's
p(fake) is the mean (or median) of its frames' scores, as the video score of the evaluation. An
image is one frame: detected, aligned and cropped by :func:`pipeline.faces.crop_frame`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pipeline.core import logs, tables
from pipeline.core.codec import encode
from pipeline.faces import CropSettings, crop_frame, extract_video, make_backend, preflight
from pipeline.core.video import probe
from .resolve import ResolvedModel
from pipeline.evaluation import score_crops

log = logging.getLogger("pipeline.predict")

OK, NO_FACE, UNREADABLE = "ok", "no_face", "unreadable"
_UNREADABLE = {tables.STATUS_DECODE_ERROR, tables.STATUS_VIDEO_ERROR}


@dataclass
class FileResult:
    """One input file: its p(fake) (None when no frame could be scored) and each sampled frame."""

    path: str
    kind: str  # video | image
    p_fake: float | None
    frames_scored: int
    frames_sampled: int
    status: str  # ok | no_face | unreadable
    message: str = ""
    frames: list[dict] = field(default_factory=list)  # frame_idx, status, p_fake
    crops: list[bytes | None] = field(default_factory=list, repr=False)  # encoded crop per frame, when kept
    seconds: dict = field(default_factory=dict)  # faces, model

    def row(self) -> dict:
        return {"path": self.path, "kind": self.kind, "p_fake": self.p_fake, "frames_scored": self.frames_scored,
                "frames_sampled": self.frames_sampled, "status": self.status, "message": self.message}


def _video_crops(path: Path, backend, settings: CropSettings) -> tuple[list[tuple], str]:
    """``([(frame_idx, status, png)], error)`` of a video, as the faces stage crops a benchmark video."""
    info = probe(path)
    video = {"dataset": "predict", "video_id": path.stem, "path": str(path), "split": None, "label": None,
             "method": None, "source_id": None, "frame_count": info["frame_count"], "error": info["error"]}
    items = extract_video(video, backend, settings)
    return [(rec["frame_idx"], rec["status"], png) for rec, png in items], info["error"] or ""


def _image_crops(path: Path, backend, settings: CropSettings) -> tuple[list[tuple], str]:
    """``([(0, status, png)], error)`` of an image: one frame through the faces stage's crop."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return [(None, tables.STATUS_DECODE_ERROR, None)], "not a readable image"
    res = crop_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), backend, settings, where=str(path))
    png = encode(res.crop, settings.codec, settings.png_level) if res.status == tables.STATUS_OK else None
    return [(0, res.status, png)], ""


def _outcome(kind: str, crops: list[tuple], error: str, settings: CropSettings) -> tuple[str, str]:
    """The file's status and, when some or all frames have no crop, a message saying why."""
    sampled = [s for i, s, _ in crops if i is not None]
    failed = Counter(s for _, s, png in crops if png is None)
    if any(s in _UNREADABLE for _, s, _ in crops) and not sampled:
        what = f"a video ({error})" if kind == "video" and error else "a video" if kind == "video" else "an image"
        return UNREADABLE, f"cannot be read as {what}"
    detail = ", ".join(f"{n} {s}" for s, n in sorted(failed.items()))
    if len(failed) == len(crops) or not crops:
        if kind == "video":
            return NO_FACE, f"no face found in any of the {len(sampled)} sampled frames ({detail})"
        if failed.get(tables.STATUS_TOO_SMALL):
            return NO_FACE, f"image smaller than {settings.min_side} px on a side: not searched for a face"
        return NO_FACE, "no face found in the image" + ("" if failed.get(tables.STATUS_NO_FACE) else f" ({detail})")
    return OK, f"{sum(failed.values())} of {len(sampled)} frames without a face crop ({detail})" if failed else ""


def _reduce(scores: list[float], how: str) -> float:
    """The file's p(fake) from its frames' scores (the video score of ``pipeline.evaluation.metrics.video_scores``)."""
    return float(np.mean(scores) if how == "mean" else np.median(scores))


@dataclass
class Scorer:
    """What scoring a file needs, loaded once: the faces backend and crop settings, and the detector."""

    model: ResolvedModel
    backend: object
    settings: CropSettings
    detector: object
    device: object


def load_scorer(model: ResolvedModel, *, device=None) -> Scorer:
    """The faces backend (checked by :func:`pipeline.faces.preflight`) and the detector of ``model`` on
    ``device`` (default: cuda when available)."""
    from pipeline.model import load_detector, pick_device

    faces = model.faces
    preflight(faces["backend"], dict(faces["backend_options"]))
    backend = make_backend(faces["backend"], **faces["backend_options"])
    device = pick_device(device)
    detector, _ = load_detector(model.adapter, model.weights, device=device)
    return Scorer(model, backend, CropSettings(**faces["crop"]), detector, device)


def score_file(scorer: Scorer, path: Path, kind: str, *, batch_size: int = 64, keep_crops: bool = False
               ) -> FileResult:
    """One ``video`` or ``image`` file scored; never raises for a bad file (the result says what was
    wrong). ``keep_crops`` keeps each frame's encoded crop (None without one) in ``FileResult.crops``;
    ``FileResult.seconds`` holds the time of the faces stage and of the model."""
    start = time.perf_counter()
    crops, error = (_video_crops if kind == "video" else _image_crops)(Path(path), scorer.backend, scorer.settings)
    status, message = _outcome(kind, crops, error, scorer.settings)
    faces_done = time.perf_counter()
    pngs = [png for _, _, png in crops if png is not None]
    scores = iter(score_crops(scorer.detector, pngs, batch_size=batch_size, device=scorer.device))
    frames = [{"frame_idx": i, "status": s, "p_fake": next(scores) if png is not None else None}
              for i, s, png in crops]
    ok = [f["p_fake"] for f in frames if f["p_fake"] is not None]
    if status != OK:
        log.warning("%s: %s", path, message)
    return FileResult(str(path), kind, _reduce(ok, scorer.model.video_reduce) if ok else None, len(ok),
                      sum(1 for f in frames if f["frame_idx"] is not None), status, message, frames,
                      crops=[png for _, _, png in crops] if keep_crops else [],
                      seconds={"faces": faces_done - start, "model": time.perf_counter() - faces_done})


def predict_files(model: ResolvedModel, inputs: list[tuple[Path, str]], *, device=None,
                  batch_size: int = 64, scorer: Scorer | None = None) -> list[FileResult]:
    """Score each ``(path, kind)`` of ``inputs`` (``kind`` video or image) with ``model`` (or the
    ``scorer`` already loaded for it); never raises for a bad file (its :class:`FileResult` says what was
    wrong). A progress bar counts files and frames."""
    scorer = scorer or load_scorer(model, device=device)
    results, scored = [], 0
    with logs.progress(total=len(inputs), desc="predict", unit="file") as bar:
        for path, kind in inputs:
            results.append(score_file(scorer, path, kind, batch_size=batch_size))
            scored += results[-1].frames_scored
            bar.set_postfix_str(f"{scored} frames scored", refresh=False)
            bar.update(1)
    return results
