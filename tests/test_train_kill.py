"""A training job SIGKILLed in the middle of an epoch and started again with the same command ends
with the adapter of an uninterrupted run, repeating fewer than ``engine.checkpoint_every`` steps."""

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from pipeline.core.config import load

from test_train import make_cfg, run, toy  # noqa: F401  (the toy fixture)

REPO = Path(__file__).resolve().parents[1]
EVERY = 5  # engine.checkpoint_every
STEP = re.compile(r"epoch (\d+) step (\d+): lr")


def _cfg():
    cfg = make_cfg(epochs=2, batch_size=2)  # 64 crops: 32 steps per epoch
    cfg["engine"] = {"checkpoint_every": EVERY, "log_every": 1}
    return cfg


def _command(toy, tmp_path):  # noqa: F811
    """``python -m pipeline train`` of a config whose one model trains on the toy crops (its frames.parquet
    where the workflow's layout puts it, under ``tmp_path/results``); run it with ``cwd=tmp_path``."""
    cfg = _cfg()
    cfg.pop("backbone")
    config = load(REPO / "config.yaml")  # a complete config: the CLI validates it as the workflow does
    config.update({"seed": 0, "results": "results", "weights": {"toy": {"path": str(toy["backbone"])}},
                   "datasets": {**config["datasets"], "toy": {"adapter": "csv", "source": {"path": str(tmp_path)}}},
                   "training": {**cfg, "weights": "toy", "data": {**cfg["data"], "dataset": "toy"}},
                   "models": {"m": {}}, "benchmarks": {"toy": {"dataset": "toy", "split": "test"}}, "robustness": {}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "results" / "toy").mkdir(parents=True, exist_ok=True)
    shutil.copy(toy["frames"], tmp_path / "results" / "toy" / "frames.parquet")  # its shard paths are absolute
    return [sys.executable, "-m", "pipeline", "train", "--config", str(tmp_path / "config.yaml"), "--model", "m",
            "--out-dir", str(tmp_path / "out"), "--threads", "1"]


def test_sigkill_mid_epoch_then_same_command_gives_the_same_adapter(toy, tmp_path):  # noqa: F811
    reference = tmp_path / "reference"
    ref_cfg = _cfg() | {"backbone": str(toy["backbone"])}
    run(toy, reference, ref_cfg)
    expected = load_file(str(reference / "adapter.safetensors"))

    cmd = _command(toy, tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    job = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path)
    seen = []
    for line in job.stderr:
        if m := STEP.search(line):
            seen.append(int(m.group(2)))
            if seen[-1] >= 32 + 8:  # epoch 1, step 8 of 32: mid-epoch
                job.send_signal(signal.SIGKILL)
                break
    seen += [int(m.group(2)) for m in STEP.finditer(job.stderr.read())]
    assert job.wait() == -signal.SIGKILL, "the job ended before it could be killed"
    assert not (tmp_path / "out" / "adapter.safetensors").exists()
    last_done = max(seen)
    assert last_done < 63, "killed after the last step: not mid-epoch"

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed_at = int(re.search(r"resumed from \S+ at step (\d+)", again.stderr).group(1))
    first_step = min(int(m.group(2)) for m in STEP.finditer(again.stderr))
    repeated = last_done + 1 - resumed_at
    assert 0 <= repeated < EVERY and first_step >= resumed_at
    got = load_file(str(tmp_path / "out" / "adapter.safetensors"))
    assert got.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(got[name], tensor), name


@pytest.mark.parametrize("kill_after_steps", [7, 45])
def test_resume_inside_an_epoch_in_process(toy, tmp_path, kill_after_steps):  # noqa: F811
    """The same in-process (fast): a state saved mid-epoch continues to the uninterrupted result."""
    from pipeline.training import step as step_mod

    cfg = _cfg()
    run(toy, tmp_path / "full", cfg)
    expected = load_file(str(tmp_path / "full" / "adapter.safetensors"))
    real, calls = step_mod.train_step, {"n": 0}

    class Killed(Exception):
        pass

    def dying_step(*a, **k):
        if calls["n"] == kill_after_steps:
            raise Killed
        calls["n"] += 1
        return real(*a, **k)

    step_mod_loop = sys.modules["pipeline.training.loop"]
    mp = pytest.MonkeyPatch()
    mp.setattr(step_mod_loop, "train_step", dying_step)
    with pytest.raises(Killed):
        run(toy, tmp_path / "part", cfg)
    mp.undo()
    summary = run(toy, tmp_path / "part", cfg)
    assert summary["resumed_from_epoch"] == kill_after_steps // 32
    got = load_file(str(tmp_path / "part" / "adapter.safetensors"))
    assert all(torch.equal(got[n], t) for n, t in expected.items())
