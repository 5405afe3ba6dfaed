"""pipeline.demo: the offline demo dataset (astronaut reals + self-blended fakes)."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from pipeline.fetch import demo
from pipeline import faces
from pipeline.core import video

COUNTS = {"train": 3, "val": 1, "test": 2}


def _labels(root):
    with open(root / "labels.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_a")
    demo.make_demo_dataset(root, seed=11, counts=COUNTS, frames=10, corrupt=2)
    return root


def test_labels_counts_and_pairs(small):
    rows = _labels(small)
    assert list(rows[0]) == ["video_id", "path", "label", "method", "source_id", "split"]
    broken = [r for r in rows if r["video_id"].startswith("broken_")]
    assert [r["video_id"] for r in broken] == ["broken_000", "broken_001"]
    assert all(r["label"] == "1" and r["method"] == "SBI" and r["split"] == "test" for r in broken)
    good = [r for r in rows if r not in broken]
    for split, n in COUNTS.items():
        for label in ("0", "1"):
            assert sum(r["split"] == split and r["label"] == label for r in good) == n
    by_id = {r["video_id"]: r for r in good}
    assert len(by_id) == len(good)
    for r in good:
        assert (small / r["path"]).is_file() and r["path"] == f"{r['method']}/{r['video_id']}.mp4"
        if r["label"] == "0":
            assert r["method"] == "real" and r["source_id"] == r["video_id"]
        else:
            src = by_id[r["source_id"]]
            assert r["method"] == "SBI" and src["label"] == "0" and src["split"] == r["split"]
            assert r["video_id"].replace("fake_", "real_") == r["source_id"]


def test_videos_readable_and_corrupt_is_not(small):
    info = video.probe(small / "real" / "real_0000.mp4")
    assert info == {"frame_count": 10, "fps": 25.0, "width": 256, "height": 256, "error": None}
    assert video.probe(small / "SBI" / "broken_000.mp4")["error"] is not None


def test_same_seed_same_data(small, tmp_path):
    demo.make_demo_dataset(tmp_path, seed=11, counts=COUNTS, frames=10, corrupt=2)
    assert (tmp_path / "labels.csv").read_bytes() == (small / "labels.csv").read_bytes()
    for vid in ("real_0000", "fake_0004"):
        folder = "real" if vid.startswith("real") else "SBI"
        a = dict(video.read_frames(small / folder / f"{vid}.mp4", [0, 9]))
        b = dict(video.read_frames(tmp_path / folder / f"{vid}.mp4", [0, 9]))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[9], b[9])
        # the mp4v encoder is deterministic here: the files are identical too
        assert (small / folder / f"{vid}.mp4").read_bytes() == (
            tmp_path / folder / f"{vid}.mp4"
        ).read_bytes()
    other = demo.render_pair(12, 0, frames=2)[0][0]
    assert not np.array_equal(other, demo.render_pair(11, 0, frames=2)[0][0])


def test_fake_differs_only_inside_face_region():
    real, fake, masks, lms = demo.render_pair(5, 2, frames=6)
    for r, f, m, lm in zip(real, fake, masks, lms):
        d = np.abs(r.astype(int) - f.astype(int)).max(axis=2)
        assert d[m == 0].max() == 0  # untouched outside the blurred hull
        inside = m > 0.5
        assert inside.sum() > 2000  # a face-sized region
        assert d[inside].mean() > 6  # colour-shifted, re-scaled source blended in
        # the mask is the (soft) convex hull of the landmarks
        hull = np.zeros_like(m, dtype=np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lm).astype(np.int32)), 1)
        assert m[hull == 0].mean() < 0.05 and m[hull == 1].mean() > 0.6


def test_fake_region_in_decoded_videos(small):
    """After mp4v compression the difference is still concentrated in the face region."""
    _, _, masks, _ = demo.render_pair(11, 0, frames=10)
    real = dict(video.read_frames(small / "real" / "real_0000.mp4", range(10)))
    fake = dict(video.read_frames(small / "SBI" / "fake_0000.mp4", range(10)))
    for i in (0, 5, 9):
        d = np.abs(real[i].astype(int) - fake[i].astype(int)).mean(axis=2)
        assert d[masks[i] < 1e-3].mean() < 3.0
        assert d[masks[i] > 0.5].mean() > 6.0


def test_blend_parameters_control_the_fake():
    none = {"color_shift": 0.0, "contrast": 0.0, "scale_jitter": 0.0, "shift": 0.0, "ratio": (1.0, 1.0)}
    real, fake, _, _ = demo.render_pair(3, 1, frames=2, blend=none)
    assert np.abs(real[0].astype(int) - fake[0].astype(int)).max() <= 1  # identity blend
    strong = demo.render_pair(3, 1, frames=2, blend={"color_shift": 0.16})
    weak = demo.render_pair(3, 1, frames=2, blend={"color_shift": 0.02})
    diff = lambda p: np.abs(p[0][0].astype(int) - p[1][0].astype(int)).sum()  # noqa: E731
    assert diff(strong) > diff(weak)
    with pytest.raises(ValueError, match="unknown blend"):
        demo.blend_params(np.random.default_rng(0), {"colour": 1})


def test_downscale_blurs_only_the_blended_face():
    """``downscale``: the source copy loses its fine detail (a face synthesised at low resolution); the
    frame outside the mask is untouched, and the other draws of the fake are unchanged."""
    sharp = demo.render_pair(4, 3, frames=2, blend={"downscale": (1.0, 1.0)})
    soft = demo.render_pair(4, 3, frames=2, blend={"downscale": (0.2, 0.2)})
    real, mask = sharp[0][0], sharp[2][0]
    assert np.array_equal(real, soft[0][0]) and np.array_equal(mask, soft[2][0])

    def detail(img):  # high-frequency energy inside the blended region
        lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)
        return float((lap[mask > 0.8 * mask.max()] ** 2).mean())

    assert detail(soft[1][0]) < 0.6 * detail(sharp[1][0])
    outside = mask < 1e-6
    assert np.array_equal(soft[1][0][outside], sharp[1][0][outside])


def test_styles_differ_and_bad_arguments(tmp_path):
    def roughness(im):
        """RMS of a smoothed 40x40 background corner around its best-fitting plane."""
        b = cv2.GaussianBlur(im[:40, :40].astype(np.float64), (0, 0), 2)
        yy, xx = np.mgrid[0:40, 0:40]
        a = np.c_[np.ones(1600), xx.ravel(), yy.ravel()]
        res = [np.linalg.lstsq(a, b[..., c].ravel(), rcond=None)[1][0] for c in range(3)]
        return float(np.sqrt(np.sum(res) / b.size))

    # gradients are planar up to sensor noise; textures are not (measured means ~2 vs ~21)
    g = np.mean([roughness(demo.render_pair(1, i, frames=1, style="gradient")[0][0]) for i in range(6)])
    t = np.mean([roughness(demo.render_pair(1, i, frames=1, style="texture")[0][0]) for i in range(6)])
    assert t > 8 and t > 3 * g
    with pytest.raises(ValueError, match="style"):
        demo.make_demo_dataset(tmp_path, seed=0, style="plaid")
    with pytest.raises(ValueError, match="splits"):
        demo.make_demo_dataset(tmp_path, seed=0, counts={"dev": 1})


@pytest.mark.parametrize("style", ["gradient", "texture"])
def test_faces_detected_in_demo_frames(small, tmp_path, style):
    root = small
    if style == "texture":  # the shifted benchmark of config/demo.yaml
        root = demo.make_demo_dataset(
            tmp_path,
            seed=2,
            counts={"test": 2},
            frames=10,
            style=style,
            blend={"color_shift": 0.08, "mask_blur": 9},
            corrupt=1,
        )
    backend = faces.make_backend("dlib")
    total = found = 0
    for row in _labels(root):
        if row["video_id"].startswith("broken"):
            continue
        for _, frame in video.read_frames(root / row["path"], video.sample_indices(10, 4)):
            face, n = backend.largest_face(frame)
            total += 1
            found += face is not None
            if face is not None:
                assert n == 1
                width = face.box[2] - face.box[0]
                assert 70 <= width <= 150  # face about 90-120 px in the 256-px frame
    assert total >= 16 and found / total >= 0.9


def test_default_demo_dataset_has_every_video(tmp_path):
    demo.make_demo_dataset(tmp_path, seed=0, corrupt=1)
    assert len(_labels(tmp_path)) == 2 * (12 + 4 + 6) + 1
