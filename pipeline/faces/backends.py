"""Face backends: one interface, several detectors + 68-point landmark models.

Every backend returns the same per-face record (:class:`Face`: box, detector score, 68 iBUG
landmarks in frame pixels), so nothing downstream knows which one ran. Detection may run on a
downscaled copy of the frame (``detect_side``: the shorter side of the detection image); the boxes
are mapped back and the landmarks are always fitted at full resolution.

Registry: :data:`BACKENDS` (``dlib``, ``face_alignment``) and :func:`make_backend`.
"""

from __future__ import annotations

import abc
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np


@dataclass
class Face:
    """One detected face: box ``(x0, y0, x1, y1)`` in frame pixels, detector score, landmarks."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None  # (68, 2) float64, frame coordinates

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def as_uint8(image: np.ndarray) -> np.ndarray:
    img = np.ascontiguousarray(image)
    return img if img.dtype == np.uint8 else np.clip(img, 0, 255).astype(np.uint8)


def downscale(image: np.ndarray, side: int | None) -> tuple[np.ndarray, float]:
    """``(image, factor)``: ``image`` shrunk (INTER_AREA) so its shorter side is ``side``.

    Frames already at most ``side`` (or ``side`` None) are returned as they are with factor 1.
    """
    short = min(image.shape[:2])
    if not side or short <= side:
        return image, 1.0
    f = side / short
    size = (max(1, round(image.shape[1] * f)), max(1, round(image.shape[0] * f)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), f


class FaceBackend(abc.ABC):
    """A face detector + 68-point landmark model.

    Subclasses implement :meth:`detect` (all faces of a frame, boxes and scores in frame pixels)
    and :meth:`landmarks` (68 iBUG points for one face, fitted on the full-resolution frame).
    """

    name = "abstract"

    @abc.abstractmethod
    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """All faces in an RGB ``uint8`` frame."""

    @abc.abstractmethod
    def landmarks(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        """The 68 iBUG landmarks (68x2 float64, frame coordinates) of ``face``."""

    batch_size = 1  # frames per detect_batch call

    def detect_exhaustive(self, image_rgb: np.ndarray) -> list[Face]:
        """All faces the backend can find, small ones included (for the mask-guided choice)."""
        return self.detect(image_rgb)

    def detect_batch(self, frames: list[np.ndarray]) -> list[list[Face] | Exception]:
        """:meth:`detect` for several frames; a frame whose detection raised gets its exception."""
        out: list[list[Face] | Exception] = []
        for frame in frames:
            try:
                out.append(self.detect(frame))
            except Exception as exc:
                out.append(exc)
        return out

    def largest_face(self, image_rgb: np.ndarray) -> tuple[Face | None, int]:
        """``(face, n_faces)``: the largest detected face with its landmarks filled, or None."""
        faces = self.detect(image_rgb)
        if not faces:
            return None, 0
        best = max(faces, key=lambda f: f.area)  # max keeps the first of equal areas
        best.landmarks = np.asarray(self.landmarks(image_rgb, best), dtype=np.float64)
        return best, len(faces)


def dlib_predictor_path() -> Path:
    """Path of dlib's 68-point shape predictor shipped in ``face-recognition-models``.

    The package is located without importing it (its ``__init__`` needs ``pkg_resources``).
    Raises ``FileNotFoundError`` naming the package to install when it is absent.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / "models" / "shape_predictor_68_face_landmarks.dat"
        if path.is_file():
            return path
    raise FileNotFoundError(
        "dlib's 68-point landmark model (shape_predictor_68_face_landmarks.dat) was not found: "
        "install the 'face-recognition-models' package (pip install face-recognition-models)"
    )


class DlibBackend(FaceBackend):
    """dlib HOG frontal face detector + 68-point shape predictor (DeepfakeBench's tools).

    ``passes`` are the detection attempts, in order, each ``[detect_side, upsample]``: the frame is
    downscaled to a shorter side of ``detect_side`` (None: full resolution) and HOG runs with
    ``upsample``; the first pass that finds a face wins. ``[[None, 1]]`` is DeepfakeBench exactly
    (full frame, upsample 1); the default ``[[360, 0], [360, 1], [None, 1]]`` tries cheap passes
    first and falls back to the DeepfakeBench pass for small faces. ``upsample`` alone (an int) is
    the single pass ``[[None, upsample]]``. Landmarks are always fitted on the full frame.
    """

    name = "dlib"
    DEFAULT_PASSES = ((360, 0), (360, 1), (None, 1))

    def __init__(self, passes=None, upsample: int | None = None,
                 predictor_path: str | os.PathLike | None = None):
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the dlib face backend needs dlib: install 'dlib-bin' (or 'dlib')") from exc
        if passes is not None and upsample is not None:
            raise ValueError("dlib backend: give either passes or upsample, not both")
        if upsample is not None:
            passes = [[None, upsample]]
        self.passes = [(None if s is None else int(s), int(u)) for s, u in (passes or self.DEFAULT_PASSES)]
        if not self.passes:
            raise ValueError("dlib backend: passes is empty")
        self._dlib = dlib
        self.predictor_path = Path(predictor_path) if predictor_path else dlib_predictor_path()
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.predictor_path))

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        img = as_uint8(image_rgb)
        for side, upsample in self.passes:
            faces = self._run(img, side, upsample)
            if faces:
                return faces
        return []

    def _run(self, img: np.ndarray, side: int | None, upsample: int) -> list[Face]:
        """One HOG pass on ``img`` downscaled to ``side``; boxes in ``img`` pixels."""
        small, f = downscale(img, side)
        rects, scores, _ = self._detector.run(small, upsample, 0)
        return [Face(box=(r.left() / f, r.top() / f, r.right() / f, r.bottom() / f), score=float(s))
                for r, s in zip(rects, scores)]

    def detect_exhaustive(self, image_rgb: np.ndarray) -> list[Face]:
        """The last (most sensitive) pass alone: the passes before it stop at the first face found."""
        return self._run(as_uint8(image_rgb), *self.passes[-1])

    def landmarks(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        shape = self._predictor(as_uint8(image_rgb), self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float64)


def _face_alignment_backend(**options) -> FaceBackend:
    from .fan import FaceAlignmentBackend

    return FaceAlignmentBackend(**options)


BACKENDS: dict[str, Callable[..., FaceBackend]] = {"dlib": DlibBackend, "face_alignment": _face_alignment_backend}


def preflight(name: str, options: dict) -> None:
    """Check that backend ``name`` has its model files, before a job opens any video.

    Raises ``FileNotFoundError`` naming each missing file and where to put it.
    """
    if name == "dlib":
        path = options.get("predictor_path")
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"dlib backend: predictor_path {path} does not exist")
        if not path:
            dlib_predictor_path()
    elif name == "face_alignment":
        from .fan import require_weights

        require_weights(options)


def make_backend(name: str, **options) -> FaceBackend:
    """Build a face backend by name (``dlib``, ``face_alignment``); ``options`` go to its constructor."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown face backend {name!r}; known backends: {', '.join(sorted(BACKENDS))}") from None
    return factory(**options)
