"""pipeline.video: frame sampling, probing, sequential decoding (DeepfakeBench behaviour)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.core import video


def _write_avi(path, frames_rgb, fps=25):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, frames_rgb[0].shape[1::-1])
    for f in frames_rgb:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    # 10 frames of distinct grey levels, one pure-red frame at index 3 to check the RGB order
    frames = [np.full((48, 64, 3), 20 * i + 10, np.uint8) for i in range(10)]
    frames[3] = np.zeros((48, 64, 3), np.uint8)
    frames[3][..., 0] = 220
    mp4 = video.write_video(d / "ten.mp4", frames, fps=25)
    broken = d / "broken.mp4"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    # an MJPG AVI whose header says 20 frames, truncated to 30%: decoding stops early
    rng = np.random.default_rng(1)
    noisy = [rng.integers(0, 255, (128, 128, 3), dtype=np.uint8) for _ in range(20)]
    _write_avi(d / "full.avi", noisy)
    data = (d / "full.avi").read_bytes()
    trunc = d / "truncated.avi"
    trunc.write_bytes(data[: int(len(data) * 0.3)])
    return {"mp4": mp4, "broken": broken, "truncated": trunc, "frames": frames}


def test_sample_indices_deepfakebench_values():
    idx = video.sample_indices(396, 32)
    assert idx[:4].tolist() == [0, 12, 25, 38]  # the FF++ 000 crops shipped by yermandy
    assert len(idx) == 32 and idx[-1] == 395 and idx.dtype == np.int64
    assert np.array_equal(idx, np.linspace(0, 395, 32, dtype=int))


def test_sample_indices_short_and_empty():
    assert video.sample_indices(10, 32).tolist() == list(range(10))
    assert video.sample_indices(1, 32).tolist() == [0]
    assert video.sample_indices(24, 4).tolist() == [0, 7, 15, 23]
    for n in (0, -3, None):
        assert video.sample_indices(n, 32).size == 0
    assert video.sample_indices(10, 0).size == 0


def test_probe_good_video(clips):
    info = video.probe(clips["mp4"])
    assert info == {"frame_count": 10, "fps": 25.0, "width": 64, "height": 48, "error": None}


def test_probe_bad_files(clips, tmp_path):
    bad = video.probe(clips["broken"])
    assert bad["error"] == video.ERROR_CANNOT_OPEN
    assert all(bad[k] is None for k in ("frame_count", "fps", "width", "height"))
    missing = video.probe(tmp_path / "nope.mp4")
    assert missing["error"] == video.ERROR_MISSING and missing["frame_count"] is None
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert video.probe(empty)["error"] is not None


def test_read_frames_values_and_order(clips):
    got = list(video.read_frames(clips["mp4"], [7, 0, 3, 7, 9]))
    assert [i for i, _ in got] == [0, 3, 7, 9]
    for i, frame in got:
        assert frame.dtype == np.uint8 and frame.shape == (48, 64, 3)
    frames = dict(got)
    assert abs(float(frames[0].mean()) - 10) < 4
    assert abs(float(frames[7].mean()) - 150) < 4
    assert abs(float(frames[9].mean()) - 190) < 4
    red = frames[3].reshape(-1, 3).mean(axis=0)
    assert red[0] > 180 and red[1] < 40 and red[2] < 40  # RGB, not BGR


def test_read_frames_beyond_end_and_bad_files(clips):
    requested = [0, 5, 9, 12, 30]
    got = [i for i, _ in video.read_frames(clips["mp4"], requested)]
    assert got == [0, 5, 9]
    assert video.missing_indices(requested, got) == [12, 30]
    assert list(video.read_frames(clips["broken"], [0, 1])) == []
    assert list(video.read_frames(clips["mp4"], [])) == []


def test_read_frames_stops_at_truncated_video(clips):
    info = video.probe(clips["truncated"])
    assert info["error"] is None and info["frame_count"] == 20  # the header still says 20
    got = [i for i, _ in video.read_frames(clips["truncated"], range(20))]
    assert got == list(range(len(got))) and 0 < len(got) < 20  # sequential, then stops cleanly
    assert video.missing_indices(range(20), got) == list(range(len(got), 20))


def test_write_video_errors(tmp_path):
    with pytest.raises(ValueError):
        video.write_video(tmp_path / "none.mp4", [])


def test_grabbed_frames_equal_fully_decoded_frames(tmp_path):
    """read_frames grabs the frames nobody asked for (no colour conversion) and retrieves the sampled
    ones: the same pixels as decoding every frame with cap.read(), for inter-coded MPEG-4 too."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    frames = [np.roll(base, 3 * i, axis=1) for i in range(30)]
    path = video.write_video(tmp_path / "moving.mp4", frames)
    cap = cv2.VideoCapture(str(path))
    decoded = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        decoded.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    assert len(decoded) == 30
    wanted = video.sample_indices(30, 7)
    got = dict(video.read_frames(path, wanted))
    assert sorted(got) == wanted.tolist()
    for i in wanted:
        assert np.array_equal(got[int(i)], decoded[int(i)]), i
    assert not np.array_equal(decoded[4], decoded[5])  # the frames do differ
