"""Finding intermediate results that went missing under results built from them."""

from __future__ import annotations

import os

import polars as pl

from pipeline.core import config as pconfig
from pipeline.core import layout
from pipeline.workflow.guard import damaged_outputs


def touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").close()


def finished_run(cfg: dict) -> layout.Layout:
    """Every output of a finished run of ``cfg`` (empty files; one chunk per used split)."""
    L = layout.from_config(cfg)
    for ds, splits in pconfig.dataset_splits(cfg).items():
        os.makedirs(os.path.dirname(L.videos(ds)), exist_ok=True)
        pl.DataFrame({"split": splits, "chunk": [0] * len(splits)}).write_parquet(L.videos(ds))
        for split in splits:
            touch(L.shard(ds, split, 0, "tar"))
            touch(L.shard(ds, split, 0, "parquet"))
        for path in (L.frames(ds), L.pairs(ds), L.stats(ds)):
            touch(path)
    for model in cfg["models"]:
        touch(L.adapter(model))
        touch(L.train_log(model))
        for bench in cfg["benchmarks"]:
            touch(L.metrics(model, bench))
            touch(L.scores(model, bench))
    touch(L.report())
    return L


def test_nothing_is_damaged_in_a_finished_run(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = pconfig.load(repo / "config/demo.yaml")
    finished_run(cfg)
    assert damaged_outputs(cfg) == {}


def test_a_missing_index_or_shard_under_existing_results_is_damaged(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = pconfig.load(repo / "config/demo.yaml")
    L = finished_run(cfg)
    os.remove(L.shard("demo", "train", 0, "tar"))
    assert damaged_outputs(cfg) == {L.shard("demo", "train", 0, "tar"): L.frames("demo")}
    os.remove(L.videos("demo_shift"))
    os.remove(L.frames("demo_shift"))  # a failed manifest too: the evaluations are the evidence
    damaged = damaged_outputs(cfg)
    assert damaged[L.videos("demo_shift")] in {L.metrics(m, "demo_shift") for m in cfg["models"]}
    assert set(damaged) == {L.shard("demo", "train", 0, "tar"), L.videos("demo_shift"), L.frames("demo_shift")}


def test_a_new_benchmark_is_not_damage_but_a_deleted_evaluation_is(repo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = pconfig.load(repo / "config/demo.yaml")
    L = finished_run(cfg)
    cfg["benchmarks"]["demo_val"] = {"dataset": "demo", "split": "val"}
    assert damaged_outputs(cfg) == {}  # only the report exists beyond its files: nothing was built from them
    os.remove(L.metrics("lnclip_df", "demo"))
    assert damaged_outputs(cfg) == {}  # without a record that it existed, it looks like a new evaluation
    built = {L.metrics("lnclip_df", "demo")}
    assert damaged_outputs(cfg, was_built=built.__contains__) == {L.metrics("lnclip_df", "demo"): L.report()}
