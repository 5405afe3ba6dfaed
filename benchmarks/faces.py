"""Face crops per CPU-second: a straight DeepfakeBench-style loop vs our CPU path, same videos, same run.

    python benchmarks/faces.py [--frames 120] [--num-frames 10] [--videos 2] [--core 0]

Videos are generated at 640x360, 1280x720 and 1920x1080 from a real face photograph (scikit-image's
astronaut, the head moving across a textured background, face box about a quarter of the frame
height) and written as MPEG-4. On each resolution, pinned to one CPU core, it runs

* (a) the DeepfakeBench loop: decode every frame sequentially with ``cap.read()``, dlib HOG at
  upsample 1 on the full RGB frame, the largest box, the 68-point predictor, the five points,
  ``skimage`` similarity fit, ``cv2.warpAffine``, PNG encoding;
* (b) ``pipeline.faces.extract_video`` with the default settings (grab instead of decoding to RGB,
  detection passes on a downscaled frame, landmarks at full resolution, QOI crops),

and prints crops per CPU-second of each, their ratio, and the median PSNR of the central face region
between the two crops of the same frame and between our crop and its own re-alignment (both must
stay >= 30 dB). With a CUDA GPU it also prints frames per second of the face_alignment backend
(when its weights are in resources/weights/face_alignment).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from faces_workers import cpu_name  # noqa: E402  (this directory is on sys.path when run as a script)

RESOLUTIONS = ((640, 360), (1280, 720), (1920, 1080))


def make_video(path: Path, w: int, h: int, frames: int, seed: int) -> Path:
    """The astronaut's head (face about h/4) drifting over a textured background."""
    from skimage import data

    from pipeline.core.video import write_video

    head = np.ascontiguousarray(data.astronaut()[20:260, 110:330])  # face box ~90 px of 240
    s = (h / 4) / 90
    head = cv2.resize(head, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    bg = cv2.resize(rng.integers(40, 200, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8), (w, h),
                    interpolation=cv2.INTER_CUBIC)
    hh, hw = head.shape[:2]

    def frame(i):
        f = bg.copy()
        x = int((w - hw) * (0.3 + 0.4 * i / max(1, frames - 1)))
        y = int((h - hh) * (0.5 + 0.1 * np.sin(i / 7)))
        f[y:y + hh, x:x + hw] = head
        return f

    return write_video(path, (frame(i) for i in range(frames)), fps=25)


class DeepfakeBenchLoop:
    """DeepfakeBench's ``preprocess.py`` per video, straight: read every frame, HOG upsample 1."""

    def __init__(self):
        import dlib
        from skimage.transform import SimilarityTransform

        from pipeline.faces import dlib_predictor_path, template_points

        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_predictor_path()))
        self.tf = SimilarityTransform
        self.dst = template_points(256, 1.3)

    def __call__(self, path, indices):
        out = {}
        cap = cv2.VideoCapture(str(path))
        wanted, idx = set(int(i) for i in indices), 0
        while idx <= max(wanted):
            ok, frame = cap.read()
            if not ok:
                break
            if idx in wanted:
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                faces = self.detector(rgb, 1)
                if len(faces):
                    face = max(faces, key=lambda r: r.width() * r.height())
                    shape = self.predictor(rgb, face)
                    src = np.array([[shape.part(i).x, shape.part(i).y] for i in (37, 44, 30, 49, 55)], float)
                    m = self.tf.from_estimate(src, self.dst).params[:2] if hasattr(self.tf, "from_estimate") \
                        else self._estimate(src)
                    crop = cv2.warpAffine(rgb, m, (256, 256))
                    ok, png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                    out[idx] = crop
            idx += 1
        cap.release()
        return out

    def _estimate(self, src):
        t = self.tf()
        t.estimate(src, self.dst)
        return t.params[:2]


def ours(backend, settings):
    from pipeline.core.codec import decode
    from pipeline.faces import extract_video

    def run(path, indices):
        row = {"video_id": Path(path).stem, "path": str(path), "frame_count": int(indices[-1]) + 1}
        items = extract_video(row, backend, settings)
        return {r["frame_idx"]: decode(crop, r["key"]) for r, crop in items if crop is not None}

    return run


def timed(fn, videos, k):
    from pipeline.core.video import probe, sample_indices

    crops, cpu = {}, 0.0
    for path in videos:
        idx = sample_indices(probe(path)["frame_count"], k)
        t0 = time.process_time()
        got = fn(path, idx)
        cpu += time.process_time() - t0
        crops.update({(path, i): c for i, c in got.items()})
    return crops, cpu


def realign_psnr(crops, backend):
    from pipeline.faces import central_region, crop_frame, psnr

    vals = []
    for crop in crops.values():
        r = crop_frame(crop, backend)
        if r.crop is not None:
            vals.append(psnr(central_region(r.crop), central_region(crop)))
    return float(np.median(vals)) if vals else float("nan")


def crop_codecs(crops) -> None:
    """Encode and decode time and size of the lossless crop codecs (the decoded crop is the same)."""
    from pipeline.core.codec import decode, encode

    imgs = list(crops.values())[:20]
    print("codec        encode ms   decode ms   KiB/crop")
    for name, level in (("qoi", 1), *(("png", lv) for lv in (0, 1, 3, 6, 9))):
        t0 = time.process_time()
        blobs = [encode(im, name, level) for im in imgs]
        t1 = time.process_time()
        back = [decode(b, "crop") for b in blobs]
        t2 = time.process_time()
        assert all(np.array_equal(x, im) for x, im in zip(back, imgs))
        label = name if name == "qoi" else f"png {level}"
        print(f"{label:<10} {(t1 - t0) / len(imgs) * 1e3:>11.2f} {(t2 - t1) / len(imgs) * 1e3:>11.2f} "
              f"{np.mean([len(b) for b in blobs]) / 1024:>10.1f}")


def fan_gpu_fps(videos, k):  # pragma: no cover - needs a GPU and the face_alignment weights
    import torch

    if not torch.cuda.is_available():
        return None
    from pipeline.faces import CropSettings, make_backend

    try:
        be = make_backend("face_alignment", device="cuda", weights_dir="resources/weights/face_alignment")
    except FileNotFoundError as exc:
        print(f"face_alignment on GPU: skipped ({exc})")
        return None
    crops, _ = timed(ours(be, CropSettings(num_frames=k)), videos, k)
    t0 = time.perf_counter()
    crops, _ = timed(ours(be, CropSettings(num_frames=k)), videos, k)
    return len(crops) / (time.perf_counter() - t0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120, help="frames per generated video")
    ap.add_argument("--num-frames", type=int, default=10, help="frames sampled per video")
    ap.add_argument("--videos", type=int, default=2, help="videos per resolution")
    ap.add_argument("--core", type=int, default=0, help="the CPU core both variants are pinned to")
    a = ap.parse_args(argv)

    from pipeline.faces import CropSettings, central_region, make_backend, psnr

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.core})
    cv2.setNumThreads(1)
    dfb = DeepfakeBenchLoop()
    backend = make_backend("dlib")
    fast = ours(backend, CropSettings(num_frames=a.num_frames))
    print(f"CPU: {cpu_name()} (one core, #{a.core}); {a.videos} videos x {a.frames} frames per resolution, "
          f"{a.num_frames} sampled")
    print(f"{'resolution':>10} {'DFB crops/CPU-s':>16} {'ours crops/CPU-s':>17} {'ratio':>6} "
          f"{'PSNR vs DFB':>12} {'PSNR re-align':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in RESOLUTIONS:
            videos = [make_video(Path(tmp) / f"{h}p_{i}.mp4", w, h, a.frames, seed=i) for i in range(a.videos)]
            ref, t_ref = timed(dfb, videos, a.num_frames)
            got, t_got = timed(fast, videos, a.num_frames)
            both = sorted(set(ref) & set(got))
            vs = np.median([psnr(central_region(ref[k]), central_region(got[k])) for k in both]) if both else np.nan
            re = realign_psnr(got, backend)
            verdict = "PSNR check passes" if min(vs, re) >= 30 else "PSNR CHECK FAILS"
            print(f"{f'{w}x{h}':>10} {len(ref) / t_ref:>16.2f} {len(got) / t_got:>17.2f} "
                  f"{(len(got) / t_got) / (len(ref) / t_ref):>5.1f}x {vs:>9.1f} dB {re:>11.1f} dB"
                  f"   ({len(ref)} / {len(got)} crops; {verdict})")
            fps = fan_gpu_fps(videos, a.num_frames)
            if fps is not None:
                print(f"{'':>10} face_alignment on {__import__('torch').cuda.get_device_name()}: {fps:.1f} frames/s")
        crop_codecs(got)


if __name__ == "__main__":
    main()
