"""Every adapter on a miniature copy of its dataset's real layout (names, list formats, nesting)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import pytest

from pipeline.datasets import adapters, index
from pipeline.datasets.adapters import DatasetLayoutError


@pytest.fixture(scope="session")
def mp4(tmp_path_factory) -> bytes:
    """A real 4-frame 32x32 MP4 whose bytes every test video reuses."""
    path = tmp_path_factory.mktemp("video") / "v.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (32, 32))
    for i in range(4):
        w.write(np.full((32, 32, 3), 40 * i, np.uint8))
    w.release()
    return path.read_bytes()


@pytest.fixture
def put(mp4):
    def put(root: Path, *rels: str) -> None:
        for rel in rels:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(mp4)
    return put


def rows(df: pl.DataFrame) -> dict[str, dict]:
    return {r["video_id"]: r for r in df.iter_rows(named=True)}


def counts(df: pl.DataFrame) -> dict:
    grouped = df.group_by("split", "label").len().sort("split", "label")
    return {(s, int(label)): n for s, label, n in grouped.iter_rows()}


def test_registry_names_every_adapter_of_the_config_schema(repo):
    import yaml

    schema = yaml.safe_load((repo / "workflow/schemas/config.schema.yaml").read_text())
    enum = schema["properties"]["datasets"]["additionalProperties"]["properties"]["adapter"]["enum"]
    assert sorted(enum) == sorted(adapters.REGISTRY)
    assert {n for n in adapters.REGISTRY if adapters.imports(n)} == {"deepfakebench", "crops", "wilddeepfake"}
    for name, (module, _) in adapters.REGISTRY.items():  # each module registers the names it is listed for
        assert adapters.get("x", name).name == name and adapters.ADAPTERS[name].list.__module__.endswith(module)
    with pytest.raises(ValueError, match="unknown adapter 'nope'.*known: celebdf"):
        index.list_videos("x", "nope", ".", {})


# ------------------------------------------------------------------------------------------- FF++


def ffpp_tree(root: Path, put, folders=("original", "Deepfakes", "FaceShifter"), mirror=True):
    names = {"original": ["953", "974", "071"], "_fake": ["953_974", "974_953", "071_054"]}
    for folder in folders:
        for name in names["original" if folder == "original" else "_fake"]:
            if mirror:
                put(root, f"FaceForensics++_C23/{folder}/{name}.mp4")
            else:
                base = ("original_sequences/youtube/c23/videos" if folder == "original"
                        else f"manipulated_sequences/{folder}/c23/videos")
                put(root, f"{base}/{name}.mp4")


@pytest.mark.parametrize("point_at", ["mirror_folder", "above"])
def test_ffpp_accepts_the_mirror_folder_itself_and_faceshifter(tmp_path, put, point_at):
    ffpp_tree(tmp_path, put)
    root = tmp_path / "FaceForensics++_C23" if point_at == "mirror_folder" else tmp_path
    df = index.list_videos("fsh", "ffpp", root, {"methods": ["real", "FSh"]})
    assert counts(df) == {("test", 0): 2, ("test", 1): 2, ("train", 0): 1, ("train", 1): 1}
    r = rows(df)["FSh/974_953"]
    assert (r["label"], r["method"], r["source_id"], r["split"]) == (1, "FSh", "real/974", "test")


def test_ffpp_completeness_names_the_missing_test_videos(tmp_path, put):
    ffpp_tree(tmp_path, put, mirror=False)
    out = tmp_path / "idx" / "videos.parquet"
    index.build_index("ff", "ffpp", tmp_path, {"methods": ["real", "DF"]}, out, chunk_size=4)
    (check,) = json.loads(index.completeness_path(out).read_text())["checks"]
    assert check["name"] == "FF++ DF test" and check["expected"] == {"real": 140, "fake": 140, "total": 280}
    assert check["found"] == {"real": 2, "fake": 2, "total": 4} and not check["complete"]
    assert len(check["missing"]) == 276 and {"real/000", "DF/000_003", "DF/003_000"} <= set(check["missing"])
    assert not {"real/720", "DF/720_672", "real/953", "DF/953_974"} & set(check["missing"])  # val; present
    assert check["message"].startswith("FF++ DF test: 4 of 280 videos found, real 2 (expected 140), fake 2 "
                                       "(expected 140), missing: ")


# -------------------------------------------------------------------------------------------- DFD

DFD_REALS = ["01__meeting_serious", "02__talking_angry_couch"]
DFD_FAKES = ["01_02__meeting_serious__YVGY8LOK", "02_01__talking_angry_couch__0C4FCNBS",
             "03_01__outside_talking__ABCDEFGH"]


def test_dfd_holds_actor_reals_and_fakes_paired_by_actor_and_scene(tmp_path, put):
    put(tmp_path, *[f"original_sequences/actors/c23/videos/{n}.mp4" for n in DFD_REALS],
        *[f"manipulated_sequences/DeepFakeDetection/c23/videos/{n}.mp4" for n in DFD_FAKES])
    df = index.list_videos("dfd", "dfd", tmp_path, {})
    assert counts(df) == {("test", 0): 2, ("test", 1): 3}
    r = rows(df)
    assert r["DFD/01_02__meeting_serious__YVGY8LOK"]["source_id"] == "real/01__meeting_serious"
    assert r["DFD/02_01__talking_angry_couch__0C4FCNBS"]["source_id"] == "real/02__talking_angry_couch"
    assert r["DFD/03_01__outside_talking__ABCDEFGH"]["source_id"] is None  # its real is not in this copy
    assert r["real/01__meeting_serious"]["method"] == "real"


def test_dfd_benchmark_has_a_finite_auroc(tmp_path, put):
    from pipeline.evaluation.metrics import evaluate_scores

    put(tmp_path, *[f"original_sequences/actors/c23/videos/{n}.mp4" for n in DFD_REALS],
        *[f"manipulated_sequences/DeepFakeDetection/c23/videos/{n}.mp4" for n in DFD_FAKES])
    videos = index.build_index("dfd", "dfd", tmp_path, {}, tmp_path / "v.parquet", chunk_size=8)
    assert videos["frame_count"].to_list() == [4] * 5
    scores = videos.select("dataset", "video_id", "label", "method").with_columns(
        key=pl.col("video_id"), frame_idx=pl.lit(0), p_fake=pl.col("label").cast(pl.Float64) * 0.5 + 0.2)
    auroc = evaluate_scores(scores, bootstrap=0)["video"]["auroc"]
    assert np.isfinite(auroc) and auroc == 1.0


def test_dfd_without_reals_says_where_the_reals_come_from(tmp_path, put):
    put(tmp_path, *[f"FaceForensics++_C23/DeepFakeDetection/{n}.mp4" for n in DFD_FAKES],
        "FaceForensics++_C23/original/000.mp4")
    with pytest.raises(DatasetLayoutError, match=r"3 DeepFakeDetection fakes but no actor reals.*"
                                                 r"DeepFakeDetection_original.*options.reals"):
        index.list_videos("dfd", "dfd", tmp_path, {})
    put(tmp_path, *[f"actors/{n}.mp4" for n in DFD_REALS])
    df = index.list_videos("dfd", "dfd", tmp_path, {"reals": str(tmp_path / "actors")})
    assert counts(df) == {("test", 0): 2, ("test", 1): 3}


# ---------------------------------------------------------------------------------------- Celeb-DF


def test_celebdf_completeness_warns_about_missing_listed_videos(tmp_path, put, caplog):
    lines = ["1 Celeb-real/id3_0002.mp4", "1 YouTube-real/00007.mp4", "0 Celeb-synthesis/id3_id5_0002.mp4"]
    root = tmp_path / "Celeb-DF-v2"
    root.mkdir()
    (root / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")
    put(root, "Celeb-real/id3_0002.mp4", "Celeb-synthesis/id3_id5_0002.mp4", "Celeb-synthesis/id9_id3_0001.mp4")
    out = tmp_path / "v.parquet"
    df = index.build_index("cdf", "celebdf", tmp_path, {}, out, chunk_size=8)  # pointed at the folder above
    assert df.height == 3 and set(df["split"]) == {"test"}  # id9_id3_0001 is not in the list: not test
    assert rows(df)["YouTube-real/00007"]["error"] == "file not found"
    (check,) = json.loads(index.completeness_path(out).read_text())["checks"]
    assert check["missing"] == ["YouTube-real/00007"]
    assert check["message"].startswith("CDFv2 test: 2 of 518 videos found, real 1 (expected 178), fake 1 "
                                       "(expected 340), missing: YouTube-real/00007")
    assert "CDFv2 test: 2 of 518" in caplog.text


def test_celebdf_pp_methods_from_the_nested_synthesis_folders(tmp_path, put):
    lines = ["1 Celeb-real/id0_0001.mp4", "0 Celeb-synthesis/FaceSwap/BlendFace/id0_id1_0001.mp4",
             "0 Celeb-synthesis/TalkingFace/SadTalker/id0_0001.mp4",
             "0 Celeb-synthesis/FaceReenact/LivePortrait/id0_id2_0001.mp4"]
    (tmp_path / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")
    put(tmp_path, *[line.split()[1] for line in lines], "Celeb-synthesis/FaceSwap/GHOST/id5_id6_0003.mp4")
    df = index.list_videos("cdfpp", "celebdf_pp", tmp_path, {})
    r = rows(df)
    assert sorted(df["method"]) == ["BlendFace", "LivePortrait", "SadTalker", "real"]
    assert r["Celeb-synthesis/FaceSwap/BlendFace/id0_id1_0001"]["source_id"] == "Celeb-real/id0_0001"
    assert r["Celeb-real/id0_0001"]["label"] == 0 and counts(df) == {("test", 0): 1, ("test", 1): 3}
    assert adapters.get("x", "celebdf_pp").protocol({})[0].fake == 5100
    (tmp_path / "List_of_testing_videos.txt").write_text("0 Celeb-synthesis/id0_id1_0001.mp4\n")
    with pytest.raises(DatasetLayoutError, match="Celeb-synthesis/<family>/<method>.*adapter: celebdf"):
        index.list_videos("cdfpp", "celebdf_pp", tmp_path, {})


# -------------------------------------------------------------------------------------------- DFDC


def test_dfdc_test_labels_one_is_fake_and_train_parts_pair_with_originals(tmp_path, put):
    put(tmp_path, "test/videos/aaqaifqrwn.mp4", "test/videos/aayfryxljh.mp4", "test/videos/abhggqdift.mp4")
    (tmp_path / "test/labels.csv").write_text("filename,label\naaqaifqrwn.mp4,1\naayfryxljh.mp4,0\n"
                                              "abhggqdift.mp4,1\n")
    part = tmp_path / "dfdc_train_part_0"
    put(part, "owxbbpjpch.mp4", "wynotylpnm.mp4")
    (part / "metadata.json").write_text(json.dumps({
        "owxbbpjpch.mp4": {"label": "FAKE", "split": "train", "original": "wynotylpnm.mp4"},
        "wynotylpnm.mp4": {"label": "REAL", "split": "train"}}))
    df = index.list_videos("dfdc", "dfdc", tmp_path, {})
    assert counts(df) == {("test", 0): 1, ("test", 1): 2}
    assert rows(df)["test/aayfryxljh"]["label"] == 0 and rows(df)["test/aaqaifqrwn"]["method"] == "DFDC"
    both = rows(index.list_videos("dfdc", "dfdc", tmp_path / "test", {}))  # the test folder itself
    assert set(both) == {"test/aaqaifqrwn", "test/aayfryxljh", "test/abhggqdift"}
    full = index.list_videos("dfdc", "dfdc", tmp_path, {"splits": ["train", "test"]})
    fake = rows(full)["dfdc_train_part_0/owxbbpjpch"]
    assert (fake["label"], fake["split"], fake["source_id"]) == (1, "train", "dfdc_train_part_0/wynotylpnm")
    assert rows(full)["dfdc_train_part_0/wynotylpnm"]["label"] == 0


def test_csv_column_mapping_reads_dfdc_labels_without_rewriting(tmp_path, put):
    put(tmp_path, "videos/a.mp4", "videos/b.mp4")
    (tmp_path / "labels.csv").write_text("filename,label\na.mp4,1\nb.mp4,0\n")
    df = index.list_videos("d", "csv", tmp_path, {"columns": {"path": "filename"}, "folder": "videos"})
    assert rows(df)["a"]["label"] == 1 and rows(df)["b"]["label"] == 0 and set(df["split"]) == {"test"}
    assert rows(df)["a"]["path"] == str(tmp_path / "videos/a.mp4")
    with pytest.raises(DatasetLayoutError, match=r"lacks columns 'path'.*\['filename', 'label'\].*options.columns"):
        index.list_videos("d", "csv", tmp_path, {})
    (tmp_path / "l2.csv").write_text("File Path,Label\nvideos/a.mp4,FAKE\nvideos/b.mp4,REAL\n")
    df = index.list_videos("d", "csv", tmp_path, {"file": "l2.csv", "columns": {"path": "File Path", "label": "Label"}})
    assert rows(df)["videos/a"]["label"] == 1 and rows(df)["videos/b"]["label"] == 0


def test_dfdcp_test_set_from_dataset_json(tmp_path, put):
    entries = {"method_A/videos/1255229_1860319_A_001/1255229_1860319_A_001.mp4": {"label": "fake", "set": "test"},
               "method_B/videos/1224068/1224068_B_002/1224068_B_002.mp4": {"label": "fake", "set": "train"},
               "original_videos/videos/1255229/1255229_001.mp4": {"label": "real", "set": "test"},
               "original_videos/videos/1224068/1224068_003.mp4": {"label": "real", "set": "train"}}
    put(tmp_path / "dfdc_preview_set", *entries)
    (tmp_path / "dfdc_preview_set/dataset.json").write_text(json.dumps(entries))
    df = index.list_videos("dfdcp", "dfdcp", tmp_path, {})
    assert counts(df) == {("test", 0): 1, ("test", 1): 1}
    assert rows(df)["method_A/videos/1255229_1860319_A_001/1255229_1860319_A_001"]["method"] == "method_A"
    assert counts(index.list_videos("dfdcp", "dfdcp", tmp_path, {"splits": ["train", "test"]}))[("train", 1)] == 1


# ------------------------------------------------------------------------------ smaller benchmarks


def test_ffiw_val_is_the_test_split_and_targets_pair_with_sources(tmp_path, put):
    base = "FFIW10K-v1-release"
    put(tmp_path, f"{base}/source/val/videos/00001.mp4", f"{base}/source/val/videos/00002.mp4",
        f"{base}/target/val/videos/00001.mp4", f"{base}/target/train/videos/00009.mp4",
        f"{base}/source/train/videos/00009.mp4")
    df = index.list_videos("ffiw", "ffiw", tmp_path, {})
    assert counts(df) == {("test", 0): 2, ("test", 1): 1}
    assert rows(df)["target/val/00001"]["source_id"] == "source/val/00001"
    assert counts(index.list_videos("ffiw", "ffiw", tmp_path, {"splits": ["train", "test"]}))[("train", 1)] == 1


def test_uadfv_pairs_numbered_fakes(tmp_path, put):
    put(tmp_path, "UADFV/real/0000.mp4", "UADFV/real/0001.mp4", "UADFV/fake/0000_fake.mp4", "UADFV/fake/0001_fake.mp4")
    df = index.list_videos("uadfv", "uadfv", tmp_path, {})
    assert counts(df) == {("test", 0): 2, ("test", 1): 2}
    assert rows(df)["fake/0001_fake"]["source_id"] == "real/0001"


def test_deepspeak_splits_and_generators(tmp_path, put):
    put(tmp_path, "deepspeak_v2/test/real/0001.mp4", "deepspeak_v2/test/fake/latentsync/0001.mp4",
        "deepspeak_v2/test/fake/facefusion/0002.mp4", "deepspeak_v2/train/real/0009.mp4",
        "deepspeak_v2/train/fake/memo/0009.mp4")
    df = index.list_videos("ds2", "deepspeak", tmp_path, {})
    assert counts(df) == {("test", 0): 1, ("test", 1): 2}
    assert sorted(df["method"]) == ["facefusion", "latentsync", "real"]
    put(tmp_path, "deepspeak_v2/test/fake/liveportrait--p001-p002--r01-r02--0.mp4")
    df = index.list_videos("ds2", "deepspeak", tmp_path, {})
    assert df.filter(pl.col("video_id").str.contains("liveportrait"))["method"].to_list() == ["liveportrait"]
    put(tmp_path, "deepspeak_v2/test/other/x.mp4")
    with pytest.raises(DatasetLayoutError, match="cannot tell whether .*x.mp4 is real or fake"):
        index.list_videos("ds2", "deepspeak", tmp_path, {})


def test_dfdm_fakes_by_model_with_reals_from_an_option(tmp_path, put):
    put(tmp_path, "DFDM/dfaker/id0_id1_0001_dfaker.mp4", "DFDM/dfl/id0_id1_0001_dfl.mp4",
        "Celeb-real/id0_0001.mp4")
    with pytest.raises(DatasetLayoutError, match="found 2 fakes and 0 reals.*options.reals"):
        index.list_videos("dfdm", "dfdm", tmp_path / "DFDM", {})
    df = index.list_videos("dfdm", "dfdm", tmp_path / "DFDM", {"reals": str(tmp_path / "Celeb-real")})
    assert counts(df) == {("test", 0): 1, ("test", 1): 2} and sorted(df["method"]) == ["dfaker", "dfl", "real"]


def test_fakeavceleb_visual_fakes_against_real_video_real_audio(tmp_path, put):
    put(tmp_path, "FakeAVCeleb_v1.2/RealVideo-RealAudio/African/men/id00076/00109.mp4",
        "FakeAVCeleb_v1.2/RealVideo-FakeAudio/African/men/id00076/00109_fake.mp4",
        "FakeAVCeleb_v1.2/FakeVideo-RealAudio/African/men/id00076/00109_10_id00476_wavtolip.mp4",
        "FakeAVCeleb_v1.2/FakeVideo-FakeAudio/African/men/id00076/00109_10_id00476_wavtolip.mp4")
    df = index.list_videos("favc", "fakeavceleb", tmp_path, {})
    assert counts(df) == {("test", 0): 1, ("test", 1): 2}
    assert not any("RealVideo-FakeAudio" in v for v in df["video_id"])
    assert sorted(df["method"]) == ["FakeVideo-FakeAudio", "FakeVideo-RealAudio", "real"]


def test_folder_adapter_label_rule(tmp_path, put):
    put(tmp_path, "pristine/a.mp4", "pristine/sub/a.mp4", "gan/b.mp4", "swap/c.mp4")
    with pytest.raises(DatasetLayoutError, match=r"none of the folders .* is a real class \['real'\]"):
        index.list_videos("f", "folder", tmp_path, {})
    df = index.list_videos("f", "folder", tmp_path, {"real": ["Pristine"]})
    assert counts(df) == {("test", 0): 2, ("test", 1): 2}
    assert sorted(df["method"]) == ["gan", "real", "real", "swap"] and "pristine/sub/a" in set(df["video_id"])
    only = index.list_videos("f", "folder", tmp_path, {"real": ["Pristine"], "methods": ["pristine", "swap"]})
    assert sorted(only["method"]) == ["real", "real", "swap"]  # options.methods: only these class folders


def test_the_workflow_declares_completeness_where_the_index_writes_it():
    from pipeline.core.layout import Layout, dataset_root

    L = Layout("res")
    assert index.completeness_path(L.videos("cdf")) == Path(L.completeness("cdf"))
    config = {"datasets": {"ff": {"source": {"kaggle": "a/b"}}, "fsh": {"source": {"dataset": "ff"}},
                           "cdf": {"source": {"path": "/data/cdf"}}}, "results": "res"}
    assert dataset_root(config, "fsh") == dataset_root(config, "ff") == "resources/datasets/ff"
    assert dataset_root(config, "cdf") == "/data/cdf"


def test_official_tree_fakes_carry_their_mask_videos(tmp_path, put):
    """FF++ and DFD official trees ship mask videos beside each method's videos; the faces stage uses
    them to crop the manipulated face. The Kaggle mirror has none."""
    ffpp_tree(tmp_path, put, folders=("original", "Deepfakes"), mirror=False)
    put(tmp_path, "manipulated_sequences/Deepfakes/masks/videos/953_974.mp4")
    put(tmp_path, *[f"original_sequences/actors/c23/videos/{n}.mp4" for n in DFD_REALS],
        *[f"manipulated_sequences/DeepFakeDetection/c23/videos/{n}.mp4" for n in DFD_FAKES],
        f"manipulated_sequences/DeepFakeDetection/masks/videos/{DFD_FAKES[0]}.mp4")
    r = rows(index.list_videos("ffpp", "ffpp", tmp_path, {"methods": ["real", "DF"]}))
    assert r["DF/953_974"]["mask_path"] == str(tmp_path / "manipulated_sequences/Deepfakes/masks/videos/953_974.mp4")
    assert r["DF/974_953"]["mask_path"] is None and r["real/953"]["mask_path"] is None
    d = rows(index.list_videos("dfd", "dfd", tmp_path, {}))
    assert d[f"DFD/{DFD_FAKES[0]}"]["mask_path"].endswith(f"DeepFakeDetection/masks/videos/{DFD_FAKES[0]}.mp4")
    mirror = tmp_path / "mirror"
    ffpp_tree(mirror, put, folders=("original", "Deepfakes"))
    assert index.list_videos("m", "ffpp", mirror, {"methods": ["real", "DF"]})["mask_path"].is_null().all()


# ----------------------------------------------------------------------------- incomplete trees


def test_celebdf_without_its_list_file_names_the_file_and_the_folders(tmp_path, put):
    put(tmp_path, "Celeb-DF-v2/Celeb-real/id0_0001.mp4", "Celeb-DF-v2/Celeb-synthesis/id0_id1_0001.mp4")
    with pytest.raises(DatasetLayoutError, match=r"expected List_of_testing_videos\.txt \(the official test list\) "
                                                 r"beside the folders Celeb-real, YouTube-real, Celeb-synthesis in "
                                                 rf"{re.escape(str(tmp_path))}.*Celeb-DF-v2"):
        index.list_videos("cdf", "celebdf", tmp_path, {})


def test_celebdf_missing_folder_is_named(tmp_path, put, caplog):
    root = tmp_path / "Celeb-DF-v2"
    root.mkdir()
    (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0001.mp4\n1 YouTube-real/00001.mp4\n"
                                                     "1 YouTube-real/00002.mp4\n0 Celeb-synthesis/id0_id1_0001.mp4\n")
    put(root, "Celeb-real/id0_0001.mp4", "Celeb-synthesis/id0_id1_0001.mp4")
    df = index.list_videos("cdf", "celebdf", tmp_path, {})
    assert df.height == 4
    assert (f"the test list {root / 'List_of_testing_videos.txt'} names 2 videos in {root / 'YouTube-real'}, "
            "which is missing: they are indexed as 'file not found'") in caplog.text
    assert "Celeb-real," not in caplog.text and str(root / "Celeb-real") not in caplog.text


@pytest.mark.parametrize("mirror", [True, False])
def test_ffpp_missing_method_folder_is_named(tmp_path, put, mirror):
    ffpp_tree(tmp_path, put, folders=("original", "Deepfakes"), mirror=mirror)
    folder = (tmp_path / "FaceForensics++_C23" / "Face2Face" if mirror
              else tmp_path / "manipulated_sequences" / "Face2Face" / "c23" / "videos")
    expected = (rf"no videos for methods \['F2F'\] under {re.escape(str(tmp_path))}; expected \*\.mp4 in F2F: "
                rf"{re.escape(str(folder))} \(found methods: \['DF', 'real'\]\)\. Download the missing folder, or "
                r"drop the method from datasets\.ff\.options\.methods")
    with pytest.raises(DatasetLayoutError, match=expected):
        index.list_videos("ff", "ffpp", tmp_path, {"methods": ["real", "DF", "F2F"]})
