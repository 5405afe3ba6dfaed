"""Two processes (torchrun, gloo on the CPU) train the same adapter as one process, up to float order."""

import subprocess
import sys

import polars as pl
import torch
from safetensors.torch import load_file

from pipeline.training.distributed import World, rank_rows
from test_train import make_cfg, run, toy  # noqa: F401  (the toy fixture)
from test_train_kill import _command


def test_rank_rows_split_every_global_batch():
    rows = list(range(12))
    assert rank_rows(rows, 4, World(0, 2)) == [0, 1, 4, 5, 8, 9]
    assert rank_rows(rows, 4, World(1, 2)) == [2, 3, 6, 7, 10, 11]
    assert rank_rows(rows, 4, World()) == rows


def test_two_gloo_processes_match_one(toy, tmp_path):  # noqa: F811
    from test_train_kill import _cfg

    run(toy, tmp_path / "one", _cfg())
    cmd = _command(toy, tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m"]
    done = subprocess.run(torchrun + cmd[2:], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    one = load_file(str(tmp_path / "one" / "adapter.safetensors"))
    two = load_file(str(tmp_path / "out" / "adapter.safetensors"))
    assert one.keys() == two.keys()
    for name, t in one.items():
        assert torch.allclose(two[name], t, atol=1e-5, rtol=1e-4), (name, (two[name] - t).abs().max())
    log_one = pl.read_parquet(tmp_path / "one" / "log.parquet").filter(pl.col("kind") == "train")
    log_two = pl.read_parquet(tmp_path / "out" / "train_log.parquet").filter(pl.col("kind") == "train")
    assert log_two["step"].to_list() == log_one["step"].to_list()
    assert log_two["batch"].to_list() == log_one["batch"].to_list()  # the global batch, not a rank's share
    assert (log_two["loss"] - log_one["loss"]).abs().max() < 1e-4
