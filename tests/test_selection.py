"""Checkpoint selection: the validation sample, the kept epoch (ties -> the later one, a tie-break metric,
video AP), empty validation sets, and the selection rule's proof that validation videos are neither
training nor test videos (by dataset root + id, by resolved file, by content)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from pipeline.core import config as pconfig
from pipeline.core import tables
from pipeline.training import choice, loop, selection
from pipeline.training.choice import better, sample_ids, sample_videos
from pipeline.training.selection import SelectionError, check_selection
from test_train import make_cfg, run, toy  # noqa: F401  (toy: the fixture)


# ---------------------------------------------------------------------------- the sample


def videos(n_real: int, n_fake: int, frames: int = 1) -> pl.DataFrame:
    rows = [{"video_id": f"{'real' if lab == 0 else 'fake'}/{i:04d}", "label": lab, "frame_idx": f}
            for lab, n in ((0, n_real), (1, n_fake)) for i in range(n) for f in range(frames)]
    return pl.DataFrame(rows, schema_overrides={"label": pl.Int8})


def test_sample_is_label_balanced_seeded_and_the_same_from_the_index_or_the_crops():
    index, crops = videos(10, 30), videos(10, 30, frames=4)  # one row per video / per frame
    ids = sample_ids(index, 8, seed=0)
    assert len(ids) == 8 and sum(i.startswith("real/") for i in ids) == 4
    assert ids == sample_ids(index, 8, seed=0) == sample_ids(crops, 8, seed=0)  # deterministic, rows don't matter
    assert ids == sample_ids(index.reverse(), 8, seed=0)  # nor their order
    assert ids != sample_ids(index, 8, seed=1)
    assert sample_videos(crops, 8, 0).height == 8 * 4  # whole videos: every frame of each
    assert sample_ids(index, None) is None and sample_videos(crops, None).height == crops.height
    short = sample_ids(videos(2, 30), 10, seed=0)  # the rarer class whole, the other fills the rest
    assert len(short) == 10 and sum(i.startswith("real/") for i in short) == 2
    assert sample_ids(videos(3, 3), 100) == set(videos(3, 3)["video_id"])
    # a larger sample keeps the smaller one (the seeded order of each class is fixed)
    assert sample_ids(index, 8, seed=3) <= sample_ids(index, 12, seed=3)


def test_val_set_specs_follow_the_config_order_with_sample_settings(repo):
    cfg = pconfig.load(repo / "config/demo.yaml")
    cfg["models"]["held_out"] = {"data": {"val_split": None, "val_sets": [
        {"dataset": "demo_shift", "split": "test", "max_videos": 6, "seed": 2}, {"dataset": "demo", "split": "val"}]}}
    pconfig.validate_config(cfg)
    model = pconfig.model_config(cfg, "held_out")
    specs = choice.val_set_specs(model)
    assert [(s["dataset"], s["split"]) for s in specs] == pconfig.val_sets(model)
    assert specs[0] == {"dataset": "demo_shift", "split": "test", "max_videos": 6, "seed": 2}
    assert specs[1]["max_videos"] is None and specs[1]["seed"] == 0
    assert choice.val_set_specs(pconfig.model_config(cfg, "lnclip_df")) == [
        {"dataset": "demo", "split": "val", "max_videos": None, "seed": 0}]


# ---------------------------------------------------------------------------- the kept epoch


def test_better_prefers_higher_then_the_tiebreak_then_the_later_epoch():
    best = {"metric": None}
    assert better(0.5, None, best)
    best = {"metric": 0.8, "tiebreak": 0.6}
    assert better(0.81, 0.0, best) and not better(0.79, 1.0, best)
    assert better(0.8, 0.7, best) and not better(0.8, 0.5, best)
    assert better(0.8, 0.6, best)  # a full tie: the later epoch
    assert better(0.8, None, {"metric": 0.8, "tiebreak": None})  # no tie-break metric: the later epoch
    assert better(0.8, 0.1, {"metric": 0.8, "tiebreak": math.nan})  # a NaN never wins a tie-break


def scripted(monkeypatch, values: list[dict]):
    """Validation returns ``values[epoch]`` (the mean over the sets) instead of scoring."""
    calls = iter(values)

    def fake(detector, val_sets, **kw):
        m = {"frame_auroc": 0.5, "video_auroc": 0.5, "video_ap": 0.5, "n_frames": 32, "n_videos": 8, **next(calls)}
        return m, {name: m for name in val_sets}

    monkeypatch.setattr(loop, "validate_sets", fake)


def test_a_tie_keeps_the_later_epoch_and_its_tensors(toy, tmp_path, monkeypatch):
    scripted(monkeypatch, [{"video_auroc": a} for a in (0.8, 0.9, 0.9, 0.7)])
    summary = run(toy, tmp_path / "tie", make_cfg(epochs=4))
    assert summary["best_epoch"] == 2 and summary["selected_by"] == "video_auroc"
    sel = summary["selection"]
    assert (sel["epoch"], sel["epochs"], sel["metric"], sel["tiebreak"], sel["ties"]) == (
        2, 4, "video_auroc", None, "later epoch")
    assert sel["val_sets"] == [{"name": "None/val", "videos": 8, "real": 4, "fake": 4, "max_videos": None}]
    # the adapter holds epoch 2's tensors: those of the same run stopped after 3 epochs
    monkeypatch.undo()
    cfg = make_cfg(epochs=3)
    cfg["select_metric"] = "last"
    run(toy, tmp_path / "three", cfg)
    kept, third = load_file(str(tmp_path / "tie/adapter.safetensors")), load_file(str(tmp_path / "three/adapter.safetensors"))
    assert kept.keys() == third.keys() and all(torch.equal(kept[k], third[k]) for k in kept)


def test_the_tiebreak_decides_a_tie_and_video_ap_can_select(toy, tmp_path, monkeypatch):
    epochs = [{"video_auroc": 0.9, "video_ap": 0.7}, {"video_auroc": 0.9, "video_ap": 0.6},
              {"video_auroc": 0.8, "video_ap": 0.95}]
    cfg = make_cfg(epochs=3)
    cfg["select_tiebreak"] = "video_ap"
    scripted(monkeypatch, epochs)
    assert run(toy, tmp_path / "a", cfg)["best_epoch"] == 0  # 0.9 ties, AP 0.7 > 0.6
    cfg = make_cfg(epochs=3)
    cfg["select_metric"] = "video_ap"
    scripted(monkeypatch, epochs)
    summary = run(toy, tmp_path / "b", cfg)
    assert summary["best_epoch"] == 2 and summary["selection"]["metric"] == "video_ap"
    assert summary["selection"]["value"] == pytest.approx(0.95) and summary["val"]["video_ap"] == pytest.approx(0.95)


def test_video_ap_is_logged_as_the_average_precision_of_the_video_scores(toy, tmp_path):
    from sklearn.metrics import average_precision_score

    from pipeline.evaluation import predict_frames
    from pipeline.model.detector import load_detector

    cfg = make_cfg(epochs=1)
    cfg["select_metric"] = "video_ap"
    run(toy, tmp_path, cfg)
    val = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "val")
    detector, meta = load_detector(tmp_path / "adapter.safetensors", toy["backbone"])
    assert meta["selection"]["metric"] == "video_ap" and meta["selection"]["ties"] == "later epoch"
    frames = pl.read_parquet(toy["frames"]).filter(pl.col("split") == "val")
    vids = predict_frames(detector, frames, batch_size=7).group_by("video_id").agg(
        pl.col("label").first(), pl.col("p_fake").mean())
    assert val["video_ap"][0] == pytest.approx(average_precision_score(vids["label"], vids["p_fake"]), abs=1e-9)


def test_a_validation_set_without_crops_is_an_error_naming_model_dataset_and_split(toy, tmp_path):
    cfg = make_cfg(epochs=1)
    cfg["data"]["val_sets"] = [{"dataset": "other", "split": "holdout"}]
    with pytest.raises(ValueError, match=r"model mymodel: validation set other/holdout has no face crop \(0 videos"):
        run(toy, tmp_path / "models" / "mymodel", cfg, val_frames={"other": toy["frames"]})


def test_a_max_videos_sample_validates_on_that_many_whole_videos(toy, tmp_path):
    cfg = make_cfg(epochs=1)
    cfg["data"]["val_split"] = None
    cfg["data"]["val_sets"] = [{"dataset": "other", "split": "train", "max_videos": 6, "seed": 1}]
    summary = run(toy, tmp_path, cfg, val_frames={"other": toy["frames"]})
    val = pl.read_parquet(tmp_path / "log.parquet").filter(pl.col("kind") == "val")
    assert val["n_videos"].to_list() == [6] and val["n_frames"].to_list() == [6 * 4]
    assert summary["selection"]["val_sets"] == [
        {"name": "other/train", "videos": 6, "real": 3, "fake": 3, "max_videos": 6}]


# ---------------------------------------------------------------------------- the selection rule


def index_rows(dataset: str, root: Path, rel: dict[str, tuple[str, int]], content=None) -> pl.DataFrame:
    """A videos.parquet of files under ``root`` (video id -> (split, label)), written with their bytes."""
    from pipeline.datasets.index import fingerprint

    rows = []
    for vid, (split, label) in rel.items():
        path = root / f"{vid}.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((content or {}).get(vid, f"video {vid}".encode()))
        rows.append({"dataset": dataset, "video_id": vid, "path": str(path), "label": label, "method": "m",
                     "source_id": None, "split": split, "frame_count": 8, "fps": 25.0, "width": 64, "height": 64,
                     "error": None, "mask_path": None, "chunk": 0, "fingerprint": fingerprint(path)})
    return tables.conform(pl.DataFrame(rows, schema_overrides={"source_id": pl.String, "error": pl.String,
                                                                  "mask_path": pl.String}), tables.VIDEOS, "videos")


def demo_like(tmp_path: Path) -> tuple[dict, dict]:
    """The demo's shape: dataset ``demo`` (train/val/test) and benchmark ``demo``'s test split."""
    root = tmp_path / "resources/datasets/demo"
    rel = {f"real/{s}{i}": (s, 0) for s in ("train", "val", "test") for i in range(4)}
    rel |= {f"fake/{s}{i}": (s, 1) for s in ("train", "val", "test") for i in range(4)}
    (tmp_path / "results/demo").mkdir(parents=True)
    tables.write_parquet(index_rows("demo", root, rel), tmp_path / "results/demo/videos.parquet", tables.VIDEOS, "v")
    config = pconfig.load(Path(__file__).resolve().parents[1] / "config/demo.yaml")
    config["results"] = str(tmp_path / "results")
    return config, {"demo": str(tmp_path / "results/demo/videos.parquet")}


def spec_of(config: dict, model: str = "lnclip_df") -> dict:
    return selection.spec(pconfig.validate_config(config), model)


def test_the_demo_selection_passes_and_records_what_was_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, paths = demo_like(tmp_path)
    del config["benchmarks"]["demo_shift"]
    record = check_selection(spec_of(config), paths, tmp_path / "selection.json")
    assert record["overlaps"] == 0 and (tmp_path / "selection.json").is_file()
    assert record["val_sets"] == [{"dataset": "demo", "split": "val", "max_videos": None, "seed": 0, "listed": 8,
                                   "videos": 8, "real": 4, "fake": 4}]
    assert [(c["role"], c["dataset"], c["split"], c["videos"]) for c in record["checked_against"]] == [
        ("training", "demo", "train", 8), ("demo", "demo", "test", 8)]


def test_validating_on_a_benchmarks_test_videos_through_another_entry_is_refused(tmp_path, monkeypatch):
    """A second dataset entry reading the demo tree's files: the names differ, the videos do not."""
    monkeypatch.chdir(tmp_path)
    config, paths = demo_like(tmp_path)
    del config["benchmarks"]["demo_shift"]
    config["datasets"]["demo_again"] = {"adapter": "csv", "source": {"dataset": "demo"}}
    config["models"]["lnclip_df"] = {"data": {"val_sets": [{"dataset": "demo_again", "split": "test"}]}}
    pconfig.check_config(pconfig.validate_config(config))  # names alone: nothing to refuse
    again = pl.read_parquet(paths["demo"]).with_columns(dataset=pl.lit("demo_again"))
    again.write_parquet(tmp_path / "again.parquet")
    with pytest.raises(SelectionError) as err:
        check_selection(spec_of(config), {**paths, "demo_again": str(tmp_path / "again.parquet")}, tmp_path / "s.json")
    msg = str(err.value)
    assert ("model lnclip_df: validation set demo_again/test shares 8 of its 8 videos with benchmark demo's test "
            "videos (demo/test) (same content, file, id), e.g. fake/test0, fake/test1") in msg
    assert "Select on held-out videos" in msg and not (tmp_path / "s.json").exists()


def test_a_copy_or_a_link_of_a_test_video_is_caught_by_content_and_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, paths = demo_like(tmp_path)
    del config["benchmarks"]["demo_shift"]
    test_file = Path(pl.read_parquet(paths["demo"]).filter(pl.col("video_id") == "real/test2")["path"][0])
    other = tmp_path / "elsewhere"
    content = {"real/copy": test_file.read_bytes()}  # the same bytes under another name and root
    rel = {"real/copy": ("val", 0), "real/own": ("val", 0), "fake/own": ("val", 1)}
    held = index_rows("held", other, rel, content)
    (other / "fake/link.mp4").symlink_to(test_file)  # a link: same file, its own id
    linked = index_rows("held", other, {"fake/link": ("val", 1)})
    pl.concat([held, linked]).write_parquet(tmp_path / "held.parquet")
    config["datasets"]["held"] = {"adapter": "folder", "source": {"path": str(other)}}
    config["models"]["lnclip_df"] = {"data": {"val_sets": [{"dataset": "held", "split": "val"}]}}
    with pytest.raises(SelectionError) as err:
        check_selection(spec_of(config), {**paths, "held": str(tmp_path / "held.parquet")}, tmp_path / "s.json")
    assert ("validation set held/val shares 2 of its 4 videos with benchmark demo's test videos (demo/test) "
            "(same content, file), e.g. fake/link, real/copy") in str(err.value)
    assert "demo/val shares" not in str(err.value)  # the demo's own val split is clean


def test_validating_on_training_videos_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, paths = demo_like(tmp_path)
    del config["benchmarks"]["demo_shift"]
    config["models"]["lnclip_df"] = {"data": {"val_sets": [{"dataset": "demo", "split": "train", "max_videos": 4}]}}
    with pytest.raises(SelectionError, match=r"validation set demo/train shares 4 of its 4 videos with its training "
                                             r"videos \(same content, file, id\), e.g. fake/train0"):
        check_selection(spec_of(config), paths, tmp_path / "s.json")


def test_a_validation_split_the_index_does_not_list_is_named_early(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, paths = demo_like(tmp_path)
    del config["benchmarks"]["demo_shift"]
    config["models"]["lnclip_df"] = {"data": {"val_sets": [{"dataset": "demo", "split": "heldout"}]}}
    with pytest.raises(SelectionError, match=r"model lnclip_df: validation set demo/heldout has no video: the index of "
                                             r"dataset 'demo' lists the splits \['test', 'train', 'val'\]\. .*"
                                             r"options: \{splits: \[heldout\]\}"):
        check_selection(spec_of(config), paths, tmp_path / "s.json")


def test_selection_settings_the_schema_cannot_check_are_refused(repo):
    cfg = pconfig.validate_config(pconfig.load(repo / "config/demo.yaml"))
    selection.check_config(cfg)
    assert selection.selected(cfg) == [m for m in cfg["models"] if m != "logistic"]
    cfg["models"]["ln"]["select_tiebreak"] = "video_ap"  # the demo keeps the last epoch
    with pytest.raises(pconfig.ConfigError, match=r"models\.ln\.select_tiebreak is set but select_metric is 'last'"):
        selection.check_config(cfg)
    del cfg["models"]["ln"]["select_tiebreak"]
    cfg["models"]["logistic"]["data"] = {"val_sets": [{"dataset": "demo", "split": "val", "max_videos": 4}]}
    with pytest.raises(pconfig.ConfigError, match=r"models\.logistic\.data\.val_sets: max_videos applies to "
                                                  r"gradient-trained models only"):
        selection.check_config(cfg)


def test_the_report_states_the_selection_in_words():
    from pipeline.report.training import disjointness_text, selection_text

    sel = {"epoch": 7, "epochs": 10, "metric": "video_ap", "tiebreak": "video_auroc", "ties": "later epoch",
           "val_sets": [{"name": "ffpp_c23/val", "videos": 140, "real": 70, "fake": 70, "max_videos": None},
                        {"name": "deepspeak_v1_heldout/train", "videos": 400, "real": 200, "fake": 200,
                         "max_videos": 400}]}
    assert selection_text(sel) == (
        "epoch 7 of 10 (numbered from 0), by the mean video AP on ffpp_c23/val (140 videos: 70 real + 70 fake), "
        "deepspeak_v1_heldout/train (400 videos: 200 real + 200 fake; a sample of at most 400); ties \u2192 video "
        "AUROC, then the later epoch")
    one = {**sel, "metric": "video_auroc", "tiebreak": None, "val_sets": sel["val_sets"][:1]}
    assert selection_text(one).endswith("by video AUROC on ffpp_c23/val (140 videos: 70 real + 70 fake); ties \u2192 "
                                        "the later epoch")
    assert selection_text({"epoch": 14, "epochs": 15, "metric": "last"}) == (
        "epoch 14 of 15 (numbered from 0): the last one (select_metric: last)")
    assert selection_text(None) is None and disjointness_text(None) is None
    record = {"checked_against": [{"role": "training", "dataset": "demo", "split": "train", "videos": 64},
                                  {"role": "demo", "dataset": "demo", "split": "test", "videos": 40}],
              "identities": list(selection.IDENTITIES)}
    assert disjointness_text(record) == (
        "none of the validation videos is among: the training split (demo/train, 64 videos), benchmark demo "
        "(demo/test, 40 videos) (compared by dataset root + video id, resolved file, content fingerprint (size, "
        "first and last MiB))")


def test_the_training_section_shows_the_selection_and_what_it_was_checked_against(tmp_path):
    import re

    from pipeline.report.build import build_report

    rows = [{"kind": "val", "epoch": e, "step": e, "video_auroc": 0.9, "video_ap": 0.8, "frame_auroc": 0.7}
            for e in range(3)]
    pl.DataFrame(rows).write_parquet(tmp_path / "log.parquet")
    sel = {"epoch": 2, "epochs": 3, "metric": "video_auroc", "tiebreak": None, "ties": "later epoch",
           "val_sets": [{"name": "demo/val", "videos": 16, "real": 8, "fake": 8, "max_videos": None}]}
    adapter = {"path": "a.safetensors", "meta": {"best_epoch": 2, "selected_by": "video_auroc", "selection": sel}}
    record = {"checked_against": [{"role": "training", "dataset": "demo", "split": "train", "videos": 64}],
              "identities": ["dataset root + video id"]}
    build_report(tmp_path / "r.html", evaluations=[], datasets=[], provenance={}, title="t", demo=False,
                 trainings=[{"model": "m", "log_path": str(tmp_path / "log.parquet"), "config": {}, "adapter": adapter,
                             "selection": record}])
    sec = re.search(r'<section id="train-m".*?</section>', (tmp_path / "r.html").read_text(), re.S).group(0)
    assert ("checkpoint selection</th><td class=\"left wrap\">epoch 2 of 3 (numbered from 0), by video AUROC on "
            "demo/val (16 videos: 8 real + 8 fake); ties \u2192 the later epoch</td>") in sec
    assert ("validation videos checked</th><td class=\"left wrap\">none of the validation videos is among: the "
            "training split (demo/train, 64 videos) (compared by dataset root + video id)</td>") in sec


# ---------------------------------------------------------------------------- config.yaml's example


def uncommented_example(text: str) -> str:
    """config.yaml with its out-of-domain selection example on: the held-out dataset entries, the model
    block and the benchmarks they are held out from."""
    lines, out, in_model = text.splitlines(), [], False
    for line in lines:
        on = line.startswith("  # lnclip_df_ood:") or (in_model and line.startswith("  #   "))
        in_model = on and (in_model or line.startswith("  # lnclip_df_ood:"))
        heldout = line.startswith(("  # celebdf_v2_heldout:", "  # deepspeak_v1_heldout:", "  # deepspeak_v2_heldout:",
                                   "  # ffiw_heldout:"))
        bench = line.startswith(("  # deepspeak_v1: {dataset", "  # deepspeak_v2: {dataset", "  # ffiw: {dataset"))
        out.append(line.replace("  # ", "  ", 1) if on or heldout or bench else line)
    return "\n".join(out) + "\n"


def example_trees(root: Path) -> None:
    """Tiny copies, in their official layouts, of every dataset the example reads; every file has its own
    bytes (the check compares content)."""
    def put(rel: str) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(f"not a video: {rel}".encode())

    ff = "resources/datasets/ffpp_c23/ff-c23/FaceForensics++_C23"
    for a, b in (("071", "054"), ("720", "672"), ("953", "974")):  # a train, a val and a test pair
        for vid in (a, b):
            put(f"{ff}/original/{vid}.mp4")
        for folder in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"):
            put(f"{ff}/{folder}/{a}_{b}.mp4")
            put(f"{ff}/{folder}/{b}_{a}.mp4")
    cdf = "resources/manual/Celeb-DF-v2"
    for rel in ("Celeb-real/id0_0000.mp4", "YouTube-real/00001.mp4", "Celeb-synthesis/id0_id1_0000.mp4",
                "Celeb-real/id2_0003.mp4", "YouTube-real/00009.mp4", "Celeb-synthesis/id2_id3_0003.mp4"):
        put(f"{cdf}/{rel}")
    (root / cdf / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n1 YouTube-real/00001.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    for ds in ("deepspeak_v1_1", "deepspeak_v2"):
        for split in ("train", "test"):
            for rel in ("real/p001.mp4", "real/p002.mp4", "fake/facefusion/p001.mp4", "fake/memo/p002.mp4"):
                put(f"resources/manual/{ds}/{split}/{rel}")
    for side in ("source", "target"):
        for theirs in ("train", "val"):
            for n in ("00001", "00002"):
                put(f"resources/manual/FFIW10K-v1-release/{side}/{theirs}/videos/{n}.mp4")


def test_the_config_example_of_out_of_domain_selection_works_on_its_datasets_layouts(repo, tmp_path, monkeypatch):
    import yaml

    from pipeline.core import layout
    from pipeline.datasets import index

    text = uncommented_example((repo / "config.yaml").read_text())
    config = pconfig.validate_config(yaml.safe_load(text))
    pconfig.check_config(config)
    selection.check_config(config)
    ood = pconfig.model_config(config, "lnclip_df_ood")
    assert (ood["select_metric"], ood["select_tiebreak"]) == ("video_ap", "video_auroc")
    assert pconfig.val_sets(ood) == [(f"{ds}_heldout", "train") for ds in ("celebdf_v2", "deepspeak_v1",
                                                                         "deepspeak_v2", "ffiw")]
    assert {"deepspeak_v1", "deepspeak_v2", "ffiw"} <= set(config["benchmarks"])
    monkeypatch.chdir(tmp_path)
    example_trees(tmp_path)
    videos = {}
    for ds, splits in pconfig.dataset_splits(config).items():
        entry = config["datasets"][ds]
        out = tmp_path / "results" / ds / "videos.parquet"
        index.build_index(ds, entry["adapter"], layout.dataset_root(config, ds), entry["options"], out, chunk_size=8)
        videos[ds] = str(out)
    for model in selection.selected(config):
        record = check_selection(selection.spec(config, model), videos, tmp_path / f"{model}.json")
        assert record["overlaps"] == 0 and all(v["videos"] > 0 and v["real"] and v["fake"] for v in record["val_sets"])
    record = check_selection(selection.spec(config, "lnclip_df_ood"), videos, tmp_path / "ood.json")
    assert {(v["dataset"], v["videos"]) for v in record["val_sets"]} == {
        ("celebdf_v2_heldout", 3), ("deepspeak_v1_heldout", 4), ("deepspeak_v2_heldout", 4), ("ffiw_heldout", 4)}
    assert {c["role"] for c in record["checked_against"]} == {"training", *config["benchmarks"]}
    # the same files under the benchmarks' own entries (no held-out split) would be refused
    config["datasets"]["celebdf_v2_heldout"]["options"] = {"splits": ["test", "train"]}
    out = tmp_path / "results/celebdf_v2_heldout/videos.parquet"
    index.build_index("celebdf_v2_heldout", "celebdf", layout.dataset_root(config, "celebdf_v2"),
                      {"splits": ["test", "train"]}, out, chunk_size=8)
    spec = selection.spec(config, "lnclip_df_ood")
    spec["val_sets"][0]["split"] = "test"
    with pytest.raises(SelectionError, match=r"validation set celebdf_v2_heldout/test shares 3 of its 3 videos with "
                                             r"benchmark celebdf_v2's test videos \(celebdf_v2/test\) \(same content, "
                                             r"file, id\)"):
        check_selection(spec, videos, tmp_path / "refused.json")


# ---------------------------------------------------------------------------- the rule, in the workflow


@pytest.mark.slow
def test_the_selection_job_refuses_a_model_validating_on_a_benchmarks_test_videos(tmp_path, repo):
    """On a small demo: a clean model's check writes its record; a model validating on the demo's test
    videos through a second dataset entry fails its check, naming it (its training, which takes the check
    as input, cannot start). Only downloads, indexes and the checks run."""
    import yaml

    from test_workflow import copy_workflow, snakemake

    work = copy_workflow(repo, tmp_path)
    cfg = yaml.safe_load((work / "config/demo.yaml").read_text())
    cfg["datasets"]["demo"]["source"]["demo"]["counts"] = {"train": 4, "val": 4, "test": 4}
    cfg["datasets"]["demo_shift"]["source"]["demo"]["counts"] = {"test": 4}
    cfg["datasets"]["demo_copy"] = {"adapter": "csv", "source": {"dataset": "demo"}}
    cfg["models"] = {"clean": {}, "peek": {"select_metric": "video_auroc",
                                           "data": {"val_sets": [{"dataset": "demo_copy", "split": "test"}]}}}
    cfg["robustness"]["models"] = ["clean"]
    (work / "config/small.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(work, "--configfile=config/small.yaml", "--cores", "2", "--keep-going",
                     "results/demo/models/clean/selection.json", "results/demo/models/peek/selection.json",
                     check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert ("model peek: validation set demo_copy/test shares 8 of its 8 videos with benchmark demo's test videos "
            "(demo/test) (same content, file, id)") in out
    assert not (work / "results/demo/models/peek/selection.json").exists()
    assert "Training" not in out and "faces" not in out
    record = json.loads((work / "results/demo/models/clean/selection.json").read_text())
    assert record["val_sets"] == [{"dataset": "demo", "split": "val", "max_videos": None, "seed": 0, "listed": 8,
                                   "videos": 8, "real": 4, "fake": 4}]
    assert [(c["role"], c["videos"]) for c in record["checked_against"]] == [
        ("training", 8), ("demo", 8), ("demo_shift", 9)]  # counts per class; demo_shift: and its unreadable video
