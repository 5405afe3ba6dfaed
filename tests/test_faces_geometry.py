"""Both backends' code paths on synthetic videos of known geometry, and the face_alignment backend's
weights: random weights in the package's own file format, pre-seeded in its TORCH_HOME."""

from __future__ import annotations


import cv2
import numpy as np
import polars as pl
import pytest
import torch
from skimage import data

from pipeline.core import codec, tables, video
from pipeline import faces
from pipeline.faces import fan

# (scale, degrees, centre x, centre y) of the reference crop in each 640x360 frame
POSES = [(1.0, 0.0, 320, 180), (1.3, 8.0, 250, 170), (0.9, -10.0, 400, 190), (1.5, 4.0, 330, 175),
         (1.15, -5.0, 200, 200), (1.25, 10.0, 440, 180)]


@pytest.fixture(scope="module")
def reference():
    """A DeepfakeBench crop of the astronaut, its 68 landmarks (dlib), and where its 5 points land."""
    dlib = faces.make_backend("dlib", upsample=1)
    face, _ = dlib.largest_face(np.ascontiguousarray(data.astronaut()))
    crop = faces.align_crop(data.astronaut(), face.landmarks)
    again, _ = dlib.largest_face(crop)
    p5 = faces.align_points(again.landmarks)
    return crop, again.landmarks, faces.transform_points(faces.alignment_matrix(p5), p5)


def pose_matrix(scale, degrees, cx, cy):
    m = cv2.getRotationMatrix2D((128, 128), degrees, scale)
    m[:, 2] += (cx - 128, cy - 128)
    return m


@pytest.fixture(scope="module")
def known_video(reference, tmp_path_factory):
    crop = reference[0]
    frames = [cv2.warpAffine(crop, pose_matrix(*p), (640, 360), borderValue=(90, 90, 90)) for p in POSES]
    path = video.write_video(tmp_path_factory.mktemp("geo") / "known.mp4", frames)
    return {"dataset": "geo", "video_id": "known", "path": str(path), "frame_count": len(POSES)}


def landed(records):
    """Where each stored crop's 5 points land in the crop (the fit applied to its points)."""
    out = {}
    for rec, png in records:
        assert rec["status"] == "ok", rec
        p5 = np.array(rec["points5"])
        out[rec["frame_idx"]] = faces.transform_points(faces.alignment_matrix(p5), p5)
    return out


def test_dlib_points_land_on_the_template_positions(reference, known_video):
    target = reference[2]
    recs = faces.extract_video(known_video, faces.make_backend("dlib"), faces.CropSettings(num_frames=len(POSES)))
    got = landed(recs)
    assert sorted(got) == list(range(len(POSES)))
    err = np.array([np.linalg.norm(p - target, axis=1).max() for p in got.values()])
    assert err.max() < 2.0, err


# ---------------------------------------------------------------------------- face_alignment


@pytest.fixture(scope="module")
def fan_weights(tmp_path_factory):
    """Random 2D-FAN and S3FD weights saved as the state dicts face-alignment loads (not downloaded)."""
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    root = tmp_path_factory.mktemp("torch_home")
    ckpt = fan.checkpoints_dir(root)
    ckpt.mkdir(parents=True)
    torch.manual_seed(0)
    names = list(fan.weight_urls("sfd"))
    torch.save(FAN(4).state_dict(), ckpt / names[0])
    torch.save(s3fd().state_dict(), ckpt / names[1])
    return root


@pytest.fixture(scope="module")
def fan_backend(fan_weights):
    return faces.make_backend("face_alignment", weights_dir=str(fan_weights), device="cpu", detect_side=180,
                              batch_size=3)


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


def test_face_alignment_real_code_path(fan_backend, known_video):
    """The package's S3FD and FAN run for real on the random weights (their output is noise, its
    form is not): boxes map back to frame pixels, batch and single detection agree, 68 points."""
    frames = [f for _, f in video.read_frames(known_video["path"], [0, 1, 2])]
    single = [fan_backend.detect(f) for f in frames]
    batch = fan_backend.detect_batch(frames)
    assert fan_backend.batch_size == 3 and len(batch) == 3
    for s, b in zip(single, batch):
        boxes, other = np.array([f.box for f in s]), np.array([f.box for f in b])
        assert len(boxes) > 0 and abs(len(boxes) - len(other)) <= 0.1 * len(boxes)
        # random weights give hundreds of near-equal scores: float noise between the batched and the
        # single call reorders NMS ties, so only most boxes (measured 55-100 %) agree exactly
        nearest = np.abs(boxes[:, None, :] - other[None, :, :]).max(axis=2).min(axis=1)
        assert (nearest < 0.01).mean() > 0.4
        # detection ran at 180 px for 360 px frames: boxes are in full-frame pixels again
        assert boxes[:, 2].max() > 180 or boxes[:, 3].max() > 90
        assert all(f.score >= 0.5 for f in s)
    lm = fan_backend.landmarks(frames[0], faces.Face((250.0, 110.0, 390.0, 250.0), 1.0))
    assert lm.shape == (68, 2) and np.isfinite(lm).all()
    res = faces.crop_frame(frames[0], fan_backend)
    assert res.status == "ok" and res.crop.shape == (256, 256, 3)


def test_face_alignment_points_land_on_the_template_positions(fan_backend, known_video, reference, monkeypatch):
    """Geometry through the face_alignment backend: FAN's output replaced by the known landmarks of
    each frame (the random network cannot find them); detection, face choice, our wrapper of
    ``get_landmarks_from_image``, the fit and the warp run for real."""
    _, lm_ref, target = reference
    truth = {i: faces.transform_points(pose_matrix(*p), lm_ref) for i, p in enumerate(POSES)}
    calls = []

    def known_landmarks(image, detected_faces=None, **kw):
        calls.append(detected_faces)
        # which frame: the pose whose face centre is nearest the frame's content centre of mass
        i = min(truth, key=lambda k: np.abs(image.astype(float) - frames[k]).mean())
        return [np.hstack([truth[i], np.zeros((68, 1))])]  # 3 columns, as some FAN modes return

    frames = {i: f.astype(float) for i, f in video.read_frames(known_video["path"], range(len(POSES)))}
    monkeypatch.setattr(fan_backend.fa, "get_landmarks_from_image", known_landmarks)
    recs = faces.extract_video(known_video, fan_backend, faces.CropSettings(num_frames=len(POSES)))
    got = landed(recs)
    assert len(calls) == len(POSES) and all(c.shape == (1, 5) for c in calls)
    err = np.array([np.linalg.norm(got[i] - target, axis=1).max() for i in got])
    assert err.max() < 2.0, err
    crop = codec.decode(recs[0][1], "crop")
    assert faces.psnr(faces.central_region(crop), faces.central_region(reference[0])) > 25


def test_fetch_face_weights_downloads_each_file_once(tmp_path, monkeypatch):
    """The download rule's function against a loopback HTTP server standing in for the weight hosts."""
    import functools
    import http.server
    import json
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "a.pth").write_bytes(b"A" * 1000)
    (served / "b.npy").write_bytes(b"B" * 10)
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        from pipeline.fetch import face_weights

        monkeypatch.setattr(face_weights, "weight_urls", lambda detector="sfd": {"a.pth": f"{base}/a.pth",
                                                                       "b.npy": f"{base}/b.npy?raw=true"})
        dest, marker = tmp_path / "weights" / "face_alignment", tmp_path / "weights" / "face_alignment.done"
        monkeypatch.setattr(fan, "weight_urls", face_weights.weight_urls)
        info = face_weights.fetch_face_weights(dest, "sfd", marker)
        ckpt = fan.checkpoints_dir(dest)
        assert (ckpt / "a.pth").read_bytes() == b"A" * 1000 and (ckpt / "b.npy").read_bytes() == b"B" * 10
        assert json.loads(marker.read_text())["files"] == info["files"] and set(info["files"]) == {"a.pth", "b.npy"}
        import os

        mask = os.umask(0)
        os.umask(mask)
        assert {(ckpt / n).stat().st_mode & 0o777 for n in info["files"]} == {0o666 & ~mask}  # torch writes 0600
        n = len(hits)
        face_weights.fetch_face_weights(dest, "sfd", marker)  # present files are not fetched again
        assert len(hits) == n == 2
        fan.require_weights({"weights_dir": str(dest)})  # complete: no error
    finally:
        server.shutdown()


class _Payload:
    """A pickle that runs code when loaded with ``weights_only=False``."""

    def __init__(self, flag):
        self.flag = str(flag)

    def __reduce__(self):
        return (open, (self.flag, "w"))


@pytest.mark.parametrize("bad", ["2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth"])
def test_third_party_weights_are_never_unpickled(fan_weights, tmp_path, bad):
    """face-alignment's detector unpickles a weight file it fetches by URL (``weights_only=False``);
    the backend hands it the files by path instead, so every .pth goes through
    ``torch.load(weights_only=True)`` and a file carrying code is refused without running it."""
    import pickle
    import shutil

    root = tmp_path / "torch_home"
    shutil.copytree(fan_weights, root)
    flag = tmp_path / "code-ran"
    torch.save({"weight": _Payload(flag)}, fan.checkpoints_dir(root) / bad)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        faces.make_backend("face_alignment", weights_dir=str(root), device="cpu")
    assert not flag.exists()
    assert fan.detector_files("blazeface", root) == {
        "path_to_detector": str(fan.checkpoints_dir(root).resolve() / "blazeface.pth"),
        "path_to_anchor": str(fan.checkpoints_dir(root).resolve() / "anchors.npy")}
