"""The faces job on messy video: every bad case ends with its status in the table, none stops the job."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import polars as pl
import pytest
from skimage import data

from pipeline import faces
from pipeline.core import tables, video
from pipeline.faces import extract

# The astronaut's head (face box (175,76)-(265,166) in the 512-px photograph) on its own.
HEAD = np.ascontiguousarray(data.astronaut()[20:260, 110:330])  # 240 x 220
# a frame with one of these colours in its top-left corner triggers an injected failure
MARKS = {"detector": (0, 255, 0), "warp": (255, 0, 255)}


def scene(w, h, heads=((0.5, 0.5, 1.0),), bg=70, mark=None):
    """A ``h`` x ``w`` frame with astronaut heads centred at (fx*w, fy*h), scaled by ``s``."""
    frame = np.full((h, w, 3), bg, np.uint8)
    for fx, fy, s in heads:
        head = cv2.resize(HEAD, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        hh, hw = head.shape[:2]
        x0, y0 = int(fx * w - hw / 2), int(fy * h - hh / 2)
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(w, x0 + hw), min(h, y0 + hh)
        frame[fy0:fy1, fx0:fx1] = head[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    if mark:
        frame[:24, :24] = MARKS[mark]
    return frame


def marked(frame, what) -> bool:
    return bool(np.abs(frame[4:20, 4:20].astype(int) - MARKS[what]).mean() < 40)


def set_display_rotation(path, degrees: int = 90) -> None:
    """Write a display matrix rotating by ``degrees`` into the first ``tkhd`` box of an MP4."""
    b = bytearray(path.read_bytes())
    i = b.find(b"tkhd")
    assert i > 0 and b[i + 4] == 0, "expected a version-0 tkhd box"
    off = i + 4 + 4 + 4 * 5 + 8 + 8  # version/flags, times, track id, duration, reserved, layer..volume
    c, s = {90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    b[off:off + 36] = struct.pack(">9i", c << 16, s << 16, 0, -s << 16, c << 16, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(b))


def write_avi(path, frames):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, frames[0].shape[1::-1])
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    return path


def row(vid, path, **over):
    info = video.probe(path)
    r = {"dataset": "messy", "video_id": vid, "path": str(path), "label": 0, "method": "real", "source_id": vid,
         "split": "test", "frame_count": info["frame_count"], "fps": info["fps"], "width": info["width"],
         "height": info["height"], "error": info["error"], "chunk": 0}
    r.update(over)
    return r


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    d = tmp_path_factory.mktemp("messy")
    wv = video.write_video
    good = [scene(640, 360, ((0.5 + 0.01 * i, 0.5, 1.0),)) for i in range(6)]
    rows = [
        row("header_wrong", wv(d / "a.mp4", good), frame_count=12),  # the header promises 12 of 6
        row("header_zero", wv(d / "b.mp4", good), frame_count=0),
        row("header_missing", wv(d / "c.mp4", good), frame_count=None),
        row("portrait", wv(d / "portrait.mp4", [scene(360, 640, ((0.5, 0.45, 1.0),))] * 4)),
        row("tiny", wv(d / "tiny.mp4", [cv2.resize(good[0], (56, 32))] * 4)),
        row("uhd_4k", wv(d / "uhd.mp4", [scene(3840, 2160, ((0.4, 0.5, 3.0),))] * 2)),
        row("several", wv(d / "several.mp4", [scene(640, 360, ((0.3, 0.5, 1.0), (0.75, 0.5, 0.8)))] * 4)),
        row("outside", wv(d / "outside.mp4", [scene(640, 360, ((0.04, 0.5, 1.0),))] * 4)),
        row("flaky", wv(d / "flaky.mp4", [scene(640, 360, mark={1: "detector", 2: "warp"}.get(i)) for i in range(4)])),
    ]
    # rotated phone video: pixels stored sideways, the display matrix turns them upright
    side = wv(d / "rotated.mp4", [np.ascontiguousarray(np.rot90(scene(360, 640), 1))] * 4)
    set_display_rotation(side, 90)
    rows.append(row("rotated", side))
    # ends early: an MJPG AVI cut after ~40 % of its bytes; its header still says 10 frames
    full = write_avi(d / "full.avi", [scene(320, 240, ((0.5, 0.5, 0.8),)) for _ in range(10)])
    cut = d / "cut.avi"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.4)])
    rows.append(row("ends_early", cut))
    corrupt = d / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    rows.append(row("corrupt", corrupt))
    rows.append(row("corrupt_unprobed", corrupt, error=None, frame_count=32))  # the index missed it
    return tables.conform(pl.DataFrame(rows), tables.VIDEOS, "videos")


class FlakyBackend(faces.DlibBackend):
    """dlib, but the detector raises on marked frames (an exception inside the detector)."""

    def detect(self, image_rgb):
        if marked(image_rgb, "detector"):
            raise RuntimeError("injected detector failure")
        return super().detect(image_rgb)


def test_every_bad_video_has_its_status_and_the_job_succeeds(messy, tmp_path, monkeypatch):
    calls = {"warp": 0}
    real_warp = extract.warp

    def flaky_warp(image, m, size=256):
        calls["warp"] += 1
        if marked(image, "warp"):
            raise cv2.error("injected warp failure")
        return real_warp(image, m, size)

    monkeypatch.setitem(faces.BACKENDS, "flaky", FlakyBackend)
    monkeypatch.setattr(extract, "warp", flaky_warp)
    tar, pq = tmp_path / "test-00000.tar", tmp_path / "test-00000.parquet"
    stats = faces.extract_chunk(messy, tar, pq, backend="flaky", num_frames=4, threads=1)

    t = pl.read_parquet(pq)
    by = {v: g.sort("frame_idx", nulls_last=True) for (v,), g in t.group_by("video_id")}
    status = {v: g["status"].to_list() for v, g in by.items()}
    assert status["header_wrong"] == ["ok", "ok", "read_failed", "read_failed"]  # indices 0, 3, 7, 11 of 6
    assert by["header_wrong"]["frame_idx"].to_list() == [0, 3, 7, 11]
    assert status["header_zero"] == status["header_missing"] == ["ok"] * 4  # re-probed: 6 frames
    assert by["header_zero"]["frame_idx"].to_list() == [0, 1, 3, 5]
    assert status["portrait"] == ["ok"] * 4
    assert status["tiny"] == ["too_small"] * 4
    assert status["uhd_4k"] == ["ok", "ok"]
    assert status["rotated"] == ["ok"] * 4
    assert status["ends_early"][0] == "ok" and status["ends_early"][-1] == "read_failed"
    assert status["corrupt"] == status["corrupt_unprobed"] == ["decode_error"]
    assert by["corrupt"]["frame_idx"].to_list() == [None]
    assert status["several"] == ["ok"] * 4 and by["several"]["n_faces"].to_list() == [2] * 4
    assert status["outside"] == ["ok"] * 4
    assert status["flaky"] == ["ok", "detector_error", "align_error", "ok"]
    assert calls["warp"] > 0

    portrait = by["portrait"].row(0, named=True)
    assert portrait["box_x1"] <= 360 + 1 and portrait["box_y1"] > 200  # found in the 360x640 frame
    rot = by["rotated"].row(0, named=True)
    assert rot["box_x1"] - rot["box_x0"] > 60 and rot["box_x1"] <= 360 + 1  # found upright in 360x640
    big = by["uhd_4k"].row(0, named=True)
    assert big["box_x1"] - big["box_x0"] > 250  # full-resolution box of the 3x head in the 4K frame
    sev = by["several"].row(0, named=True)
    assert sev["box_x1"] < 320  # the larger head (left), not the smaller one (right)
    assert by["outside"]["box_x0"].max() < 0  # the box reaches past the left edge: crop has a black border

    crops = t.filter(pl.col("status") == "ok")
    assert crops["key"].null_count() == 0 and t.filter(pl.col("status") != "ok")["key"].null_count() == (
        t.height - crops.height)
    assert stats["crops"] == crops.height
    assert stats["failures"] == {s: n for s, n in sorted(
        t.filter(pl.col("status") != "ok").group_by("status").len().iter_rows())}
    assert set(stats["failures"]) == {"too_small", "read_failed", "decode_error", "detector_error", "align_error"}


def test_probe_sees_the_display_rotation(messy):
    rot = messy.filter(pl.col("video_id") == "rotated").row(0, named=True)
    assert (rot["width"], rot["height"]) == (360, 640)  # stored 640x360, displayed (and probed) upright
    frames = dict(video.read_frames(rot["path"], [0]))
    assert frames[0].shape == (640, 360, 3)


# ---------------------------------------------------------------------------- mask-guided choice


def test_choose_face_by_mask():
    big, small = faces.Face((0, 0, 100, 100), 1.0), faces.Face((200, 0, 260, 60), 1.0)
    mask = np.zeros((120, 300), np.uint8)
    mask[10:50, 210:250] = 255
    assert faces.choose_face([big, small], "largest", mask) is big
    assert faces.choose_face([big, small], "mask", mask) is small
    assert faces.choose_face([big, small], "mask", None) is big  # no mask: the largest
    assert faces.choose_face([big, small], "mask", np.zeros_like(mask)) is big  # empty mask: the largest
    mask[:] = 1  # DeepfakeBench binarises at > 1: a mask of ones is empty
    assert faces.choose_face([big, small], "mask", mask) is big
    with pytest.raises(ValueError, match="largest, mask"):
        faces.choose_face([big], "nearest")


def test_mask_video_picks_the_manipulated_face(tmp_path):
    """Two people, the smaller one manipulated: with the mask video the crop is of the smaller one
    (even when the first detection pass saw only the larger one), without it of the larger one."""
    heads = ((0.3, 0.5, 1.0), (0.78, 0.55, 0.55))  # the second face (~50 px) needs the upsample pass
    frames = [scene(640, 360, heads) for _ in range(4)]
    masks = []
    for _ in range(4):
        m = np.zeros((360, 640, 3), np.uint8)
        cv2.ellipse(m, (int(0.78 * 640), int(0.55 * 360)), (28, 36), 0, 0, 360, (255, 255, 255), -1)
        masks.append(m)
    v = video.write_video(tmp_path / "two.mp4", frames)
    mv = video.write_video(tmp_path / "two_mask.mp4", masks)
    rows = [row("masked", v, mask_path=str(mv)), row("unmasked", v)]
    df = tables.conform(pl.DataFrame(rows), tables.VIDEOS, "videos")
    tar, pq = tmp_path / "m.tar", tmp_path / "m.parquet"
    faces.extract_chunk(df, tar, pq, num_frames=4, choice="mask")
    t = pl.read_parquet(pq)
    masked = t.filter(pl.col("video_id") == "masked")
    unmasked = t.filter(pl.col("video_id") == "unmasked")
    assert masked["status"].to_list() == unmasked["status"].to_list() == ["ok"] * 4
    assert (masked["box_x0"] > 400).all() and (masked["n_faces"] == 2).all()  # the right-hand face
    assert (unmasked["box_x1"] < 320).all()  # the larger, left-hand face
    assert (unmasked["n_faces"] == 1).all()  # the cheap first pass found only the larger face
