"""Video access for the faces stage: frame sampling, probing and sequential decoding.

The behaviour follows DeepfakeBench's ``preprocessing/preprocess.py``:

* the sampled indices are ``np.linspace(0, N-1, k, dtype=int)`` (duplicates, which appear when
  ``N < k``, are dropped here: the same frame is never cropped twice);
* the video is decoded **sequentially from frame 0** (no seeking, which is unreliable on many
  codecs); only the sampled frames are converted to RGB, and a failed read ends the video.

Nothing here raises for a bad video file: :func:`probe` reports an ``error`` string and
:func:`read_frames` simply stops yielding; the caller compares the yielded indices with the ones
it asked for to learn which were not reached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

ERROR_MISSING = "file not found"
ERROR_CANNOT_OPEN = "cannot open video"
ERROR_NO_FRAMES = "no frames"


def sample_indices(n_frames: int | None, k: int) -> np.ndarray:
    """Frame indices to sample from a video of ``n_frames`` frames: ``k`` evenly spaced, unique.

    ``np.linspace(0, n-1, k, dtype=int)`` (truncation toward zero, first and last frame
    included), then ``np.unique`` (sorted). Returns an empty int64 array when ``n_frames`` is
    missing or not positive, or when ``k`` is not positive.

    >>> sample_indices(396, 32)[:4].tolist()
    [0, 12, 25, 38]
    """
    if n_frames is None or n_frames <= 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.linspace(0, int(n_frames) - 1, int(k), dtype=int)
    return np.unique(idx).astype(np.int64)


def probe(path) -> dict:
    """Frame count, fps and size of a video, without raising for bad files.

    Returns ``{"frame_count", "fps", "width", "height", "error"}``. For a readable video
    ``error`` is None; otherwise ``error`` says why (``"file not found"``, ``"cannot open
    video"``, ``"no frames"``) and the other values are None.

    The frame count is the container's ``CAP_PROP_FRAME_COUNT`` (what DeepfakeBench uses). When
    the container reports no count, or is Matroska (WebM, MKV: no frame count is stored, and OpenCV's
    estimate, duration x fps, is wrong for variable frame rate), and the first frame decodes, the
    frames are counted by decoding the whole video.
    """
    result = {"frame_count": None, "fps": None, "width": None, "height": None, "error": None}
    p = Path(path)
    if not p.is_file():
        result["error"] = ERROR_MISSING
        return result
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            result["error"] = ERROR_CANNOT_OPEN
            return result
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        ok, frame = cap.read()
        if not ok or frame is None:
            result["error"] = ERROR_NO_FRAMES
            return result
        if count <= 0 or _is_matroska(p):  # container without a frame count: count by decoding
            count = 1
            while cap.grab():
                count += 1
        if width <= 0 or height <= 0:
            height, width = frame.shape[:2]
        result.update(
            frame_count=count,
            fps=fps if fps > 0 else None,
            width=width,
            height=height,
        )
        return result
    except cv2.error as exc:  # pragma: no cover - OpenCV rarely raises here
        result.update(frame_count=None, fps=None, width=None, height=None, error=f"opencv: {exc}")
        return result
    finally:
        cap.release()


MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"  # EBML header: WebM and MKV


def _is_matroska(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == MATROSKA_MAGIC
    except OSError:  # pragma: no cover - OpenCV has just opened it
        return False


def read_frames(path, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_idx, rgb_frame)`` for the requested indices, in one sequential pass.

    Every frame from 0 to the last requested index goes through the decoder in order (no seeking,
    which is unreliable on many codecs), but only the requested ones are converted to RGB
    (``cap.grab()`` for the others, ``cap.retrieve()`` for those): the same frames as decoding each
    with ``cap.read()``, without the colour conversion and copy of the frames nobody uses. A
    display matrix (rotated phone video) is applied by OpenCV, so frames come upright. The frames
    are RGB, ``uint8``, ``H×W×3``, in increasing index order (duplicates are yielded once).

    Decoding stops cleanly at the first failed grab (or when the file cannot be opened): the
    indices that were requested but not yielded were not reached (see :func:`missing_indices`).
    Never raises for a bad or truncated file.
    """
    wanted = sorted({int(i) for i in indices if int(i) >= 0})
    if not wanted:
        return
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return
        wanted_set = set(wanted)
        for idx in range(wanted[-1] + 1):
            try:
                ok = cap.grab()
                frame = cap.retrieve()[1] if ok and idx in wanted_set else None
            except cv2.error:  # pragma: no cover - defensive, a decoder error ends the video
                break
            if not ok or (idx in wanted_set and frame is None):
                break
            if frame is not None:
                yield idx, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def missing_indices(requested: Iterable[int], yielded: Iterable[int]) -> list[int]:
    """The requested indices (sorted, unique) that :func:`read_frames` did not yield."""
    got = set(int(i) for i in yielded)
    return sorted({int(i) for i in requested} - got)


def write_video(path, frames_rgb: Iterable[np.ndarray], fps: float = 25.0) -> Path:
    """Write RGB ``uint8`` frames (all the same size) to an MPEG-4 Part 2 (``mp4v``) file.

    A small helper for the demo data and the tests. Raises ``ValueError`` when there are no
    frames and ``RuntimeError`` when OpenCV cannot open the writer.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    n = 0
    try:
        for frame in frames_rgb:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
                if not writer.isOpened():
                    raise RuntimeError(f"cv2.VideoWriter cannot write {path} (fourcc mp4v)")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            n += 1
    finally:
        if writer is not None:
            writer.release()
    if n == 0:
        raise ValueError(f"no frames to write to {path}")
    return path
