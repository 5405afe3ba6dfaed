"""Which face of a frame to crop.

* ``largest``: the largest box by area (DeepfakeBench), ties broken by detection order;
* ``mask``: for videos that ship a manipulation mask (FF++ official tree
  ``manipulated_sequences/<Method>/masks/videos``, DFD), the face whose box holds most of the
  mask's pixels in the same frame, so a multi-person scene is cropped around the manipulated
  person; without a mask frame, or when no box touches the mask, the largest face.
"""

from __future__ import annotations

import numpy as np

from .base import Face

CHOICES = ("largest", "mask")


def largest(faces: list[Face]) -> Face:
    return max(faces, key=lambda f: f.area)  # max keeps the first of equal areas


def mask_overlap(face: Face, mask: np.ndarray) -> int:
    """Mask pixels (value > 1, DeepfakeBench's binarisation threshold) inside the face box."""
    h, w = mask.shape[:2]
    x0, y0, x1, y1 = face.box
    x0, y0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    x1, y1 = min(w, int(np.ceil(x1)) + 1), min(h, int(np.ceil(y1)) + 1)
    if x1 <= x0 or y1 <= y0:
        return 0
    region = mask[y0:y1, x0:x1]
    if region.ndim == 3:
        region = region.max(axis=2)
    return int((region > 1).sum())


def choose_face(faces: list[Face], choice: str = "largest", mask: np.ndarray | None = None) -> Face:
    """The face to crop among ``faces`` (not empty), by ``choice`` (see the module docstring)."""
    if choice not in CHOICES:
        raise ValueError(f"unknown face choice {choice!r}; known: {', '.join(CHOICES)}")
    if choice == "mask" and mask is not None and len(faces) > 1:
        overlaps = [mask_overlap(f, mask) for f in faces]
        if max(overlaps) > 0:
            return faces[int(np.argmax(overlaps))]
    return largest(faces)
