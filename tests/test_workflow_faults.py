"""Faults through real Snakemake runs of a small demo configuration.

* Bad media (a truncated MP4, a zero-byte file, a text file named .mp4, a 1-frame video, a video whose
  header promises more frames than it holds, a 4K video, a video with no face) go index -> faces ->
  manifest -> evaluate -> report: the run completes, each is in the report with its reason, the
  counts add up.
* Kill and resume: a ``faces`` job SIGKILLed while writing its shard, then the whole ``snakemake``
  SIGKILLed mid-run (a second ``snakemake`` started meanwhile is refused by the lock); the same command
  again (after ``--unlock`` for the stale lock) completes with outputs byte-identical to those of the
  uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest
import yaml
from skimage import data

from pipeline.core import video
from test_workflow import copy_workflow, snakemake

pytestmark = pytest.mark.slow

CONFIG = "config/small.yaml"
RESULTS = "results/small"
TARGET = f"{RESULTS}/report.html"
COMMAND = ["--configfile", CONFIG, "--cores", "2", TARGET]
HEAD = np.ascontiguousarray(data.astronaut()[20:260, 110:330])


def frame(w: int, h: int, scale: float = 1.0, face: bool = True) -> np.ndarray:
    img = np.full((h, w, 3), 80, np.uint8)
    if face:
        head = cv2.resize(HEAD, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        hh, hw = head.shape[:2]
        y, x = (h - hh) // 2, (w - hw) // 2
        img[y:y + hh, x:x + hw] = head
    return img


# the bad media that give no crop for some frames, and the reason the report must give
PROBLEMS = {"truncated": "decode_error", "zero_bytes": "decode_error", "text": "decode_error",
            "header_lies": "read_failed", "no_face": "no_face"}


def bad_media(root: Path) -> None:
    """A csv-adapter dataset of bad media (and two good videos, so the benchmark has both labels)."""
    v = root / "videos"
    v.mkdir(parents=True)
    good = [frame(320, 240) for _ in range(6)]
    video.write_video(v / "good_real.mp4", good)
    video.write_video(v / "good_fake.mp4", [f[:, ::-1].copy() for f in good])
    whole = video.write_video(root / "whole.mp4", good).read_bytes()
    (v / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (v / "zero_bytes.mp4").write_bytes(b"")
    (v / "text.mp4").write_text("this is a text file, not a video\n")
    video.write_video(v / "one_frame.mp4", good[:1])
    # an MJPG AVI cut after ~40 % of its bytes: its header still promises all 10 frames
    avi = cv2.VideoWriter(str(root / "full.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for _ in range(10):
        avi.write(good[0])
    avi.release()
    full = (root / "full.avi").read_bytes()
    (v / "header_lies.avi").write_bytes(full[: int(len(full) * 0.4)])
    video.write_video(v / "uhd_4k.mp4", [frame(3840, 2160, scale=3.0)] * 2)
    video.write_video(v / "no_face.mp4", [frame(320, 240, face=False)] * 4)
    ids = ["good_real", "good_fake", "truncated", "zero_bytes", "text", "one_frame", "header_lies", "uhd_4k",
           "no_face"]
    lines = ["video_id,path,label,split"] + [
        f"{vid},videos/{vid}{'.avi' if vid == 'header_lies' else '.mp4'},{int(vid != 'good_real' and i % 2)},test"
        for i, vid in enumerate(ids)]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def small_workflow(repo: Path, dest: Path) -> Path:
    """The workflow with the demo shrunk to one model, few videos and frames, plus the bad media."""
    dest.mkdir()
    work = copy_workflow(repo, dest)
    cfg = yaml.safe_load((work / "config/demo.yaml").read_text())
    cfg["results"] = RESULTS
    cfg["datasets"]["demo"]["source"]["demo"].update(counts={"train": 4, "val": 2, "test": 2}, frames=12)
    cfg["datasets"].pop("demo_shift")
    cfg["datasets"]["bad"] = {"adapter": "csv", "source": {"path": "media/bad"}}
    cfg["faces"].update(num_frames=4, chunk_size=6, threads=1)
    cfg["training"]["optim"].update(epochs=3, cycle_epochs=3, batch_size=8)
    cfg["models"] = {"lnclip_df": {}}
    cfg["benchmarks"] = {"demo": {"dataset": "demo", "split": "test"}, "bad": {"dataset": "bad", "split": "test"}}
    cfg["robustness"] = {}
    cfg["evaluate"]["bootstrap"] = 20
    (work / CONFIG).write_text(yaml.safe_dump(cfg, sort_keys=False))
    bad_media(work / "media" / "bad")
    return work


def outputs(work: Path) -> dict[str, bytes]:
    """Every output that must be byte-identical run to run: shards, tables, stats, adapters, scores,
    metrics. Not the job logs and benchmark files (times), the training work state, the training log's
    ``seconds`` column (compared apart) or the report (it shows run times)."""
    out = {}
    for p in sorted((work / RESULTS).rglob("*")):
        rel = p.relative_to(work / RESULTS).as_posix()
        if (p.is_file() and rel.split("/")[0] not in ("logs", "benchmarks", "work")
                and p.name not in ("train_log.parquet", "report.html")):
            out[rel] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory, repo):
    work = small_workflow(repo, tmp_path_factory.mktemp("reference") / "w")
    t0 = time.monotonic()
    snakemake(work, *COMMAND)
    return work, time.monotonic() - t0


def test_bad_media_through_the_workflow_are_reported_with_their_reasons(reference):
    work, _ = reference
    expected = PROBLEMS
    frames = pl.read_parquet(work / RESULTS / "bad" / "frames.parquet")
    crops = frames.group_by("video_id").agg(pl.col("key").is_not_null().sum().alias("n"))
    crops = dict(crops.iter_rows())
    assert crops["one_frame"] == 1 and crops["uhd_4k"] == 2 and crops["good_real"] == 4
    assert crops["header_lies"] >= 1 and all(crops[v] == 0 for v in ("truncated", "zero_bytes", "text", "no_face"))

    stats = json.loads((work / RESULTS / "bad" / "stats.json").read_text())
    assert stats["videos"] == 9 and stats["videos_without_crops"] == 4
    assert stats["frames_sampled"] == stats["faces"] + sum(
        n for r, n in stats["failures"].items() if r not in ("decode_error", "video_error"))
    assert stats["failures"]["decode_error"] == 3
    listed = {p["video_id"]: p for p in stats["problem_videos"]}
    assert set(listed) == set(expected)
    for vid, reason in expected.items():
        assert reason in listed[vid]["reasons"], (vid, listed[vid])

    metrics = json.loads((work / RESULTS / "eval" / "lnclip_df" / "bad" / "metrics.json").read_text())
    assert metrics["data"]["videos"] == 9 and metrics["data"]["videos_without_crops"] == 4
    assert metrics["video"]["n"] == 5  # the videos with a crop are scored

    html = (work / TARGET).read_text()
    for vid, reason in expected.items():
        assert f'data-problem="bad/{vid}"' in html
        row = html.split(f'data-problem="bad/{vid}"', 1)[1].split("</tr>", 1)[0]
        assert reason in row, (vid, row)


def _pids_running(work: Path, script: str) -> list[int]:
    """Processes whose command line runs ``script`` (a Snakemake job's copy) inside ``work``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if script in cmd and str(work) in cmd:
                found.append(int(entry.name))
    return found


def _wait_for(predicate, proc, timeout: float = 300):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        got = predicate()
        if got:
            return got
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended ({proc.returncode}) before the moment to kill it:\n"
                                 f"{proc.stdout.read()[-3000:] if proc.stdout else ''}")
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the moment to kill")


def _start(work: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snakemake", *COMMAND], cwd=work, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_killed_jobs_and_snakemake_then_the_same_command_gives_identical_outputs(reference, tmp_path, repo):
    ref, _ = reference
    work = small_workflow(repo, tmp_path / "w")
    shards = work / RESULTS / "demo" / "shards"

    # 1. a faces job SIGKILLed while its shard is half written
    run = _start(work)

    def half_written_shard():
        tmp = [p for p in shards.glob("*.tar.tmp") if p.stat().st_size > 0] if shards.is_dir() else []
        pids = _pids_running(work, "faces.py") if tmp else []
        return (tmp[0], pids) if pids else None

    tmp_tar, pids = _wait_for(half_written_shard, run)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    out = run.communicate(timeout=600)[0]
    assert run.returncode != 0 and "Error in rule faces" in out, out[-3000:]
    final = tmp_tar.with_name(tmp_tar.name.removesuffix(".tmp"))
    assert not final.exists() and not final.with_suffix(".parquet").exists()  # never taken as complete

    # 2. the same command again; a second snakemake started while it runs is refused by the lock...
    run = _start(work)
    _wait_for(lambda: _pids_running(work, "faces.py"), run)
    second = snakemake(work, *COMMAND, check=False)
    assert second.returncode != 0 and "Directory cannot be locked" in second.stdout + second.stderr
    assert run.poll() is None  # (the first run was still going)
    # ...and the whole snakemake (its jobs too) is SIGKILLed once training has saved a state
    state = work / RESULTS / "work" / "train" / "lnclip_df" / "state.json"
    adapter = work / RESULTS / "models" / "lnclip_df" / "adapter.safetensors"
    _wait_for(lambda: state.exists() or adapter.exists(), run, timeout=600)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    assert not (work / RESULTS / "eval").exists()  # killed mid-run: nothing evaluated yet

    # 3. the stale lock says what to do; after --unlock the same command completes
    stale = snakemake(work, *COMMAND, check=False)
    assert stale.returncode != 0 and "--unlock" in stale.stdout + stale.stderr
    snakemake(work, "--configfile", CONFIG, "--unlock")
    snakemake(work, *COMMAND)

    got, want = outputs(work), outputs(ref)
    assert sorted(got) == sorted(want)
    assert {k for k in want if k.endswith(".tar")} and {k for k in want if k.endswith("metrics.json")}
    assert [k for k in want if got[k] != want[k]] == []
    log = f"{RESULTS}/models/lnclip_df/train_log.parquet"  # equal but for its seconds column
    assert pl.read_parquet(work / log).drop("seconds").equals(pl.read_parquet(ref / log).drop("seconds"))
    assert not list((work / RESULTS).rglob("*.tmp"))
