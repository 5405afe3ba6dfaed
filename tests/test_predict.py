"""``predict`` on videos, unaligned images and folders gives the workflow's scores for the same videos.

A small workflow folder is laid out as the workflow leaves it (``config.yaml``, the backbone fetched by
``pipeline.fetch.weights.fetch_weights`` into ``resources/weights``, an adapter whose metadata is what training
writes), and its benchmark videos go through the workflow's own functions (index -> faces chunk ->
``predict_frames``). ``predict``, run from that folder with only ``--model``, must give the same p(fake).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest

from pipeline.core import config as pconfig
from pipeline.core import codec, video
from pipeline.datasets import index
from pipeline.core import tables
from pipeline.__main__ import main
from pipeline.faces import extract_chunk
from pipeline.model.detector import load_detector
from pipeline.evaluation import predict_frames
from pipeline.predict.files import predict_files
from pipeline.predict.inputs import expand_inputs
from pipeline.predict.resolve import PredictError, resolve_model
from pipeline.fetch.weights import fetch_weights
from model_folder import trained_model_folder

MODEL = "lnclip_df"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory, repo, tiny_clip):
    """A workflow folder after download, faces, training (an adapter with training's metadata) and evaluate."""
    work = tmp_path_factory.mktemp("workflow")
    folder = trained_model_folder(work, repo, tiny_clip, MODEL, test_videos=2)  # real_000[01], fake_000[01]
    cfg, L, weights, ds = folder["cfg"], folder["L"], folder["weights"], folder["videos"]

    videos = index.build_index("demo", "csv", ds, {}, work / L.videos("demo"), chunk_size=8)
    faces = pconfig.faces_settings(cfg)
    table = work / L.shard("demo", "test", 0, "parquet")
    extract_chunk(tables.select_chunk(work / L.videos("demo"), "test", 0), work / L.shard("demo", "test", 0, "tar"),
                  table, backend=faces["backend"], backend_options=faces["backend_options"], **faces["crop"])
    det, _ = load_detector(work / L.adapter(MODEL), weights)
    scores = predict_frames(det, pl.read_parquet(table))
    paths = dict(zip(videos["video_id"], videos["path"]))
    return {"work": work, "scores": scores, "paths": paths, "L": L}


def _video_score(scores: pl.DataFrame, video_id: str) -> float:
    return scores.filter(pl.col("video_id") == video_id)["p_fake"].mean()


def test_videos_images_and_folders_score_as_the_workflow(workflow, tmp_path, monkeypatch):
    work, scores = workflow["work"], workflow["scores"]
    monkeypatch.chdir(work)
    frame_idx = int(scores.filter(pl.col("video_id") == "fake_0000")["frame_idx"][1])
    (frame,) = [f for _, f in video.read_frames(workflow["paths"]["fake_0000"], [frame_idx])]
    image = tmp_path / "unaligned.png"  # a whole video frame: the face stage must find and align the face
    cv2.imwrite(str(image), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    folder = tmp_path / "folder" / "nested"
    folder.mkdir(parents=True)
    shutil.copy(workflow["paths"]["real_0001"], folder / "clip.MP4")  # another video than the fake's

    model = resolve_model(f"results/demo/models/{MODEL}")
    assert model.config_path.name == "config.yaml" and model.notes == []
    assert model.weights == Path("resources/weights/tiny_clip")
    assert model.faces["crop"]["num_frames"] == 4 and model.faces["backend"] == "dlib"
    inputs, problems = expand_inputs([workflow["paths"]["fake_0000"], str(image), str(tmp_path / "folder")])
    assert problems == [] and [k for _, k in inputs] == ["video", "image", "video"]
    got = predict_files(model, inputs)
    assert [r.status for r in got] == ["ok"] * 3
    assert [(r.frames_scored, r.frames_sampled) for r in got] == [(4, 4), (1, 1), (4, 4)]
    expected = [_video_score(scores, "fake_0000"),
                scores.filter((pl.col("video_id") == "fake_0000") & (pl.col("frame_idx") == frame_idx))["p_fake"][0],
                _video_score(scores, "real_0001")]
    assert [r.p_fake for r in got] == pytest.approx(expected, abs=1e-5)
    assert abs(expected[0] - expected[2]) > 1e-4  # ten times the tolerance above: a mix-up would show
    frames = scores.filter(pl.col("video_id") == "fake_0000").sort("frame_idx")
    assert [f["frame_idx"] for f in got[0].frames] == frames["frame_idx"].to_list()
    assert [f["p_fake"] for f in got[0].frames] == pytest.approx(frames["p_fake"].to_list(), abs=1e-5)


def test_command_line_from_the_workflow_folder_writes_files_that_parse(workflow, tmp_path, monkeypatch, capsys):
    work, scores = workflow["work"], workflow["scores"]
    monkeypatch.chdir(work)
    blank = tmp_path / "in" / "blank.png"
    blank.parent.mkdir()
    cv2.imwrite(str(blank), np.full((120, 120, 3), 90, np.uint8))
    (tmp_path / "in" / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    video_path = workflow["paths"]["real_0000"]
    args = ["predict", "--model", f"results/demo/models/{MODEL}", video_path, str(tmp_path / "in")]
    rc = main(args + ["--out", str(tmp_path / "o.csv"), "--frames-out", str(tmp_path / "f.json")])
    assert rc == 1  # some files could not be scored
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["p_fake", "frames", "file", "note"] and len(table) == 5
    with open(tmp_path / "o.csv", newline="") as fh:
        rows = {r["path"]: r for r in csv.DictReader(fh)}
    assert float(rows[video_path]["p_fake"]) == pytest.approx(_video_score(scores, "real_0000"), abs=1e-5)
    assert rows[video_path]["frames_scored"] == "4" and rows[video_path]["status"] == "ok"
    blank_row = {k: rows[str(blank)][k] for k in ("p_fake", "frames_scored", "frames_sampled", "status", "message")}
    assert blank_row == {"p_fake": "", "frames_scored": "0", "frames_sampled": "1", "status": "no_face",
                         "message": "no face found in the image"}
    assert rows[str(tmp_path / "in/broken.mp4")]["status"] == "unreadable"
    assert rows[str(tmp_path / "in/broken.jpg")]["message"] == "cannot be read as an image"
    frames = json.loads((tmp_path / "f.json").read_text())
    assert [f["p_fake"] for f in frames if f["path"] == video_path] == pytest.approx(
        scores.filter(pl.col("video_id") == "real_0000").sort("frame_idx")["p_fake"].to_list(), abs=1e-5)
    broken = {(f["status"], f["frame_idx"]) for f in frames if f["path"].endswith("broken.mp4")}
    assert broken == {("decode_error", None)}

    assert main(args[:3] + [video_path, "--out", str(tmp_path / "o.json")]) == 0
    (row,) = json.loads((tmp_path / "o.json").read_text())
    assert set(row) >= {"path", "p_fake", "frames_scored"} and row["frames_scored"] == 4


def test_missing_model_and_wrong_backbone_are_explained(workflow, tmp_path, monkeypatch, capsys):
    work = workflow["work"]
    monkeypatch.chdir(work)
    video_path = workflow["paths"]["real_0000"]
    assert main(["predict", "--model", "results/demo/models/nope", video_path]) == 2
    err = capsys.readouterr().err
    assert "no trained model at results/demo/models/nope" in err and f"results/demo/models/{MODEL}" in err
    assert "Traceback" not in err

    other = tmp_path / "other_clip"  # a backbone with other random weights than the one trained on
    fetch_weights("x", {"random": {**pconfig.load("config.yaml")["weights"]["tiny_clip"]["random"]}}, other,
                  tmp_path / "other_clip.done", seed=99)
    shutil.copytree(other, work / "resources/weights/tiny_clip", dirs_exist_ok=True)
    shutil.copy(tmp_path / "other_clip.done", work / "resources/weights/tiny_clip.done")
    try:
        with pytest.raises(PredictError, match="holds the backbone 'random:tiny_clip:.* but the model was trained on"):
            resolve_model(f"results/demo/models/{MODEL}")
    finally:
        cfg = pconfig.load("config.yaml")
        fetch_weights("tiny_clip", cfg["weights"]["tiny_clip"], work / "resources/weights/tiny_clip",
                      work / "resources/weights/tiny_clip.done", seed=cfg["seed"])
    assert resolve_model(f"results/demo/models/{MODEL}", weights=other).weights == other  # --weights overrides


def test_missing_face_model_files_are_explained_without_a_traceback(workflow, tmp_path, monkeypatch, capsys):
    """face_alignment without its weight files (the faces jobs and predict never download): exit 2, the
    missing files named, no traceback."""
    monkeypatch.chdir(workflow["work"])
    options = json.dumps({"weights_dir": str(tmp_path / "no_weights")})
    code = main(["predict", "--model", f"results/demo/models/{MODEL}", "--backend", "face_alignment",
                 "--backend-options", options, workflow["paths"]["real_0000"]])
    err = capsys.readouterr().err
    assert code == 2 and "cannot load the model" in err and "weight file(s) missing from" in err
    assert str(tmp_path / "no_weights") in err and "Traceback" not in err


def test_faces_settings_follow_the_workflow_unless_overridden(workflow, tmp_path, monkeypatch):
    monkeypatch.chdir(workflow["work"])
    model = resolve_model(f"results/demo/models/{MODEL}", faces={"num_frames": 2, "backend_options": {"upsample": 1}},
                          video_reduce="median")
    assert model.faces["crop"]["num_frames"] == 2 and model.faces["backend_options"] == {"upsample": 1}
    assert model.video_reduce == "median" and model.faces["crop"]["size"] == 256
    monkeypatch.chdir(tmp_path)  # outside the workflow folder: defaults, said in a note; backbone found upwards
    adapter = workflow["work"] / f"results/demo/models/{MODEL}"
    elsewhere = resolve_model(adapter)
    assert elsewhere.config_path is None and "no workflow config" in elsewhere.notes[0]
    assert elsewhere.weights == workflow["work"] / "resources/weights/tiny_clip"


def test_aligned_crops_skip_the_faces_stage(workflow, tmp_path, monkeypatch, capsys):
    """``--aligned``: stored crops (written as PNG files) score as the evaluation scored them."""
    import webdataset as wds

    monkeypatch.chdir(workflow["work"])
    scores = workflow["scores"].head(2)
    wanted = dict(zip(scores["key"], scores["p_fake"]))
    shard = workflow["L"].shard("demo", "test", 0, "tar")
    for sample in wds.WebDataset(shard, shardshuffle=False):
        if sample["__key__"] in wanted:
            rgb = codec.decode(sample["qoi"], sample["__key__"])  # the stored crop, saved as a PNG file
            (tmp_path / f"{sample['__key__']}.png").write_bytes(codec.encode(rgb, "png"))
    (tmp_path / "zz_broken.png").write_bytes(b"not a png")
    assert main(["predict", "--aligned", "--model", f"results/demo/models/{MODEL}", str(tmp_path)]) == 1
    out = capsys.readouterr()
    got = {line.split("\t")[1]: float(line.split("\t")[0]) for line in out.out.strip().splitlines()}
    assert got == pytest.approx({str(tmp_path / f"{k}.png"): v for k, v in wanted.items()}, abs=1e-4)
    assert "zz_broken.png: cannot be read as an image" in out.err
