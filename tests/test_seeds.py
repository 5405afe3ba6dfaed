"""Seeds: ``seeds: [..]`` (top level, or on a model) train and evaluate one run per seed, ``<model>-seed<N>``;
the report shows each seeded model's mean ± std over its seeds, and each seed's row on demand."""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core import config as pconfig
from pipeline.core import layout
from pipeline.evaluation.benchmark import evaluate_model
from pipeline.predict import bulk
from pipeline.report import build_report
from pipeline.training import kinds
from pipeline.workflow import params as P

from test_report import _frames_of, _scores, _train_log

REPO = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((REPO / "config/demo.yaml").read_text())


def demo(edit=None) -> dict:
    """The demo config, edited, validated and checked as the workflow reads it."""
    cfg = copy.deepcopy(DEMO)
    cfg["weights"]["gend_release"] = {"hub": "yermandy/GenD_CLIP_L_14"}
    cfg["models"]["gend_released"] = {"kind": "released", "released": "gend_release", "weights": "tiny_clip"}
    if edit:
        edit(cfg)
    cfg = pconfig.validate_config(cfg)
    pconfig.check_config(cfg)
    return cfg


def test_without_seeds_every_model_is_one_run_named_as_the_model():
    cfg = demo()
    assert pconfig.runs(cfg) == list(cfg["models"])
    assert all(pconfig.run_of(m) == (m, None) for m in cfg["models"])
    assert pconfig.model_config(cfg, "lnclip_df")["seed"] == 7  # the global seed, as before


def test_a_models_seeds_name_its_runs_and_set_their_seed():
    cfg = demo(lambda c: c["models"]["lnclip_df"].update(seeds=[0, 1, 2]))
    runs = pconfig.runs(cfg)
    i = runs.index("lnclip_df-seed0")
    assert runs[i:i + 3] == ["lnclip_df-seed0", "lnclip_df-seed1", "lnclip_df-seed2"] and "lnclip_df" not in runs
    assert len(runs) == len(cfg["models"]) + 2
    assert pconfig.run_of("lnclip_df-seed12") == ("lnclip_df", 12)
    assert pconfig.run_of("lnclip_df_50pct") == ("lnclip_df_50pct", None)
    for seed in (0, 1, 2):
        run = f"lnclip_df-seed{seed}"
        settings = pconfig.model_config(cfg, run)
        assert settings["seed"] == seed and "seeds" not in settings
        assert kinds.settings(cfg, run)["seed"] == seed
        assert kinds.paths(cfg, run)["adapter"] == f"results/demo/models/{run}/adapter.safetensors"
    # the runs differ in their seed only
    a, b = kinds.settings(cfg, "lnclip_df-seed0"), kinds.settings(cfg, "lnclip_df-seed2")
    assert a["model"] == b["model"] and (a["seed"], b["seed"]) == (0, 2)
    with pytest.raises(pconfig.ConfigError, match=r"models.lnclip_df: no run named 'lnclip_df'; its runs: "
                                                  r"lnclip_df-seed0, lnclip_df-seed1, lnclip_df-seed2"):
        pconfig.model_config(cfg, "lnclip_df")
    with pytest.raises(pconfig.ConfigError, match="no run named 'lnclip_df-seed5'"):
        pconfig.model_config(cfg, "lnclip_df-seed5")


def test_adding_seeds_leaves_other_models_and_existing_seeds_as_they_were():
    plain = demo()
    seeded = demo(lambda c: c["models"]["lnclip_df"].update(seeds=[0, 1]))
    more = demo(lambda c: c["models"]["lnclip_df"].update(seeds=[0, 1, 2]))
    for model in ("linear_probe", "logistic", "gend", "gend_released"):
        assert kinds.settings(seeded, model) == kinds.settings(plain, model)
        assert kinds.paths(seeded, model) == kinds.paths(plain, model)
    assert kinds.settings(more, "lnclip_df-seed1") == kinds.settings(seeded, "lnclip_df-seed1")
    # the data is cropped once: the same datasets and splits, and the faces and index params
    assert pconfig.dataset_splits(more) == pconfig.dataset_splits(plain)
    assert P.faces(more) == P.faces(plain) and P.index(more, "demo") == P.index(plain, "demo")
    assert P.evaluate(more, "demo") == P.evaluate(plain, "demo")


def test_top_level_seeds_apply_to_every_trained_model_and_a_models_own_setting_wins():
    def edit(c):
        c["seeds"] = [3, 4]
        c["models"]["lnclip_df"]["seeds"] = [0]  # its own list wins
        c["models"]["ln"]["seed"] = 9  # its own seed: one run, named as the model

    cfg = demo(edit)
    runs = pconfig.runs(cfg)
    assert [r for r in runs if r.startswith("linear_probe")] == ["linear_probe-seed3", "linear_probe-seed4"]
    assert "logistic-seed3" in runs  # LogisticRegression's lbfgs solver uses no randomness: identical runs
    assert [r for r in runs if r.startswith("lnclip_df-")] == ["lnclip_df-seed0"]
    assert "ln" in runs and pconfig.model_config(cfg, "ln")["seed"] == 9
    assert "gend_released" in runs  # released weights are not trained: no seeds
    assert kinds.settings(cfg, "gend_released")["seed"] is None
    # robustness.models names models: each stands for its runs
    assert pconfig.robustness_models(cfg) == ["linear_probe-seed3", "linear_probe-seed4", "lnclip_df-seed0"]
    assert set(P.report(cfg)["models"]) == set(runs)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["models"]["gend_released"].update(seeds=[0, 1]),
     "models.gend_released.seeds: a released model is evaluated as published, without training; remove seeds"),
    (lambda c: c["models"]["gend"].update(seeds=[0, 1], seed=3),
     "models.gend: set seed (one run) or seeds (one run per seed), not both"),
    (lambda c: c["training"].update(seeds=[0, 1]),
     "training.seeds: put seeds at the top level (every trained model) or in a model entry"),
    (lambda c: (c["models"]["gend"].update(seeds=[0, 1]), c.update(predict={"p": {"model": "gend", "files": ["x.mp4"]}})),
     "predict.p.model: 'gend' has seeds, one trained model each; name one of its runs: gend-seed0, gend-seed1"),
    (lambda c: c["robustness"].update(models=["lnclip_df-seed0"]),
     "robustness.models: 'lnclip_df-seed0' is neither a name under models nor one of their runs"),
], ids=["released", "seed-and-seeds", "training", "predict-model", "robustness-run"])
def test_seeds_where_they_mean_nothing_are_refused_naming_the_key(edit, message):
    with pytest.raises(pconfig.ConfigError) as err:
        demo(edit)
    assert str(err.value) == message or str(err.value).startswith(message)


@pytest.mark.parametrize("seeds", [[], [1, 1], [-1]])
def test_seeds_must_be_distinct_non_negative_and_not_empty(seeds):
    with pytest.raises(pconfig.ConfigError, match=r"models.gend.seeds"):
        demo(lambda c: c["models"]["gend"].update(seeds=seeds))


def test_a_predict_set_or_robustness_may_name_a_run():
    def edit(c):
        c["models"]["gend"]["seeds"] = [0, 1]
        c["predict"] = {"p": {"model": "gend-seed1", "files": ["x.mp4"]}}
        c["robustness"]["models"] = ["gend-seed1", "linear_probe"]

    cfg = demo(edit)
    assert bulk.model_dir(cfg, "p") == layout.from_config(cfg).model_dir("gend-seed1")
    assert pconfig.robustness_models(cfg) == ["gend-seed1", "linear_probe"]


# ------------------------------------------------------------------------------------------ planning


def job_messages(work: Path, *args: str) -> list[str]:
    """The message of every job a dry run plans (one per job, sorted)."""
    from test_workflow import snakemake

    proc = snakemake(work, "-n", "--cores", "2", *args, "results/demo/report.html")
    return sorted(re.findall(r"^Job \d+: (.+)$", proc.stdout + proc.stderr, re.M))


@pytest.mark.slow
def test_seeds_plan_one_run_per_seed_on_data_cropped_once_and_rerun_nothing_else(tmp_path, repo):
    from test_workflow import copy_workflow, demo_variant, planned, snakemake

    work = copy_workflow(repo, tmp_path)
    seeded = demo_variant(work, "seeds", lambda c: c["models"]["lnclip_df"].update(seeds=[0, 1, 2]))
    snakemake(work, "--configfile=config/demo.yaml", "--cores", "2", "results/demo/demo/videos.parquet",
              "results/demo/demo_shift/videos.parquet")  # the index (a checkpoint): the faces jobs are known
    plain, seeds = job_messages(work, "--configfile=config/demo.yaml"), job_messages(work, f"--configfile={seeded}")
    data = ("Face crops of ", "Manifest of ")
    assert [m for m in seeds if m.startswith(data)] == [m for m in plain if m.startswith(data)]
    assert len([m for m in plain if m.startswith("Face crops of ")]) > 10
    trained = [m.removeprefix("Training ") for m in seeds if m.startswith("Training ")]
    assert sorted(trained) == sorted([m for m in DEMO["models"] if m != "lnclip_df"]
                                     + ["lnclip_df-seed0", "lnclip_df-seed1", "lnclip_df-seed2"])
    for bench in DEMO["benchmarks"]:
        assert sum(m.startswith("Evaluating lnclip_df-seed") and m.endswith(f" on {bench}") for m in seeds) == 3
        assert f"Evaluating lnclip_df on {bench}" in plain and f"Evaluating lnclip_df on {bench}" not in seeds
    # a finished run of the demo (every job marked done, with its params and code key): adding seeds to
    # one model plans its runs' training and evaluations and the report, nothing of the other models
    for _ in range(2):
        snakemake(work, "--configfile=config/demo.yaml", "--touch", "--cores", "1", "results/demo/report.html")
        for line in snakemake(work, "--configfile=config/demo.yaml", "--summary", "--cores", "1",
                              "results/demo/report.html").stdout.splitlines()[1:]:
            out = work / line.split("\t")[0]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.touch(exist_ok=True)
    assert planned(work, "--configfile=config/demo.yaml", "--cores", "2", "results/demo/report.html") == {}
    robust = len(DEMO["robustness"]["benchmarks"])  # lnclip_df is among robustness.models: its runs are too
    assert planned(work, f"--configfile={seeded}", "--cores", "2", "results/demo/report.html") == {
        "train": 3, "evaluate": 3 * len(DEMO["benchmarks"]), "robustness": 3 * robust, "report": 1}
