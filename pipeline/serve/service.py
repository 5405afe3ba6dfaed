"""Uploads scored with ``predict``'s own code: the model loaded once, each file through
:func:`pipeline.predict.score_file` (the faces stage, then the evaluation's scoring), one at a time in
a worker thread so that the web server stays free to answer while a video is scored."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from pipeline.core import codec, tables
from pipeline.predict import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, ResolvedModel, kind_of, load_scorer, score_file

log = logging.getLogger("pipeline.serve")

UNSUPPORTED = "unsupported"
ERROR = "error"

# What a frame's status means, as the page and the API say it.
FRAME_STATUS_TEXT = {
    tables.STATUS_OK: "face cropped and scored",
    tables.STATUS_NO_FACE: "no face found",
    tables.STATUS_TOO_SMALL: "frame smaller than the faces stage's minimum side: not searched",
    tables.STATUS_DECODE_ERROR: "the file could not be decoded",
    tables.STATUS_READ_FAILED: "decoding stopped before this frame (the video is shorter than its header says)",
    tables.STATUS_DETECTOR_ERROR: "the face detector failed on this frame",
    tables.STATUS_LANDMARK_ERROR: "the landmark model failed on this frame",
    tables.STATUS_ALIGN_ERROR: "the face could not be aligned",
    tables.STATUS_VIDEO_ERROR: "an unexpected error ended this video",
}


def _safe_name(name: str) -> str:
    """A file name for the upload's copy on disk: its base name, other characters than ``[\\w.-]`` as
    ``_``, the extension (which tells a video from an image) kept."""
    base = re.sub(r"[^\w.-]", "_", Path(name or "upload").name)[-100:]
    return base.lstrip(".") or "upload"


class ScoringService:
    """``model`` loaded once (faces backend and detector on ``device``); :meth:`score` runs one
    request's files in the single worker thread, so requests are scored one after the other."""

    def __init__(self, model: ResolvedModel, *, device=None, batch_size: int = 64):
        self.model = model
        self.batch_size = batch_size
        self.scorer = load_scorer(model, device=device)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")

    def info(self) -> dict:
        m = self.model
        return {"model": m.name, "adapter": str(m.adapter), "backbone": str(m.weights),
                "config": str(m.config_path) if m.config_path else None, "faces": m.faces,
                "video_reduce": m.video_reduce, "device": str(self.scorer.device), "notes": m.notes,
                "extensions": {"video": sorted(VIDEO_EXTENSIONS), "image": sorted(IMAGE_EXTENSIONS)}}

    async def score(self, uploads: list[tuple[str, BinaryIO]], *, crops: bool = False) -> dict:
        """``uploads`` (file name, readable binary file) scored in the worker thread -> the API's answer."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self.score_now, uploads, crops)

    def score_now(self, uploads: list[tuple[str, BinaryIO]], crops: bool = False) -> dict:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="lnclip-serve-") as tmp:
            files = [self._score_one(name, data, Path(tmp) / f"{i:03d}_{_safe_name(name)}", crops)
                     for i, (name, data) in enumerate(uploads)]
        return {"model": self.model.name, "files": files, "seconds": round(time.perf_counter() - start, 3)}

    def _score_one(self, name: str, data: BinaryIO, path: Path, crops: bool) -> dict:
        kind = kind_of(Path(name or ""))
        if kind is None:
            return _not_scored(name, UNSUPPORTED, "not a video or image file name: give it one of the extensions "
                               f"{', '.join(sorted(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS))}")
        start = time.perf_counter()
        try:
            with open(path, "wb") as out:
                shutil.copyfileobj(data, out)
            result = score_file(self.scorer, path, kind, batch_size=self.batch_size, keep_crops=crops)
        except Exception as err:  # a bug or a broken backend must not take the service down
            log.exception("scoring %s failed", name)
            return _not_scored(name, ERROR, f"scoring failed ({type(err).__name__}: {err}); the service "
                               "keeps running, the server's log has the details", kind)
        finally:
            path.unlink(missing_ok=True)
        return _answer(name, result, time.perf_counter() - start, crops)


def _not_scored(name: str, status: str, message: str, kind: str | None = None) -> dict:
    return {"name": name, "kind": kind, "p_fake": None, "frames_scored": 0, "frames_sampled": 0,
            "status": status, "message": message, "frames": [], "seconds": {}}


def _answer(name: str, result, seconds: float, crops: bool) -> dict:
    """A :class:`pipeline.predict.FileResult` as the API gives it, under the upload's own name."""
    row = {"name": name, **result.row()}
    del row["path"]
    frames = []
    for i, frame in enumerate(result.frames):
        frame = {**frame, "reason": FRAME_STATUS_TEXT.get(frame["status"], frame["status"])}
        if crops and result.crops[i] is not None:
            png = codec.encode(codec.decode(result.crops[i], f"{name} frame {frame['frame_idx']}"), "png")
            frame["crop"] = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        frames.append(frame)
    timing = {k: round(v, 3) for k, v in result.seconds.items()}
    return {**row, "frames": frames, "seconds": {**timing, "total": round(seconds, 3)}}
