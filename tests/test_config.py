import copy
import re

import pytest
import yaml

from pipeline.core import config as pconfig
from pipeline.training import kinds
from pipeline.workflow import params

SCHEMA = "workflow/schemas/config.schema.yaml"


@pytest.fixture(params=["config.yaml", "config/demo.yaml"])
def cfg(request, repo):
    return pconfig.load(repo / request.param)


def check(cfg, repo):
    pconfig.validate_config(cfg, repo / SCHEMA)
    pconfig.check_config(cfg)


def validate(cfg, schema=None):
    return pconfig.validate_config(cfg)


def load(repo, name):
    return pconfig.validate_config(pconfig.load(repo / name))


def test_shipped_configs_are_valid_and_get_defaults(cfg, repo):
    check(cfg, repo)
    assert cfg["evaluate"]["video_reduce"] in ("mean", "median")
    assert "results" in cfg
    assert cfg["faces"]["threads"] >= 1


@pytest.mark.parametrize("path, value, key", [
    (("faces", "num_frames"), "many", "num_frames"),
    (("faces", "backend"), "haar", "backend"),
    (("faces", "points"), "corners", "points"),
    (("faces", "choice"), "nearest", "choice"),
    (("faces", "png_level"), 10, "png_level"),
    (("faces", "codec"), "jpeg", "codec"),
    (("training", "optim", "lr"), -1, "lr"),
    (("training", "augment", "hflip", "p"), 1.5, "p"),
    (("evaluate", "video_reduce"), "max", "video_reduce"),
])
def test_bad_value_fails_validation_naming_the_key(cfg, repo, path, value, key):
    bad = copy.deepcopy(cfg)
    node = bad
    for k in path[:-1]:
        node = node.setdefault(k, {})
    node[path[-1]] = value
    with pytest.raises(pconfig.ConfigError) as err:
        validate(bad, schema=str(repo / SCHEMA))
    assert key in str(err.value)


def test_unknown_key_is_rejected(cfg, repo):
    bad = copy.deepcopy(cfg)
    bad["faces"]["num_frame"] = 32  # typo
    with pytest.raises(pconfig.ConfigError, match="num_frame"):
        validate(bad, schema=str(repo / SCHEMA))


def test_references_to_missing_entries_name_the_key(cfg):
    bad = copy.deepcopy(cfg)
    bad["benchmarks"]["x"] = {"dataset": "nope", "split": "test"}
    with pytest.raises(pconfig.ConfigError, match=r"benchmarks\.x\.dataset: 'nope'"):
        pconfig.check_config(bad)
    bad = copy.deepcopy(cfg)
    first = next(iter(bad["models"]))
    bad["models"][first]["weights"] = "missing_weights"
    with pytest.raises(pconfig.ConfigError, match=rf"models\.{first}\.weights"):
        pconfig.check_config(bad)


def test_dataset_source_must_name_an_entry_with_its_own_source(cfg):
    bad = copy.deepcopy(cfg)
    bad["datasets"]["copy"] = {"adapter": "ffpp", "source": {"dataset": "nope"}}
    with pytest.raises(pconfig.ConfigError, match=r"datasets\.copy\.source\.dataset: 'nope' must be another"):
        pconfig.check_config(bad)
    bad["datasets"]["copy2"] = {"adapter": "ffpp", "source": {"dataset": "copy"}}
    bad["datasets"]["copy"]["source"] = {"dataset": "copy2"}
    with pytest.raises(pconfig.ConfigError, match="with its own source"):
        pconfig.check_config(bad)


def test_model_config_merges_defaults_and_overrides(repo):
    cfg = load(repo, "config.yaml")
    probe = pconfig.model_config(cfg, "linear_probe")
    full = pconfig.model_config(cfg, "lnclip_df")
    assert probe["ln_tuning"] is False and full["ln_tuning"] is True
    assert probe["loss"] == {"label_smoothing": 0.0, "alignment": 0.0, "uniformity": 0.0}
    assert probe["optim"] == full["optim"] == cfg["training"]["optim"]  # inherited, not copied
    assert probe["slerp"] == {"enabled": False, "expand_to": None}
    assert probe["optim"]["name"] == "adamw" and probe["data"]["order"] == "shuffle"  # the schema's defaults
    assert probe["seed"] == full["seed"] == cfg["seed"]


def test_rule_params_hold_only_what_the_rule_depends_on(repo):
    cfg = pconfig.load(repo / "config/demo.yaml")
    validate(cfg, schema=str(repo / SCHEMA))
    train = kinds.settings(cfg, "lnclip_df")
    faces = params.faces(cfg)
    ev = params.evaluate(cfg, "demo")

    more = copy.deepcopy(cfg)
    more["benchmarks"]["extra"] = {"dataset": "demo", "split": "val"}
    more["evaluate"]["bootstrap"] = 7
    more["faces"]["threads"] = 1  # threads do not change the crops
    assert kinds.settings(more, "lnclip_df") == train
    assert params.faces(more) == faces
    assert params.evaluate(more, "demo") != ev
    assert train["model"]["backbone"].startswith("random:tiny_clip:")


def test_random_weights_settings_reach_training(repo):
    """Whatever a weights entry resolves to is part of the models' training params: a change retrains."""
    cfg = load(repo, "config/demo.yaml")
    before = kinds.settings(cfg, "lnclip_df")
    wider = copy.deepcopy(cfg)
    wider["weights"]["tiny_clip"]["random"]["hidden_size"] *= 2
    assert kinds.settings(wider, "lnclip_df") != before
    assert params.weights(wider, "tiny_clip") != params.weights(cfg, "tiny_clip")
    hub = copy.deepcopy(cfg)
    hub["weights"]["tiny_clip"] = {"hub": "openai/clip-vit-large-patch14"}
    assert kinds.settings(hub, "lnclip_df")["model"]["backbone"] == "openai/clip-vit-large-patch14"


def test_adapter_options_reindex_without_redownloading(repo):
    cfg = load(repo, "config.yaml")
    edited = copy.deepcopy(cfg)
    edited["datasets"]["ffpp_c23"]["options"]["methods"] = ["real", "DF"]
    assert params.download(edited, "ffpp_c23") == params.download(cfg, "ffpp_c23")
    assert params.index(edited, "ffpp_c23") != params.index(cfg, "ffpp_c23")
    moved = copy.deepcopy(cfg)
    moved["datasets"]["ffpp_c23"]["source"] = {"path": "/data/ffpp"}
    assert params.download(moved, "ffpp_c23") != params.download(cfg, "ffpp_c23")
    assert params.index(moved, "ffpp_c23") != params.index(cfg, "ffpp_c23")


def test_only_used_splits_are_listed(repo):
    cfg = pconfig.load(repo / "config.yaml")
    splits = pconfig.dataset_splits(cfg)
    assert splits["ffpp_c23"] == ["test", "train", "val"]
    assert splits["celebdf_v2"] == ["test"]
    assert pconfig.used_datasets(cfg) == sorted(splits)


def test_seed_reaches_only_what_it_changes(repo):
    """A new seed retrains; it re-generates demo data, but never re-downloads or re-crops real data."""
    real = pconfig.load(repo / "config.yaml")
    demo = pconfig.load(repo / "config/demo.yaml")
    for cfg in (real, demo):
        validate(cfg, schema=str(repo / SCHEMA))
    before = {name: (params.download(c, ds), params.index(c, ds), [params.weights(c, w) for w in c["weights"]],
                     params.faces(c), kinds.settings(c, next(iter(c["models"]))))
              for name, c, ds in (("real", real, "ffpp_c23"), ("demo", demo, "demo"))}
    for c in (real, demo):
        c["seed"] += 1
    after = {name: (params.download(c, ds), params.index(c, ds), [params.weights(c, w) for w in c["weights"]],
                    params.faces(c), kinds.settings(c, next(iter(c["models"]))))
             for name, c, ds in (("real", real, "ffpp_c23"), ("demo", demo, "demo"))}
    # real protocol: same download, index, weights and crops; new training
    assert after["real"][:4] == before["real"][:4] and after["real"][4] != before["real"][4]
    # demo: generated videos follow the seed; the index, the crops settings and the random backbone
    # (fixed by its own seed, like a pretrained one) do not
    assert after["demo"][0] != before["demo"][0] and after["demo"][4] != before["demo"][4]
    assert after["demo"][1:4] == before["demo"][1:4]
    # random weights without their own seed follow the global one
    del demo["weights"]["tiny_clip"]["random"]["seed"]
    unseeded = params.weights(demo, "tiny_clip")
    demo["seed"] += 1
    assert params.weights(demo, "tiny_clip") != unseeded


def test_a_model_seed_overrides_the_global_seed_for_that_model_only(repo):
    cfg = pconfig.load(repo / "config/demo.yaml")
    cfg["models"]["lnclip_df_s2"] = {"seed": 2}
    validate(cfg, schema=str(repo / SCHEMA))
    own, other = kinds.settings(cfg, "lnclip_df_s2"), kinds.settings(cfg, "lnclip_df")
    assert own["seed"] == 2 and other["seed"] == cfg["seed"] == 7
    assert "seed" not in own["model"] and own["model"] == other["model"]


def test_selection_on_a_benchmark_test_split_is_refused(repo):
    cfg = pconfig.load(repo / "config/demo.yaml")
    cfg["models"]["peeking"] = {"data": {"val_split": "test"}, "select_metric": "video_auroc"}
    with pytest.raises(pconfig.ConfigError, match=r"models\.peeking\.data\.val_split: 'test' .* benchmark 'demo'"):
        pconfig.check_config(cfg)
    cfg["models"]["peeking"]["select_metric"] = "last"  # no selection, nothing leaks
    pconfig.check_config(cfg)


def test_validation_sets_are_checked_and_cropped(repo):
    cfg = pconfig.load(repo / "config/demo.yaml")
    cfg["models"]["two_vals"] = {"data": {"val_sets": [{"dataset": "demo_shift", "split": "val"}]},
                                 "select_metric": "video_auroc"}  # the demo keeps the last epoch
    validate(cfg, schema=str(repo / SCHEMA))
    pconfig.check_config(cfg)
    assert pconfig.val_sets(pconfig.model_config(cfg, "two_vals")) == [("demo", "val"), ("demo_shift", "val")]
    assert pconfig.dataset_splits(cfg)["demo_shift"] == ["test", "val"]
    cfg["models"]["two_vals"]["data"]["val_sets"] = [{"dataset": "demo_shift", "split": "test"}]
    with pytest.raises(pconfig.ConfigError, match=r"models\.two_vals\.data\.val_sets: 'test' of dataset 'demo_shift' "
                                                  r"is benchmark 'demo_shift'"):
        pconfig.check_config(cfg)
    cfg["models"]["two_vals"]["data"]["val_sets"] = [{"dataset": "nowhere", "split": "val"}]
    with pytest.raises(pconfig.ConfigError, match=r"data\.val_sets: 'nowhere' is not a name under datasets"):
        pconfig.check_config(cfg)


def test_model_kinds_are_checked(repo):
    cfg = pconfig.load(repo / "config/demo.yaml")
    cfg["weights"]["gend_hub"] = {"hub": "yermandy/GenD_CLIP_L_14"}
    cfg["models"]["published"] = {"kind": "released", "released": "gend_hub"}
    validate(cfg, schema=str(repo / SCHEMA))
    pconfig.check_config(cfg)
    params = kinds.settings(cfg, "published")["model"]
    assert params == {"kind": "released", "backbone": pconfig.weights_id(cfg, "tiny_clip"), "weights": "tiny_clip",
                      "released": "gend_hub", "checkpoint": "yermandy/GenD_CLIP_L_14"}
    only_released = {**cfg, "models": {"published": cfg["models"]["published"]}}
    assert pconfig.dataset_splits(only_released) == {"demo": ["test"], "demo_shift": ["test"]}  # no training data
    cfg["weights"]["lnclip_hub"] = {"hub": "yermandy/deepfake-detection", "files": ["model.torchscript"]}
    cfg["models"]["lnclip"] = {"kind": "released", "released": "lnclip_hub"}
    validate(cfg, schema=str(repo / SCHEMA))
    pconfig.check_config(cfg)
    switched = copy.deepcopy(cfg)
    switched["weights"]["lnclip_hub"]["files"] = ["model.ckpt"]
    assert kinds.settings(cfg, "lnclip")["model"]["files"] == ["model.torchscript"]
    assert kinds.settings(switched, "lnclip") != kinds.settings(cfg, "lnclip")  # another file: converted again
    from pipeline.workflow.params import weights as fetch_params  # (`params` is a local name here)

    assert fetch_params(switched, "lnclip_hub") != fetch_params(cfg, "lnclip_hub")  # ... and fetched again
    switched["weights"]["lnclip_hub"] = {"random": {}, "files": ["model.ckpt"]}
    with pytest.raises(pconfig.ConfigError, match=r"weights\.lnclip_hub\.files: only for hub or path weights"):
        pconfig.check_config(switched)
    switched["weights"]["lnclip_hub"] = {"hub": "a/b", "path": "/c"}
    with pytest.raises(pconfig.ConfigError, match=r"weights\.lnclip_hub: give exactly one of hub, path or random"):
        pconfig.check_config(switched)
    del cfg["models"]["lnclip"]
    cfg["models"]["published"]["released"] = "tiny_clip"
    with pytest.raises(pconfig.ConfigError, match=r"models\.published\.released: name the weights entry"):
        pconfig.check_config(cfg)
    cfg["models"]["published"] = {"released": "gend_hub"}
    with pytest.raises(pconfig.ConfigError, match="released is set but kind is 'train'"):
        pconfig.check_config(cfg)
    cfg["models"]["published"] = {"logistic": {"C": 2.0}}
    with pytest.raises(pconfig.ConfigError, match="logistic is set but kind is 'train'"):
        pconfig.check_config(cfg)
    cfg["models"]["published"] = {}
    cfg["training"]["logistic"] = {"C": 2.0}
    with pytest.raises(pconfig.ConfigError, match="logistic is set but kind is 'train'"):
        pconfig.check_config(cfg)


def test_every_commented_variant_in_config_yaml_is_valid(repo):
    text = (repo / "config.yaml").read_text()
    variants = re.findall(r"^  # ((?:ln|gend|dinov3)\w*: \{.*)$", text, flags=re.M)  # models and their weights
    assert len(variants) >= 8
    enabled = text
    for line in variants:
        enabled = enabled.replace(f"  # {line}", f"  {line}")
    cfg = yaml.safe_load(enabled)
    validate(cfg, schema=str(repo / SCHEMA))
    pconfig.check_config(cfg)
    assert {"ln", "ln_l2", "ln_l2_unal", "gend", "lnclip_df_25pct"} <= set(cfg["models"])
    assert pconfig.model_config(cfg, "gend")["slerp"]["enabled"] is False
    assert pconfig.model_config(cfg, "lnclip_df_expand")["slerp"]["expand_to"] == 1024
    assert cfg["weights"]["gend_dinov3_l"] == {"hub": "yermandy/GenD_DINOv3_L"}
    dinov3 = kinds.settings(cfg, "gend_dinov3_released")["model"]
    assert dinov3["backbone"] == "facebook/dinov3-vitl16-pretrain-lvd1689m"
    assert dinov3["checkpoint"] == "yermandy/GenD_DINOv3_L"
    lnclip = kinds.settings(cfg, "lnclip_df_released")["model"]
    assert (lnclip["checkpoint"], lnclip["files"]) == ("yermandy/deepfake-detection", ["model.ckpt"])
    assert kinds.paths(cfg, "lnclip_df_released")["released"] == "resources/weights/lnclip_df_release"


def test_faces_params_hold_the_crop_and_the_backend(repo):
    cfg = pconfig.load(repo / "config.yaml")
    validate(cfg, schema=str(repo / SCHEMA))
    p = params.faces(cfg)
    assert p == {"backend": "dlib", "backend_options": {"passes": [[360, 0], [360, 1], [None, 1]]},
                 "crop": {"num_frames": 32, "size": 256, "scale": 1.3, "points": "deepfakebench",
                          "choice": "largest", "min_side": 64, "codec": "qoi", "png_level": 1}}
    from pipeline.faces import CropSettings

    assert CropSettings(**p["crop"]) == CropSettings()  # the config's crop is the library default
    for key, value in (("choice", "mask"), ("points", "centres"), ("backend", "face_alignment")):
        other = copy.deepcopy(cfg)
        other["faces"][key] = value
        assert params.faces(other) != p, key
    fa = copy.deepcopy(cfg)
    fa["faces"]["backend_options"] = {"detector": "blazeface", "weights_dir": "/models/fa"}
    assert params.face_weights(fa) == {"detector": "blazeface", "dest": "/models/fa"}
    assert params.face_weights(cfg) == {"detector": "sfd", "dest": "resources/weights/face_alignment"}
