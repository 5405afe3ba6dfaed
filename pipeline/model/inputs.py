"""Model input: preprocessing, training augmentations and WebDataset shard loading.

* :func:`to_uint8` - square crops as the model sees them: RGB, bicubic resize to the model's image
  size (as CLIP's image processor), ``uint8``; the detector normalises them with its backbone's
  mean/std (:meth:`pipeline.model.Detector.normalize`), batched on its device.
* :class:`Augmenter` - the training augmentations of the LNCLIP-DF recipe in PIL (no torchvision):
  horizontal flip, affine, Gaussian blur, brightness/contrast, JPEG; each with its own probability.
* :class:`ShardCrops` + :func:`epoch_order` - training: random access to the crops listed in a
  frames table, read in a seeded permutation of the whole training set each epoch, so every batch is
  a fair sample of it however the shards are ordered or filled on disk.
* :func:`shard_dataset` - evaluation: the crops of some shards streamed in order.
* :func:`make_loader` - either of them batched by a DataLoader.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import random
from functools import partial

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter

from pipeline.core import codec, schema
from pipeline.core.shards import check_shards, index_members


def to_uint8(img: Image.Image, image_size: int) -> torch.Tensor:
    """PIL image -> RGB ``uint8`` tensor ``[3, image_size, image_size]`` (bicubic PIL resize).

    What the loaders ship: a quarter of float32's bytes; :meth:`~pipeline.model.Detector.normalize`
    runs on the device."""
    img = img.convert("RGB")
    if img.size != (image_size, image_size):
        img = img.resize((image_size, image_size), Image.BICUBIC)
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)


# --------------------------------------------------------------------------------------------
# Augmentations

DEFAULT_AUGMENT = schema.defaults("model", "augment")  # the config schema's


def _merge_augment(cfg: dict | None) -> dict:
    merged = copy.deepcopy(DEFAULT_AUGMENT)
    for name, entry in (cfg or {}).items():
        if name not in merged:
            raise ValueError(f"augment: unknown augmentation {name!r} (known: {sorted(merged)})")
        unknown = set(entry) - set(merged[name])
        if unknown:
            raise ValueError(f"augment.{name}: unknown keys {sorted(unknown)}")
        merged[name].update(entry)
    for name, entry in merged.items():
        if not 0.0 <= float(entry["p"]) <= 1.0:
            raise ValueError(f"augment.{name}.p must be in [0, 1], got {entry['p']}")
    return merged


class Augmenter:
    """Training augmentations, applied in the reference order: hflip, affine, blur, color, jpeg.

    ``cfg`` overrides :data:`DEFAULT_AUGMENT` entry by entry (the paper's values; blur with GenD's
    probability 0.1, the others always on except the flip's 0.5). Each augmentation is applied with
    its probability ``p`` (0 disables it). All randomness comes from the ``rng`` passed to
    :meth:`__call__`, so a given rng seed always gives the same image.

    Details (torchvision ``transforms.v2`` semantics re-done in PIL): affine = rotation
    U(-degrees, degrees) about the centre, translation round(U(-t, t) * size) pixels per axis, scale
    U(scale), nearest neighbour, black fill; blur = ``PIL.ImageFilter.GaussianBlur`` with radius
    (= standard deviation) U(sigma) - PIL's kernel is not cut at 3x7 like the reference's; color =
    brightness and contrast factors U(1 - b, 1 + b), U(1 - c, 1 + c), in random order; jpeg = quality
    uniform integer in [lo, hi], encoded and decoded in memory.
    """

    def __init__(self, cfg: dict | None = None):
        self.cfg = _merge_augment(cfg)

    def _fires(self, name: str, rng: random.Random) -> bool:
        p = float(self.cfg[name]["p"])
        return p > 0 and rng.random() < p

    def plan(self, rng: random.Random, w: int, h: int) -> dict:
        """The random choices for one ``w x h`` image, drawn in the reference order; both backends
        (:meth:`__call__` in PIL, :meth:`apply_cv` in OpenCV) apply the same plan."""
        plan: dict = {"hflip": self._fires("hflip", rng)}
        if self._fires("affine", rng):
            c = self.cfg["affine"]
            plan["affine"] = _affine_matrix(w, h, rng.uniform(-c["degrees"], c["degrees"]),
                                            round(rng.uniform(-c["translate"] * w, c["translate"] * w)),
                                            round(rng.uniform(-c["translate"] * h, c["translate"] * h)),
                                            rng.uniform(*c["scale"]))
        if self._fires("blur", rng):
            plan["blur"] = rng.uniform(*self.cfg["blur"]["sigma"])
        if self._fires("color", rng):
            c = self.cfg["color"]
            ops = [("brightness", rng.uniform(1 - c["brightness"], 1 + c["brightness"])),
                   ("contrast", rng.uniform(1 - c["contrast"], 1 + c["contrast"]))]
            rng.shuffle(ops)
            plan["color"] = ops
        if self._fires("jpeg", rng):
            lo, hi = self.cfg["jpeg"]["quality"]
            plan["jpeg"] = rng.randint(int(lo), int(hi))
        return plan

    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        img = img.convert("RGB")
        plan = self.plan(rng, *img.size)
        if plan["hflip"]:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        if "affine" in plan:
            img = img.transform(img.size, Image.AFFINE, plan["affine"], resample=Image.NEAREST, fillcolor=(0, 0, 0))
        if "blur" in plan:
            img = img.filter(ImageFilter.GaussianBlur(radius=plan["blur"]))
        for name, factor in plan.get("color", []):
            enhancer = ImageEnhance.Brightness if name == "brightness" else ImageEnhance.Contrast
            img = enhancer(img).enhance(factor)
        if "jpeg" in plan:
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=plan["jpeg"])
            buf.seek(0)
            img = Image.open(buf)
            img.load()
            img = img.convert("RGB")
        return img

    def apply_cv(self, rgb: np.ndarray, rng: random.Random) -> np.ndarray:
        """The same augmentations in OpenCV on an RGB ``uint8 [H, W, 3]`` array (the training loader's
        path, several times PIL's speed). Same random plan; kernels differ in detail (cv2's Gaussian
        kernel size, nearest-neighbour rounding), so pixels are close to, not equal to, PIL's."""
        import cv2

        h, w = rgb.shape[:2]
        plan = self.plan(rng, w, h)
        if plan["hflip"]:
            rgb = cv2.flip(rgb, 1)
        if "affine" in plan:
            a, b, c, d, e, f = plan["affine"]  # PIL samples at pixel centres; cv2 at pixel corners
            m = np.float32([[a, b, c + 0.5 * (a + b) - 0.5], [d, e, f + 0.5 * (d + e) - 0.5]])
            rgb = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        if "blur" in plan:
            rgb = cv2.GaussianBlur(rgb, (0, 0), sigmaX=plan["blur"])
        for name, factor in plan.get("color", []):
            rgb = cv2.LUT(rgb, _enhance_lut(rgb, name, factor))
        if "jpeg" in plan:  # OpenCV's JPEG codec expects BGR
            ok, enc = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, plan["jpeg"]])
            rgb = cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return rgb


def _affine_matrix(w: int, h: int, angle: float, tx: int, ty: int, scale: float) -> list[float]:
    """PIL's inverse affine (output -> input) of: rotate by ``angle`` about the centre, scale, translate.

    Forward map: x' = C + T + s R(angle) (x - C); PIL wants x = C + R(-angle) (x' - C - T) / s."""
    cx, cy = w * 0.5, h * 0.5
    rad = math.radians(angle)
    cos, sin = math.cos(rad) / scale, math.sin(rad) / scale
    m = [cos, sin, 0.0, -sin, cos, 0.0]
    ox, oy = -cx - tx, -cy - ty
    m[2] = m[0] * ox + m[1] * oy + cx
    m[5] = m[3] * ox + m[4] * oy + cy
    return m


def _enhance_lut(rgb: np.ndarray, name: str, factor: float) -> np.ndarray:
    """PIL's ImageEnhance.Brightness / Contrast as a 256-entry table: blend with black / with the
    image's mean grey level (ITU-R 601 luma, rounded), clipped and truncated as PIL's blend."""
    import cv2

    v = np.arange(256, dtype=np.float32)
    if name == "brightness":
        out = v * factor
    else:
        mean = int(float(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).mean()) + 0.5)
        out = mean + factor * (v - mean)
    return np.clip(out, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Shards


def derive_seed(*parts) -> int:
    """A 63-bit seed from any parts (stable across processes and Python versions)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _in_keys(keys: frozenset, sample: dict) -> bool:
    return sample["__key__"] in keys


def _decode_pil(crop: bytes, *, key: str, image_size: int, augmenter: Augmenter | None, seed: int,
                epoch: int) -> torch.Tensor:
    """Crop bytes -> PIL augmentations (seeded by seed, epoch, key) and resize -> ``uint8 [3, size, size]``
    (evaluation's path, and the reference semantics of the training one)."""
    img = Image.fromarray(codec.decode(crop, key))
    if augmenter is not None:
        img = augmenter(img, random.Random(derive_seed(seed, epoch, key)))
    return to_uint8(img, image_size)


def _decode_train(crop: bytes, *, key: str, image_size: int, augmenter: Augmenter, seed: int,
                   epoch: int) -> torch.Tensor:
    """The training loader's path: QOI (or libspng) decode, :meth:`Augmenter.apply_cv`, bicubic resize
    (OpenCV), RGB ``uint8 [3, size, size]``. Normalisation happens on the device, batched."""
    import cv2

    rgb = augmenter.apply_cv(codec.decode(crop, key), random.Random(derive_seed(seed, epoch, key)))
    if rgb.shape[:2] != (image_size, image_size):
        rgb = cv2.resize(rgb, (image_size, image_size), interpolation=cv2.INTER_CUBIC)
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def _decode(sample: dict, *, image_size: int, augmenter: Augmenter | None, seed: int, epoch: int) -> dict:
    key = sample["__key__"]
    info = json.loads(sample["json"])
    return {
        "pixel_values": _decode_pil(sample["qoi"] if "qoi" in sample else sample["png"], key=key,
                                    image_size=image_size, augmenter=augmenter, seed=seed, epoch=epoch),
        "label": int(info["label"]),
        "key": key,
        "video_id": info["video_id"],
        "shard": sample.get("__url__"),
    }


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order in which one epoch visits ``n`` training crops: a permutation seeded by (seed, epoch)."""
    return np.random.default_rng(derive_seed(seed, epoch, "order")).permutation(n).tolist()


class ShardCrops(torch.utils.data.Dataset):
    """Random access to the crops listed in a FRAMES table (rows with a ``key``), by row number.

    Each process indexes a shard's members (name -> offset, size; checked by
    :func:`pipeline.core.shards.index_members`) the first time it reads from it and keeps the file open,
    so an item costs one positioned read. Labels and video ids come from the table (the manifest
    checked them against the shards). Augmentations are seeded by (seed, epoch, key): a crop gets
    the same pixels whatever the worker count or the order. An item is a
    row number, or ``(epoch, row)`` so that persistent workers need no :meth:`set_epoch` message.
    ``pixel_values`` are ``uint8``: the consumer applies the detector's ``normalize`` on its device. With
    augmentations the OpenCV path (:func:`_decode_train`) runs; without (validation), the PIL path
    that evaluation uses, so validation scores equal evaluation's.
    """

    def __init__(self, frames, *, image_size: int, augment: dict | None, seed: int):
        crops = frames.filter(frames["key"].is_not_null())
        self.shards = crops["shard"].to_list()
        self.keys = crops["key"].to_list()
        self.labels = crops["label"].to_list()
        self.video_ids = crops["video_id"].to_list()
        self.image_size, self.seed, self.epoch = image_size, seed, 0
        self.augmenter = Augmenter(augment) if augment is not None else None
        self._members: dict[str, dict[str, tuple[int, int]]] = {}
        self._files: dict = {}

    def __len__(self) -> int:
        return len(self.keys)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _read(self, shard: str, key: str) -> bytes:
        """The bytes of ``key``'s crop (``<key>.qoi`` or ``<key>.png``) in ``shard``."""
        if shard not in self._members:
            self._members[shard] = index_members(shard)  # checked: names, kinds, not truncated
            self._files[shard] = open(shard, "rb")
        members = self._members[shard]
        name = next((f"{key}.{ext}" for ext in codec.CODECS if f"{key}.{ext}" in members), None)
        if name is None:
            raise FileNotFoundError(f"shard {shard} has no crop for {key!r}: the frames table and the shard "
                                    "disagree; rerun the workflow to rebuild them")
        offset, size = members[name]
        # pread, not seek + read: loader workers forked after this process read share its descriptors
        # (and their file offset); a positioned read does not use that offset.
        return os.pread(self._files[shard].fileno(), size, offset)

    def __getitem__(self, item) -> dict:
        epoch, i = item if isinstance(item, tuple) else (self.epoch, item)
        key, shard = self.keys[i], self.shards[i]
        crop = self._read(shard, key)
        return {
            "pixel_values": (_decode_train if self.augmenter else _decode_pil)(
                crop, key=key, image_size=self.image_size, augmenter=self.augmenter, seed=self.seed, epoch=epoch),
            "label": int(self.labels[i]),
            "key": key,
            "video_id": self.video_ids[i],
            "shard": shard,
        }

    def __getstate__(self):  # worker processes open their own files
        return {**self.__dict__, "_members": {}, "_files": {}}


def shard_dataset(
    tars: list[str],
    keys: set[str] | None,
    *,
    train: bool,
    image_size: int,
    seed: int,
    epoch: int,
    augment: dict | None,
    shuffle_buffer: int = 2000,
    transform=None,
):
    """An iterable over the crops in ``tars``: dicts ``{pixel_values, label, key, video_id, shard}``
    (``pixel_values``: ``uint8 [3, image_size, image_size]``, normalised by the consumer's detector).

    ``keys`` keeps only those sample keys (None keeps all). For ``train`` the shard order and the
    samples (buffer of ``shuffle_buffer``) are shuffled with seeds derived from ``(seed, epoch)``, and
    ``augment`` (an :class:`Augmenter` config; None = no augmentation) is applied with a per-sample
    rng seeded from ``(seed, epoch, key)``, so augmentations do not depend on the worker count.
    Not training: shards and samples in the given order, no augmentation; ``transform`` (a callable
    ``(img, rng)`` like the augmenter, e.g. a ``pipeline.evaluation.robustness.Corruption``) degrades each crop.
    """
    import webdataset as wds

    tars = [str(t) for t in tars]
    check_shards(tars)  # a planted, damaged or truncated shard is refused before any crop is read
    augmenter = Augmenter(augment) if (train and augment is not None) else (None if train else transform)
    ds = wds.WebDataset(
        tars,
        shardshuffle=len(tars) if train else False,
        seed=derive_seed(seed, epoch, "shards"),
        empty_check=False,
    )
    if train:
        ds = ds.shuffle(shuffle_buffer, initial=shuffle_buffer, seed=derive_seed(seed, epoch, "samples"))
    if keys is not None:
        ds = ds.select(partial(_in_keys, frozenset(keys)))
    return ds.map(partial(_decode, image_size=image_size, augmenter=augmenter, seed=seed, epoch=epoch))


def collate(samples: list[dict]) -> dict:
    """Samples -> batch ``{pixel_values [B,3,H,W], labels [B] long, keys, video_ids, shards}``."""
    return {
        "pixel_values": torch.stack([s["pixel_values"] for s in samples]),
        "labels": torch.tensor([s["label"] for s in samples], dtype=torch.long),
        "keys": [s["key"] for s in samples],
        "video_ids": [s["video_id"] for s in samples],
        "shards": [s["shard"] for s in samples],
    }


def make_loader(dataset, batch_size: int, workers: int, drop_last: bool, order=None, persistent: bool = False):
    """A ``torch.utils.data.DataLoader`` batching ``dataset`` with :func:`collate`.

    ``order``: for a :class:`ShardCrops`, the item order or a sampler (batches are then the same
    whatever the worker count). For a streamed :func:`shard_dataset` each worker reads its own shards
    and batches them itself, so with ``drop_last`` each worker may drop its own remainder.
    ``persistent``: keep the worker processes between passes (training: one loader per run).
    """
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=order,
        num_workers=workers,
        collate_fn=collate,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=persistent and workers > 0,
        prefetch_factor=4 if persistent and workers > 0 else None,
        generator=torch.Generator().manual_seed(0),  # iterators never draw from the global RNG
    )
