"""The ``dlib`` backend: dlib's HOG frontal face detector and its 68-point shape predictor (the tools of
DeepfakeBench), on the CPU, fully offline."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from .base import Face, FaceBackend, as_uint8, downscale


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
