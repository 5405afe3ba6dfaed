"""End to end: the demo workflow in a temporary copy, then Snakemake's rerun decisions.

One session-scoped run of the demo (the README's command) produces the report; the other tests
ask Snakemake, with dry runs against that run's metadata, what a change would rerun.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

pytestmark = pytest.mark.slow

REPO_DEMO = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/demo.yaml").read_text())
M = len(REPO_DEMO["models"])  # models of the demo: each has one train job and one evaluation per benchmark
LR = sum(m.get("kind") == "logistic" for m in REPO_DEMO["models"].values())  # frozen-feature models
# features jobs (one per dataset split that a logistic model reads: demo train/val/test, demo_shift test)
FEAT_DEMO, FEAT_SHIFT = (3, 1) if LR else (0, 0)
# robustness jobs: one per model x benchmark that the demo's robustness section lists
R = len(REPO_DEMO["robustness"].get("models") or REPO_DEMO["models"]) * len(REPO_DEMO["robustness"]["benchmarks"])


def jobs_of(**counts) -> dict[str, int]:
    """Expected plan, without the rules that have no job in it."""
    return {k: v for k, v in counts.items() if v}


COPY = ["Snakefile", "config.yaml", "config", "workflow", "profiles", "envs", "pipeline"]
DEMO_TARGET = "results/demo/report.html"


def copy_workflow(repo: Path, dest: Path) -> Path:
    for name in COPY:
        src = repo / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(work: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=work, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def planned(work: Path, *args: str) -> dict[str, int]:
    """Rule -> number of jobs a dry run would run (empty when nothing is to be done).

    ``--configfile`` takes several files: put another option (``--cores``) before the target."""
    proc = snakemake(work, "-n", *args)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    jobs = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m or m.group(1) == "total":
            break
        jobs[m.group(1)] = int(m.group(2))
    return jobs


def demo_variant(work: Path, name: str, edit) -> str:
    cfg = yaml.safe_load((work / "config/demo.yaml").read_text())
    edit(cfg)
    path = work / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return f"config/{name}.yaml"


@pytest.fixture(scope="session")
def demo(tmp_path_factory, repo):
    work = copy_workflow(repo, tmp_path_factory.mktemp("workflow"))
    snakemake(work, "--workflow-profile", "profiles/demo", timeout=2400)  # the README's command
    assert (work / DEMO_TARGET).is_file()
    return work


def test_demo_run_produces_metrics_for_every_model_and_benchmark(demo):
    cfg = yaml.safe_load((demo / "config/demo.yaml").read_text())
    results = demo / "results/demo"
    for model in cfg["models"]:
        for bench in cfg["benchmarks"]:
            metrics = json.loads((results / f"eval/{model}/{bench}/metrics.json").read_text())
            video = metrics["video"]
            assert 0.0 <= video["auroc"] <= 1.0, (model, bench)
            assert video["n_real"] > 0 and video["n_fake"] > 0
            scores = pl.read_parquet(results / f"eval/{model}/{bench}/scores.parquet")
            assert scores["p_fake"].is_between(0, 1).all()
            assert scores["video_id"].n_unique() == video["n"]
        adapter = results / f"models/{model}/adapter.safetensors"
        assert 0 < adapter.stat().st_size < 200_000  # only the trained parameters
    # The demo's models learn: in domain, LNCLIP-DF separates the videos and beats the linear probe;
    # the shifted benchmark (another blending, another background) costs it some of that. The margins are
    # what every CPU's arithmetic gives (AVX2 and AVX-512 kernels round differently and training amplifies
    # it): 20 real and 20 fake test videos make each AUROC a count of 400 pairs, and a margin of 0.05 is
    # 20 of them. Smallest leads measured: 0.0875 in domain and 0.1075 shifted (an Intel Xeon with torch's
    # AVX2 kernels), 0.0975 in domain (its AVX-512 ones).
    auroc = {(m, b): json.loads((results / f"eval/{m}/{b}/metrics.json").read_text())["video"]["auroc"]
             for m in cfg["models"] for b in cfg["benchmarks"]}
    assert auroc["lnclip_df", "demo"] >= 0.90, auroc
    assert auroc["lnclip_df", "demo"] > auroc["linear_probe", "demo"] + 0.05, auroc
    assert auroc["lnclip_df", "demo_shift"] > auroc["linear_probe", "demo_shift"] + 0.05, auroc
    assert auroc["lnclip_df", "demo_shift"] <= auroc["lnclip_df", "demo"] - 0.05, auroc
    html = (results / "report.html").read_text()
    assert "say nothing about real deepfakes" in html
    for name in list(cfg["models"]) + list(cfg["benchmarks"]):
        assert name in html


def test_demo_shards_match_the_manifest(demo):
    import webdataset as wds

    results = demo / "results/demo"
    frames = pl.read_parquet(results / "demo/frames.parquet")
    crops = frames.filter(pl.col("key").is_not_null())
    # HOG finds the face in nearly every frame (most demo videos are somewhat out of focus by design)
    assert crops.height > 0.85 * frames.height
    for shard, group in crops.group_by("shard"):
        keys = [s["__key__"] for s in wds.WebDataset(str(demo / shard[0]), shardshuffle=False)]
        assert sorted(keys) == sorted(group["key"].to_list())
    stats = json.loads((results / "demo/stats.json").read_text())
    assert stats["faces"] == crops.height


def test_unreadable_video_is_recorded_and_the_run_goes_on(demo):
    results = demo / "results/demo"
    videos = pl.read_parquet(results / "demo_shift/videos.parquet")
    broken = videos.filter(pl.col("error").is_not_null())
    assert broken.height == 1
    frames = pl.read_parquet(results / "demo_shift/frames.parquet")
    rows = frames.filter(pl.col("video_id") == broken["video_id"][0])
    assert rows["status"].to_list() == ["decode_error"] and rows["key"].is_null().all()
    stats = json.loads((results / "demo_shift/stats.json").read_text())
    assert stats["unreadable_videos"] == 1 and stats["failures"].get("decode_error") == 1


def test_same_command_again_does_nothing(demo):
    assert planned(demo, "--workflow-profile", "profiles/demo") == {}
    assert planned(demo, "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET) == {}


def test_evaluation_parameter_reruns_only_evaluation_and_report(demo):
    cfg = demo_variant(demo, "eval_change", lambda c: c["evaluate"].update(bootstrap=50))
    # the robustness jobs score with the same evaluation settings
    assert planned(demo, "--configfile", cfg, "--cores", "2", DEMO_TARGET) == {"evaluate": 2 * M, "robustness": R,
                                                                                "report": 1}


def test_robustness_strength_reruns_only_robustness_and_report(demo):
    cfg = demo_variant(demo, "robust_change", lambda c: c["robustness"].update(noise=[10, 20, 30]))
    assert planned(demo, "--configfile", cfg, "--cores", "2", DEMO_TARGET) == {"robustness": R, "report": 1}


def test_demo_robustness_curves_and_metrics_csv(demo):
    import csv

    results = demo / "results/demo"
    cfg = yaml.safe_load((demo / "config/demo.yaml").read_text())
    with open(results / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    video_auroc = {(r["model"], r["benchmark"]): r["value"] for r in rows
                   if r["level"] == "video" and r["method"] == "all" and r["metric"] == "auroc"}
    for model in cfg["models"]:
        for bench in cfg["benchmarks"]:
            metrics = json.loads((results / f"eval/{model}/{bench}/metrics.json").read_text())
            assert float(video_auroc[(model, bench)]) == metrics["video"]["auroc"]
    for model in cfg["robustness"]["models"]:
        res = json.loads((results / f"eval/{model}/demo/robustness.json").read_text())
        want = [(k, float(x)) for k, v in cfg["robustness"].items() if k not in ("benchmarks", "models") for x in v]
        assert sorted((p["kind"], p["strength"]) for p in res["points"]) == sorted(want)
        for p in res["points"]:
            assert float(video_auroc[(model, p["benchmark"])]) == p["video"]["auroc"]
            assert p["counts"]["videos"] == json.loads((results / f"eval/{model}/demo/metrics.json").read_text())[
                "counts"]["videos"]
    html = (results / "report.html").read_text()
    assert html.count('class="robustness" data-benchmark="demo"') == 1


@contextlib.contextmanager
def one_line_added(work: Path, module: str):
    """An edit that changes a module's code (not only its comments): one statement appended."""
    path = work / module
    original = path.read_text()
    path.write_text(original + "\nUNUSED_CONSTANT = 1\n")
    try:
        yield
    finally:
        path.write_text(original)


def reordered(node):
    """The same config with every mapping's keys in reverse order."""
    if isinstance(node, dict):
        return {k: reordered(node[k]) for k in reversed(list(node))}
    return [reordered(v) for v in node] if isinstance(node, list) else node


GRADIENT = M - LR  # models whose training runs the losses (not the logistic baseline)
DOWNLOADS = {"download_dataset", "download_weights", "download_face_weights"}


def test_reordered_config_with_defaults_written_out_plans_nothing(demo):
    def edit(c):
        c["faces"]["min_side"] = 64  # the schema's defaults, written out
        c["evaluate"]["workers"] = 0
        c["models"]["lnclip_df"] = {"kind": "train", "optim": {"name": "adamw"}, "data": {"order": "shuffle"}}
    path = demo / "config" / "reordered.yaml"
    cfg = yaml.safe_load((demo / "config/demo.yaml").read_text())
    edit(cfg)
    cfg = reordered(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, default_flow_style=True))  # another YAML style too
    assert list(cfg)[0] != list(REPO_DEMO)[0]
    assert planned(demo, "--configfile", "config/reordered.yaml", "--cores", "2", DEMO_TARGET) == {}


@pytest.mark.parametrize("module, expected", [
    ("pipeline/report/tidy.py", {"report": 1}),
    ("pipeline/evaluation/robustness.py", {"robustness": R, "report": 1}),
    ("pipeline/predict/files.py", {}),
    ("pipeline/__main__.py", {}),
    ("pipeline/workflow/resources.py", {}),
    ("pipeline/datasets/adapters/ffpp.py", {}),  # a family the demo does not use
    ("pipeline/datasets/adapters/folders.py", {"index": 1}),  # demo_shift's, a benchmark-only dataset
    ("pipeline/model/losses.py", {"train": GRADIENT, "evaluate": 2 * GRADIENT, "robustness": R, "report": 1}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_code_edit_reruns_only_the_jobs_that_run_that_code(demo, module, expected):
    with one_line_added(demo, module):
        assert planned(demo, "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET) == expected


def test_a_faces_stage_edit_reruns_faces_onward_never_a_download(demo):
    with one_line_added(demo, "pipeline/faces/extract.py"):
        jobs = planned(demo, "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET)
    chunks = len(list((demo / "results/demo").glob("*/shards/*.tar")))
    assert jobs == jobs_of(faces=chunks, manifest=2, features=FEAT_DEMO + FEAT_SHIFT, train=M, evaluate=2 * M,
                           robustness=R, report=1)
    assert not DOWNLOADS & set(jobs)


def test_code_edits_run_what_they_planned_then_nothing(demo_copy):
    """Two edits run for real: the report's (only the report runs) and the adapter of the benchmark-only
    dataset (its index runs, writes the same videos.parquet, and nothing built from it runs)."""
    with one_line_added(demo_copy, "pipeline/report/tidy.py"):
        assert ran(run_demo(demo_copy)) == {"report": 1}
        assert planned(demo_copy, "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET) == {}
    assert ran(run_demo(demo_copy)) == {"report": 1}  # the line taken out again: the report as it was
    videos = (demo_copy / "results/demo/demo_shift/videos.parquet").read_bytes()
    with one_line_added(demo_copy, "pipeline/datasets/adapters/folders.py"):
        assert ran(run_demo(demo_copy)) == {"index": 1}
        assert (demo_copy / "results/demo/demo_shift/videos.parquet").read_bytes() == videos
        assert planned(demo_copy, "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET) == {}


def ran(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> jobs that a real run finished (its log's "Finished jobid: N (Rule: x)" lines)."""
    rules = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", proc.stdout + proc.stderr)
    return {r: rules.count(r) for r in sorted(set(rules)) if r != "all"}


def test_adding_a_benchmark_runs_only_its_branch(demo):
    def add(c):
        c["datasets"]["demo_extra"] = {"adapter": "csv", "source": {"demo": {
            "counts": {"test": 2}, "frames": 12, "style": "texture"}}}
        c["benchmarks"]["demo_extra"] = {"dataset": "demo_extra", "split": "test"}

    cfg = demo_variant(demo, "add_bench", add)
    jobs = planned(demo, "--configfile", cfg, "--cores", "2", DEMO_TARGET)
    # faces jobs of the new dataset are added once its index checkpoint has run; each trained model's
    # validation videos are checked against the new test videos, and nothing is retrained
    assert jobs == jobs_of(download_dataset=1, index=1, manifest=1, features=LR, selection=GRADIENT, evaluate=M,
                           report=1)


@pytest.fixture
def demo_copy(demo, tmp_path):
    """A copy of the finished demo run (results, downloads and Snakemake's metadata) to break."""
    work = tmp_path / "copy"
    shutil.copytree(demo, work, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "locks"))
    return work


def run_demo(work: Path, cfg: str = "config/demo.yaml", *extra: str) -> subprocess.CompletedProcess:
    return snakemake(work, "--configfile", cfg, "--cores", "2", *extra, DEMO_TARGET)


def test_default_profile_is_in_force(demo):
    proc = snakemake(demo, "-n", "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET)
    assert "Using workflow specific profile profiles/default" in proc.stdout + proc.stderr


def test_missing_index_rebuilds_everything_built_from_it(demo_copy):
    """A deleted videos.parquet (what a failed index leaves) is rebuilt with all that depends on it."""
    (demo_copy / "results/demo/demo_shift/videos.parquet").unlink()
    jobs = planned(demo_copy, "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET)
    assert jobs == jobs_of(index=1, manifest=1, features=FEAT_SHIFT, selection=GRADIENT, evaluate=M, report=1)
    (demo_copy / "results/demo/demo/videos.parquet").unlink()
    jobs = planned(demo_copy, "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET)
    assert jobs == jobs_of(index=2, manifest=2, features=FEAT_DEMO + FEAT_SHIFT, selection=GRADIENT, train=M,
                           evaluate=2 * M, robustness=R, report=1)


def test_failed_index_does_not_leave_stale_results(demo_copy):
    """An edit makes the index fail (Snakemake deletes videos.parquet); once the edit is undone, one
    run rebuilds the index and everything downstream, and then nothing is left to do."""
    cfg = demo_variant(demo_copy, "bad_class", lambda c: c["datasets"]["demo_shift"].update(
        options={"real": ["no_such_class"]}))
    proc = snakemake(demo_copy, "--configfile", cfg, "--cores", "2", DEMO_TARGET, check=False)
    assert proc.returncode != 0
    assert "no_such_class" in proc.stdout + proc.stderr  # the cause, on the console
    assert not (demo_copy / "results/demo/demo_shift/videos.parquet").exists()
    jobs = planned(demo_copy, "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET)
    assert jobs == jobs_of(index=1, manifest=1, features=FEAT_SHIFT, selection=GRADIENT, evaluate=M, report=1)
    run_demo(demo_copy)
    assert planned(demo_copy, "--configfile", "config/demo.yaml", "--cores", "2", DEMO_TARGET) == {}


def test_adapter_option_and_source_edits_take_one_run(demo_copy):
    # An adapter option re-indexes without re-downloading, in one run; the same rows: nothing else runs.
    cfg = demo_variant(demo_copy, "opt", lambda c: c["datasets"]["demo_shift"].update(options={"real": ["REAL"]}))
    assert planned(demo_copy, "--configfile", cfg, "--cores", "2", DEMO_TARGET) == {"index": 1}
    assert ran(run_demo(demo_copy, cfg)) == {"index": 1, "report": 1}  # the report shows the config
    assert planned(demo_copy, "--configfile", cfg, "--cores", "2", DEMO_TARGET) == {}
    # A source edit re-fetches and re-indexes (and re-crops the new videos), in one run.
    cfg = demo_variant(demo_copy, "src", lambda c: (c["datasets"]["demo_shift"].update(options={"real": ["REAL"]}),
                                                     c["datasets"]["demo_shift"]["source"]["demo"].update(frames=20)))
    jobs = planned(demo_copy, "--configfile", cfg, "--cores", "2", DEMO_TARGET)
    # the index is a checkpoint: what reads its rows is planned once it has run and its rows are known
    assert jobs == {"download_dataset": 1, "index": 1}
    done = ran(run_demo(demo_copy, cfg))
    assert {"download_dataset", "index", "faces", "manifest", "evaluate", "report"} <= set(done), done
    assert done["evaluate"] == M and "train" not in done and "download_weights" not in done, done
    assert planned(demo_copy, "--configfile", cfg, "--cores", "2", DEMO_TARGET) == {}
    assert pl.read_parquet(demo_copy / "results/demo/demo_shift/videos.parquet")["frame_count"].max() == 20
    # New content under the same file names and probe values (another blend): the faces jobs see it.
    shards = demo_copy / "results/demo/demo_shift/shards"
    before = {p.name: p.read_bytes() for p in shards.glob("*.tar")}
    cfg = demo_variant(demo_copy, "content", lambda c: (
        c["datasets"]["demo_shift"].update(options={"real": ["REAL"]}),
        c["datasets"]["demo_shift"]["source"]["demo"].update(frames=20, blend={"color_shift": 0.2})))
    run_demo(demo_copy, cfg)
    after = {p.name: p.read_bytes() for p in shards.glob("*.tar")}
    frames = pl.read_parquet(demo_copy / "results/demo/demo_shift/frames.parquet").filter(pl.col("key").is_not_null())
    with_fakes = {Path(s).name for s in frames.filter(pl.col("label") == 1)["shard"]}
    # every shard holding a fake crop is new; a shard of real videos only (byte-identical) was not redone
    assert before.keys() == after.keys() and {n for n in before if before[n] != after[n]} == with_fakes
    assert 0 < len(with_fakes) <= len(before)
    assert planned(demo_copy, "--configfile", cfg, "--cores", "2", DEMO_TARGET) == {}


def test_weights_settings_edit_retrains(demo):
    cfg = demo_variant(demo, "wider", lambda c: c["weights"]["tiny_clip"]["random"].update(hidden_size=96))
    assert planned(demo, "--configfile", cfg, "--cores", "2", DEMO_TARGET) == {
        "download_weights": 1, **jobs_of(features=FEAT_DEMO + FEAT_SHIFT), "train": M, "evaluate": 2 * M,
        "robustness": R, "report": 1}


def test_benchmark_on_one_split_crops_only_that_split(demo_copy):
    def add(c):
        c["datasets"]["demo_extra"] = {"adapter": "csv", "source": {"demo": {
            "counts": {"train": 2, "test": 2}, "frames": 12, "style": "texture"}}}
        c["benchmarks"]["demo_extra"] = {"dataset": "demo_extra", "split": "test"}

    cfg = demo_variant(demo_copy, "one_split", add)
    run_demo(demo_copy, cfg)
    shards = sorted(p.name for p in (demo_copy / "results/demo/demo_extra/shards").iterdir())
    assert shards == ["test-00000.parquet", "test-00000.tar"]
    videos = pl.read_parquet(demo_copy / "results/demo/demo_extra/videos.parquet")
    assert sorted(set(videos["split"])) == ["test", "train"]  # the index lists both
    stats = json.loads((demo_copy / "results/demo/demo_extra/stats.json").read_text())
    n_test = videos.filter(pl.col("split") == "test").height
    assert n_test < videos.height and stats["videos"] == n_test and stats["videos_by_split"] == {"test": n_test}


def test_failing_download_prints_its_cause(demo_copy):
    def add(c):
        c["datasets"]["gated"] = {"adapter": "celebdf", "source": {"path": "/nonexistent/Celeb-DF-v2"}}
        c["benchmarks"]["gated"] = {"dataset": "gated", "split": "test"}

    cfg = demo_variant(demo_copy, "gated", add)
    proc = snakemake(demo_copy, "--configfile", cfg, "--cores", "2", DEMO_TARGET, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "datasets.gated.source.path: /nonexistent/Celeb-DF-v2 does not exist" in out


def test_bad_config_value_fails_naming_the_key(demo):
    cfg = demo_variant(demo, "bad", lambda c: c["faces"].update(num_frames="many", num_frame=8))
    proc = snakemake(demo, "-n", "--configfile", cfg, "--cores", "2", DEMO_TARGET, check=False)
    assert proc.returncode != 0
    out = proc.stderr + proc.stdout
    assert "faces.num_frames: 'many' is not of type 'integer'" in out
    assert "faces.num_frame: unknown key; did you mean num_frames?" in out
    assert len(out.splitlines()) < 12 and "Failed validating" not in out  # no schema or config dump


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, repo):
    return copy_workflow(repo, tmp_path_factory.mktemp("fresh"))


def test_real_config_plans_the_protocol_without_data_or_credentials(fresh):
    jobs = planned(fresh, "results/report.html")
    # FF++ c23, FaceShifter (read from the FF++ download) and Celeb-DF v2, out of the box
    assert jobs == {"download_dataset": 3, "download_weights": 1, "index": 3, "manifest": 3, "selection": 2,
                    "train": 2, "evaluate": 6, "robustness": 2, "report": 1}


def test_planning_warns_about_missing_kaggle_credentials_without_printing_any(fresh, tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE")} | {"HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "results/report.html"], cwd=fresh, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    warning = "datasets.ffpp_c23.source.kaggle: downloading Kaggle dataset 'xdxd003/ff-c23' needs Kaggle credentials"
    assert warning in out and out.index(warning) < out.index("Job stats:")  # before any job
    env |= {"KAGGLE_USERNAME": "someone", "KAGGLE_KEY": "0123456789abcdef"}
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "results/report.html"], cwd=fresh, env=env,
                         capture_output=True, text=True, timeout=600)
    assert "needs Kaggle credentials" not in out.stdout + out.stderr
    assert "0123456789abcdef" not in out.stdout + out.stderr and "someone" not in out.stdout + out.stderr


def test_every_listed_benchmark_is_planned_and_missing_folders_are_named(tmp_path, repo):
    work = copy_workflow(repo, tmp_path)
    text = (work / "config.yaml").read_text()
    enabled = re.sub(r"(?m)^  # (\w+: \{dataset: \w+, split: test\})$", r"  \1", text)
    (work / "config.yaml").write_text(enabled)
    benchmarks = yaml.safe_load(enabled)["benchmarks"]
    assert {"ffpp_c23", "ffpp_fsh", "celebdf_v2", "dfd", "dfdc", "dfdcp", "ffiw", "deepspeak_v1", "deepspeak_v2",
            "celebdf_pp", "uadfv"} <= set(benchmarks)
    proc = snakemake(work, "-n", "results/report.html")
    out = proc.stdout + proc.stderr
    for name in benchmarks:
        assert f"results/eval/lnclip_df/{name}/metrics.json" in out
        if name not in ("ffpp_c23", "ffpp_fsh"):  # the datasets given as path: and absent here
            assert f"benchmark {name!r} needs dataset" in out and f"`{name}: ...` under benchmarks" in out
    jobs = planned(work, "results/report.html")
    datasets = len({b["dataset"] for b in benchmarks.values()})
    assert jobs["evaluate"] == 2 * len(benchmarks) and jobs["download_dataset"] == jobs["index"] == datasets


def test_lint_is_clean(fresh):
    proc = snakemake(fresh, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_are_snakefmt_formatted(fresh):
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"], cwd=fresh,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_command_line_predict_matches_the_evaluation_scores(demo, tmp_path):
    """`python -m pipeline predict` from the workflow's folder with only --model, on a benchmark video, an
    unaligned frame of another and a folder holding a third, gives the evaluate rule's scores."""
    import cv2

    from pipeline.core.video import read_frames

    results = demo / "results/demo"
    scores = pl.read_parquet(results / "eval/lnclip_df/demo/scores.parquet")
    videos = pl.read_parquet(results / "demo/videos.parquet").filter(pl.col("split") == "test")
    ids = sorted(set(scores["video_id"]))[:3]
    path = dict(zip(videos["video_id"], videos["path"]))
    frame_idx = int(scores.filter(pl.col("video_id") == ids[1])["frame_idx"][2])
    (frame,) = [f for _, f in read_frames(demo / path[ids[1]], [frame_idx])]
    cv2.imwrite(str(tmp_path / "frame.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (tmp_path / "folder").mkdir()
    shutil.copy(demo / path[ids[2]], tmp_path / "folder" / "clip.mp4")
    inputs = [path[ids[0]], str(tmp_path / "frame.png"), str(tmp_path / "folder")]
    for out in ("o.csv", "o.json"):
        subprocess.run([sys.executable, "-m", "pipeline", "predict", "--model", "results/demo/models/lnclip_df",
                        *inputs, "--out", str(tmp_path / out)], capture_output=True, text=True, check=True, cwd=demo)
    rows = pl.read_csv(tmp_path / "o.csv")
    assert rows.equals(pl.DataFrame(json.loads((tmp_path / "o.json").read_text()), schema=rows.schema))
    video = scores.group_by("video_id").agg(pl.col("p_fake").mean(), pl.len())
    expected = [video.filter(pl.col("video_id") == i)["p_fake"][0] for i in (ids[0], ids[2])]
    frame_score = scores.filter((pl.col("video_id") == ids[1]) & (pl.col("frame_idx") == frame_idx))["p_fake"][0]
    assert rows["p_fake"].to_list() == pytest.approx([expected[0], frame_score, expected[1]], abs=1e-5)
    assert rows["frames_scored"].to_list() == [video.filter(pl.col("video_id") == ids[0])["len"][0], 1,
                                               video.filter(pl.col("video_id") == ids[2])["len"][0]]
    assert rows["path"].to_list()[:2] == inputs[:2] and rows["status"].to_list() == ["ok"] * 3



def test_the_scoring_service_on_the_demo_model_in_headless_chromium(demo, tmp_path):
    """`python -m pipeline serve` on the demo's LNCLIP-DF, its page driven in headless Chromium: a demo test
    video shows predict's p(fake); a text file named .mp4 gets a clear message and the next upload still
    works; the JSON API answers the same numbers."""
    import httpx

    from test_serve import CHROMIUM, chromium_page, score_in_page, served_by_the_command

    if CHROMIUM is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    videos = pl.read_parquet(demo / "results/demo/demo/videos.parquet").filter(pl.col("split") == "test")
    scored = set(pl.read_parquet(demo / "results/demo/eval/lnclip_df/demo/scores.parquet")["video_id"])
    fake, real = (demo / videos.filter((pl.col("label") == label) & pl.col("video_id").is_in(scored))
                  .sort("video_id")["path"][0] for label in (1, 0))
    model = "results/demo/models/lnclip_df"
    subprocess.run([sys.executable, "-m", "pipeline", "predict", "--model", model, str(fake), str(real), "--out",
                    str(tmp_path / "p.json")], capture_output=True, text=True, check=True, cwd=demo)
    predicted = {Path(r["path"]).name: r["p_fake"] for r in json.loads((tmp_path / "p.json").read_text())}
    text_file = tmp_path / "meeting_notes.mp4"
    text_file.write_text("minutes of the meeting, not a video\n" * 40)
    with served_by_the_command(demo, model) as base, chromium_page(f"{base}/", tmp_path / "profile") as tools:
        tools.wait_for("document.getElementById('model').textContent.startsWith('model lnclip_df')")
        (shown,) = score_in_page(tools, fake)["files"]
        assert (shown["name"], shown["shown"]) == (fake.name, f"{predicted[fake.name]:.4f}")
        assert shown["p_fake"] == predicted[fake.name] and shown["crops"]
        (shown,) = score_in_page(tools, text_file)["files"]
        assert (shown["status"], shown["message"]) == ("unreadable", "cannot be read as a video (cannot open video)")
        (shown,) = score_in_page(tools, real)["files"]  # the next upload still works
        assert (shown["name"], shown["p_fake"]) == (real.name, predicted[real.name])
        assert tools.page_errors() == []
        r = httpx.post(f"{base}/predict", files=[("files", (p.name, p.read_bytes())) for p in (fake, real)],
                       timeout=300)
        assert {f["name"]: f["p_fake"] for f in r.json()["files"]} == predicted

def test_command_line_report_rebuilds_the_page(demo, tmp_path):
    out = tmp_path / "again.html"
    subprocess.run([sys.executable, "-m", "pipeline", "report", "--config", "config/demo.yaml", "--out", str(out)],
                   capture_output=True, text=True, check=True, cwd=demo)
    html = out.read_text()
    assert 'id="auroc-table"' in html and "demo_shift" in html and "linear_probe" in html


def test_report_table_shows_each_evaluations_video_auroc(demo):
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells = {}

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "td" and "data-benchmark" in a and "data-value" in a:
                self.cells[(a["data-model"], a["data-benchmark"])] = float(a["data-value"])

    parser = Cells()
    parser.feed((demo / "results/demo/report.html").read_text())
    cfg = yaml.safe_load((demo / "config/demo.yaml").read_text())
    expected = {(m, b): 100 * json.loads((demo / f"results/demo/eval/{m}/{b}/metrics.json").read_text())["video"]["auroc"]
                for m in cfg["models"] for b in cfg["benchmarks"]}
    assert parser.cells.keys() == expected.keys()
    for pair, value in expected.items():
        assert parser.cells[pair] == pytest.approx(value, abs=0.01), pair


def test_imported_crops_skip_face_detection(tmp_path, repo):
    """A DeepfakeBench tree in the config: index -> import_crops -> manifest, no faces job."""
    import cv2
    import numpy as np

    (tmp_path / "wf").mkdir()
    work = copy_workflow(repo, tmp_path / "wf")
    root = tmp_path / "Celeb-DF-v2"
    root.mkdir()
    (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    pngs = {}
    for offset, rel in enumerate(("Celeb-real/frames/id0_0000", "Celeb-synthesis/frames/id0_id1_0000")):
        (root / rel).mkdir(parents=True)
        for i in (0, 9, 18):
            ok, buf = cv2.imencode(".png", np.full((16, 16, 3), i * 5 + 100 * offset, np.uint8))
            pngs[f"{rel}/{i:03d}.png"] = buf.tobytes()
            (root / rel / f"{i:03d}.png").write_bytes(buf.tobytes())
    cfg = yaml.safe_load((work / "config/demo.yaml").read_text())
    cfg["datasets"]["cdf_dfb"] = {"adapter": "deepfakebench", "source": {"path": str(root)},
                                  "options": {"dataset": "celebdf"}}
    cfg["benchmarks"]["cdf_dfb"] = {"dataset": "cdf_dfb", "split": "test"}
    (work / "config/imported.yaml").write_text(yaml.safe_dump(cfg))

    proc = snakemake(work, "--configfile", "config/imported.yaml", "--cores", "1", "results/demo/cdf_dfb/stats.json")
    out = proc.stdout + proc.stderr
    assert "rule import_crops" in out or "(Rule: import_crops)" in out
    assert "rule faces" not in out and "(Rule: faces)" not in out
    stats = json.loads((work / "results/demo/cdf_dfb/stats.json").read_text())
    assert (stats["videos"], stats["faces"]) == (2, 6)
    assert stats["completeness"][0]["message"].startswith("CDFv2 test: 2 of 518 videos found")
    frames = pl.read_parquet(work / "results/demo/cdf_dfb/frames.parquet")
    import webdataset as wds

    stored = {s["__key__"]: s["png"] for tar in sorted(set(frames["shard"]))
              for s in wds.WebDataset(str(work / tar), shardshuffle=False)}
    assert len(stored) == 6 and sorted(stored.values()) == sorted(pngs.values())  # the PNG bytes, unchanged


def test_command_line_train_makes_the_workflows_adapter(demo, tmp_path):
    """`python -m pipeline train` makes every demo model (the ladder's gradient trainings, paired order, a
    data fraction, the logistic baseline) as the workflow's train job made it: the same adapter, byte for
    byte."""
    models = sorted(REPO_DEMO["models"])
    assert len(models) == 8 and {m: REPO_DEMO["models"][m] for m in ("gend", "lnclip_df_50pct", "logistic")} == {
        "gend": {"slerp": {"enabled": False}, "data": {"order": "paired"}},
        "lnclip_df_50pct": {"data": {"fraction": 0.5}}, "logistic": {"kind": "logistic"}}

    def cli_train(model):
        return subprocess.Popen([sys.executable, "-m", "pipeline", "train", "--config", "config/demo.yaml", "--model",
                                 model, "--out-dir", str(tmp_path / model)], cwd=demo, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    for pair in (models[i:i + 2] for i in range(0, len(models), 2)):  # two at a time, one thread each
        jobs = [cli_train(m) for m in pair]
        for job in jobs:
            _, err = job.communicate(timeout=900)
            assert job.returncode == 0, err[-3000:]
    for m in models:
        workflow = (demo / f"results/demo/models/{m}/adapter.safetensors").read_bytes()
        assert (tmp_path / m / "adapter.safetensors").read_bytes() == workflow, m


def test_exports_of_the_demo_model_give_the_evaluations_scores(demo, tmp_path):
    """`python -m pipeline export` of the demo's LNCLIP-DF from the workflow's folder, hf and onnx: each is
    checked on every test crop of the demo's benchmarks, and the ONNX graph in onnxruntime gives the
    evaluate rule's p(fake) of the stored crops."""
    import numpy as np
    import onnxruntime as ort
    import webdataset as wds
    from PIL import Image

    from pipeline.core import codec

    results = demo / "results/demo"
    crops = sum(pl.read_parquet(results / f"{ds}/frames.parquet").filter((pl.col("split") == "test")
                                                                        & pl.col("key").is_not_null()).height
                for ds in ("demo", "demo_shift"))
    for fmt in ("hf", "onnx"):
        subprocess.run([sys.executable, "-m", "pipeline", "export", "--model", "results/demo/models/lnclip_df",
                        "--format", fmt, "--out", str(tmp_path / fmt), "--max-crops", "5000"], capture_output=True,
                       text=True, check=True, cwd=demo)
        check = json.loads((tmp_path / fmt / "export.json").read_text())["check"]
        assert check["crops"] == crops and check["max_abs_diff"] <= 1e-4, check
    size = json.loads((tmp_path / "onnx/export.json").read_text())["input"]["shape"][1]
    scores = pl.read_parquet(results / "eval/lnclip_df/demo/scores.parquet").head(24)
    wanted = dict(zip(scores["key"], scores["p_fake"]))
    frames = pl.read_parquet(results / "demo/frames.parquet").filter(pl.col("key").is_in(list(wanted)))
    pixels = {}
    for shard in sorted(set(frames["shard"])):
        for sample in wds.WebDataset(str(demo / shard), shardshuffle=False):
            if sample["__key__"] in wanted:
                img = Image.fromarray(codec.decode(sample.get("qoi") or sample["png"], sample["__key__"]))
                pixels[sample["__key__"]] = np.asarray(img.resize((size, size), Image.BICUBIC))
    session = ort.InferenceSession(str(tmp_path / "onnx/model.onnx"), providers=["CPUExecutionProvider"])
    keys = sorted(pixels)
    (got,) = session.run(None, {"crops": np.stack([pixels[k] for k in keys])})
    assert len(keys) == len(wanted) and got.tolist() == pytest.approx([wanted[k] for k in keys], abs=1e-4)
