"""Job sizing, the compute-job environment, the torchrun hook, and what the SLURM profile submits.

The profile test plans the workflow through Snakemake's own command line with profiles/slurm, minus
the SLURM executor and its plugin's options (the plugin is kept out of the test environment), and
reads every planned job's rule, locality, threads and resources off Snakemake's dry-run executor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core import config as pconfig
from pipeline.workflow import resources as jobs
from test_workflow import copy_workflow

DEMO = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/demo.yaml").read_text())


def test_memory_and_runtime_grow_with_each_attempt():
    config = {"resources": {"train": {"mem_mb": 32000, "runtime": 480}}}
    assert jobs.job_size(config, "train") == {"mem_mb": 32000, "runtime": 480}
    assert jobs.job_size(config, "train", attempt=2) == {"mem_mb": 64000, "runtime": 960}
    default = pconfig.defaults("resources")["faces"]  # a rule the section does not mention: the schema's size
    assert default == {"mem_mb": 4000, "runtime": 60}
    assert jobs.job_size({"resources": {"faces": default}}, "faces", attempt=3) == {"mem_mb": 12000, "runtime": 180}


def test_demo_jobs_fit_a_16_gb_node_even_on_retry():
    demo = pconfig.validate_config(dict(DEMO))
    for rule in ("faces", "train", "evaluate"):
        assert jobs.job_size(demo, rule, attempt=2)["mem_mb"] <= 16000, rule


def test_offline_job_environment_reaches_the_libraries(tmp_path):
    code = ("from pipeline.workflow import job; import sys; job.offline(sys.argv[1]);"
            "import huggingface_hub.constants as c, torch.hub;"
            "print(c.HF_HUB_OFFLINE, torch.hub.get_dir())")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("HF_HUB_OFFLINE", "TORCH_HOME")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    assert out == ["True", str(tmp_path.resolve() / "resources/weights/face_alignment/hub")]


RANK_SCRIPT = """
import os, sys
from pipeline.workflow import job
if not job.launch_distributed(__file__, int(sys.argv[1]) if len(sys.argv) > 1 else 2):
    out = os.path.join(os.path.dirname(__file__), f"rank{os.environ.get('RANK', 'single')}")
    with open(out, "w") as fh:
        fh.write(os.environ.get("WORLD_SIZE", "1"))
"""


def test_more_than_one_device_launches_torchrun_processes(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(RANK_SCRIPT)
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True, timeout=120)
    ranks = {p.name: p.read_text() for p in tmp_path.glob("rank*")}
    assert ranks == {"rank0": "2", "rank1": "2"}


def test_one_device_runs_in_the_job_itself(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(RANK_SCRIPT)
    subprocess.run([sys.executable, str(script), "1"], check=True, capture_output=True, timeout=60)
    assert {p.name: p.read_text() for p in tmp_path.glob("rank*")} == {"ranksingle": "1"}


# Prints one JSON line per job that Snakemake's dry-run executor receives, then runs the CLI.
PLAN = """
import json, sys
import snakemake.executors.dryrun as dryrun
from snakemake.cli import main

run_job = dryrun.Executor.run_job
def record(self, job):
    # Workflow.is_local without its "everything is local when run locally" clause
    wf, rule = job.dag.workflow, job.rule
    local = rule.group is None and (rule.name in wf._localrules or rule.norun)
    print("JOB " + json.dumps({"rule": rule.name, "local": local, "threads": job.threads,
                               "resources": {k: v for k, v in job.resources.items() if k != "_nodes"}},
                              default=str))
    run_job(self, job)
dryrun.Executor.run_job = record
main(sys.argv[1:])
"""


def plan_with_slurm_profile(work: Path, *args: str) -> list[dict]:
    """Jobs planned with profiles/slurm, without the executor plugin (its keys are dropped)."""
    profile = yaml.safe_load((work / "profiles/slurm/profile.yaml").read_text())
    assert profile.pop("executor") == "slurm"
    core = {k: v for k, v in profile.items() if not k.startswith("slurm-")}
    (work / "profiles/slurm_core").mkdir(exist_ok=True)
    (work / "profiles/slurm_core/profile.yaml").write_text(yaml.safe_dump(core))
    # --cores: a cluster does not cap threads at the local machine's cores
    cmd = [sys.executable, "-c", PLAN, "-n", "--workflow-profile", "profiles/slurm_core", "--cores", "1024", *args]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("JOB ")]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, repo):
    return copy_workflow(repo, tmp_path_factory.mktemp("jobs"))


def by_rule(planned: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for job in planned:
        out.setdefault(job["rule"], []).append(job)
    return out


def test_slurm_profile_submits_gpu_jobs_and_keeps_tiny_rules_local(fresh):
    planned = by_rule(plan_with_slurm_profile(fresh, "results/report.html"))
    assert {r for r, js in planned.items() if all(j["local"] for j in js)} == {
        "download_dataset", "download_weights", "index", "manifest", "selection", "report"}
    gpu_rules = {"train", "evaluate", "robustness"}  # (the real config has no frozen-features model)
    assert {r for r, js in planned.items() if not any(j["local"] for j in js)} == gpu_rules
    config = yaml.safe_load((fresh / "config.yaml").read_text())
    for rule in gpu_rules:
        for job in planned[rule]:
            res = job["resources"]
            assert res["slurm_partition"] == "gpu" and res["gpu"] == 1, job
            assert res["cpus_per_gpu"] == job["threads"] == 8  # the loader workers
            sized_as = "evaluate" if rule == "robustness" else rule
            assert (res["mem_mb"], res["runtime"]) == tuple(config["resources"][sized_as].values())
    for rule in ("index", "manifest", "report"):
        assert "slurm_partition" not in planned[rule][0]["resources"]  # the cluster's default


def test_model_on_two_gpus_asks_for_two_and_their_cpus_and_memory(fresh):
    config = yaml.safe_load((fresh / "config.yaml").read_text())
    config["models"]["lnclip_df"]["devices"] = 2
    (fresh / "config/two_gpus.yaml").write_text(yaml.safe_dump(config))
    planned = by_rule(plan_with_slurm_profile(fresh, "results/report.html", "--configfile",
                                              "config/two_gpus.yaml"))
    train = {job["resources"]["gpu"]: job for job in planned["train"]}
    assert set(train) == {1, 2}
    two, one = train[2], train[1]
    assert two["threads"] == 2 * one["threads"] == 16 and two["resources"]["cpus_per_gpu"] == 8
    assert two["resources"]["mem_mb"] == 2 * one["resources"]["mem_mb"]
    assert all(job["resources"]["gpu"] == 1 for job in planned["evaluate"])
