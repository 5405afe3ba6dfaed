"""The experiments' building blocks: config inheritance (``base``), paired/unpaired training subsets,
the ``data.methods`` / ``data.subset`` filters, and the experiment configs themselves."""

from __future__ import annotations

import copy

import polars as pl
import pytest
import yaml

from pipeline.core import config as pconfig
from pipeline.datasets.subsets import build_subsets, draw_split, select_training
from pipeline.training import kinds

EXPERIMENTS = ("paper_ladder", "data_fraction", "paired_vs_unpaired", "train_elsewhere", "clip_logreg")


# ---- base: inheritance ---------------------------------------------------------------------------------


def write(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_base_deep_merges_but_replaces_models_benchmarks_predict_robustness(tmp_path):
    (tmp_path / "Snakefile").write_text("")
    write(tmp_path / "main.yaml", {"seed": 1, "faces": {"num_frames": 32, "size": 256},
                                   "models": {"a": {}, "b": {}}, "benchmarks": {"x": {}},
                                   "robustness": {"benchmarks": ["x"], "jpeg": [50]}, "predict": {"p": {}},
                                   "datasets": {"d": {"adapter": "csv", "options": {"k": 1}}}})
    write(tmp_path / "mid.yaml", {"base": "main.yaml", "seed": 2, "faces": {"size": 128}})
    top = write(tmp_path / "config/top.yaml", {"base": "mid.yaml", "faces": {"num_frames": 4},
                                               "models": {"c": {}}, "robustness": {"benchmarks": []},
                                               "datasets": {"d": {"options": {"j": 2}}}})
    cfg = pconfig.load(top)
    assert "base" not in cfg and cfg["seed"] == 2
    assert cfg["faces"] == {"num_frames": 4, "size": 128}  # merged through the chain
    assert cfg["models"] == {"c": {}} and cfg["robustness"] == {"benchmarks": []}  # replaced
    assert cfg["benchmarks"] == {"x": {}} and cfg["predict"] == {"p": {}}  # not given: the base's
    assert cfg["datasets"]["d"] == {"adapter": "csv", "options": {"k": 1, "j": 2}}
    assert pconfig.with_base({"seed": 3}, tmp_path) == {"seed": 3}


def test_base_missing_or_cyclic_is_named(tmp_path):
    with pytest.raises(pconfig.ConfigError, match=r"x.yaml: base 'nope.yaml': no such file under .*base: config.yaml"):
        pconfig.with_base({"base": "nope.yaml"}, tmp_path, source="x.yaml")
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(pconfig.ConfigError, match="is a cycle"):
        pconfig.with_base({"base": "a.yaml"}, tmp_path)


@pytest.mark.parametrize("name", [*EXPERIMENTS, *(f"demo_{n}" for n in EXPERIMENTS)])
def test_experiment_configs_are_valid_and_short(repo, name):
    path = repo / f"config/{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["base"] == ("config/demo.yaml" if name.startswith("demo_") else "config.yaml")
    cfg = pconfig.validate_config(pconfig.load(path), source=name)
    pconfig.check_config(cfg)
    assert cfg["results"] == f"results/{name}"
    assert "snakemake" in path.read_text().split("\nbase:")[0]  # the header gives the command
    assert pconfig.corruptions(cfg) == {}  # robustness off


def test_demo_twins_share_their_datasets_exactly(repo):
    """Twins run in one folder share resources/datasets/<name>: one name, one source."""
    seen = {}
    for name in EXPERIMENTS:
        cfg = pconfig.load(repo / f"config/demo_{name}.yaml")
        for ds, entry in cfg["datasets"].items():
            assert seen.setdefault(ds, entry) == entry, (name, ds)


def settings(cfg, model):
    return pconfig.model_settings(cfg, model)  # a seeded model's settings: its runs differ only in the seed


def rung(cfg, model):
    s = settings(cfg, model)
    return (s["ln_tuning"], s["l2_norm"], s["loss"]["alignment"] > 0 or s["loss"]["uniformity"] > 0,
            s["slerp"]["enabled"])


def differing(a: dict, b: dict, prefix="") -> set[str]:
    keys = set(a) | set(b)
    out = set()
    for k in keys:
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out |= differing(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            out.add(f"{prefix}{k}")
    return out


@pytest.mark.parametrize("prefix", ["", "demo_"])
def test_experiments_hold_what_the_report_infers(repo, prefix):
    """The report tells the experiments apart by the models' settings: the ladder's rungs by their flags,
    fraction variants and paired/unpaired pairs by the one setting they differ in, training elsewhere by
    the training datasets, the logistic protocol by its kind."""
    load = lambda n: pconfig.validate_config(pconfig.load(repo / f"config/{prefix}{n}.yaml"))
    ladder = load("paper_ladder")
    assert prefix or all(settings(ladder, m)["seeds"] == [0, 1, 2, 3, 4] for m in ladder["models"])  # as GenD
    assert [rung(ladder, m) for m in ladder["models"]] == [
        (False, False, False, False), (True, False, False, False), (True, True, False, False),
        (True, True, True, False), (True, True, True, True)]
    fraction = load("data_fraction")
    groups = {}
    for m in fraction["models"]:
        s = settings(fraction, m)
        groups.setdefault(rung(fraction, m), []).append(s["data"]["fraction"])
        base = settings(fraction, m.split("_f0")[0])
        assert differing(s, base) <= {"data.fraction"}, m
    grid = [0.25, 0.5, 1.0] if prefix else [0.25, 0.5, 0.75, 1.0]  # the twin leaves 75 % out (fewer jobs)
    assert all(sorted(v) == grid for v in groups.values()) and groups
    pu = load("paired_vs_unpaired")
    a, b = (settings(pu, m) for m in pu["models"])
    assert differing(a, b) == {"data.subset"} and {a["data"]["subset"], b["data"]["subset"]} == {"paired", "unpaired"}
    elsewhere = load("train_elsewhere")
    trained_on = {settings(elsewhere, m)["data"]["dataset"] for m in elsewhere["models"]}
    assert len(trained_on) >= 2 and trained_on <= {b["dataset"] for b in elsewhere["benchmarks"].values()}
    lr = load("clip_logreg")
    assert {settings(lr, m)["kind"] for m in lr["models"]} == {"logistic"}
    assert any(settings(lr, m)["data"].get("methods") for m in lr["models"])


# ---- subsets -------------------------------------------------------------------------------------------


def toy_dataset(n_reals=9, methods=("DF", "FS"), split="train"):
    """n_reals reals, each with one fake per method (FF++-like), plus a real without fakes and a fake
    whose real is unreadable."""
    vids, pairs = [], []
    for i in range(n_reals):
        vids.append((f"real/{i:03d}", 0, "real", f"real/{i:03d}", None))
        for m in methods:
            vids.append((f"{m}/{i:03d}", 1, m, f"real/{i:03d}", None))
            pairs.append((f"{m}/{i:03d}", m, split, f"real/{i:03d}", split, True))
    vids += [("real/lonely", 0, "real", "real/lonely", None), ("real/broken", 0, "real", "real/broken", "cannot open"),
             ("DF/broken", 1, "DF", "real/broken", None)]
    pairs.append(("DF/broken", "DF", split, "real/broken", split, True))
    videos = pl.DataFrame(vids, schema=["video_id", "label", "method", "source_id", "error"], orient="row")
    videos = videos.with_columns(split=pl.lit(split), label=pl.col("label").cast(pl.Int8))
    pairs = pl.DataFrame(pairs, schema=["fake_id", "fake_method", "fake_split", "real_id", "real_split", "real_present"],
                         orient="row")
    return videos, pairs


def test_paired_and_unpaired_share_reals_fake_count_and_method_mix():
    videos, pairs = toy_dataset()
    table = draw_split(videos, pairs, "train", seed=5)
    paired, unpaired = (table.filter(pl.col("subset") == s) for s in ("paired", "unpaired"))
    reals = lambda t: set(t.filter(pl.col("label") == 0)["video_id"])
    fakes = lambda t: t.filter(pl.col("label") == 1)
    assert reals(paired) == reals(unpaired) and len(reals(paired)) == 4  # half of 9 sources, rounded down
    assert sorted(fakes(paired)["method"]) == sorted(fakes(unpaired)["method"]) == ["DF"] * 4 + ["FS"] * 4
    assert set(fakes(paired)["source_id"]) == reals(paired)  # paired: every fake's source is in training
    assert not set(fakes(unpaired)["source_id"]) & reals(unpaired)  # unpaired: none is
    assert set(fakes(unpaired)["half"]) == {"B"} and set(fakes(paired)["half"]) == {"A"}
    assert not {"real/lonely", "real/broken", "DF/broken"} & set(table["video_id"])  # no fake / unreadable
    again = draw_split(videos, pairs, "train", seed=5)
    assert again.equals(table) and not draw_split(videos, pairs, "train", seed=6).equals(table)


def test_unpaired_without_enough_fakes_of_a_method_says_so():
    videos, pairs = toy_dataset(n_reals=4)
    keep = pairs.filter(~((pl.col("fake_method") == "FS") & pl.col("real_id").is_in(["real/000", "real/001",
                                                                                      "real/002", "real/003"][:3])))
    with pytest.raises(ValueError, match="method 'FS' has .* fakes made from half A's reals but only"):
        for seed in range(20):  # some draw puts the reals with FS fakes in half A
            draw_split(videos, keep, "train", seed=seed)


def test_build_subsets_writes_every_split_with_sources(tmp_path):
    v1, p1 = toy_dataset(split="train")
    v2, p2 = toy_dataset(n_reals=4, split="val")
    v2 = v2.with_columns(pl.col("video_id") + "v", pl.col("source_id") + "v")
    p2 = p2.with_columns(pl.col("fake_id") + "v", pl.col("real_id") + "v")
    pl.concat([v1, v2]).write_parquet(tmp_path / "videos.parquet")
    pl.concat([p1, p2]).write_parquet(tmp_path / "pairs.parquet")
    counts = build_subsets(tmp_path / "videos.parquet", tmp_path / "pairs.parquet", tmp_path / "subsets.parquet", 3)
    assert counts["train/paired/fake"] == counts["train/unpaired/fake"] == 8
    assert counts["val/paired/real"] == 2
    assert set(pl.read_parquet(tmp_path / "subsets.parquet")["split"]) == {"train", "val"}


def test_select_training_filters_methods_and_subset(tmp_path):
    videos, pairs = toy_dataset()
    draw_split(videos, pairs, "train", seed=1).write_parquet(tmp_path / "subsets.parquet")
    crops = videos.filter(pl.col("error").is_null()).select("video_id", "label", "method", "source_id")
    crops = pl.concat([crops, crops]).with_columns(split=pl.lit("train"))  # two crops per video
    assert select_training(crops, {"train_split": "train"}).equals(crops)
    fs = select_training(crops, {"methods": ["real", "FS"], "train_split": "train"})
    assert set(fs["method"]) == {"real", "FS"} and fs.height == 2 * (10 + 9)
    paired = select_training(crops, {"subset": "paired", "train_split": "train"}, tmp_path / "subsets.parquet")
    assert paired.height == 2 * (4 + 8)
    both = select_training(crops, {"subset": "unpaired", "methods": ["real", "DF"], "train_split": "train"},
                           tmp_path / "subsets.parquet")
    assert sorted(set(both["method"])) == ["DF", "real"] and both.filter(pl.col("label") == 1).height == 2 * 4
    with pytest.raises(ValueError, match="needs the dataset's subsets.parquet"):
        select_training(crops, {"subset": "paired", "train_split": "train"})
    with pytest.raises(ValueError, match="no 'paired' videos in split 'val'"):
        select_training(crops, {"subset": "paired", "train_split": "val"}, tmp_path / "subsets.parquet")


# ---- what a model's settings and inputs become ---------------------------------------------------------


def test_filters_change_only_the_models_that_set_them(repo):
    demo = pconfig.validate_config(pconfig.load(repo / "config/demo.yaml"))
    edited = copy.deepcopy(demo)
    edited["models"]["lnclip_df"] = {"data": {"subset": None, "methods": None}}  # null = unset
    edited["models"]["logistic"] = {"kind": "logistic", "data": {"methods": None}}
    edited["models"]["paired"] = {"data": {"subset": "paired"}}
    edited["models"]["fs"] = {"kind": "logistic", "data": {"methods": ["real", "SBI"]}}
    for m in demo["models"]:
        assert kinds.settings(edited, m) == kinds.settings(demo, m), m
        assert kinds.paths(edited, m) == kinds.paths(demo, m) and "subsets" not in kinds.paths(demo, m)
    assert kinds.paths(edited, "paired")["subsets"] == "results/demo/demo/subsets.parquet"
    assert kinds.inputs(kinds.paths(edited, "paired"))["subsets"] == "results/demo/demo/subsets.parquet"
    assert kinds.settings(edited, "paired")["model"]["data"]["subset"] == "paired"
    assert kinds.settings(edited, "fs")["model"]["data"]["methods"] == ["real", "SBI"]


def test_no_validation_set_needs_select_metric_last(repo):
    demo = pconfig.validate_config(pconfig.load(repo / "config/demo.yaml"))
    demo["models"]["x"] = {"data": {"val_split": None}, "select_metric": "video_auroc"}
    with pytest.raises(pconfig.ConfigError, match="models.x: no validation set .* select_metric: last"):
        pconfig.check_config(demo)
    demo["models"]["x"]["select_metric"] = "last"
    pconfig.check_config(demo)


def test_demo_methods_give_one_fake_per_method(tmp_path):
    from pipeline.fetch.demo import make_demo_dataset

    out = make_demo_dataset(tmp_path / "d", seed=3, counts={"train": 2}, frames=2,
                            methods={"SBI": {"downscale": [0.2, 0.2]}, "SBIx": {"color_shift": 0.1}})
    labels = pl.read_csv(out / "labels.csv")
    assert labels["video_id"].to_list() == ["real_0000", "SBI_0000", "SBIx_0000", "real_0001", "SBI_0001", "SBIx_0001"]
    assert labels.filter(pl.col("label") == 1)["source_id"].to_list() == ["real_0000"] * 2 + ["real_0001"] * 2
    assert all((out / p).is_file() for p in labels["path"])
    a, b = ((out / f"{m}/{m}_0000.mp4").read_bytes() for m in ("SBI", "SBIx"))
    assert a != b
    with pytest.raises(ValueError, match="either blend or methods"):
        make_demo_dataset(tmp_path / "e", seed=3, blend={}, methods={"SBI": {}})
