"""benchmarks/gpu_check.py: the one command that runs every GPU path, here with --cpu (the same code on the
CPU at small sizes): one JSON line, every item that can run on a CPU passes with its figures, the
CUDA-only item says why it did not run, and a failing item does not stop the others."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
CPU_ITEMS = {"train_tiny", "train_vit_l14", "fused_adamw", "evaluation", "face_alignment", "ddp", "compile_inductor"}
CUDA_ONLY = {"sync_free"}


def gpu_check(*args, cuda=True):
    env = dict(os.environ) if cuda else {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env=env)
    lines = done.stdout.splitlines()
    assert len(lines) == 1, (done.stdout[-2000:], done.stderr[-4000:])  # one JSON line, nothing else on stdout
    return done.returncode, json.loads(lines[0]), done.stderr


@pytest.fixture(scope="module")
def cpu_run():
    rc, result, stderr = gpu_check("--cpu")
    assert rc == 0, stderr[-4000:]
    return result


def test_every_cpu_item_passes_with_its_figures(cpu_run):
    r = cpu_run
    assert r["check"] == "gpu_check" and r["mode"] == "cpu" and r["ok"] is True and r["failed"] == []
    assert r["device"].startswith("cpu: ") and len(r["device"]) > len("cpu: ") and r["torch"]
    assert set(r["items"]) == CPU_ITEMS | CUDA_ONLY and r["skipped"] == sorted(CUDA_ONLY)
    for name in CPU_ITEMS:
        assert r["items"][name]["status"] == "ok" and r["items"][name]["ok"] is True, (name, r["items"][name])
        assert r["items"][name]["seconds"] >= 0
    for name, batch in (("train_tiny", 8), ("train_vit_l14", 2)):
        t = r["items"][name]
        assert t["batch"] == batch and t["dtype"] == "bfloat16" and t["frozen_params_bf16"] > 0
        assert t["images_per_s"] > 0 and t["ms_per_step"] > 0 and math.isfinite(t["last_loss"])
        assert "peak_memory_mib" in t  # measured on CUDA; None on the CPU
    vit = r["items"]["train_vit_l14"]
    assert {k: vit["config"][k] for k in ("hidden_size", "intermediate_size", "num_attention_heads", "patch_size")} \
        == {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16, "patch_size": 14}
    assert vit["mfu"] is None and "2400" in vit["mfu_definition"] and vit["model_tflops_per_s"] > 0  # scaled down
    fused = r["items"]["fused_adamw"]
    assert fused["fused"] is True and fused["max_abs_diff_vs_foreach"] <= 1e-5 and fused["max_abs_update"] > 0
    assert fused["step_counter_on"] == ["cpu"]
    ev = r["items"]["evaluation"]
    assert ev["crops"] == 24 and ev["crops_per_s"] > 0 and ev["p_fake_spread"] > 0.05  # crops told apart
    assert ev["max_gap_vs_score_crops"] <= 0.05 * ev["p_fake_spread"]  # each crop's own score
    fa = r["items"]["face_alignment"]
    assert fa["frames"] == 2 and fa["frames_per_s"] > 0 and fa["fan_on"] == ["cpu"] and fa["device"] == "cpu"
    assert sum(fa["statuses"].values()) == 2 and set(fa["statuses"]) <= {"ok", "no_face"}
    ddp = r["items"]["ddp"]
    assert ddp["backend"] == "gloo" and ddp["world_size"] == 2 and ddp["all_reduce_sum"] == 3.0
    assert ddp["dtype"] == "float32" and ddp["grad_rel_diff_vs_one_process"] < 1e-5
    assert ddp["loss_abs_diff_vs_one_process"] < 1e-6
    comp = r["items"]["compile_inductor"]
    assert comp["backend"] == "inductor" and comp["graphs_compiled"] >= 1 and comp["images_per_s"] > 0
    assert comp["grad_cosine_vs_eager"] > 0.99 and comp["loss_abs_diff_vs_eager"] < 2e-2


def test_cuda_only_items_say_why(cpu_run):
    sync = cpu_run["items"]["sync_free"]
    assert sync["status"] == "skipped" and sync["ok"] is None and "CUDA only" in sync["reason"]


def test_a_failing_item_does_not_stop_the_others(tmp_path):
    rc, r, _ = gpu_check("--cpu", "--only", "face_alignment", "fused_adamw", "--face-weights", str(tmp_path / "none"))
    assert rc == 1 and r["ok"] is False and r["failed"] == ["face_alignment"]
    fa = r["items"]["face_alignment"]
    assert fa["ok"] is False and fa["error"].startswith("FileNotFoundError") and "2DFAN4" in fa["error"]
    assert str(tmp_path / "none") in fa["error"]
    assert r["items"]["fused_adamw"]["ok"] is True and set(r["items"]) == {"face_alignment", "fused_adamw"}


def test_without_a_gpu_it_says_to_use_one_or_cpu():
    rc, r, stderr = gpu_check(cuda=False)
    assert rc == 2 and r["ok"] is False and "--cpu" in r["error"] and "no CUDA device" in stderr
