"""Real codecs as datasets ship them, through the faces stage.

Every other test video is MPEG-4 Part 2 written by OpenCV. Here a real encoder (PyAV, whose wheels
bundle FFmpeg with libx264, libx265, libvpx and SVT-AV1) writes the formats of FF++ c23, Celeb-DF,
DFDC and phone or web sets: H.264 High with B-frames, HEVC, VP9 in WebM, AV1, variable frame rate
(in MP4, and in WebM, whose container stores no frame count), a phone's rotation tag (portrait stored as landscape with a display matrix), odd width and height,
a header whose frame count lies (a truncated file with its index at the front), a corrupt GOP in
the middle, and a truncated file that lost its index.

Three oracles, none of them the faces stage's own decoder (OpenCV's bundled FFmpeg):

* every source frame carries its number in a row of black and white blocks (:func:`frame_number`),
  so a frame at the wrong index (B-frame reordering, VFR, a skipped corrupt packet) or turned the
  wrong way reads a wrong number;
* PyAV's own FFmpeg decodes each file independently (:func:`reference_frames`), turned upright by
  the display matrix as players turn it (ffmpeg's autorotate);
* what cannot be decoded must be recorded with its reason (``read_failed`` per frame,
  ``decode_error`` with the index's error for the whole video), never crash or shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
import polars as pl
import pytest

from pipeline import faces
from pipeline.core import tables, video
from pipeline.datasets import index, manifest
from pipeline.fetch import demo

N_FRAMES = 30  # every test video has 30 frames (its header says so, also where it lies)
K = 8  # frames sampled per video: linspace(0, 29, 8) = 0, 4, 8, 12, 16, 20, 24, 29
SAMPLED = video.sample_indices(N_FRAMES, K).tolist()
GOP = 10  # keyframe every 10 frames: the corrupt GOP is frames 10..19

# Tolerance between the faces stage's frame (OpenCV's FFmpeg, YUV -> BGR -> RGB) and PyAV's (YUV ->
# RGB). The decoded YUV is bit-exact by each codec's spec; only the colour conversion of two FFmpeg
# builds may round differently. Measured (OpenCV 5.1 / PyAV 18.1): mean 0, max 0 on every even-sized
# format; mean 0.23, max 7 over the 30 frames of the 157x119 VP9 (its odd last chroma column). Two
# neighbouring frames differ by a mean of 4 to 8 levels, and the frame number must match exactly besides.
MEAN_TOL, MAX_TOL = 0.5, 10

H264_HIGH = {"profile": "high", "bf": "3", "g": str(GOP), "sc_threshold": "0", "crf": "20"}
HEVC = {"x265-params": f"log-level=error:bframes=3:keyint={GOP}:min-keyint={GOP}:scenecut=0", "crf": "22"}
VP9 = {"crf": "30", "b": "0", "g": str(GOP)}
AV1 = {"preset": "10", "crf": "35", "g": str(GOP)}


@dataclass(frozen=True)
class Fmt:
    """One test video: encoder, container, options; ``size`` is the displayed (height, width)."""

    codec: str
    ext: str
    options: dict = field(default_factory=dict)
    size: tuple[int, int] = (120, 160)
    vfr: bool = False
    rotation: int = 0  # counter-clockwise degrees of the display matrix (a phone writes -90)
    faststart: bool = False  # index (moov) before the frames
    damage: str | None = None  # "truncate": cut in the middle; "gop": GOP 2's packets overwritten

    @property
    def decodes_fully(self) -> bool:
        return self.damage is None


FORMATS = {
    "h264_high_bframes": Fmt("libx264", "mp4", H264_HIGH),
    "hevc": Fmt("libx265", "mp4", HEVC),
    "vp9_webm": Fmt("libvpx-vp9", "webm", VP9),
    "av1": Fmt("libsvtav1", "mp4", AV1),
    "vfr": Fmt("libx264", "mp4", H264_HIGH, vfr=True),
    "vfr_webm": Fmt("libvpx-vp9", "webm", VP9, vfr=True),  # no frame count in the container
    "phone_rotated": Fmt("libx264", "mp4", H264_HIGH, size=(160, 96), rotation=-90),
    "odd_size": Fmt("libvpx-vp9", "webm", VP9, size=(119, 157)),
    "header_lies": Fmt("libx264", "mp4", H264_HIGH, faststart=True, damage="truncate"),
    "corrupt_gop": Fmt("libx264", "mp4", H264_HIGH, damage="gop"),
    "index_lost": Fmt("libx264", "mp4", H264_HIGH, damage="truncate"),
}

# ------------------------------------------------------------------------------ making the videos

BITS = 6  # frame numbers 0..63 in 8x8 blocks along the bottom-left edge


def stamp(frame: np.ndarray, number: int) -> np.ndarray:
    out = frame.copy()
    for b in range(BITS):
        out[-8:, 8 * b:8 * b + 8] = 235 if number >> b & 1 else 16
    return out


def frame_number(frame: np.ndarray) -> int:
    """The number :func:`stamp` wrote (read at the blocks' centres, robust to compression)."""
    return sum(1 << b for b in range(BITS) if frame[-6:-2, 8 * b + 2:8 * b + 6].mean() > 128)


def source_frames(height: int, width: int) -> list[np.ndarray]:
    """30 upright RGB frames of the demo's moving astronaut face, each stamped with its number."""
    side = max(height, width)
    rendered, _ = demo.render_real(np.random.default_rng(3), frames=N_FRAMES, size=side)
    y0, x0 = (side - height) // 2, (side - width) // 2
    return [stamp(np.ascontiguousarray(f[y0:y0 + height, x0:x0 + width]), i) for i, f in enumerate(rendered)]


def vfr_pts() -> list[int]:
    """Milliseconds: irregular gaps of 20, 40 and 100 ms (a phone dropping to a low rate in the dark)."""
    gaps = np.random.default_rng(0).choice([20, 40, 100], size=N_FRAMES - 1)
    return np.cumsum(np.r_[0, gaps]).tolist()


def encode(path, frames: list[np.ndarray], fmt: Fmt) -> None:
    """Write ``frames`` with PyAV as ``fmt`` says; a rotated format stores each frame turned so that
    the display matrix turns it upright again (as a phone held upright writes it)."""
    k = round(fmt.rotation / 90) % 4
    stored = [np.ascontiguousarray(np.rot90(f, -k)) for f in frames]
    with av.open(str(path), "w", options={"movflags": "+faststart"} if fmt.faststart else {}) as out:
        stream = out.add_stream(fmt.codec, rate=25, options=fmt.options)
        stream.height, stream.width = stored[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if fmt.codec == "libx265":
            stream.codec_tag = "hvc1"  # as Apple devices and most MP4 writers tag HEVC
        if fmt.vfr:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        if fmt.rotation:
            stream.set_display_rotation(fmt.rotation)
        pts = vfr_pts() if fmt.vfr else None
        for i, frame in enumerate(stored):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            if pts is not None:
                vf.pts, vf.time_base = pts[i], Fraction(1, 1000)
            out.mux(stream.encode(vf))
        out.mux(stream.encode())


def packets(path) -> list[tuple[int, int]]:
    """``(byte offset, size)`` of each video packet, in file order."""
    with av.open(str(path)) as c:
        return [(p.pos, p.size) for p in c.demux(video=0) if p.size]


def damage(path, how: str) -> None:
    """``truncate``: cut the file in the middle of packet 15; ``gop``: overwrite every packet of the
    second GOP (frames 10..19 in decode order) with random bytes, container untouched."""
    data = bytearray(path.read_bytes())
    pk = packets(path)
    if how == "truncate":
        pos, size = pk[15]
        del data[pos + size // 2:]
    else:
        rng = np.random.default_rng(1)
        for pos, size in pk[GOP:2 * GOP]:
            data[pos:pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("codecs")
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SVT_LOG", "1")  # SVT-AV1: errors only
        for name, fmt in FORMATS.items():
            path = root / f"{name}.{fmt.ext}"
            encode(path, source_frames(*fmt.size), fmt)
            if fmt.damage:
                damage(path, fmt.damage)
            out[name] = path
    return out


# ------------------------------------------------------------------------------ the independent decoder


def reference_frames(path) -> list[np.ndarray]:
    """Every frame PyAV decodes, in presentation order, turned upright by the display matrix (PyAV's
    ``rotation`` is counter-clockwise, as ``np.rot90``; on the phone video this gave the same pixels as
    Debian's ffmpeg 5.1 with its default autorotate); stops at the first decoder error (frames after a
    corrupt GOP are not numbered by any position the stream can vouch for)."""
    frames = []
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            for packet in c.demux(stream):
                for f in stream.decode(packet):
                    frames.append(np.rot90(f.to_ndarray(format="rgb24"), round(f.rotation / 90) % 4))
    except av.error.FFmpegError:
        pass
    return frames


def assert_same_frame(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert got.shape == ref.shape, what
    diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    assert diff.mean() <= MEAN_TOL and diff.max() <= MAX_TOL, f"{what}: mean {diff.mean():.3f}, max {diff.max()}"


class Recording(faces.FaceBackend):
    """The dlib backend, keeping every frame the faces stage hands it (in the order it samples them)."""

    name = "recording"

    def __init__(self, inner):
        self.inner, self.frames = inner, []

    def detect(self, image_rgb):
        self.frames.append(image_rgb.copy())
        return self.inner.detect(image_rgb)

    def landmarks(self, image_rgb, face):
        return self.inner.landmarks(image_rgb, face)


@pytest.fixture(scope="module")
def dlib():
    return faces.make_backend("dlib", upsample=1)


def index_row(name: str, path) -> dict:
    info = video.probe(path)  # as the index stage probes it
    return {"dataset": "codecs", "video_id": name, "path": str(path), "label": 0, "method": "real",
            "source_id": name, "split": "test", **{k: info[k] for k in ("frame_count", "fps", "width", "height",
                                                                          "error")}}


@pytest.mark.parametrize("name", FORMATS)
def test_faces_stage_samples_the_independently_decoded_frames(videos, dlib, name):
    fmt, path = FORMATS[name], videos[name]
    row = index_row(name, path)
    backend = Recording(dlib)
    records = [r for r, _ in faces.extract_video(row, backend, faces.CropSettings(num_frames=K))]
    ref = reference_frames(path)

    if name == "index_lost" or (name == "av1" and row["error"]):  # (AV1 only where OpenCV has a decoder)
        assert row["error"] == video.ERROR_CANNOT_OPEN and not backend.frames
        assert [(r["frame_idx"], r["status"]) for r in records] == [(None, tables.STATUS_DECODE_ERROR)]
        return
    assert row["error"] is None and row["frame_count"] == N_FRAMES  # also where the header lies
    assert (row["height"], row["width"]) == fmt.size  # the displayed size, portrait for the phone video
    assert [r["frame_idx"] for r in records] == SAMPLED
    decoded = [r["frame_idx"] for r in records if r["status"] != tables.STATUS_READ_FAILED]
    assert decoded == SAMPLED[:len(decoded)] == [i for i, _ in zip(SAMPLED, backend.frames)]
    for idx, frame in zip(decoded, backend.frames):
        assert frame.shape == (*fmt.size, 3), idx
        assert frame_number(frame) == idx  # the source frame of that index, upright
        assert idx < len(ref), f"the faces stage decoded frame {idx}, the independent decoder did not"
        assert_same_frame(frame, ref[idx], f"{name} frame {idx}")
    if fmt.decodes_fully:
        assert len(ref) == N_FRAMES and decoded == SAMPLED
        assert {r["status"] for r in records} == {tables.STATUS_OK}  # the face is found in every format
    else:  # decoding stops inside the damage: the frames before it, the rest recorded as not reached
        assert 0 < len(decoded) < K and decoded[-1] < 2 * GOP
        assert [r["frame_idx"] for r in records if r["status"] == tables.STATUS_READ_FAILED] == SAMPLED[len(decoded):]


# ------------------------------------------------------------------------------ index -> faces -> manifest

# Where each format lies in an FF++ (Kaggle mirror) and a Celeb-DF tree, with the id the index gives it.
FFPP = {"h264_high_bframes": "original/953.mp4", "hevc": "original/974.mp4", "vp9_webm": "original/012.webm",
        "av1": "original/026.mp4", "vfr": "Deepfakes/953_974.mp4", "phone_rotated": "Deepfakes/974_953.mp4",
        "vfr_webm": "Deepfakes/012_026.webm"}
CELEBDF = {"odd_size": "Celeb-real/id0_0000.webm", "header_lies": "Celeb-synthesis/id0_id1_0000.mp4",
           "corrupt_gop": "YouTube-real/00000.mp4", "index_lost": "Celeb-real/id1_0001.mp4"}


def video_id(name: str) -> str:
    if name in FFPP:
        folder, file = FFPP[name].split("/")
        return f"{'real' if folder == 'original' else 'DF'}/{file.split('.')[0]}"
    return CELEBDF[name].rsplit(".", 1)[0]


def lay_out(videos, root):
    for name, rel in FFPP.items():
        (root / "ffpp" / "FaceForensics++_C23" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "ffpp" / "FaceForensics++_C23" / rel).write_bytes(videos[name].read_bytes())
    for name, rel in CELEBDF.items():
        (root / "cdf" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "cdf" / rel).write_bytes(videos[name].read_bytes())
    (root / "cdf" / "List_of_testing_videos.txt").write_text(  # flag 1 = real
        "".join(f"{0 if 'synthesis' in rel else 1} {rel}\n" for rel in CELEBDF.values()))


def run_stages(dataset, adapter, root, options, out) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """The index, faces and manifest stages as the workflow's scripts call them."""
    videos_pq = out / dataset / "videos.parquet"
    index.build_index(dataset, adapter, root, options, videos_pq, chunk_size=64)
    shard_tables = []
    for split, chunk in tables.chunks(videos_pq):
        tar, pq = out / dataset / f"{split}-{chunk:03d}.tar", out / dataset / f"{split}-{chunk:03d}.parquet"
        faces.extract_chunk(tables.select_chunk(videos_pq, split, chunk), tar, pq, num_frames=K)
        shard_tables.append(pq)
    stats = manifest.build_manifest(videos_pq, shard_tables, out / dataset / "frames.parquet",
                                    out / dataset / "pairs.parquet", out / dataset / "stats.json")
    return pl.read_parquet(videos_pq), pl.read_parquet(out / dataset / "frames.parquet"), stats


def test_codec_matrix_through_index_faces_and_manifest(videos, tmp_path):
    """FF++ and Celeb-DF trees of these files: each video gets crops at exactly the sampled frames the
    independent decoder reaches; the rest are recorded with their reason in frames.parquet and in
    stats.json's problem videos."""
    lay_out(videos, tmp_path)
    runs = [run_stages("ffpp", "ffpp", tmp_path / "ffpp", {"methods": ["real", "DF"]}, tmp_path / "out"),
            run_stages("cdf", "celebdf", tmp_path / "cdf", {}, tmp_path / "out")]
    expected_problems, expected_crops = {}, 0
    for name in FORMATS:
        vid = video_id(name)
        idx_rows, frames, stats = next(r for r in runs if vid in r[0]["video_id"].to_list())
        indexed = idx_rows.row(by_predicate=pl.col("video_id") == vid, named=True)
        got = [(r["frame_idx"], r["status"]) for r in frames.filter(pl.col("video_id") == vid).iter_rows(named=True)]
        if name == "index_lost" or (name == "av1" and indexed["error"]):
            assert indexed["error"] == video.ERROR_CANNOT_OPEN
            assert got == [(None, tables.STATUS_DECODE_ERROR)]
            expected_problems[vid] = {"crops": 0, "reasons": {"decode_error": 1}, "error": video.ERROR_CANNOT_OPEN}
            continue
        reached = len(reference_frames(videos[name]))
        assert indexed["error"] is None and indexed["frame_count"] == N_FRAMES, name
        assert got == [(i, tables.STATUS_OK if i < reached else tables.STATUS_READ_FAILED) for i in SAMPLED], name
        expected_crops += sum(i < reached for i in SAMPLED)
        if not FORMATS[name].decodes_fully:
            failed = sum(i >= reached for i in SAMPLED)
            assert 0 < failed < K, name
            expected_problems[vid] = {"crops": K - failed, "reasons": {"read_failed": failed}, "error": None}
    problems = {p.pop("video_id"): p for _, _, stats in runs for p in stats["problem_videos"]}
    assert problems == expected_problems
    assert sum(stats["faces"] for _, _, stats in runs) == expected_crops
