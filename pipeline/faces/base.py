"""The one interface of the face backends: every backend returns the same per-face record (:class:`Face`:
box, detector score, 68 iBUG landmarks in frame pixels), so nothing downstream knows which one ran.
Detection may run on a downscaled copy of the frame (:func:`downscale`); the boxes are mapped back and
the landmarks are always fitted at full resolution."""

from __future__ import annotations

import abc
from dataclasses import dataclass

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
