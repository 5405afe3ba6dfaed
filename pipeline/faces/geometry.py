"""Geometry of the DeepfakeBench crop (``preprocessing/preprocess.py`` of SCLBD/DeepfakeBench).

Five alignment points taken from the 68 iBUG landmarks are mapped by a least-squares similarity
transform (rotation, uniform scale, translation; no reflection) onto the ArcFace template shifted by
+8 px on x, shrunk by the margin ``scale`` and scaled to ``size`` px; the frame is warped bilinearly
with a black border.

Two choices of the five points (``POINT_SETS``):

* ``deepfakebench``: the 68-point indices 37, 44, 30, 49, 55 (upper eyelids, nose tip, outer lip
  points next to the mouth corners) that DeepfakeBench uses; this defines its crop;
* ``centres``: eye centres (mean of 36-41 and 42-47), nose tip 30, mouth corners 48 and 54, the
  points the ArcFace template was made for.
"""

from __future__ import annotations

import cv2
import numpy as np

# The 5-point ArcFace/insightface template for 112x112 crops.
ARCFACE_112 = np.array(
    [
        [30.2946, 51.6963],
        [65.5318, 51.5014],
        [48.0252, 71.7366],
        [33.5493, 92.3655],
        [62.7299, 92.2041],
    ],
    dtype=np.float64,
)

# DeepfakeBench's five 68-point indices (0-based).
ALIGN_POINTS = (37, 44, 30, 49, 55)

# name -> five groups of 68-point indices; each alignment point is the mean of its group.
POINT_SETS: dict[str, tuple[tuple[int, ...], ...]] = {
    "deepfakebench": tuple((i,) for i in ALIGN_POINTS),
    "centres": (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,)),
}


def template_points(size: int = 256, scale: float = 1.3) -> np.ndarray:
    """The five destination points (5x2 float64) of the DeepfakeBench crop at ``size`` px.

    Closed form of DeepfakeBench's ``img_align_crop``: ``x' = ((x+8)/112 + (scale-1)/2)/scale *
    size``, ``y' = (y/112 + (scale-1)/2)/scale * size`` applied to the ArcFace 112 template.
    At 256 px and margin 1.3: (96.870,120.433) (158.825,120.090) (128.044,155.669)
    (102.592,191.939) (153.899,191.656).
    """
    pts = ARCFACE_112.copy()
    pts[:, 0] += 8.0
    margin = (scale - 1.0) / 2.0
    return (pts / 112.0 + margin) / scale * size


def similarity_matrix(src, dst) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation; no reflection).

    Returns the 2x3 matrix ``M`` minimising ``sum |M @ [src_i, 1] - dst_i|^2`` (Umeyama 1991,
    the estimator behind ``skimage.transform.SimilarityTransform``). ``src`` and ``dst`` are Nx2,
    N >= 2. Raises ``ValueError`` for degenerate or non-finite input.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"similarity_matrix needs two Nx2 arrays (N>=2), got {src.shape}, {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("similarity_matrix: points are not finite")
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=0)
    s0 = src - mu_s
    d0 = dst - mu_d
    var_s = (s0**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("similarity_matrix: source points are all identical")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # would be a reflection: flip the weakest axis
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    c = (sig * d).sum() / var_s
    m = np.empty((2, 3), dtype=np.float64)
    m[:, :2] = c * rot
    m[:, 2] = mu_d - c * rot @ mu_s
    return m


def decompose(m: np.ndarray, size: int = 256) -> dict:
    """Scale, rotation (degrees) and shift of the crop centre (px) of a 2x3 similarity matrix."""
    m = np.asarray(m, dtype=np.float64)
    centre = np.array([size / 2.0, size / 2.0])
    return {
        "scale": float(np.sqrt(abs(np.linalg.det(m[:, :2])))),
        "angle": float(np.degrees(np.arctan2(m[1, 0], m[0, 0]))),
        "shift": (m[:, :2] @ centre + m[:, 2] - centre).tolist(),
    }


def align_points(landmarks68, points: str = "deepfakebench") -> np.ndarray:
    """The five alignment points (5x2 float64) of 68 iBUG landmarks (``POINT_SETS[points]``)."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] < 68:
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    try:
        groups = POINT_SETS[points]
    except KeyError:
        raise ValueError(f"unknown alignment points {points!r}; known: {', '.join(POINT_SETS)}") from None
    return np.stack([lm[list(g)].mean(axis=0) for g in groups])


def alignment_matrix(points5, size: int = 256, scale: float = 1.3) -> np.ndarray:
    """2x3 matrix mapping the five alignment points (source frame) onto the crop template."""
    return similarity_matrix(np.asarray(points5, dtype=np.float64).reshape(5, 2), template_points(size, scale))


def warp(image_rgb: np.ndarray, m: np.ndarray, size: int = 256) -> np.ndarray:
    """``cv2.warpAffine`` with the DeepfakeBench settings: bilinear, constant black border."""
    img = np.ascontiguousarray(image_rgb)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def align_crop(image_rgb: np.ndarray, landmarks68: np.ndarray, size: int = 256, scale: float = 1.3,
               points: str = "deepfakebench") -> np.ndarray:
    """The DeepfakeBench face crop: ``size``x``size``x3 ``uint8``. Stable public API."""
    return warp(image_rgb, alignment_matrix(align_points(landmarks68, points), size, scale), size)


def transform_points(m: np.ndarray, points) -> np.ndarray:
    """Apply a 2x3 affine matrix to Nx2 points."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ np.asarray(m, dtype=np.float64)[:, :2].T + np.asarray(m, dtype=np.float64)[:, 2]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) of two ``uint8`` images; ``inf`` when identical."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def central_region(crop: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """The central ``fraction`` (per side) of a crop: the face without hair and background."""
    h, w = crop.shape[:2]
    dy, dx = int(h * (1 - fraction) / 2), int(w * (1 - fraction) / 2)
    return crop[dy:h - dy, dx:w - dx]
