"""Importers of existing face crops: DeepfakeBench trees and JSONs, the reference ``crops`` layout,
WildDeepfake sequences; the shards they write hold the users' PNG files byte for byte."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest

from pipeline.datasets import imports as importing, index
from pipeline.core import tables
from pipeline.datasets.adapters import DatasetLayoutError


def png_bytes(seed: int, size: int = 24) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


def write_frames(folder: Path, indices, seed: int = 0) -> dict[int, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in indices:
        out[i] = png_bytes(seed * 1000 + i)
        (folder / f"{i:03d}.png").write_bytes(out[i])
    return out


def rows(df):
    return {r["video_id"]: r for r in df.iter_rows(named=True)}


def tar_members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf.getmembers()}


def test_deepfakebench_celebdf_tree_uses_the_official_list(tmp_path):
    root = tmp_path / "Celeb-DF-v2"
    (root).mkdir()
    (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n"
                                                     "1 YouTube-real/00000.mp4\n")
    write_frames(root / "Celeb-real/frames/id0_0000", [0, 15, 30])
    write_frames(root / "Celeb-synthesis/frames/id0_id1_0000", [0, 15, 30])
    write_frames(root / "YouTube-real/frames/00000", [0, 12])
    write_frames(root / "Celeb-synthesis/frames/id4_id5_0001", [0, 9])  # not in the test list
    out = tmp_path / "v.parquet"
    df = index.build_index("cdf", "deepfakebench", tmp_path, {"dataset": "celebdf"}, out, chunk_size=8)
    r = rows(df)
    assert set(r) == {"Celeb-real/id0_0000", "Celeb-synthesis/id0_id1_0000", "YouTube-real/00000"}
    assert r["Celeb-synthesis/id0_id1_0000"]["label"] == 1 and r["YouTube-real/00000"]["label"] == 0
    assert r["Celeb-synthesis/id0_id1_0000"]["source_id"] == "Celeb-real/id0_0000"
    assert r["Celeb-real/id0_0000"]["frame_count"] == 3 and r["Celeb-real/id0_0000"]["width"] == 24
    assert json.loads(index.completeness_path(out).read_text())["checks"][0]["name"] == "CDFv2 test"
    with pytest.raises(DatasetLayoutError, match="needs options.json .* or options.dataset.*got None"):
        index.list_videos("cdf", "deepfakebench", tmp_path, {})


def test_deepfakebench_json_labels_splits_and_windows_paths(tmp_path):
    base = tmp_path / "FaceForensics++"
    write_frames(base / "original_sequences/youtube/c23/frames/953", [0, 10])
    write_frames(base / "manipulated_sequences/Deepfakes/c23/frames/953_974", [0, 10])
    write_frames(base / "manipulated_sequences/DeepFakeDetection/c23/frames/01_02__walk__ABC", [0])
    write_frames(base / "original_sequences/actors/c23/frames/01__walk", [0])
    win = "FaceForensics++\\original_sequences\\youtube\\c23\\frames\\953\\000.png"
    dfb = {"FaceForensics++": {
        "FF-real": {"test": {"c23": {"953": {"label": "FF-real", "frames": [win]}}}},
        "FF-DF": {"test": {"c23": {"953_974": {"label": "FF-DF", "frames": [
            "/data/DeepfakeBench/datasets/rgb/FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/"
            "953_974/000.png"]}}}}},
        "DeepFakeDetection": {
        "DFD_real": {s: {"c23": {"01__walk": {"label": "DFD_real", "frames": [
            "FaceForensics++/original_sequences/actors/c23/frames/01__walk/000.png"]}}}
            for s in ("train", "val", "test")},
        "DFD_fake": {s: {"c23": {"01_02__walk__ABC": {"label": "DFD_fake", "frames": [
            "FaceForensics++/manipulated_sequences/DeepFakeDetection/c23/frames/01_02__walk__ABC/000.png"]}}}
            for s in ("train", "val", "test")}}}
    (tmp_path / "FF.json").write_text(json.dumps(dfb))
    df = index.list_videos("ff", "deepfakebench", tmp_path, {"json": str(tmp_path / "FF.json")})
    r = rows(df)
    assert (r["DF/953_974"]["label"], r["DF/953_974"]["source_id"], r["DF/953_974"]["split"]) == (1, "real/953", "test")
    assert r["real/953"]["label"] == 0
    assert r["real/953"]["path"] == str(base / "original_sequences/youtube/c23/frames/953")
    # DFD is copied into every split by DeepfakeBench: it is kept once, as test
    assert (r["DFD/01_02__walk__ABC"]["split"], r["real/01__walk"]["split"]) == ("test", "test")
    dfb["FaceForensics++"]["FF-real"]["test"]["c23"]["953"]["frames"] = ["x\\gone\\000.png"]
    (tmp_path / "FF.json").write_text(json.dumps(dfb))
    with pytest.raises(DatasetLayoutError, match="lists '953' .* no such folder"):
        index.list_videos("ff", "deepfakebench", tmp_path, {"json": str(tmp_path / "FF.json")})


def test_crops_layout_ff_official_splits_and_pairs(tmp_path):
    root = tmp_path / "datasets" / "FF"
    write_frames(root / "real/953", [0, 12])
    write_frames(root / "real/071", [0, 12])
    write_frames(root / "DF/953_974", [0, 12])
    write_frames(root / "NT/071_054", [0, 9])
    df = index.list_videos("ff", "crops", root, {})
    r = rows(df)
    df_row = r["DF/953_974"]
    assert (df_row["split"], df_row["source_id"], df_row["method"]) == ("test", "real/953", "DF")
    assert (r["real/071"]["split"], r["NT/071_054"]["split"], r["NT/071_054"]["label"]) == ("train", "train", 1)
    cdf = tmp_path / "datasets" / "CDFv2"
    write_frames(cdf / "Celeb-real/id0_0000", [0])
    write_frames(cdf / "Celeb-synthesis/id0_id1_0000", [0])
    r = rows(index.list_videos("cdf", "crops", cdf, {}))
    assert (r["Celeb-real/id0_0000"]["label"], r["Celeb-synthesis/id0_id1_0000"]["label"]) == (0, 1)
    assert r["Celeb-synthesis/id0_id1_0000"]["source_id"] == "Celeb-real/id0_0000"
    assert set(v["split"] for v in r.values()) == {"test"}


@pytest.mark.parametrize("style", ["real_test", "real test", "test/real"])
def test_wilddeepfake_sequences(tmp_path, style):
    for cls in ("real", "fake"):
        for split in ("train", "test"):
            folder = tmp_path / "WildDeepfake" / style.replace("real", cls).replace("test", split)
            write_frames(folder / "12" / "1", [0, 1, 2])
            write_frames(folder / "12" / "2", [5, 6])
    df = index.list_videos("wdf", "wilddeepfake", tmp_path, {})
    assert sorted(df["video_id"]) == ["fake_test/12/1", "fake_test/12/2", "real_test/12/1", "real_test/12/2"]
    assert set(df["split"]) == {"test"} and rows(df)["fake_test/12/1"]["label"] == 1


def test_wilddeepfake_unextracted_archives_are_named(tmp_path):
    for folder in ("real_test", "fake_test"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "1.tar.gz").write_bytes(b"x")
    with pytest.raises(DatasetLayoutError, match=r"archives \['1.tar.gz'\].*tar -xzf"):
        index.list_videos("wdf", "wilddeepfake", tmp_path, {})


def test_imported_shard_holds_the_png_files_byte_for_byte(tmp_path):
    root = tmp_path / "Celeb-DF-v2"
    root.mkdir()
    (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    stored = {"Celeb-real/id0_0000": write_frames(root / "Celeb-real/frames/id0_0000", range(0, 320, 10), seed=1),
              "Celeb-synthesis/id0_id1_0000": write_frames(root / "Celeb-synthesis/frames/id0_id1_0000", [0, 7], 2)}
    # a JPEG frame is stored as lossless PNG of the same pixels
    jpg = root / "Celeb-synthesis/frames/id0_id1_0000/014.jpg"
    cv2.imwrite(str(jpg), np.full((24, 24, 3), 90, np.uint8))
    videos = index.build_index("cdf", "deepfakebench", root, {"dataset": "celebdf"}, tmp_path / "v.parquet", 8)
    tar, table = tmp_path / "shards/test-00000.tar", tmp_path / "shards/test-00000.parquet"
    importing.import_chunk(videos, tar, table, num_frames=8)
    members = tar_members(tar)
    frames = pl.read_parquet(table)
    assert frames.columns == list(tables.FRAMES) and set(frames["shard"]) == {str(tar)}
    real = frames.filter(pl.col("video_id") == "Celeb-real/id0_0000")
    # 32 stored frames, 8 evenly spread (positions linspace(0, 31, 8)), not the first 8
    assert real["frame_idx"].to_list() == [10 * p for p in np.linspace(0, 31, 8, dtype=int)]
    for r in frames.iter_rows(named=True):
        png = members[f"{r['key']}.png"]
        meta = json.loads(members[f"{r['key']}.json"])
        assert (meta["video_id"], meta["frame_idx"], meta["label"]) == (r["video_id"], r["frame_idx"], r["label"])
        if r["frame_idx"] == 14:
            assert png.startswith(importing.PNG_MAGIC)
            assert (cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR) ==
                    cv2.imread(str(jpg))).all()
        else:
            assert png == stored[r["video_id"]][r["frame_idx"]]  # byte for byte
    assert len(members) == 2 * frames["key"].is_not_null().sum() == 2 * 11
    # byte-identical on a rerun
    importing.import_chunk(videos, tmp_path / "again.tar", tmp_path / "again.parquet", num_frames=8)
    assert (tmp_path / "again.tar").read_bytes() == tar.read_bytes()


def test_probe_of_a_frame_folder(tmp_path):
    write_frames(tmp_path / "ok", [3, 1, 2])
    assert importing.probe_frames(tmp_path / "ok") == {"frame_count": 3, "fps": None, "width": 24, "height": 24,
                                                       "error": None}
    assert [p.name for p in importing.frame_files(tmp_path / "ok")] == ["001.png", "002.png", "003.png"]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "000.png").write_bytes(b"garbage")
    assert importing.probe_frames(tmp_path / "bad")["error"].startswith("cannot open the first image: 000.png")
    (tmp_path / "empty").mkdir()
    assert importing.probe_frames(tmp_path / "empty")["error"] == "no frames"
    assert importing.probe_frames(tmp_path / "gone")["error"] == "file not found"


def test_import_records_a_vanished_or_unreadable_video(tmp_path):
    folder = tmp_path / "v1"
    write_frames(folder, [0, 1])
    (folder / "002.png").write_bytes(b"not an image")
    videos = pl.DataFrame({"dataset": ["d"] * 2, "video_id": ["v1", "gone"], "split": ["test"] * 2, "label": [0, 1],
                           "method": ["real", "x"], "source_id": ["v1", None],
                           "path": [str(folder), str(tmp_path / "gone")], "error": [None, "file not found"]})
    importing.import_chunk(videos, tmp_path / "s.tar", tmp_path / "s.parquet", num_frames=3)
    df = pl.read_parquet(tmp_path / "s.parquet").sort("video_id", "frame_idx", nulls_last=True)
    assert df.select("video_id", "frame_idx", "status").rows() == [
        ("gone", None, "decode_error"), ("v1", 0, "ok"), ("v1", 1, "ok"), ("v1", 2, "decode_error")]
    assert len(tar_members(tmp_path / "s.tar")) == 4


def test_incomplete_copy_reaches_stats_json_and_the_report(tmp_path):
    from pipeline.datasets.manifest import build_manifest
    from pipeline.report import build_report

    root = tmp_path / "Celeb-DF-v2"
    root.mkdir()
    (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n"
                                                     "0 Celeb-synthesis/id2_id1_0003.mp4\n")
    write_frames(root / "Celeb-real/frames/id0_0000", [0, 5])
    write_frames(root / "Celeb-synthesis/frames/id0_id1_0000", [0, 5])
    out = tmp_path / "cdf"
    videos = index.build_index("cdf", "deepfakebench", root, {"dataset": "celebdf"}, out / "videos.parquet", 8)
    importing.import_chunk(videos, out / "shards/test-00000.tar", out / "shards/test-00000.parquet", 4)
    stats = build_manifest(out / "videos.parquet", [out / "shards/test-00000.parquet"], out / "frames.parquet",
                           out / "pairs.parquet", out / "stats.json")
    (check,) = stats["completeness"]
    assert check["message"].startswith("CDFv2 test: 2 of 518 videos found") and not check["complete"]
    assert "missing: Celeb-synthesis/id2_id1_0003" in check["message"]
    assert json.loads((out / "stats.json").read_text())["completeness"] == stats["completeness"]
    build_report(tmp_path / "r.html", evaluations=[], datasets=[{"name": "cdf", "stats_path": str(out / "stats.json"),
                                                                 "checksums": {}}],
                 trainings=[], provenance={}, title="t", demo=False)
    assert f'data-incomplete="cdf">{check["message"]}</p>' in (tmp_path / "r.html").read_text()


def test_command_line_index_and_import_match_the_functions(tmp_path, capsys):
    from pipeline.__main__ import main

    root = tmp_path / "FF"
    write_frames(root / "real/953", range(10))
    write_frames(root / "DF/953_974", range(10), seed=3)
    out = tmp_path / "ff"
    assert main(["index", "ff", "--adapter", "crops", "--root", str(root), "--out", str(out / "videos.parquet"),
                 "--threads", "1"]) == 0
    assert main(["import", "--videos", str(out / "videos.parquet"), "--split", "test", "--chunk", "0",
                 "--tar", str(out / "cli.tar"), "--table", str(out / "cli.parquet"), "--num-frames", "4"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"videos": 2, "crops": 8, "failures": 0}
    videos = tables.select_chunk(out / "videos.parquet", "test", 0)
    importing.import_chunk(videos, out / "fn.tar", out / "fn.parquet", num_frames=4)
    assert (out / "cli.tar").read_bytes() == (out / "fn.tar").read_bytes()
