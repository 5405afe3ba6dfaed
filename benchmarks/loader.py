"""Training images per second per CPU core: our input path vs the reference's PNG folder + PIL.

    python benchmarks/loader.py [--quick] [--crops 512] [--workers 2] [--codec qoi|png] [--size 256]

Both read the same 256x256 face crops, pixel for pixel (cut from scikit-image's astronaut photograph
with random shifts), and apply the same training augmentations (flip, affine, blur,
brightness/contrast, JPEG) to model inputs of 224:

* reference: a folder of PNG files (zlib level 1, as DeepfakeBench's ``cv2.imwrite`` writes them)
  read by a PyTorch Dataset with PIL (decode, PIL augmentations, PIL bicubic resize, float
  conversion and CLIP normalisation per image on the CPU);
* ours: the training loader on a shard as the faces stage writes it (lossless QOI crops, the
  default ``faces.codec``; ``--codec png`` for PNG level 1 crops), read by offset, OpenCV
  augmentations and resize, uint8 batches. Normalisation is the GPU's job, batched: it is not in
  the loader's time; its cost on this CPU is printed for one batch.

Each runs through a DataLoader with ``--workers`` persistent worker processes over the same crops,
one warm-up pass then the timed passes; the figure is images per CPU-second (CPU time of the main
process and of the worker processes), i.e. images/s per fully used core, which stays meaningful
on a shared machine where wall time does not. The last line is
``ours_per_core=<images/s> reference_per_core=<images/s> ratio=<x>``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from faces_workers import cpu_name  # noqa: E402

from pipeline.core.codec import CODECS, encode  # noqa: E402
from pipeline.model.inputs import Augmenter, ShardCrops, to_uint8  # noqa: E402
from pipeline.model.detector import CLIP_MEAN, CLIP_STD, normalize  # noqa: E402
from pipeline.training.loader import train_loader  # noqa: E402


def make_crops(root: Path, n: int, size: int, crop_codec: str) -> tuple[Path, Path]:
    """``n`` crops written twice: as a folder of PNG files and as one shard (``crop_codec``) + frames table."""
    import webdataset as wds
    from skimage import data as skdata

    photo = np.asarray(Image.fromarray(skdata.astronaut()).resize((400, 400), Image.BICUBIC))
    rng = np.random.default_rng(0)
    folder = root / "pngs"
    folder.mkdir()
    shard = root / "crops-00000.tar"
    rows = []
    with wds.TarWriter(str(shard)) as sink:
        for i in range(n):
            y, x = rng.integers(0, 400 - size, size=2)
            buf = io.BytesIO()
            Image.fromarray(photo[y:y + size, x:x + size]).save(buf, format="PNG", compress_level=1)
            key = f"v{i // 8:04d}_{i % 8:03d}"
            (folder / f"{key}.png").write_bytes(buf.getvalue())
            stored = encode(photo[y:y + size, x:x + size], crop_codec)
            sink.write({"__key__": key, crop_codec: stored, "json": json.dumps({"label": i % 2}).encode()})
            rows.append({"shard": str(shard), "key": key, "label": i % 2, "video_id": f"v{i // 8:04d}"})
    table = root / "frames.parquet"
    pl.DataFrame(rows).write_parquet(table)
    return folder, table


class PngFolder(torch.utils.data.Dataset):
    """The reference's way: one PNG file per crop, PIL all the way, a normalised float tensor out."""

    def __init__(self, folder: Path, image_size: int, epoch: int = 0):
        self.files = sorted(folder.glob("*.png"))
        self.augmenter, self.image_size, self.epoch = Augmenter(None), image_size, epoch

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        import random

        img = Image.open(self.files[i]).convert("RGB")
        img = self.augmenter(img, random.Random(i + 1000 * self.epoch))
        return normalize(to_uint8(img, self.image_size), CLIP_MEAN, CLIP_STD), i % 2


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the joined loader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def per_cpu_second(make_loader, passes: int) -> float:
    """Images per CPU-second over one warm-up and ``passes`` timed passes, workers' time included
    (the loader is shut down before the clock is read, so its workers' CPU time is counted)."""
    t0, n = _cpu_seconds(), 0
    loader = make_loader()
    for _ in range(passes + 1):
        for batch in loader:
            n += len(batch[1] if isinstance(batch, (list, tuple)) else batch["labels"])
    del loader
    gc.collect()
    return n / (_cpu_seconds() - t0)


def _ms_per_crop(get, n: int) -> float:
    """CPU milliseconds per crop of one item getter called in this process (no loader around it)."""
    get(0)
    t0 = time.process_time()
    for i in range(n):
        get(i)
    return (time.process_time() - t0) / n * 1e3


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 crops, two timed passes (under a minute on 2 cores)")
    ap.add_argument("--crops", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--codec", choices=CODECS, default=CODECS[0], help="crop codec of our shard")
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args(argv)
    if a.quick:
        a.crops, a.passes = 256, 2
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder, table = make_crops(Path(tmp), a.crops, a.size, a.codec)
        common = dict(batch_size=a.batch, num_workers=a.workers, persistent_workers=a.workers > 0)
        reference = per_cpu_second(
            lambda: torch.utils.data.DataLoader(PngFolder(folder, a.image_size), shuffle=True, **common), a.passes)
        dataset = ShardCrops(pl.read_parquet(table), image_size=a.image_size, augment={}, seed=0)
        order = np.random.default_rng(0).permutation(len(dataset)).tolist()

        def ours_loader():
            loader, sampler = train_loader(dataset, a.batch, a.workers)
            sampler.set(0, order, 0, len(order) // a.batch * a.batch)
            return loader

        ours = per_cpu_second(ours_loader, a.passes)
        single = {name: _ms_per_crop(get, len(dataset)) for name, get in
                  (("reference", PngFolder(folder, a.image_size).__getitem__), ("ours", dataset.__getitem__))}
        batch = next(iter(ours_loader()))["pixel_values"]
        t0 = time.perf_counter()
        normalize(batch, CLIP_MEAN, CLIP_STD)
        norm_ms = (time.perf_counter() - t0) * 1e3
    print(f"device: {cpu_name()} ({a.workers} loader workers, {os.cpu_count()} CPUs visible), "
          f"{a.crops} crops {a.size}px -> {a.image_size}px, batch {a.batch}")
    print(f"reference (PNG folder + PIL): {reference:.1f} images/s per core")
    print(f"ours (shard of {a.codec.upper()} crops + OpenCV, uint8): {ours:.1f} images/s per core "
          f"(+ {norm_ms:.1f} ms per batch of {a.batch} for the normalisation on the device, here the CPU)")
    print(f"in one process, no loader: reference {single['reference']:.2f} ms/crop, ours {single['ours']:.2f} ms/crop "
          f"({single['reference'] / single['ours']:.2f}x)")
    print(f"ours_per_core={ours:.1f} reference_per_core={reference:.1f} ratio={ours / reference:.2f}")


if __name__ == "__main__":
    main()
