"""Robustness benchmarks: a benchmark's stored face crops degraded at evaluation time.

A robustness benchmark is derived from any configured benchmark by the ``robustness`` section of the
config: the same videos and crops, each crop degraded before it is scored by one *kind* of corruption
at one *strength*::

    robustness:
      benchmarks: [celebdf_v2]        # derived from these benchmarks
      models: [lnclip_df]             # optional: these models only (default: every model)
      jpeg: [100, 80, 60, 40, 20, 10] # JPEG quality (lower is stronger)
      blur: [1, 2, 4]                 # Gaussian blur, sigma in pixels of the stored crop
      noise: [5, 10, 20]              # additive Gaussian noise, std in 0-255 grey levels
      resize: [0.5, 0.25]             # downscale by this factor, then back up to the crop size

The crops are degraded as stored (e.g. 256 px), before the model's own resize. Each frame's
degradation is deterministic: it depends only on the crop, the kind, the strength, the seed and the
crop's key (noise is drawn from a generator seeded by them), so a rerun gives the same scores.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from pipeline.core import tables
from pipeline.core.files import write_json
from .benchmark import Settings, _detector, _scores, _split_frames
from .metrics import evaluate_scores, jsonable

KINDS = ("jpeg", "blur", "noise", "resize")
# Kinds where a smaller number is a stronger corruption (the curves' x axes run towards stronger).
DECREASING = {"jpeg": True, "blur": False, "noise": False, "resize": True}
AXIS_LABELS = {"jpeg": "JPEG quality", "blur": "blur sigma (px)", "noise": "noise std (grey levels)",
               "resize": "downscale factor"}


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out.convert("RGB")


def blur(img: Image.Image, sigma: float) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius=float(sigma)))


def noise(img: Image.Image, std: float, rng: np.random.Generator) -> Image.Image:
    x = np.asarray(img, dtype=np.float32) + rng.normal(0.0, float(std), size=(img.height, img.width, 3))
    return Image.fromarray(np.clip(np.rint(x), 0, 255).astype(np.uint8), "RGB")


def resize(img: Image.Image, factor: float) -> Image.Image:
    w, h = img.size
    small = img.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BILINEAR)
    return small.resize((w, h), Image.BILINEAR)


@dataclass(frozen=True)
class Corruption:
    """One kind at one strength: a callable ``(img, rng) -> img`` like the training augmenter.

    ``rng`` is the per-crop ``random.Random`` the loader seeds from the crop's key; only ``noise``
    draws from it (through a numpy generator seeded by it and ``seed``).
    """

    kind: str
    strength: float
    seed: int = 0

    def __post_init__(self):
        check(self.kind, self.strength)

    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        img = img.convert("RGB")
        if self.kind == "jpeg":
            return jpeg(img, int(self.strength))
        if self.kind == "blur":
            return blur(img, self.strength)
        if self.kind == "noise":
            return noise(img, self.strength, np.random.default_rng([rng.getrandbits(63), self.seed]))
        return resize(img, self.strength)


def check(kind: str, strength) -> None:
    """Raise ``ValueError`` naming the config key when ``strength`` is not valid for ``kind``."""
    ok = {"jpeg": lambda s: float(s).is_integer() and 1 <= s <= 100, "blur": lambda s: s > 0,
          "noise": lambda s: s > 0, "resize": lambda s: 0 < s < 1}
    if kind not in ok:
        raise ValueError(f"robustness: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    if not isinstance(strength, (int, float)) or isinstance(strength, bool) or not ok[kind](strength):
        need = {"jpeg": "an integer quality 1-100", "blur": "a sigma > 0", "noise": "a std > 0",
                "resize": "a factor between 0 and 1"}[kind]
        raise ValueError(f"robustness.{kind}: {strength!r} is not {need}")


def strength_text(strength) -> str:
    """``40`` for 40 or 40.0, ``0.5`` for 0.5: the form used in names and file paths."""
    return f"{float(strength):g}"


def derived_name(bench: str, kind: str, strength) -> str:
    """The derived benchmark's name in the report and ``metrics.csv``, e.g. ``celebdf_v2@jpeg=40``."""
    return f"{bench}@{kind}={strength_text(strength)}"


def evaluate_robustness(adapter, weights_dir, frames_path, out_json, *, corruptions: dict, **settings) -> dict:
    """Score one benchmark's crops degraded by each corruption kind at each of its strengths.

    The entry point of the workflow's ``robustness`` rule (one job per model x benchmark: the model
    is loaded once); ``corruptions``: kind -> strengths (``pipeline.core.config.corruptions``); ``settings``
    as for :func:`evaluate_benchmark`. Writes ``out_json``: the metadata of ``metrics.json`` plus
    ``points``, one per kind and strength in the given order, each ``{"kind", "strength",
    "benchmark"`` (the derived name, e.g. ``celebdf_v2@jpeg=40``) ``, ...metrics}`` with the metrics
    of :func:`pipeline.evaluation.metrics.evaluate_scores`. Each frame is degraded the same way on every run.
    """
    s = Settings(**settings)
    frames = _split_frames(frames_path, s.split, s.benchmark)
    detector, device, extra = _detector(adapter, weights_dir, s.device)
    points = []
    for kind, strengths in corruptions.items():
        for strength in strengths:
            corruption = Corruption(kind, float(strength), seed=s.seed)
            scores = tables.conform(_scores(detector, device, frames, s, transform=corruption), tables.SCORES, "scores")
            metrics = evaluate_scores(scores, video_reduce=s.video_reduce, bootstrap=s.bootstrap, seed=s.seed)
            points.append({"kind": kind, "strength": float(strength),
                           "benchmark": derived_name(s.benchmark, kind, strength), **metrics})
    result = {**s.meta(), **extra, "points": points}
    write_json(out_json, jsonable(result), allow_nan=False)
    return result
