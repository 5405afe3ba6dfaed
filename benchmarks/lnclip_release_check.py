"""Our p(fake) of the LNCLIP-DF release on the 12 CDFv2 sample frames, beside the maintainer's.

    python benchmarks/lnclip_release_check.py --release weights/model.ckpt \\
        --backbone resources/weights/clip_vit_l14 --frames path/to/deepfake-detection [--published FILE]

* ``--release``: the release's ``model.ckpt`` or ``model.torchscript`` (``yermandy/deepfake-detection``
  on the Hugging Face hub), read as ``kind: released`` reads it (data only), mapped onto our detector;
* ``--backbone``: ``openai/clip-vit-large-patch14`` saved with ``save_pretrained`` (what the workflow
  fetches into ``resources/weights/``);
* ``--frames``: a checkout of github.com/yermandy/deepfake-detection, whose ``datasets/CDFv2/`` holds
  the 12 sample frames (already aligned 256-px crops);
* ``--published``: the maintainer's ``inference.py`` output, lines ``p(real) = ..., p(fake) = ...,
  image: ...``. Without it the numbers below are used: those the maintainer posted in
  https://github.com/yermandy/deepfake-detection/issues/4 (``model.ckpt``, CUDA, bf16-mixed), of
  which the copy we could read ends inside the 11th line: its p(fake) is 1 - p(real), and the 12th
  frame (``Celeb-real/id0_0000/000.png``) has no published number unless you give the file.

Scores each frame as our evaluation scores an aligned crop (:func:`pipeline.evaluation.predict_images`:
bicubic resize to 224 px, CLIP mean/std, fp32 on a CPU, bf16 autocast on CUDA) and prints ours, the
maintainer's and the difference per frame, and the largest difference.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluation.scoring import predict_images  # noqa: E402
from pipeline.model.detector import load_detector, pick_device  # noqa: E402
from pipeline.training.released import convert_released  # noqa: E402

ISSUE = "https://github.com/yermandy/deepfake-detection/issues/4"
# The 12 frames in the order of the authors' inference.py, and the p(fake) posted in ISSUE.
PUBLISHED = {
    "Celeb-synthesis/id0_id1_0000/000.png": 0.1895,
    "Celeb-synthesis/id0_id1_0000/045.png": 0.6334,
    "Celeb-synthesis/id0_id1_0000/030.png": 0.8193,
    "Celeb-synthesis/id0_id1_0000/015.png": 0.8534,
    "YouTube-real/00000/000.png": 0.0690,
    "YouTube-real/00000/014.png": 0.1272,
    "YouTube-real/00000/028.png": 0.3238,
    "YouTube-real/00000/043.png": 0.7461,
    "Celeb-real/id0_0000/045.png": 0.8152,
    "Celeb-real/id0_0000/030.png": 0.9080,
    "Celeb-real/id0_0000/015.png": 1 - 0.1059,  # only p(real) = 0.1059 is legible
    "Celeb-real/id0_0000/000.png": None,  # not in the copy of the issue we read: give --published
}
LINE = re.compile(r"p\(fake\)\s*=\s*([0-9.]+),\s*image:\s*\S*CDFv2/(\S+)")


def read_published(path) -> dict:
    """``frame -> p(fake)`` from the lines inference.py prints."""
    found = {m.group(2): float(m.group(1)) for m in map(LINE.search, Path(path).read_text().splitlines()) if m}
    if not found:
        raise SystemExit(f"{path}: no line like 'p(real) = 0.81, p(fake) = 0.19, image: datasets/CDFv2/...png'")
    return found


def our_scores(release: Path, backbone: Path, paths: list[Path], device) -> list[float]:
    """p(fake) of ``paths`` by the release converted as ``kind: released`` converts it."""
    cfg = {"kind": "released", "backbone": "openai/clip-vit-large-patch14", "checkpoint": str(release),
           "files": [release.name]}
    with tempfile.TemporaryDirectory() as tmp:
        summary = convert_released(release.parent, backbone, cfg, Path(tmp) / "a.safetensors", Path(tmp) / "l.parquet")
        print(f"{release.name}: {summary['release']['layout']}, head {summary['release']['head']}, "
              f"{summary['mapping']['loaded']} tensors mapped, frozen tensors within "
              f"{summary['mapping']['frozen_max_diff']:.3g} of the backbone's")
        detector, _ = load_detector(Path(tmp) / "a.safetensors", backbone, device=device)
    return predict_images(detector, paths, batch_size=12, device=device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--release", type=Path, required=True, help="model.ckpt or model.torchscript")
    ap.add_argument("--backbone", type=Path, required=True, help="openai/clip-vit-large-patch14, saved")
    ap.add_argument("--frames", type=Path, required=True, help="a checkout of yermandy/deepfake-detection")
    ap.add_argument("--published", type=Path, help="the maintainer's inference.py output (default: issue #4)")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    args = ap.parse_args(argv)
    published = {**PUBLISHED, **read_published(args.published)} if args.published else PUBLISHED
    paths = [args.frames / "datasets" / "CDFv2" / f for f in PUBLISHED]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise SystemExit(f"--frames {args.frames}: missing {absent[:2]}; give a checkout of "
                         "github.com/yermandy/deepfake-detection (its datasets/CDFv2 folder)")
    ours = our_scores(args.release, args.backbone, paths, pick_device(args.device))
    print(f"\n{'frame':40s} {'ours':>8s} {'published':>10s} {'diff':>8s}   (published: {args.published or ISSUE})")
    diffs = []
    for frame, p in zip(PUBLISHED, ours):
        ref = published.get(frame)
        diffs += [] if ref is None else [abs(p - ref)]
        print(f"{frame:40s} {p:8.4f} {'-' if ref is None else f'{ref:.4f}':>10s} "
              f"{'-' if ref is None else f'{p - ref:+.4f}':>8s}")
    print(f"\nlargest |difference| over {len(diffs)} frames: {max(diffs):.4f}" if diffs else "\nno published numbers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
