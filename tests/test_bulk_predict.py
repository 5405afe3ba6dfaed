"""Bulk scoring as a workflow target: ``results/.../predict/<set>.parquet`` equals ``predict`` on each file,
and files added to the folder later are scored on their own (in the plan and in the run).

A copy of the workflow with the demo's faces stage (dlib), a tiny random backbone fetched as the workflow
fetches it, and a model folder saved with training's metadata (a random head, not trained); the set is a
folder of 40 demo videos and one unreadable file.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

from pipeline.core import config as pconfig
from pipeline.core import layout
from pipeline.fetch import demo
from pipeline.fetch.weights import fetch_weights
from pipeline.model.detector import Detector, load_backbone, save_adapter
from pipeline.predict import bulk
from pipeline.training import kinds
from test_workflow import copy_workflow, planned, snakemake

MODEL = "models/tiny"  # a model folder outside this config's results: nothing trains it


def _set_up(repo: Path, work: Path, tiny_clip: dict) -> str:
    work.mkdir()
    copy_workflow(repo, work)
    cfg = pconfig.load(repo / "config/demo.yaml")
    cfg["weights"] = {"tiny_clip": {"random": dict(tiny_clip, seed=1)}}
    cfg["faces"].update(num_frames=2, size=64)
    cfg["predict"] = {"incoming": {"folders": ["incoming"], "model": MODEL, "chunk_size": 16}}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    cfg = pconfig.validate_config(cfg)
    L = layout.from_config(cfg)
    weights = work / L.weights_download("tiny_clip")
    fetch_weights("tiny_clip", cfg["weights"]["tiny_clip"], weights, work / L.weights_marker("tiny_clip"), seed=7)
    torch.manual_seed(0)
    detector = Detector(load_backbone(weights), ln_tuning=True, l2_norm=True)
    detector.head.weight.data.normal_(0, 3.0)  # scores spread away from 0.5
    train = kinds.settings(cfg, "lnclip_df")["model"]
    save_adapter(detector, work / MODEL / layout.ADAPTER, meta={"backbone": train["backbone"], "cfg": train})
    # 20 reals, 20 fakes and one unreadable file; more videos of another seed wait aside
    demo.make_demo_dataset(work / "incoming", seed=3, counts={"test": 20}, frames=4, corrupt=1)
    demo.make_demo_dataset(work / "later", seed=4, counts={"test": 3}, frames=4)
    return L.predict_table("incoming")


def _predict(work: Path, *paths: str) -> dict[str, dict]:
    """``python -m pipeline predict`` on ``paths`` from the workflow folder: path -> its --out row."""
    subprocess.run([sys.executable, "-m", "pipeline", "predict", "--model", MODEL, "--config", "config.yaml",
                    *paths, "--out", "expected.csv"], cwd=work, capture_output=True, text=True, timeout=600)
    with open(work / "expected.csv", newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


def _assert_equal(table: pl.DataFrame, expected: dict[str, dict]) -> None:
    got = {row["path"]: row for row in table.iter_rows(named=True) if row["path"] in expected}
    assert got.keys() == expected.keys()
    for path, want in expected.items():
        row = got[path]
        assert (row["status"], row["message"], row["kind"]) == (want["status"], want["message"], want["kind"]), path
        assert (str(row["frames_scored"]), str(row["frames_sampled"])) == (want["frames_scored"],
                                                                             want["frames_sampled"]), path
        if want["p_fake"]:
            assert row["p_fake"] == pytest.approx(float(want["p_fake"]), abs=1e-6), path
        else:
            assert row["p_fake"] is None, path


@pytest.mark.slow
def test_a_folder_is_scored_as_predict_scores_each_file_and_added_files_alone(repo, tmp_path, tiny_clip,
                                                                            monkeypatch):
    work = tmp_path / "work"
    target = _set_up(repo, work, tiny_clip)
    assert planned(work, "--cores", "2", target) == {"predict_chunk": 3, "predict": 1}  # 41 files, 16 a chunk

    snakemake(work, "--cores", "2", target)
    table = pl.read_parquet(work / target)
    assert table.height == 41 and table.columns == ["path", "kind", "p_fake", "frames_scored", "frames_sampled",
                                                    "status", "message"]
    expected = _predict(work, "incoming")
    assert len(expected) == 41
    _assert_equal(table, expected)
    broken = table.filter(pl.col("status") == "unreadable")
    assert broken["path"].to_list() == ["incoming/SBI/broken_000.mp4"]
    assert broken["message"][0].startswith("cannot be read as a video")
    assert table.filter(pl.col("status") == "ok").height == 40
    assert table["p_fake"].drop_nulls().round(5).n_unique() == 40  # every file its own score: a mix-up would show
    assert planned(work, "--cores", "2", target) == {}

    # five more videos: only they are planned and scored
    chunks = work / Path(target).with_suffix("") / "chunks"
    before = {p.name: p.stat().st_mtime_ns for p in chunks.glob("*.parquet")}
    added = sorted((work / "later").rglob("*.mp4"))[:5]
    for path in added:
        shutil.copy(path, work / "incoming" / path.parent.name / f"later_{path.name}")
    assert planned(work, "--cores", "2", target) == {"predict_chunk": 1, "predict": 1}
    monkeypatch.chdir(work)
    files, _ = bulk.list_set({"folders": ["incoming"]})
    block = [f for f in files if "/later_" in f[0]]
    assert len(block) == 5
    assert bulk.digest(block) in snakemake(work, "-n", "--cores", "2", target).stdout  # the chunk of those 5
    snakemake(work, "--cores", "2", target)
    after = {p.name: p.stat().st_mtime_ns for p in chunks.glob("*.parquet")}
    assert {k: v for k, v in after.items() if k in before} == before  # no earlier chunk was redone
    (new,) = set(after) - set(before)
    assert sorted(pl.read_parquet(chunks / new)["path"].to_list()) == sorted(
        f"incoming/{p.parent.name}/later_{p.name}" for p in added)
    logs = work / layout.from_config(pconfig.load(work / "config.yaml")).log("predict", "incoming/x")
    assert len(list(Path(logs).parent.glob("*.log"))) == 4  # four scoring jobs ever ran
    table = pl.read_parquet(work / target)
    assert table.height == 46
    _assert_equal(table, _predict(work, *[f"incoming/{p.parent.name}/later_{p.name}" for p in added]))
    assert planned(work, "--cores", "2", target) == {}


def test_chunks_keep_their_files_and_new_files_get_new_chunks():
    files = [[f"f{i:02d}.mp4", "video", 100 + i, 1000 + i] for i in range(10)]
    first = bulk.plan_chunks(files, {}, 4)
    assert sorted(map(len, first.values())) == [2, 4, 4] and sorted(sum(first.values(), [])) == files
    # every chunk ran and recorded its files; three files are added (one sorts first), one is modified
    more = [["a.mp4", "video", 1, 1], ["f10.mp4", "video", 1, 1], ["f11.mp4", "video", 1, 1]]
    changed = [files[0][:3] + [9999]]
    now = more[:1] + changed + files[1:] + more[1:]
    second = bulk.plan_chunks(now, first, 4)
    kept = {k: v for k, v in second.items() if k in first}
    assert kept == first  # every earlier chunk holds a current file: kept, with all the files it recorded
    (new,) = set(second) - set(first)
    assert second[new] == [more[0], changed[0], more[1], more[2]]
    # a later plan (a cluster job), after the new chunk recorded its files, gives the same chunks
    assert bulk.plan_chunks(now, second, 4) == second
    # chunks not yet run: dropping a finished one from the files to deal leaves the others as they were
    fresh = bulk.plan_chunks(files, {}, 3)
    done = dict([next(iter(fresh.items()))])
    assert bulk.plan_chunks(files, done, 3) == fresh


def test_a_set_lists_folders_files_and_list_lines_and_names_what_it_skips(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in/sub").mkdir(parents=True)
    for name in ("in/b.mp4", "in/sub/a.jpg", "in/notes.txt", "one.png"):
        (tmp_path / name).write_bytes(b"x" * 3)
    (tmp_path / "list.txt").write_text("# today\none.png\n\nmissing.mp4\n")
    entry = {"folders": ["in"], "files": ["in/b.mp4"], "list": "list.txt", "model": "m", "chunk_size": 2}
    files, problems = bulk.list_set(entry)
    assert [(p, k, s) for p, k, s, _ in files] == [("in/b.mp4", "video", 3), ("in/sub/a.jpg", "image", 3),
                                                  ("one.png", "image", 3)]  # a file named twice: once
    assert problems == [("missing.mp4", "no such file or folder")]
    _, problems = bulk.list_set({**entry, "list": "nope.txt"})
    assert problems[0][0] == "nope.txt" and "list file cannot be read" in problems[0][1]


def test_config_names_a_predict_model_that_exists(repo):
    cfg = pconfig.validate_config(pconfig.load(repo / "config/demo.yaml"))
    cfg["predict"] = {"s": {"model": "lnclip", "folders": ["x"], "chunk_size": 4}}
    with pytest.raises(pconfig.ConfigError, match=r"predict\.s\.model: 'lnclip' is neither a name under models"):
        pconfig.check_config(cfg)
    cfg["predict"]["s"]["model"] = "results/demo/models/lnclip_df"
    pconfig.check_config(cfg)
    bad = pconfig.load(repo / "config/demo.yaml")
    bad["predict"] = {"s": {"model": "lnclip_df"}}
    with pytest.raises(pconfig.ConfigError, match="predict.s"):
        pconfig.validate_config(bad)


def test_slurm_profile_submits_each_chunk_and_gathers_on_the_submit_host(repo, tmp_path):
    from test_jobs import by_rule, plan_with_slurm_profile

    work = copy_workflow(repo, tmp_path)
    cfg = pconfig.load(repo / "config/demo.yaml")
    cfg["predict"] = {"batch": {"files": [f"in/{i}.mp4" for i in range(5)], "model": MODEL, "chunk_size": 2}}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    (work / "in").mkdir()
    for i in range(5):
        (work / f"in/{i}.mp4").write_bytes(b"x")
    (work / MODEL).mkdir(parents=True)
    (work / MODEL / layout.ADAPTER).write_bytes(b"x")
    jobs = by_rule(plan_with_slurm_profile(work, "results/demo/predict/batch.parquet"))
    assert set(jobs) == {"predict_chunk", "predict"} and len(jobs["predict_chunk"]) == 3
    assert [j["local"] for j in jobs["predict"]] == [True]
    for job in jobs["predict_chunk"]:
        assert not job["local"] and job["threads"] == 1 and "slurm_partition" not in job["resources"]
        assert (job["resources"]["mem_mb"], job["resources"]["runtime"]) == tuple(cfg["resources"]["predict"].values())
