"""End to end: the five experiment twins (config/demo_<name>.yaml) run through Snakemake in one temporary
copy of the workflow (they share the generated videos), and what each trained on and reported is checked."""

from __future__ import annotations

import json
import re
import time

import polars as pl
import pytest

from pipeline.model import read_adapter_meta
from test_report import CHROMIUM, _chromium, _console_errors, _page_requests
from test_workflow import copy_workflow, snakemake

pytestmark = pytest.mark.slow

TWINS = ("paper_ladder", "data_fraction", "paired_vs_unpaired", "train_elsewhere", "clip_logreg")
# The report sections the experiments get, by the id of their <section>.
SECTIONS = {"paper_ladder": "ablation", "data_fraction": "data-fraction", "paired_vs_unpaired": "paired-unpaired",
            "train_elsewhere": "train-elsewhere", "clip_logreg": "clip-logreg"}


@pytest.fixture(scope="session")
def twins(tmp_path_factory, repo):
    work = copy_workflow(repo, tmp_path_factory.mktemp("experiments"))
    seconds = {}
    for name in TWINS:  # the README's command for each experiment
        t0 = time.time()
        snakemake(work, "--cores", "2", "--resources", "gpu=2", f"--configfile=config/demo_{name}.yaml", timeout=1800)
        seconds[name] = round(time.time() - t0)
    print(f"experiment twins, seconds each: {seconds}, total {sum(seconds.values())}")
    return work


def results(work, name):
    return work / f"results/demo_{name}"


def meta(work, name, model):
    return read_adapter_meta(results(work, name) / f"models/{model}/adapter.safetensors")


def train_crops(work, name, ds="demo_xs") -> pl.DataFrame:
    frames = pl.read_parquet(results(work, name) / f"{ds}/frames.parquet")
    return frames.filter(pl.col("key").is_not_null() & (pl.col("split") == "train"))


def test_every_twin_evaluates_every_model_on_every_benchmark(twins):
    import yaml

    for name in TWINS:
        cfg = yaml.safe_load((twins / f"config/demo_{name}.yaml").read_text())
        for model in cfg["models"]:
            for bench in cfg["benchmarks"]:
                m = json.loads((results(twins, name) / f"eval/{model}/{bench}/metrics.json").read_text())
                assert 0 <= m["video"]["auroc"] <= 1 and m["video"]["n_real"] and m["video"]["n_fake"], (name, model)
        assert (results(twins, name) / "report.html").is_file()


def test_fraction_models_train_on_their_share_of_videos(twins):
    crops = train_crops(twins, "data_fraction")
    per_group = crops.group_by("source_id").len()  # a real and its two fakes: one group
    assert per_group.height == 8
    for model, share in (("lnclip_df_f025", 0.25), ("lnclip_df_f050", 0.5), ("lnclip_df", 1.0)):
        n = meta(twins, "data_fraction", model)["n_train_crops"]
        sizes = sorted(per_group["len"])
        groups = round(share * 8)
        assert sum(sizes[:groups]) <= n <= sum(sizes[-groups:]), (model, n, sizes)
        if len(set(sizes)) == 1:  # every video kept all its frames: exact
            assert n == groups * sizes[0], model


def test_unpaired_has_as_many_fakes_as_paired_and_none_of_its_sources(twins):
    work = results(twins, "paired_vs_unpaired")
    table = pl.read_parquet(work / "demo_xs/subsets.parquet").filter(pl.col("split") == "train")
    paired, unpaired = (table.filter(pl.col("subset") == s) for s in ("paired", "unpaired"))
    fakes = lambda t: t.filter(pl.col("label") == 1)
    reals = lambda t: set(t.filter(pl.col("label") == 0)["video_id"])
    assert reals(paired) == reals(unpaired) and len(reals(paired)) == 4
    assert fakes(paired).height == fakes(unpaired).height == 8
    assert sorted(fakes(paired)["method"]) == sorted(fakes(unpaired)["method"]) == ["SBI"] * 4 + ["SBIx"] * 4
    assert set(fakes(paired)["source_id"]) == reals(paired)
    assert not set(fakes(unpaired)["source_id"]) & reals(unpaired)
    crops = train_crops(twins, "paired_vs_unpaired")
    for subset, t in (("paired", paired), ("unpaired", unpaired)):
        expected = crops.filter(pl.col("video_id").is_in(t["video_id"].to_list())).height
        assert meta(twins, "paired_vs_unpaired", f"lnclip_df_{subset}")["n_train_crops"] == expected, subset
    logs = [pl.read_parquet(work / f"models/lnclip_df_{s}/train_log.parquet") for s in ("paired", "unpaired")]
    assert all(lg.filter(pl.col("kind") == "val").height == 3 for lg in logs)  # a validation curve each


def test_training_elsewhere_reads_the_other_datasets_training_split(twins):
    shift = meta(twins, "train_elsewhere", "lnclip_df_shift")
    assert shift["n_train_crops"] == train_crops(twins, "train_elsewhere", "demo_xs_shift").height
    assert shift["selected_by"] == "last" and shift["cfg"]["data"]["dataset"] == "demo_xs_shift"
    assert meta(twins, "train_elsewhere", "lnclip_df")["n_train_crops"] == train_crops(twins, "train_elsewhere").height


def test_clip_logreg_trains_on_reals_and_one_method_and_tests_on_the_other(twins):
    crops = train_crops(twins, "clip_logreg")
    fs = meta(twins, "clip_logreg", "logistic_fs")
    assert fs["n_train_crops"] == crops.filter(pl.col("method").is_in(["real", "SBI"])).height
    assert meta(twins, "clip_logreg", "logistic_all")["n_train_crops"] == crops.height
    scores = pl.read_parquet(results(twins, "clip_logreg") / "eval/logistic_fs/demo_xs_sbix/scores.parquet")
    assert set(scores.filter(pl.col("label") == 1)["method"]) == {"SBIx"}
    metrics = json.loads((results(twins, "clip_logreg") / "eval/logistic_fs/demo_xs_sbix/metrics.json").read_text())
    assert 0 <= metrics["video"]["acc"] <= 1


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
@pytest.mark.parametrize("name", TWINS)
def test_each_report_has_its_experiment_section(twins, tmp_path, name):
    """The section the report gives the experiment, rendered in headless Chromium."""
    r = _chromium(["--dump-dom", (results(twins, name) / "report.html").resolve().as_uri()], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _console_errors(r.stderr) == [] and _page_requests(tmp_path / "net.json") == []
    section = re.search(rf'<section[^>]*id="{SECTIONS[name]}".*?</section>', r.stdout, re.S)
    assert section, f"no section {SECTIONS[name]!r} in the {name} report"
    CHECKS[name](twins, section.group(0))


def auroc(work, name, model, bench="demo_xs_shift") -> float:
    """The model's video AUROC on ``bench``: on the twins' one unseen benchmark, its cross-dataset mean."""
    return json.loads((results(work, name) / f"eval/{model}/{bench}/metrics.json").read_text())["video"]["auroc"]


def rows(section: str, attr: str) -> dict[str, str]:
    """The section's table rows by their ``attr`` value."""
    return {m.group(1): m.group(0) for m in re.finditer(rf'<tr [^>]*{attr}="([^"]+)".*?</tr>', section, re.S)}


def check_ladder(work, sec):
    rungs = rows(sec, "data-rung")
    assert list(rungs) == ["linear probe", "LN", "LN+L2", "LN+L2+UnAl", "LNCLIP-DF"]
    models = ["linear_probe", "ln", "ln_l2", "ln_l2_unal", "lnclip_df"]
    for (rung, row), model, paper in zip(rungs.items(), models, ["76.1", "90.8", "91.8", "92.1", "92.8"]):
        mean = float(re.search(r'data-rung-mean="([^"]+)"', row).group(1))
        assert mean == pytest.approx(100 * auroc(work, "paper_ladder", model), abs=1e-4), rung
        assert f'data-source="arXiv 2508.06248, ablation" data-column="mean" data-published-value="{paper}"' in row


def check_fraction(work, sec):
    assert sec.count("<svg") == 2  # video AUROC and balanced accuracy against the fraction
    for fig in re.findall(r'<figure id="fraction-.*?</figure>', sec, re.S):
        assert "<!-- LNCLIP-DF -->" in fig and "<!-- 1.0 -->" in fig  # a line, and an x axis that reaches 100 %
    points = rows(sec, "data-fraction")
    assert list(points) == ["0.25", "0.5", "1.0"]
    for (fraction, row), model in zip(points.items(), ["lnclip_df_f025", "lnclip_df_f050", "lnclip_df"]):
        mean = float(re.search(r'data-mean-auroc="([^"]+)"', row).group(1))
        assert mean == pytest.approx(auroc(work, "data_fraction", model), abs=1e-9), fraction


def check_subsets(work, sec):
    assert sec.count("<svg") == 1 and "<!-- train loss -->" in sec and "<!-- validation video AUROC -->" in sec
    models = rows(sec, "data-model")
    assert list(models) == ["lnclip_df_paired", "lnclip_df_unpaired"]
    for model, row in models.items():
        subset = model.rsplit("_", 1)[1]
        assert sec.count(f"<!-- {model} ({subset}) -->") == 2  # in the loss panel's legend and the validation one's
        assert f'data-subset="{subset}"' in row
        mean = re.search(r'<td class="mean">([^<]+)<', row).group(1)
        assert mean == f"{100 * auroc(work, 'paired_vs_unpaired', model):.2f}", model


def check_elsewhere(work, sec):
    models = rows(sec, "data-model")
    assert list(models) == ["lnclip_df", "lnclip_df_shift"]
    for (model, row), own, other in zip(models.items(), ["demo_xs", "demo_xs_shift"], ["demo_xs_shift", "demo_xs"]):
        assert re.search(rf'data-bench="{own}" [^>]*data-in-domain="1"', row)
        assert not re.search(rf'data-bench="{other}" [^>]*data-in-domain', row)
        mean = re.search(r'<td class="mean">([^<]+)<', row).group(1)
        assert mean == f"{100 * auroc(work, 'train_elsewhere', model, other):.2f}", model


def check_logreg(work, sec):
    for model in ("logistic_all", "logistic_fs"):
        table = re.search(rf'<table class="logreg-table" data-model="{model}">.*?</table>', sec, re.S).group(0)
        metrics = json.loads((results(work, "clip_logreg") / f"eval/{model}/demo_xs_sbix/metrics.json").read_text())
        row = rows(table, "data-method")
        assert list(row) == ["all", "SBIx"]
        cell = re.search(r'data-key="video_acc">([^<]+)<', row["all"]).group(1)
        assert cell == f"{100 * metrics['video']['acc']:.2f}", model


CHECKS = {"paper_ladder": check_ladder, "data_fraction": check_fraction, "paired_vs_unpaired": check_subsets,
          "train_elsewhere": check_elsewhere, "clip_logreg": check_logreg}
