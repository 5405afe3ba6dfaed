"""The ``face_alignment`` backend with the package's real detector and landmark code, on weight files
written here in the formats the package loads (random 2D-FAN, S3FD and BlazeFace state dicts, BlazeFace
anchors) and fetched by :func:`fetch_face_weights` from a loopback HTTP server standing in for their
hosts (``faces.weights_mirror``). Nothing is downloaded from the internet.

What is checked, each by a test that fails when the backend gets it wrong:

* boxes are in frame pixels: a frame that is an exact 2x enlargement of a detection-sized image gives
  exactly twice the boxes found on that image;
* landmarks come from the box they are given: the landmark network is replaced by a deterministic
  function of the crop the package cuts around the box (heatmap k: how pure the colour red, green or
  blue is), so landmarks land on the coloured dots of that box's region and nowhere else; the real
  random 2D-FAN's landmarks do not change when pixels far outside the box change, and do when the
  pixels inside it do;
* a batch keeps each frame's faces and landmarks: frames of different content detected together in
  one call get exactly the faces each gets alone, and the landmarks of their own pixels;
* the workflow (slow): the demo runs to its report with ``faces.backend: face_alignment``, its weight
  files fetched by ``download_face_weights`` from the loopback server.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import pickle
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
import yaml
from skimage import data

from pipeline import faces
from pipeline.core import config as pconfig
from pipeline.core import tables, video
from pipeline.faces import fan
from pipeline.fetch.face_weights import fetch_face_weights
from pipeline.workflow import params

GREY = 90


@contextlib.contextmanager
def serving(directory: Path):
    """A loopback HTTP server of ``directory``; yields ``(base URL, list of requested paths)``."""
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # one call per request: count it, print nothing
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fa/", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Path:
    """Every file either detector needs, random, in the package's formats: 2D-FAN, S3FD and BlazeFace as
    the state dicts it loads with ``torch.load(weights_only=True)``, BlazeFace's anchors as ``np.load``s."""
    from face_alignment.detection.blazeface.net_blazeface import BlazeFace
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    root = tmp_path_factory.mktemp("mirror")
    d = root / "fa"
    d.mkdir()
    torch.manual_seed(0)
    fan_name, s3fd_name = fan.weight_urls("sfd")
    _, blaze_name, anchors_name = fan.weight_urls("blazeface")
    torch.save(FAN(4).state_dict(), d / fan_name)
    torch.save(s3fd().state_dict(), d / s3fd_name)
    torch.save(BlazeFace().state_dict(), d / blaze_name)
    np.save(d / anchors_name, np.random.default_rng(0).uniform(0, 1, (896, 4)).astype(np.float32))
    return root


@pytest.fixture(scope="session")
def mirror(served):
    with serving(served) as (base, hits):
        yield base, hits


@pytest.fixture(scope="module")
def torch_home(mirror, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("weights") / "face_alignment"
    fetch_face_weights(dest, "sfd", mirror=mirror[0])
    return dest


@pytest.fixture(scope="module")
def backend(torch_home):
    """Detection at a shorter side of 90 px: the 320x180 frames here are detected at 160x90."""
    return faces.make_backend("face_alignment", weights_dir=str(torch_home), device="cpu", detect_side=90,
                              batch_size=3)


class SpotNet(torch.nn.Module):
    """Stands in for 2D-FAN: heatmap k is how pure the colour ``k % 3`` (red, green, blue) is in each 4-px
    cell of the 256-px crop the package cut around the box, so landmark k lands on the purest dot of that
    colour inside the crop: a deterministic function of the crop's pixels."""

    def forward(self, x):  # (N, 3, 256, 256) RGB in [0, 1]
        pure = torch.stack([x[:, c] - (x.sum(1) - x[:, c]) / 2 for c in range(3)], 1)
        return F.avg_pool2d(pure, 4)[:, [k % 3 for k in range(68)]]  # (N, 68, 64, 64)


@pytest.fixture
def spot_backend(backend, monkeypatch):
    monkeypatch.setattr(backend.fa, "face_alignment_net", SpotNet())
    return backend


RGB = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255)], np.uint8)


def dotted(img: np.ndarray, dots) -> np.ndarray:
    """``img`` with an 8x8 dot of red, green, blue centred at each of the three ``dots`` (x, y)."""
    img = img.copy()
    for (x, y), colour in zip(dots, RGB):
        img[y - 4:y + 4, x - 4:x + 4] = colour
    return img


def head(w: int, h: int) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(data.astronaut()[20:260, 110:330]), (w, h), interpolation=cv2.INTER_AREA)


def textured(h: int, w: int, seed: int) -> np.ndarray:
    """A background of noise: random weights score the cells of a uniform background exactly alike, and
    S3FD's NMS then breaks those ties one way in a batch and another way frame by frame."""
    return np.random.default_rng(seed).integers(60, 120, (h, w, 3)).astype(np.uint8)


def boxes_of(found) -> np.ndarray:
    return np.array([(*f.box, f.score) for f in found]).reshape(-1, 5)


# ------------------------------------------------------------------------------------------- weights


def test_weights_come_from_the_mirror_each_file_once(served, mirror, tmp_path):
    """``fetch_face_weights`` with a mirror: each file requested once by its name under the base URL,
    stored byte for byte with the usual mode, a marker of checksums; present files are not fetched
    again; the BlazeFace files load in the package's own detector."""
    from face_alignment.detection.blazeface.blazeface_detector import BlazeFaceDetector

    base, hits = mirror
    dest, marker = tmp_path / "face_alignment", tmp_path / "face_alignment.done"
    before = len(hits)
    info = fetch_face_weights(dest, "blazeface", marker, mirror=base)
    names = list(fan.weight_urls("blazeface"))
    assert sorted(hits[before:]) == sorted(f"/fa/{n}" for n in names)
    ckpt = fan.checkpoints_dir(dest)
    for n in names:
        assert (ckpt / n).read_bytes() == (served / "fa" / n).read_bytes()
    assert json.loads(marker.read_text())["files"] == info["files"] and set(info["files"]) == set(names)
    mask = os.umask(0)
    os.umask(mask)
    assert {(ckpt / n).stat().st_mode & 0o777 for n in names} == {0o666 & ~mask}  # torch writes 0600
    assert fetch_face_weights(dest, "blazeface", marker, mirror=base) == info and len(hits) == before + 3
    fan.require_weights({"weights_dir": str(dest), "detector": "blazeface"})  # complete: no error
    files = fan.detector_files("blazeface", dest)
    det = BlazeFaceDetector("cpu", **files)
    assert det.face_detector.anchors.shape == (896, 4)


def test_mirror_option_keys_the_download_and_is_checked(repo):
    cfg = pconfig.validate_config(pconfig.load(repo / "config/demo.yaml"))
    assert cfg["faces"]["weights_mirror"] is None
    assert "mirror" not in params.face_weights(cfg)  # the package's URLs: the key as before
    assert fan.weight_urls("sfd", "http://host/m/") == {
        "2DFAN4-11f355bf06.pth.tar": "http://host/m/2DFAN4-11f355bf06.pth.tar",
        "s3fd-619a316812.pth": "http://host/m/s3fd-619a316812.pth"}
    assert fan.weight_urls("blazeface", "http://host/m")["anchors.npy"] == "http://host/m/anchors.npy"
    cfg["faces"]["weights_mirror"] = "http://host/m/"
    assert params.face_weights(cfg)["mirror"] == "http://host/m/"
    raw = pconfig.load(repo / "config/demo.yaml")
    raw["faces"]["weights_mirror"] = "host/m"
    with pytest.raises(pconfig.ConfigError, match="faces.weights_mirror"):
        pconfig.validate_config(raw)


def test_missing_weights_stop_the_job_before_any_work(tmp_path):
    videos = tables.conform(pl.DataFrame([{"video_id": "v", "path": str(tmp_path / "missing.mp4")}]),
                            tables.VIDEOS, "videos")
    tar, pq = tmp_path / "s.tar", tmp_path / "s.parquet"
    with pytest.raises(FileNotFoundError) as err:
        faces.extract_chunk(videos, tar, pq, backend="face_alignment",
                            backend_options={"weights_dir": str(tmp_path / "w")})
    msg = str(err.value)
    ckpt = tmp_path / "w" / "hub" / "checkpoints"
    for name in ("2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth"):
        assert f"{ckpt / name}  <- https://www.adrianbulat.com/downloads/python-fan/{name}" in msg
    assert "never download" in msg
    assert not tar.exists() and not pq.exists() and not (tmp_path / "s.tar.tmp").exists()
    with pytest.raises(FileNotFoundError, match="blazeface.pth"):
        fan.require_weights({"weights_dir": str(tmp_path / "w"), "detector": "blazeface"})


class _Payload:
    """A pickle that runs code when loaded with ``weights_only=False``."""

    def __init__(self, flag):
        self.flag = str(flag)

    def __reduce__(self):
        return (open, (self.flag, "w"))


@pytest.mark.parametrize("bad", ["2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth"])
def test_third_party_weights_are_never_unpickled(torch_home, tmp_path, bad):
    """face-alignment's detector unpickles a weight file it fetches by URL (``weights_only=False``);
    the backend hands it the files by path instead, so every .pth goes through
    ``torch.load(weights_only=True)`` and a file carrying code is refused without running it."""
    root = tmp_path / "torch_home"
    shutil.copytree(torch_home, root)
    flag = tmp_path / "code-ran"
    torch.save({"weight": _Payload(flag)}, fan.checkpoints_dir(root) / bad)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        faces.make_backend("face_alignment", weights_dir=str(root), device="cpu")
    assert not flag.exists()
    assert fan.detector_files("blazeface", root) == {
        "path_to_detector": str(fan.checkpoints_dir(root).resolve() / "blazeface.pth"),
        "path_to_anchor": str(fan.checkpoints_dir(root).resolve() / "anchors.npy")}


# ------------------------------------------------------------------------------------------- detection


def test_boxes_are_mapped_back_to_frame_pixels(backend, monkeypatch):
    """A 320x180 frame that is a 160x90 image enlarged 2x (each pixel repeated) is detected at 160x90,
    where INTER_AREA gives back exactly the small image: its boxes must be exactly twice those the
    real S3FD finds on the small image itself, one frame or a batch."""
    small = [textured(90, 160, seed) for seed in (1, 2)]
    small[0][15:75, 20:75] = head(55, 60)
    small[1][20:80, 90:145] = head(55, 60)[:, ::-1]
    big = [np.repeat(np.repeat(s, 2, axis=0), 2, axis=1) for s in small]
    at_small = []
    with monkeypatch.context() as m:
        m.setattr(backend, "detect_side", None)  # detection on the image as given
        for s in small:
            at_small.append(boxes_of(backend.detect(s)))
    scale = np.array([2, 2, 2, 2, 1.0])  # boxes x2, scores the same
    for found, ref in zip([backend.detect(b) for b in big], at_small):
        assert len(ref) > 0
        np.testing.assert_allclose(boxes_of(found), ref * scale, rtol=0, atol=1e-6)
    for found, ref in zip(backend.detect_batch(big), at_small):
        np.testing.assert_allclose(boxes_of(found), ref * scale, rtol=0, atol=1e-4)


# ------------------------------------------------------------------------------------------- landmarks

# two face regions of a 320x180 frame, each with its own red, green and blue dot (x, y)
BOX_A, DOTS_A = (30.0, 50.0, 90.0, 110.0), [(45, 62), (78, 70), (58, 100)]
BOX_B, DOTS_B = (220.0, 60.0, 280.0, 120.0), [(270, 110), (232, 75), (255, 68)]


def two_faces() -> np.ndarray:
    img = np.full((180, 320, 3), GREY, np.uint8)
    img[50:110, 30:90] = head(60, 60)
    img[60:120, 220:280] = cv2.resize(np.ascontiguousarray(data.chelsea()), (60, 60), interpolation=cv2.INTER_AREA)
    return dotted(dotted(img, DOTS_A), DOTS_B)


def expected_points(dots) -> np.ndarray:
    return np.array([dots[k % 3] for k in range(68)], np.float64)


def test_landmarks_come_from_the_box_they_are_given(spot_backend):
    """Each box's landmarks are on its own region's dots (within the 4-px heatmap cell, 1.9 frame px
    here), however far the other face's dots are: a wrong box, an unscaled one or a box the landmark
    call ignores lands elsewhere."""
    frame = two_faces()
    for box, dots in [(BOX_A, DOTS_A), (BOX_B, DOTS_B)]:
        lm = spot_backend.landmarks(frame, faces.Face(box, 0.9))
        assert lm.shape == (68, 2)
        err = np.abs(lm - expected_points(dots)).max()
        assert err <= 3.0, (box, err, lm[:3])


def test_real_fan_reads_only_the_crop_around_its_box(backend):
    """The package's 2D-FAN (random weights loaded from the fetched file): 68 finite points; they do
    not move when pixels outside the crop around the box change (the other face, removed), and do when
    the pixels inside the box change (its face mirrored)."""
    frame = two_faces()
    lm = backend.landmarks(frame, faces.Face(BOX_A, 0.9))
    assert lm.shape == (68, 2) and np.isfinite(lm).all()
    other_gone = frame.copy()
    other_gone[:, 160:] = GREY
    np.testing.assert_array_equal(backend.landmarks(other_gone, faces.Face(BOX_A, 0.9)), lm)
    mirrored = frame.copy()
    mirrored[50:110, 30:90] = mirrored[50:110, 30:90][:, ::-1]
    assert np.abs(backend.landmarks(mirrored, faces.Face(BOX_A, 0.9)) - lm).max() > 4


# ------------------------------------------------------------------------------------------- batches


@pytest.fixture(scope="module")
def mixed_video(tmp_path_factory):
    """Five 320x180 frames of different content: the face in another place, coloured dots scattered."""
    rng = np.random.default_rng(3)
    frames = []
    for i in range(5):
        img = textured(180, 320, 10 + i)
        x, y = 15 + 50 * i, 30 + 12 * (i % 3)
        img[y:y + 100, x:x + 90] = head(90, 100)
        for _ in range(6):
            img = dotted(img, [(int(rng.integers(8, 312)), int(rng.integers(8, 172))) for _ in range(3)])
        frames.append(img)
    path = video.write_video(tmp_path_factory.mktemp("mixed") / "mixed.mp4", frames)
    return {"dataset": "mix", "video_id": "mixed", "path": str(path), "frame_count": len(frames)}


def test_a_batch_keeps_each_frame_its_faces_and_landmarks(spot_backend, mixed_video):
    """The video's frames go through the detector three at a time (``batch_size=3``); every frame's
    record holds one of the faces that frame alone gives, their count, and the landmarks of that
    frame's own pixels inside that face's box."""
    decoded = dict(video.read_frames(mixed_video["path"], range(5)))
    recs = faces.extract_video(mixed_video, spot_backend, faces.CropSettings(num_frames=5))
    assert [r["frame_idx"] for r, _ in recs] == list(range(5))
    alone = {i: boxes_of(spot_backend.detect(f)) for i, f in decoded.items()}
    for rec, crop in recs:
        i, own = rec["frame_idx"], alone[rec["frame_idx"]]
        assert rec["status"] == "ok" and crop is not None, rec
        got = np.array([rec["box_x0"], rec["box_y0"], rec["box_x1"], rec["box_y1"], rec["det_score"]])
        near = {j: np.abs(b - got).max(axis=1).min() for j, b in alone.items()}
        assert near[i] < 1e-4 and min(near[j] for j in near if j != i) > 1e-3, (i, near)  # its own, no other's
        np.testing.assert_allclose(got, own[np.argmax((own[:, 2] - own[:, 0]) * (own[:, 3] - own[:, 1]))],
                                   atol=1e-4)  # the largest
        assert rec["n_faces"] == len(own)
        lm = spot_backend.landmarks(decoded[i], faces.Face(tuple(got[:4]), got[4]))
        np.testing.assert_allclose(rec["points5"], faces.align_points(lm), atol=1e-9)


# ------------------------------------------------------------------------------------------- workflow


@pytest.mark.slow
def test_demo_runs_to_its_report_with_face_alignment(repo, served, mirror, tmp_path):
    """The demo, shrunk (8 videos, 2 frames each, one model), with ``faces.backend: face_alignment``: the
    ``download_face_weights`` job fetches the random weight files from the loopback mirror, the faces
    jobs crop with them, the run reaches its report. Random weights find boxes anywhere (their crops
    are noise, the AUROC means nothing); what is checked is that the backend ran and every frame has
    its record."""
    import hashlib

    from test_workflow import copy_workflow, snakemake

    base, hits = mirror
    (tmp_path / "w").mkdir()
    work = copy_workflow(repo, tmp_path / "w")
    cfg = pconfig.load(work / "config/demo.yaml")
    cfg["results"] = "results/fa"
    cfg["datasets"]["demo"]["source"]["demo"].update(counts={"train": 2, "val": 1, "test": 1}, frames=8)
    cfg["datasets"].pop("demo_shift")
    cfg["faces"].update(backend="face_alignment", weights_mirror=base, num_frames=2, chunk_size=8, threads=1,
                        backend_options={"device": "cpu", "batch_size": 3, "detect_side": 128})
    cfg["training"]["optim"].update(epochs=2, cycle_epochs=2)
    cfg["models"] = {"lnclip_df": {}}
    cfg["benchmarks"] = {"demo": {"dataset": "demo", "split": "test"}}
    cfg["robustness"] = {}
    cfg["evaluate"]["bootstrap"] = 20
    (work / "config/fa.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = len(hits)
    snakemake(work, "--configfile", "config/fa.yaml", "--cores", "2", "results/fa/report.html", timeout=1200)

    names = list(fan.weight_urls("sfd"))
    assert sorted(hits[before:]) == sorted(f"/fa/{n}" for n in names)  # each file fetched once, from the mirror
    marker = json.loads((work / "resources/weights/face_alignment.done").read_text())
    assert marker["files"] == {n: hashlib.sha256((served / "fa" / n).read_bytes()).hexdigest() for n in names}
    frames = pl.read_parquet(work / "results/fa/demo/frames.parquet")
    videos = pl.read_parquet(work / "results/fa/demo/videos.parquet")
    assert videos.height == 8 and frames.height == 16 and frames["frame_idx"].null_count() == 0
    # random S3FD scores boxes everywhere: every frame has a face, and random 2D-FAN points a crop
    assert dict(frames["status"].value_counts().iter_rows()) == {"ok": 16}
    assert len(list((work / "results/fa/demo/shards").glob("*.tar"))) == 3  # train, val, test
    records = [json.loads(p.read_text()) for p in (work / "results/fa/logs/faces").rglob("*.modules.json")]
    assert records and all("pipeline.faces.fan" in r["modules"] and "pipeline.faces.dlib_hog" not in r["modules"]
                           for r in records)
    metrics = json.loads((work / "results/fa/eval/lnclip_df/demo/metrics.json").read_text())
    assert (metrics["counts"]["videos"], metrics["counts"]["frames"]) == (2, 4), metrics["counts"]
    assert "face_alignment" in (work / "results/fa/report.html").read_text()
