"""Preprocessing, augmentations and shard loading."""

import io
import json
import random

import numpy as np
import pytest
import torch
import webdataset as wds
from PIL import Image

from pipeline.model.inputs import DEFAULT_AUGMENT, Augmenter, make_loader, shard_dataset, to_uint8
from pipeline.model.detector import normalize
from pipeline.core.tables import sample_key

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)

OFF = {name: {"p": 0.0} for name in DEFAULT_AUGMENT}


def noise_image(seed, size=64):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def preprocess(img, size, mean=MEAN, std=STD):
    return normalize(to_uint8(img, size), mean, std)


def test_preprocess_constant_image():
    v = (10, 128, 250)
    x = preprocess(Image.new("RGB", (64, 64), v), 32)
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    for c in range(3):
        expected = (v[c] / 255 - MEAN[c]) / STD[c]
        assert torch.allclose(x[c], torch.full((32, 32), expected), atol=1e-6)
    # Grayscale input is converted to RGB; same-size input is not resampled.
    g = preprocess(Image.new("L", (32, 32), 200), 32)
    assert torch.allclose(g[1], torch.full((32, 32), (200 / 255 - MEAN[1]) / STD[1]), atol=1e-6)


def test_preprocess_resize_is_pil_bicubic():
    img = noise_image(0)
    resized = np.array(img.resize((32, 32), Image.BICUBIC))
    assert torch.equal(to_uint8(img, 32), torch.from_numpy(resized).permute(2, 0, 1))
    ref = resized.astype(np.float64) / 255
    ref = (ref - np.array(MEAN)) / np.array(STD)
    assert np.allclose(preprocess(img, 32).permute(1, 2, 0).numpy(), ref, atol=1e-5)


def test_augmenter_deterministic_and_identity():
    img = noise_image(1)
    aug = Augmenter({"blur": {"p": 1.0}})
    a = np.asarray(aug(img, random.Random(5)))
    b = np.asarray(aug(img, random.Random(5)))
    c = np.asarray(aug(img, random.Random(6)))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (64, 64, 3)
    assert np.array_equal(np.asarray(Augmenter(OFF)(img, random.Random(0))), np.asarray(img))
    flip = Augmenter({**OFF, "hflip": {"p": 1.0}})(img, random.Random(0))
    assert np.array_equal(np.asarray(flip), np.asarray(img)[:, ::-1])


class MaxRng(random.Random):
    """Fires every augmentation and draws the upper end of every range."""

    def random(self):
        return 0.0

    def uniform(self, a, b):
        return b

    def randint(self, a, b):
        return b


def test_affine_geometry():
    img = Image.new("RGB", (8, 8))
    img.putpixel((2, 3), (255, 255, 255))
    ident = Augmenter({**OFF, "affine": {"p": 1.0, "degrees": 0, "translate": 0.0, "scale": [1.0, 1.0]}})
    assert np.array_equal(np.asarray(ident(img, MaxRng())), np.asarray(img))
    shift = Augmenter({**OFF, "affine": {"p": 1.0, "degrees": 0, "translate": 0.25, "scale": [1.0, 1.0]}})
    out = np.asarray(shift(img, MaxRng()))
    ys, xs = np.nonzero(out[..., 0])
    assert (xs.tolist(), ys.tolist()) == ([4], [5])  # moved by +0.25 * 8 = 2 px on each axis
    # Rotation by 90° about the centre maps the image onto itself (nearest, no fill needed).
    rot = Augmenter({**OFF, "affine": {"p": 1.0, "degrees": 90, "translate": 0.0, "scale": [1.0, 1.0]}})
    out = np.asarray(rot(img, MaxRng()))
    assert out.sum() == 3 * 255 and out[..., 0].sum() == 255


def test_color_and_jpeg():
    img = Image.new("RGB", (16, 16), (100, 100, 100))
    bright = Augmenter({**OFF, "color": {"p": 1.0, "brightness": 0.1, "contrast": 0.0}})(img, MaxRng())
    assert np.asarray(bright)[0, 0, 0] == 110
    jpeg = Augmenter({**OFF, "jpeg": {"p": 1.0, "quality": [40, 40]}})(noise_image(2), random.Random(0))
    assert jpeg.mode == "RGB" and not np.array_equal(np.asarray(jpeg), np.asarray(noise_image(2)))


def test_augmenter_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augmenter({"rotate": {"p": 1.0}})
    with pytest.raises(ValueError, match="unknown keys"):
        Augmenter({"blur": {"p": 1.0, "kernel": 7}})


# ---------------------------------------------------------------------------- shards


def write_shards(tmp_path, n_shards=2, per_shard=6):
    tars, keys = [], []
    for s in range(n_shards):
        path = tmp_path / f"train-{s:05d}.tar"
        with wds.TarWriter(str(path)) as sink:
            for i in range(per_shard):
                video_id = f"real/{s:03d}" if i % 2 == 0 else f"DF/{s:03d}_{i:03d}"
                key = sample_key(video_id, i)
                buf = io.BytesIO()
                noise_image(100 * s + i).save(buf, format="PNG")
                info = {
                    "video_id": video_id,
                    "frame_idx": i,
                    "label": i % 2,
                    "method": "real" if i % 2 == 0 else "DF",
                    "split": "train",
                }
                sink.write({"__key__": key, "png": buf.getvalue(), "json": json.dumps(info).encode()})
                keys.append(key)
        tars.append(str(path))
    return tars, keys


def test_shard_dataset_eval_order_filter_and_fields(tmp_path):
    tars, keys = write_shards(tmp_path)
    samples = list(shard_dataset(tars, None, train=False, image_size=32, seed=0, epoch=0, augment=None))
    assert [s["key"] for s in samples] == keys
    assert (
        samples[1]["label"] == 1 and samples[1]["video_id"] == "DF/000_001" and samples[0]["shard"] == tars[0]
    )
    assert samples[0]["pixel_values"].shape == (3, 32, 32) and samples[0]["pixel_values"].dtype == torch.uint8
    assert torch.equal(samples[0]["pixel_values"], to_uint8(noise_image(0), 32))
    keep = {keys[0], keys[7]}
    assert [
        s["key"] for s in shard_dataset(tars, keep, train=False, image_size=32, seed=0, epoch=0, augment=None)
    ] == [keys[0], keys[7]]


def test_shard_dataset_train_shuffle_and_augmentation_reproducible(tmp_path):
    tars, keys = write_shards(tmp_path)

    def run(epoch, workers=0):
        ds = shard_dataset(tars, None, train=True, image_size=32, seed=1, epoch=epoch, augment={})
        loader = make_loader(ds, batch_size=4, workers=workers, drop_last=False)
        out = {}
        order = []
        for batch in loader:
            assert batch["labels"].dtype == torch.long and batch["pixel_values"].shape[1:] == (3, 32, 32)
            for k, x in zip(batch["keys"], batch["pixel_values"]):
                out[k] = x
                order.append(k)
        return order, out

    order0, pix0 = run(0)
    order0b, pix0b = run(0)
    order1, pix1 = run(1)
    assert sorted(order0) == sorted(keys) and order0 != keys
    assert order0 == order0b and all(torch.equal(pix0[k], pix0b[k]) for k in keys)
    assert order1 != order0 and any(not torch.equal(pix0[k], pix1[k]) for k in keys)
    # The augmentation of a sample depends on (seed, epoch, key), not on the worker layout.
    order_w, pix_w = run(0, workers=2)
    assert sorted(order_w) == sorted(keys)
    assert all(torch.equal(pix0[k], pix_w[k]) for k in keys)


def test_make_loader_drop_last(tmp_path):
    tars, keys = write_shards(tmp_path, n_shards=1, per_shard=5)
    ds = shard_dataset(tars, None, train=False, image_size=32, seed=0, epoch=0, augment=None)
    batches = list(make_loader(ds, batch_size=2, workers=0, drop_last=True))
    assert [b["pixel_values"].shape[0] for b in batches] == [2, 2]
    assert batches[0]["keys"] == keys[:2] and batches[0]["labels"].tolist() == [0, 1]
    assert batches[0]["video_ids"] == ["real/000", "DF/000_001"]


# ---------------------------------------------------------------------------- OpenCV training path


def _astronaut(size=128):
    from skimage import data as skdata

    return Image.fromarray(skdata.astronaut()).resize((size, size), Image.BICUBIC)


def test_opencv_augmentations_follow_the_pil_semantics():
    """Same random plan, two backends: each augmentation alone is nearly pixel-equal, and over many
    draws of the full chain the two paths' pixel statistics agree."""
    img = _astronaut()
    rgb = np.asarray(img)
    single = {"hflip": ({"p": 1.0}, 0.0), "affine": ({"p": 1.0}, 6.0), "blur": ({"p": 1.0}, 1.5),
              "color": ({"p": 1.0}, 0.6), "jpeg": ({"p": 1.0}, 1.5)}
    for name, (entry, tol) in single.items():
        aug = Augmenter({**OFF, name: entry})
        for seed in range(3):
            pil = np.asarray(aug(img, random.Random(seed))).astype(float)
            cv = aug.apply_cv(rgb, random.Random(seed)).astype(float)
            assert np.abs(pil - cv).mean() <= tol, (name, seed, np.abs(pil - cv).mean())
    full = Augmenter(None)
    pil = np.stack([np.asarray(full(img, random.Random(s))) for s in range(40)]).astype(float)
    cv = np.stack([full.apply_cv(rgb, random.Random(s)) for s in range(40)]).astype(float)
    assert np.allclose(pil.mean(axis=(0, 1, 2)), cv.mean(axis=(0, 1, 2)), atol=1.0)
    assert np.allclose(pil.std(axis=(0, 1, 2)), cv.std(axis=(0, 1, 2)), atol=1.0)
    assert np.abs(pil - cv).mean() < 4.0  # image by image, not just on average


def test_uint8_batches_normalised_on_the_device_equal_preprocess():
    img = _astronaut(100)
    assert to_uint8(img, 32).dtype == torch.uint8
    batch = torch.stack([to_uint8(img, 32), to_uint8(img.rotate(90), 32)])
    assert torch.equal(normalize(batch, MEAN, STD)[1], preprocess(img.rotate(90), 32))
