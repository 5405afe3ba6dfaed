"""Only what changed reruns, on the real protocol's plan (config.yaml) at the real data's shape.

The downloads are faked as present (markers, and the Celeb-DF folder), the index's ``videos.parquet`` of
each dataset holds the real protocol's rows (FF++ c23: every official video of the real and four fake
methods, FaceShifter, Celeb-DF v2's 518 test videos) dealt into chunks by the index's own code, and every
job is marked done with ``snakemake --touch`` (which records each job's params and code key). Then each
edit users make is planned with a dry run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from pipeline.core import tables
from pipeline.datasets.index import assign_chunks
from test_architecture import BLOCKER
from test_workflow import DOWNLOADS, copy_workflow, one_line_added, planned, reordered, snakemake

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TARGET = "results/report.html"
METHODS = {"DF": "Deepfakes", "F2F": "Face2Face", "FS": "FaceSwap", "NT": "NeuralTextures", "FSh": "FaceShifter"}


def ffpp_rows(dataset: str, methods: list[str]) -> list[dict]:
    """The official FF++ c23 videos of ``methods`` with their splits and pairs, as the ffpp adapter lists them."""
    rows = []
    for split in ("train", "val", "test"):
        for a, b in json.loads((REPO / f"pipeline/assets/ffpp_splits/{split}.json").read_text()):
            for vid in (a, b):
                if "real" in methods:
                    rows.append({"video_id": f"real/{vid}", "path": f"original/{vid}.mp4", "label": 0, "method": "real",
                                 "source_id": f"real/{vid}", "split": split})
            for m in (x for x in methods if x != "real"):
                for target, source in ((f"{a}_{b}", a), (f"{b}_{a}", b)):
                    rows.append({"video_id": f"{m}/{target}", "path": f"{METHODS[m]}/{target}.mp4", "label": 1,
                                 "method": m, "source_id": f"real/{source}", "split": split})
    return [{**r, "dataset": dataset} for r in rows]


def celebdf_rows(dataset: str) -> list[dict]:
    reals = [{"video_id": f"Celeb-real/id{i}_0000", "label": 0, "method": "Celeb-real"} for i in range(178)]
    fakes = [{"video_id": f"Celeb-synthesis/id{i % 59}_id{(i + 1) % 59}_{i:04d}", "label": 1,
              "method": "Celeb-synthesis"} for i in range(340)]
    return [{**r, "path": f"{r['video_id']}.mp4", "source_id": None, "split": "test", "dataset": dataset}
            for r in reals + fakes]


def videos_table(rows: list[dict], chunk_size: int) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema_overrides={"source_id": pl.String})
    df = df.with_columns(frame_count=pl.lit(300), fps=pl.lit(25.0), width=pl.lit(640), height=pl.lit(480),
                         error=pl.lit(None, dtype=pl.String), fingerprint=pl.col("video_id"),
                         mask_path=pl.lit(None, dtype=pl.String))
    return tables.conform(assign_chunks(df, chunk_size), tables.VIDEOS, "videos")


@pytest.fixture(scope="module")
def real(tmp_path_factory, repo):
    return fake_protocol(repo, tmp_path_factory.mktemp("real"))


def fake_protocol(repo: Path, work: Path) -> Path:
    """A copy of the workflow in ``work`` whose real protocol has every job done (touched), its inputs
    faked as present (also used by ``benchmarks/plan.py``)."""
    copy_workflow(repo, work)
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    for ds, entry in cfg["datasets"].items():
        if "path" in entry["source"]:
            (work / entry["source"]["path"]).mkdir(parents=True, exist_ok=True)
    chunk = cfg["faces"]["chunk_size"]
    for ds, rows in (("ffpp_c23", ffpp_rows("ffpp_c23", cfg["datasets"]["ffpp_c23"]["options"]["methods"])),
                     ("ffpp_fsh", ffpp_rows("ffpp_fsh", cfg["datasets"]["ffpp_fsh"]["options"]["methods"])),
                     ("celebdf_v2", celebdf_rows("celebdf_v2"))):
        (work / "results" / ds).mkdir(parents=True)
        tables.write_parquet(videos_table(rows, chunk), work / "results" / ds / "videos.parquet", tables.VIDEOS,
                             "videos")
        (work / "results" / ds / "completeness.json").write_text("[]")
    for marker in ("resources/datasets/ffpp_c23.done", "resources/datasets/ffpp_fsh.done",
                   "resources/datasets/celebdf_v2.done", "resources/weights/clip_vit_l14.done"):
        (work / marker).parent.mkdir(parents=True, exist_ok=True)
        (work / marker).write_text("{}")
    snakemake(work, "--touch", "--cores", "1", TARGET)  # records every job's params and code key
    for line in snakemake(work, "--summary", "--cores", "1", TARGET).stdout.splitlines()[1:]:
        out = work / line.split("\t")[0]
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(b"")
    snakemake(work, "--touch", "--cores", "1", TARGET)  # and their times, in order
    return work


def plan(work: Path, *args: str) -> dict[str, int]:
    return planned(work, "--cores", "2", *args, TARGET)


def test_the_faked_protocol_is_complete_at_the_real_shape(real, tmp_path):
    videos = pl.read_parquet(real / "results/ffpp_c23/videos.parquet")
    assert videos.height == 5000 and videos.filter(pl.col("split") == "train").height == 3600
    assert len(list((real / "results/ffpp_c23/shards").glob("*.tar"))) == 57 + 11 + 11  # train, val, test chunks
    assert plan(real) == {}
    # planned with every chunk listed, its params and code keys computed: no compute package is imported
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", TARGET], cwd=real,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stderr[-3000:]


def test_reordered_config_with_defaults_written_out_plans_nothing(real):
    cfg = yaml.safe_load((real / "config.yaml").read_text())
    cfg["faces"]["chunk_seed"] = 0  # defaults, written out
    cfg["evaluate"]["bootstrap"] = 1000
    cfg["models"]["linear_probe"]["optim"] = {"name": "adamw", "weight_decay": 0.0}
    (real / "config/reordered.yaml").write_text(yaml.safe_dump(reordered(cfg), sort_keys=False))
    assert plan(real, "--configfile=config/reordered.yaml") == {}


@pytest.mark.parametrize("module, expected", [
    ("pipeline/report/build.py", {"report": 1}),
    ("pipeline/evaluation/robustness.py", {"robustness": 2, "report": 1}),
    ("pipeline/predict/resolve.py", {}),
    ("pipeline/__main__.py", {}),
    ("pipeline/workflow/resources.py", {}),
    ("pipeline/datasets/adapters/dfdc.py", {}),  # a family the protocol does not use
    ("pipeline/datasets/adapters/celebdf.py", {"index": 1}),  # Celeb-DF v2: a benchmark-only dataset
    ("pipeline/model/losses.py", {"train": 2, "evaluate": 6, "robustness": 2, "report": 1}),
    ("pipeline/training/selection.py", {"selection": 2, "report": 1}),  # the check, never training
    ("pipeline/faces/extract.py", {"faces": 57 + 11 + 11 + 5 + 9, "manifest": 3, "train": 2, "evaluate": 6,
                                   "robustness": 2, "report": 1}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_code_edit_reruns_only_the_jobs_that_run_that_code(real, module, expected):
    with one_line_added(real, module):
        jobs = plan(real)
    assert jobs == expected
    assert not DOWNLOADS & set(jobs)


def test_adding_a_benchmark_reruns_the_selection_check_but_no_training(real):
    """Each trained model's validation videos are checked again against the new benchmark's test videos
    (its index first); training takes the check as ancient() input and does not rerun."""
    cfg = yaml.safe_load((real / "config.yaml").read_text())
    cfg["benchmarks"]["dfdc"] = {"dataset": "dfdc", "split": "test"}
    (real / "config/more.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = plan(real, "--configfile=config/more.yaml")
    assert jobs == {"download_dataset": 1, "index": 1, "manifest": 1, "selection": 2, "evaluate": 2, "report": 1}


def test_a_missing_selection_record_is_named_and_running_the_check_alone_keeps_the_model(real):
    """A refused (then fixed) or deleted check leaves no record; Snakemake would retrain with it. The plan
    says so, and running the check alone first keeps the adapter."""
    record = real / "results/models/lnclip_df/selection.json"
    record.unlink()
    cfg = yaml.safe_load((real / "config.yaml").read_text())
    cfg["report"]["title"] = "another title"  # the report reruns, and wants every record
    (real / "config/title.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(real, "-n", "--configfile=config/title.yaml", "--cores", "2", TARGET)
    assert ("results/models/lnclip_df/selection.json is missing (a refused or deleted check): once the check runs, "
            "lnclip_df is retrained; to keep its adapter, run `snakemake results/models/lnclip_df/selection.json` "
            "(same config) first") in proc.stdout + proc.stderr
    snakemake(real, "--configfile=config/title.yaml", "--cores", "1", "results/models/lnclip_df/selection.json")
    assert json.loads(record.read_text())["overlaps"] == 0
    assert plan(real, "--configfile=config/title.yaml") == {"report": 1}
