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
    # the report's config (its params) holds each model's settings, seeds included: the same runs
    report = P.report(cfg)
    assert set(report["models"]) == set(cfg["models"]) and sorted(pconfig.runs(report)) == sorted(runs)
    assert report["models"]["lnclip_df"]["seeds"] == [0] and "seed" not in report["models"]["lnclip_df"]
    assert pconfig.model_config(report, "linear_probe-seed4") == pconfig.model_config(cfg, "linear_probe-seed4")


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
    # each new run gets its validation set checked (selection) before it trains
    assert planned(work, f"--configfile={seeded}", "--cores", "2", "results/demo/report.html") == {
        "selection": 3, "train": 3, "evaluate": 3 * len(DEMO["benchmarks"]), "robustness": 3 * robust, "report": 1}


# -------------------------------------------------------------------------------------------- report

SEPARATION = {"lnclip_df-seed0": 0.6, "lnclip_df-seed1": 0.05, "lnclip_df-seed2": 0.08, "linear_probe": 0.2}
BENCHES = {"cdf": ("Celeb-synthesis",), "dfd": ("DF", "F2F")}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A report of lnclip_df trained with seeds 0, 1, 2 (one seed far better than the others) and an
    unseeded linear_probe between the best seed and the seeds' mean."""
    root = tmp_path_factory.mktemp("seeds")
    evaluations, auroc = [], {}
    for ri, (run, sep) in enumerate(SEPARATION.items()):
        for bi, (bench, methods) in enumerate(BENCHES.items()):
            sc = _scores(seed=10 * ri + bi, sep=sep, methods=methods)
            d = root / "eval" / run / bench
            res = evaluate_model(sc, d / "scores.parquet", d / "metrics.json", frames=_frames_of(sc), bootstrap=50, seed=0)
            auroc[(run, bench)] = res["video"]["auroc"]
            evaluations.append({"model": run, "benchmark": bench, "metrics_path": str(d / "metrics.json"),
                                "scores_path": str(d / "scores.parquet")})
    trainings = []
    for ri, run in enumerate(SEPARATION):
        p = root / "models" / run / "train_log.parquet"
        p.parent.mkdir(parents=True)
        _train_log(ri).write_parquet(p)
        trainings.append({"model": run, "log_path": str(p), "config": {"seed": ri}})
    out = root / "report.html"
    build_report(out, evaluations=evaluations, datasets=[], trainings=trainings, provenance={}, title="seeds",
                 demo=False, out_csv=root / "metrics.csv")
    return {"html": out.read_text(), "out": out, "auroc": auroc, "csv": root / "metrics.csv"}


def _attr_cells(html: str, attr: str) -> dict:
    """``(attr value, benchmark) -> (value, the cell's text)`` of ``<td {attr}=.. data-benchmark=.. data-value=..>``
    (the headline's cells) or ``<td {attr}=.. data-bench=.. data-auroc=..>`` (each seed's row)."""
    cells = re.findall(rf'<td {attr}="([^"]+)" data-bench(?:mark)?="([^"]+)" data-(?:value|auroc)="([^"]*)"([^>]*)>(.*?)</td>',
                       html)
    return {(k, b): (v, rest, re.sub(r"<[^>]+>", " ", text)) for k, b, v, rest, text in cells}


def test_headline_shows_a_seeded_models_mean_and_std_and_marks_best_by_the_mean(seeded):
    html, auroc = seeded["html"], seeded["auroc"]
    head = re.search(r'<tbody id="auroc-rows">(.*?)</tbody>', html, re.S).group(1)
    assert re.findall(r'<tr data-model="([^"]+)"', head) == ["lnclip_df", "linear_probe"]  # one row per model
    assert 'data-seeds="3"' in head and "seed0" not in head
    cells = _attr_cells(head, "data-model")
    runs = ["lnclip_df-seed0", "lnclip_df-seed1", "lnclip_df-seed2"]
    for bench in BENCHES:
        vals = [auroc[(r, bench)] for r in runs]
        mean, std = np.mean(vals), np.std(vals, ddof=1)
        value, attrs, text = cells[("lnclip_df", bench)]
        assert float(value) == pytest.approx(100 * mean, abs=1e-4)
        assert float(re.search(r'data-std="([^"]+)"', attrs).group(1)) == pytest.approx(100 * std, abs=1e-4)
        assert f"{100 * mean:.2f}" in text and f"\u00b1 {100 * std:.2f} \u00b7 n = 3" in text
        # one seed beats linear_probe, their mean does not: the mean decides
        assert max(vals) > auroc[("linear_probe", bench)] > mean
        assert 'class="best"' in cells[("linear_probe", bench)][1] and "best" not in attrs
    means = [np.mean([auroc[(r, b)] for b in BENCHES]) for r in runs]
    mean_cell = re.search(r'<td class="mean[^"]*" data-model="lnclip_df" data-mean="([^"]+)".*?</td>', head, re.S)
    assert float(mean_cell.group(1)) == pytest.approx(100 * np.mean(means), abs=1e-4)
    assert f"\u00b1 {100 * np.std(means, ddof=1):.2f} \u00b7 n = 3" in mean_cell.group(0)


def test_each_seeds_row_is_in_a_closed_details_below_the_headline(seeded):
    html, auroc = seeded["html"], seeded["auroc"]
    details = re.search(r'<details id="seed-rows">(.*?)</details>', html, re.S).group(1)
    assert "lnclip_df: 3 seeds" in details and "linear_probe" not in details
    rows = re.findall(r'<tr data-run="([^"]+)" data-of-model="lnclip_df" data-seed="(\d+)">', details)
    assert rows == [(f"lnclip_df-seed{s}", str(s)) for s in (0, 1, 2)]
    cells = _attr_cells(details, "data-run")
    for (run, bench), (value, _, text) in cells.items():
        assert float(value) == pytest.approx(100 * auroc[(run, bench)], abs=1e-4) and "[" in text  # with its CI
    assert len(cells) == 3 * len(BENCHES)
    # every run keeps its own training section and its curves
    for run in SEPARATION:
        assert f'<section id="train-{run}"' in html


def test_metrics_csv_holds_the_model_and_the_seed_of_each_run(seeded):
    with open(seeded["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["model", "seed", "benchmark", "level", "method", "metric", "value"]
    auroc = {(r["model"], r["seed"], r["benchmark"]): float(r["value"]) for r in rows
             if (r["level"], r["method"], r["metric"]) == ("video", "all", "auroc")}
    assert auroc == {(*((run.split("-seed")[0], run.split("-seed")[1]) if "-seed" in run else (run, "")), bench): v
                     for (run, bench), v in seeded["auroc"].items()}
    assert {r["seed"] for r in rows if r["model"] == "lnclip_df"} == {"0", "1", "2"}
    assert {r["seed"] for r in rows if r["model"] == "linear_probe"} == {""}


SEED_HARNESS = """<html><body><pre id="out">waiting</pre>
<iframe id="f" src="{url}" style="width: 1000px; height: 600px; border: 0"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{
  var w = this.contentWindow, d = this.contentDocument, out = {{}};
  var shown = function () {{ return d.getElementById("seed-table").checkVisibility(); }};
  out.closed = !d.getElementById("seed-rows").open && !shown();
  d.querySelector("#seed-rows summary").click();
  out.opened = d.getElementById("seed-rows").open && shown();
  out.rows = d.querySelectorAll("#seed-table tbody tr").length;
  d.querySelector("#seed-rows summary").click();
  d.querySelector("#auroc-rows a[href='#seed-table']").click();
  setTimeout(function () {{
    out.link = d.getElementById("seed-rows").open && shown();
    document.getElementById("out").textContent = JSON.stringify(out);
  }}, 200);
}});
</script></body></html>"""


@pytest.mark.skipif(not __import__("test_report").CHROMIUM, reason="chromium not installed (apt-get install chromium)")
def test_each_seeds_rows_open_on_demand_in_headless_chromium(seeded, tmp_path):
    from html import unescape

    from test_report import _chromium, _console_errors, _page_requests

    url = seeded["out"].resolve().as_uri()
    r = _chromium(["--dump-dom", url], tmp_path)
    assert r.returncode == 0 and _console_errors(r.stderr) == [] and _page_requests(tmp_path / "net.json") == []
    harness = tmp_path / "harness.html"
    harness.write_text(SEED_HARNESS.format(url=url))
    r = _chromium(["--allow-file-access-from-files", "--virtual-time-budget=10000", "--window-size=1200,800",
                   "--dump-dom", harness.as_uri()], tmp_path)
    out = json.loads(unescape(re.search(r'<pre id="out">(.*?)</pre>', r.stdout, re.S).group(1)))
    # closed at first, opened by its summary (no script of ours) or by the headline's link
    assert out == {"closed": True, "opened": True, "rows": 3, "link": True}, out


# ------------------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_a_shrunk_demo_with_three_seeds_runs_to_its_report(tmp_path, repo):
    """The demo, shrunk (few videos and frames, two epochs), lnclip_df with seeds [0, 1, 2] beside an
    unseeded linear probe: three trainings that differ, and a report whose headline row is their mean."""
    from test_report import CHROMIUM, _chromium, _console_errors, _page_requests
    from test_workflow import copy_workflow, snakemake

    work = copy_workflow(repo, tmp_path)
    cfg = yaml.safe_load((work / "config/demo.yaml").read_text())
    cfg["datasets"]["demo"]["source"]["demo"].update(counts={"train": 6, "val": 2, "test": 6}, frames=8)
    cfg["datasets"].pop("demo_shift")
    cfg["faces"].update(num_frames=2, chunk_size=16, threads=1)
    cfg["training"]["optim"].update(epochs=2, cycle_epochs=2)
    cfg["models"] = {"linear_probe": cfg["models"]["linear_probe"], "lnclip_df": {"seeds": [0, 1, 2]}}
    cfg["benchmarks"] = {"demo": {"dataset": "demo", "split": "test"}}
    cfg["robustness"], cfg["evaluate"]["bootstrap"] = {}, 20
    (work / "config/seeds.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(work, "--configfile=config/seeds.yaml", "--cores", "2", "results/demo/report.html", timeout=600)

    results = work / "results/demo"
    runs = [f"lnclip_df-seed{s}" for s in (0, 1, 2)]
    adapters = {(results / f"models/{r}/adapter.safetensors").read_bytes() for r in runs}
    assert len(adapters) == 3  # each seed trained its own model
    auroc = {r: json.loads((results / f"eval/{r}/demo/metrics.json").read_text())["video"]["auroc"]
             for r in runs + ["linear_probe"]}
    html = (results / "report.html").read_text()
    head = re.search(r'<tbody id="auroc-rows">(.*?)</tbody>', html, re.S).group(1)
    value = re.search(r'<td data-model="lnclip_df" data-benchmark="demo" data-value="([^"]+)"', head).group(1)
    assert float(value) == pytest.approx(100 * np.mean([auroc[r] for r in runs]), abs=1e-4)
    with open(results / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if (r["level"], r["method"], r["metric"]) == ("video", "all", "auroc")]
    assert {(r["model"], r["seed"]): float(r["value"]) for r in rows} == {
        **{("lnclip_df", str(s)): auroc[f"lnclip_df-seed{s}"] for s in (0, 1, 2)}, ("linear_probe", ""): auroc["linear_probe"]}
    if CHROMIUM:
        from html import unescape

        r = _chromium(["--dump-dom", (results / "report.html").as_uri()], tmp_path)
        assert r.returncode == 0 and _console_errors(r.stderr) == [] and _page_requests(tmp_path / "net.json") == []
        harness = tmp_path / "harness.html"
        harness.write_text(SEED_HARNESS.format(url=(results / "report.html").as_uri()))
        r = _chromium(["--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom",
                       harness.as_uri()], tmp_path)
        out = json.loads(unescape(re.search(r'<pre id="out">(.*?)</pre>', r.stdout, re.S).group(1)))
        assert out == {"closed": True, "opened": True, "rows": 3, "link": True}, out
