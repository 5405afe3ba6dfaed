"""Offline demo dataset: real-face videos and self-blended fakes, built from a real photograph.

Nothing is downloaded. The face is scikit-image's bundled ``astronaut`` photograph (512x512 RGB,
face box about (175,76)-(265,166)). Its 68 landmarks are found once with dlib
(:class:`pipeline.faces.DlibBackend`).

* **Real** video ``real_NNNN``: a head-and-shoulders cut of the photograph (soft elliptical alpha)
  composited onto a per-video background, with the face moving (smooth sinusoidal translation),
  scaling (about 0.88-1.12), slightly rotating, and changing brightness over the frames; some
  videos are mirrored; each video has its own white balance (each channel x 0.75-1.25) and focus
  (most videos are somewhat out of focus: the whole frame blurred, sigma up to 2 px at 256 px), so
  colour and sharpness alone do not tell a fake. Background ``style``: ``"gradient"`` (random two-colour gradient + sensor
  noise) or ``"texture"`` (blurred random noise + stripes), so a second benchmark can differ in
  style.
* **Fake** video ``fake_NNNN`` (method ``"SBI"``, ``source_id = real_NNNN``, same split): the
  *same* rendered frames as its source real, with the face region re-blended from a colour-shifted,
  slightly scaled/shifted copy of the frame through a soft mask: the convex hull of the 68
  landmarks (moved with the same transform that placed the face), Gaussian-blurred, times a blend
  ratio. These are self-blended images (Shiohara & Yamasaki, CVPR 2022), so the blending artefacts
  (colour mismatch, boundary, slight misalignment) are real ones. ``blend`` sets their strength;
  a different ``blend`` gives a shifted benchmark.
* ``corrupt`` extra files ``broken_NNN.mp4`` of random bytes (label 1, method ``"SBI"``, split
  ``"test"``) exercise the pipeline's bad-input path.

Everything is derived from ``seed`` and the video index (``numpy.random.default_rng``), so the
same arguments give the same ``labels.csv`` and the same frames. The rendering functions
(:func:`render_real`, :func:`self_blend`) are public so tests can check frames and masks without
video compression in between.
"""

from __future__ import annotations

import csv
import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.video import write_video

SPLITS = ("train", "val", "test")
DEFAULT_COUNTS = {"train": 12, "val": 4, "test": 6}
STYLES = ("gradient", "texture")

# Self-blending (fake) parameters.
# ``color_shift``: per-channel offset magnitude as a fraction of the 0-255 range (drawn in
#   [c/2, c] with a random sign per channel);
# ``contrast``: max relative contrast change of the source copy;
# ``scale_jitter``: the source copy is scaled by 1 +/- up to this about the face centre;
# ``shift``: max translation of the source copy, as a fraction of the face width;
# ``hull_scale``: the landmark hull is scaled about its centroid by a factor in this range;
# ``mask_blur``: Gaussian sigma of the mask edge in pixels of a 256-px frame (scaled with size);
# ``ratio``: blend-ratio range (the mask's maximum);
# ``downscale``: range of the factor by which the source copy is shrunk and re-enlarged before
#   blending (1 = untouched): the resolution mismatch of a face synthesised smaller than the frame.
DEFAULT_BLEND = {
    "color_shift": 0.07,
    "contrast": 0.08,
    "scale_jitter": 0.04,
    "shift": 0.02,
    "hull_scale": (0.92, 1.04),
    "mask_blur": 5.0,
    "ratio": (0.75, 1.0),
    "downscale": (1.0, 1.0),
}

# Head-and-shoulders ellipse in astronaut coordinates (centre, semi-axes), before blurring.
_HEAD_CENTRE = (225.0, 132.0)
_HEAD_AXES = (92.0, 122.0)
_FACE_PX_AT_256 = 100.0  # face box width at scale 1 in a 256-px frame
_ASTRONAUT_FACE_PX = 90.0  # dlib box width on the photograph


@dataclass(frozen=True)
class FaceSource:
    """The photograph, its 68 landmarks (dlib) and the soft head alpha (float32, 0..1)."""

    image: np.ndarray  # 512x512x3 uint8 RGB
    landmarks: np.ndarray  # (68, 2) float64
    alpha: np.ndarray  # 512x512 float32


@functools.lru_cache(maxsize=1)
def face_source() -> FaceSource:
    """Load the astronaut photograph and find its landmarks once (dlib, largest face)."""
    from skimage import data

    from pipeline.faces import make_backend

    image = np.ascontiguousarray(data.astronaut())
    face, _ = make_backend("dlib").largest_face(image)
    if face is None:  # pragma: no cover - dlib always finds this face
        raise RuntimeError("dlib found no face on skimage.data.astronaut()")
    alpha = np.zeros(image.shape[:2], dtype=np.float32)
    cv2.ellipse(
        alpha,
        (int(_HEAD_CENTRE[0]), int(_HEAD_CENTRE[1])),
        (int(_HEAD_AXES[0]), int(_HEAD_AXES[1])),
        0,
        0,
        360,
        1.0,
        thickness=-1,
    )
    alpha = cv2.GaussianBlur(alpha, (0, 0), 9)
    image.setflags(write=False)
    lm = face.landmarks.astype(np.float64)
    lm.setflags(write=False)
    alpha.setflags(write=False)
    return FaceSource(image=image, landmarks=lm, alpha=alpha)


# --------------------------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------------------------


def _gradient_background(rng: np.random.Generator, size: int) -> np.ndarray:
    c0, c1 = rng.uniform(20, 235, size=(2, 3)).astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = (np.cos(theta) * (xx - 0.5) + np.sin(theta) * (yy - 0.5)) / math.sqrt(0.5) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    return c0 * (1 - t) + c1 * t


def _texture_background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.uniform(40, 215, size=3).astype(np.float32)
    small = max(size // 16, 2)
    noise = rng.standard_normal((small, small, 3), dtype=np.float32)
    noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    noise = cv2.GaussianBlur(noise, (0, 0), size / 64)
    theta = rng.uniform(0, math.pi)
    period = rng.uniform(size / 16, size / 5)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    stripes = np.sin(2 * math.pi * (np.cos(theta) * xx + np.sin(theta) * yy) / period)
    stripe_col = rng.uniform(-45, 45, size=3).astype(np.float32)
    return base + 30 * noise + stripes[..., None] * stripe_col


def make_background(rng: np.random.Generator, size: int, style: str) -> np.ndarray:
    """A float32 ``size``x``size``x3 background in grey levels (not clipped)."""
    if style == "gradient":
        return _gradient_background(rng, size)
    if style == "texture":
        return _texture_background(rng, size)
    raise ValueError(f"unknown demo style {style!r}; known styles: {', '.join(STYLES)}")


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _placement(centre_src, centre_dst, scale: float, angle_deg: float, mirror: bool) -> np.ndarray:
    """2x3 affine: rotate/scale (and mirror) about ``centre_src``, then move it to ``centre_dst``."""
    a = math.radians(angle_deg)
    lin = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    if mirror:
        lin = lin @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    m = np.empty((2, 3))
    m[:, :2] = lin
    m[:, 2] = np.asarray(centre_dst) - lin @ np.asarray(centre_src)
    return m


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def render_real(
    rng: np.random.Generator, frames: int = 24, size: int = 256, style: str = "gradient"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Render one real video: ``(frames_rgb, landmarks_per_frame)``.

    Frames are ``size``x``size``x3 uint8 RGB; landmarks are the photograph's 68 points moved by
    the transform that placed the face in each frame (68x2 float64, frame coordinates).
    """
    src = face_source()
    bg = make_background(rng, size, style)
    noise_sigma = rng.uniform(1.5, 4.0)
    mirror = bool(rng.integers(0, 2))
    face_scale = _FACE_PX_AT_256 / _ASTRONAUT_FACE_PX * size / 256.0
    # smooth motion: one sinusoid per parameter with random frequency (cycles per clip) and phase
    freq = rng.uniform(0.3, 1.2, size=5)
    phase = rng.uniform(0, 2 * math.pi, size=5)
    amp_xy = rng.uniform(0.03, 0.08, size=2) * size
    amp_s = rng.uniform(0.05, 0.12)
    amp_rot = rng.uniform(0.0, 5.0)
    amp_gain = rng.uniform(0.04, 0.14)
    centre = np.array([size / 2.0, size * 0.47]) + rng.uniform(-0.04, 0.04, size=2) * size
    colour = rng.uniform(0.75, 1.25, size=3).astype(np.float32)  # per-video white balance
    defocus = rng.uniform(0.0, 2.0) * size / 256.0  # per-video focus: the whole frame, real or fake
    face_centre = src.landmarks.mean(axis=0)

    out_frames: list[np.ndarray] = []
    out_lms: list[np.ndarray] = []
    for i in range(frames):
        t = i / max(frames, 1)
        w = [math.sin(2 * math.pi * freq[j] * t + phase[j]) for j in range(5)]
        dst = centre + np.array([amp_xy[0] * w[0], amp_xy[1] * w[1]])
        scale = face_scale * (1.0 + amp_s * w[2])
        angle = amp_rot * w[3]
        gain = 1.0 + amp_gain * w[4]
        m = _placement(face_centre, dst, scale, angle, mirror)
        fg = cv2.warpAffine(src.image, m, (size, size), flags=cv2.INTER_LINEAR).astype(np.float32)
        a = cv2.warpAffine(src.alpha, m, (size, size), flags=cv2.INTER_LINEAR)[..., None]
        frame = a * (fg * colour * gain) + (1.0 - a) * bg
        if defocus > 0.3:
            frame = cv2.GaussianBlur(frame, (0, 0), defocus)
        frame += rng.standard_normal(frame.shape, dtype=np.float32) * noise_sigma
        out_frames.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
        out_lms.append(_apply(m, src.landmarks))
    return out_frames, out_lms


def blend_params(rng: np.random.Generator, blend: dict | None = None) -> dict:
    """Draw one fake video's self-blending parameters from ``blend`` (defaults: DEFAULT_BLEND)."""
    cfg = {**DEFAULT_BLEND, **(blend or {})}
    unknown = set(cfg) - set(DEFAULT_BLEND)
    if unknown:
        raise ValueError(f"unknown blend parameters {sorted(unknown)}; known: {sorted(DEFAULT_BLEND)}")
    c = 255.0 * float(cfg["color_shift"])
    shift = rng.uniform(c / 2, c, size=3) * rng.choice([-1.0, 1.0], size=3)
    sj = float(cfg["scale_jitter"])
    return {
        "color_shift": shift.astype(np.float32),
        "contrast": float(1.0 + rng.uniform(-cfg["contrast"], cfg["contrast"])),
        "scale": float(1.0 + rng.uniform(-sj, sj)),
        "shift": rng.uniform(-cfg["shift"], cfg["shift"], size=2),
        "hull_scale": float(rng.uniform(*cfg["hull_scale"])),
        "mask_blur": float(cfg["mask_blur"]),
        "ratio": float(rng.uniform(*cfg["ratio"])),
        "downscale": float(rng.uniform(*cfg["downscale"])),
    }


def blend_mask(landmarks: np.ndarray, size: int, hull_scale: float = 1.0, blur: float = 5.0) -> np.ndarray:
    """Soft mask (float32 ``size``x``size``, 0..1): blurred convex hull of the 68 landmarks.

    The hull is scaled by ``hull_scale`` about the landmarks' centroid; the blur sigma is
    ``blur`` pixels at a 256-px frame (``blur * size / 256``).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    c = lm.mean(axis=0)
    pts = c + (lm - c) * hull_scale
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
    mask = np.zeros((size, size), dtype=np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA, shift=4)
    sigma = max(blur * size / 256.0, 0.5)
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def self_blend(frame: np.ndarray, landmarks: np.ndarray, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Self-blended image: ``(fake_frame uint8, mask float32)``.

    The source is a copy of ``frame`` scaled/shifted slightly about the face centre with a
    colour/contrast change; it is blended into ``frame`` through :func:`blend_mask` times the
    blend ratio. Pixels where the mask is 0 are unchanged.
    """
    size = frame.shape[0]
    lm = np.asarray(landmarks, dtype=np.float64)
    c = lm.mean(axis=0)
    width = float(lm[:, 0].max() - lm[:, 0].min())
    m = _placement(c, c + params["shift"] * width, params["scale"], 0.0, False)
    src = cv2.warpAffine(
        frame, m, (frame.shape[1], size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    if params.get("downscale", 1.0) < 1.0:
        small = max(8, round(size * params["downscale"]))
        src = cv2.resize(cv2.resize(src, (small, small), interpolation=cv2.INTER_AREA), (frame.shape[1], size),
                         interpolation=cv2.INTER_LINEAR)
    src = src.astype(np.float32)
    mean = src.mean(axis=(0, 1), keepdims=True)
    src = (src - mean) * params["contrast"] + mean + params["color_shift"]
    mask = blend_mask(lm, size, params["hull_scale"], params["mask_blur"]) * params["ratio"]
    out = frame.astype(np.float32) * (1.0 - mask[..., None]) + src * mask[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), mask


def render_pair(
    seed: int,
    index: int,
    frames: int = 24,
    size: int = 256,
    style: str = "gradient",
    blend: dict | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Real video ``index`` and its fake: ``(real_frames, fake_frames, masks, landmarks)``.

    The real's randomness comes from ``default_rng([seed, index, 0])``, the fake's blending
    parameters from ``default_rng([seed, index, 1])``.
    """
    real, lms = render_real(np.random.default_rng([seed, index, 0]), frames, size, style)
    params = blend_params(np.random.default_rng([seed, index, 1]), blend)
    fakes, masks = [], []
    for frame, lm in zip(real, lms):
        fake, mask = self_blend(frame, lm, params)
        fakes.append(fake)
        masks.append(mask)
    return real, fakes, masks, lms


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------

LABEL_COLUMNS = ("video_id", "path", "label", "method", "source_id", "split")


def make_demo_dataset(
    out_dir,
    *,
    seed: int,
    counts: dict | None = None,
    frames: int = 24,
    size: int = 256,
    fps: int = 25,
    style: str = "gradient",
    blend: dict | None = None,
    corrupt: int = 0,
    methods: dict | None = None,
) -> Path:
    """Write a demo dataset and return ``out_dir`` (as a Path).

    Layout: ``out_dir/<method>/<video_id>.mp4`` (``mp4v``; method ``real`` or ``SBI``, so the ``folder``
    adapter reads the tree as it is) and ``out_dir/labels.csv`` (for the ``csv`` adapter) with columns
    ``video_id,path,label,method,source_id,split`` (``path`` relative to ``out_dir``; label 0
    real, 1 fake; a real's ``source_id`` is its own id; a broken file's is empty).

    ``counts`` = videos per class per split (default train 12, val 4, test 6): each split gets
    that many reals and as many fakes, one per real. Reals are numbered globally in split order
    (``real_0000`` ...); ``fake_NNNN`` is made from ``real_NNNN``. ``corrupt`` adds that many
    unreadable files ``broken_NNN.mp4`` (label 1, method SBI, split test).

    ``methods`` (instead of ``blend``): method name -> its ``blend``; each real then gets one fake per
    method, ``<method>/<method>_NNNN.mp4`` (the blending of method number ``j`` drawn from
    ``default_rng([seed, index, 1 + j])``), and broken files go under the first method.
    """
    if style not in STYLES:
        raise ValueError(f"unknown demo style {style!r}; known styles: {', '.join(STYLES)}")
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    unknown = set(counts) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown splits in counts: {sorted(unknown)}; known: {', '.join(SPLITS)}")
    if frames < 1 or size < 64:
        raise ValueError("the demo needs frames >= 1 and size >= 64")
    if methods is not None and (blend is not None or not methods or "real" in methods):
        raise ValueError("demo methods: give either blend or methods (name -> blend), at least one, none named real")
    blends = {"SBI": blend} if methods is None else dict(methods)
    for b in blends.values():
        blend_params(np.random.default_rng(0), b)  # validate the blend keys before any work

    out_dir = Path(out_dir)
    for method in ("real", *blends):
        (out_dir / method).mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    index = 0
    for split in SPLITS:
        for _ in range(int(counts.get(split, 0))):
            real_id = f"real_{index:04d}"
            real, lms = render_real(np.random.default_rng([seed, index, 0]), frames, size, style)
            videos = [(real_id, real, 0, "real", real_id)]
            for j, (method, b) in enumerate(blends.items()):
                params = blend_params(np.random.default_rng([seed, index, 1 + j]), b)
                fake = [self_blend(frame, lm, params)[0] for frame, lm in zip(real, lms)]
                fake_id = f"fake_{index:04d}" if methods is None else f"{method}_{index:04d}"
                videos.append((fake_id, fake, 1, method, real_id))
            for vid, frames_rgb, label, method, source in videos:
                rel = f"{method}/{vid}.mp4"
                write_video(out_dir / rel, frames_rgb, fps)
                rows.append(
                    {
                        "video_id": vid,
                        "path": rel,
                        "label": label,
                        "method": method,
                        "source_id": source,
                        "split": split,
                    }
                )
            index += 1
    crng = np.random.default_rng([seed, 0xBAD])
    for j in range(int(corrupt)):
        vid = f"broken_{j:03d}"
        rel = f"{next(iter(blends))}/{vid}.mp4"
        (out_dir / rel).write_bytes(crng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
        rows.append(
            {"video_id": vid, "path": rel, "label": 1, "method": next(iter(blends)), "source_id": "", "split": "test"}
        )

    tmp = out_dir / "labels.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LABEL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out_dir / "labels.csv")
    return out_dir


def add_arguments(ap) -> None:
    """The demo dataset's command-line arguments (``python -m pipeline demo`` and ``python -m pipeline.fetch.demo``)."""
    import json

    ap.add_argument("out_dir", help="folder to write labels.csv and the videos (real/, SBI/) into")
    ap.add_argument("--seed", type=int, default=0, help="seeds every random choice (same seed, same files)")
    for split in SPLITS:
        ap.add_argument(f"--{split}", type=int, default=DEFAULT_COUNTS[split],
                        help=f"{split} videos per class (default {DEFAULT_COUNTS[split]})")
    ap.add_argument("--frames", type=int, default=24, help="frames per video")
    ap.add_argument("--size", type=int, default=256, help="frame width and height in pixels")
    ap.add_argument("--fps", type=int, default=25, help="frames per second of the MP4 files")
    ap.add_argument("--style", choices=STYLES, default="gradient", help="background style")
    ap.add_argument("--blend", type=json.loads, default=None,
                    help=f"JSON object overriding the self-blending parameters ({', '.join(DEFAULT_BLEND)})")
    ap.add_argument("--corrupt", type=int, default=0, help="extra unreadable files (label fake, split test)")


def run(a) -> Path:
    """Write the dataset the parsed arguments ``a`` describe; print and return its labels.csv."""
    out = make_demo_dataset(
        a.out_dir,
        seed=a.seed,
        counts={"train": a.train, "val": a.val, "test": a.test},
        frames=a.frames,
        size=a.size,
        fps=a.fps,
        style=a.style,
        blend=a.blend,
        corrupt=a.corrupt,
    )
    print(out / "labels.csv")
    return out / "labels.csv"


def main(argv=None) -> None:
    """Command line: ``python -m pipeline.fetch.demo OUT_DIR --seed N [--style texture] ...``."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    run(ap.parse_args(argv))


if __name__ == "__main__":
    main()
