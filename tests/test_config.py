import copy

import pytest
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from pipeline import config as pconfig

SCHEMA = "workflow/schemas/config.schema.yaml"


@pytest.fixture(params=["config.yaml", "config/demo.yaml"])
def cfg(request, repo):
    return pconfig.load(repo / request.param)


def check(cfg, repo):
    validate(cfg, schema=str(repo / SCHEMA))
    pconfig.check_config(cfg)


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
    with pytest.raises(WorkflowError) as err:
        validate(bad, schema=str(repo / SCHEMA))
    assert key in str(err.value)


def test_unknown_key_is_rejected(cfg, repo):
    bad = copy.deepcopy(cfg)
    bad["faces"]["num_frame"] = 32  # typo
    with pytest.raises(WorkflowError, match="num_frame"):
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


def test_model_config_merges_defaults_and_overrides(repo):
    cfg = pconfig.load(repo / "config.yaml")
    probe = pconfig.model_config(cfg, "linear_probe")
    full = pconfig.model_config(cfg, "lnclip_df")
    assert probe["ln_tuning"] is False and full["ln_tuning"] is True
    assert probe["loss"] == {"label_smoothing": 0.0, "alignment": 0.0, "uniformity": 0.0}
    assert probe["optim"] == full["optim"] == cfg["training"]["optim"]  # inherited, not copied
    assert probe["slerp"] == {"enabled": False, "expand_to": None}


def test_rule_params_hold_only_what_the_rule_depends_on(repo):
    cfg = pconfig.load(repo / "config/demo.yaml")
    validate(cfg, schema=str(repo / SCHEMA))
    train = pconfig.train_params(cfg, "lnclip_df")
    faces = pconfig.faces_params(cfg)
    ev = pconfig.evaluate_params(cfg, "demo")

    more = copy.deepcopy(cfg)
    more["benchmarks"]["extra"] = {"dataset": "demo", "split": "val"}
    more["evaluate"]["bootstrap"] = 7
    more["faces"]["threads"] = 1  # threads do not change the crops
    assert pconfig.train_params(more, "lnclip_df") == train
    assert pconfig.faces_params(more) == faces
    assert pconfig.evaluate_params(more, "demo") != ev
    assert train["model"]["backbone"] == "random:tiny_clip"


def test_seed_reaches_only_what_it_changes(repo):
    """A new seed retrains; it re-generates demo data, but never re-downloads or re-crops real data."""
    real = pconfig.load(repo / "config.yaml")
    demo = pconfig.load(repo / "config/demo.yaml")
    for cfg in (real, demo):
        validate(cfg, schema=str(repo / SCHEMA))
    before = {name: (pconfig.dataset_params(c, ds), [pconfig.weights_params(c, w) for w in c["weights"]],
                     pconfig.faces_params(c), pconfig.train_params(c, next(iter(c["models"]))))
              for name, c, ds in (("real", real, "ffpp_c23"), ("demo", demo, "demo"))}
    for c in (real, demo):
        c["seed"] += 1
    after = {name: (pconfig.dataset_params(c, ds), [pconfig.weights_params(c, w) for w in c["weights"]],
                    pconfig.faces_params(c), pconfig.train_params(c, next(iter(c["models"]))))
             for name, c, ds in (("real", real, "ffpp_c23"), ("demo", demo, "demo"))}
    # real protocol: same download, weights and crops; new training
    assert after["real"][:3] == before["real"][:3] and after["real"][3] != before["real"][3]
    # demo: generated videos and random weights follow the seed
    assert after["demo"][0] != before["demo"][0] and after["demo"][1] != before["demo"][1]
    assert after["demo"][2] == before["demo"][2]


def test_faces_params_hold_the_crop_and_the_backend(repo):
    cfg = pconfig.load(repo / "config.yaml")
    validate(cfg, schema=str(repo / SCHEMA))
    p = pconfig.faces_params(cfg)
    assert p == {"backend": "dlib", "backend_options": {"passes": [[360, 0], [360, 1], [None, 1]]},
                 "crop": {"num_frames": 32, "size": 256, "scale": 1.3, "points": "deepfakebench",
                          "choice": "largest", "min_side": 64, "png_level": 1}}
    from pipeline.faces import CropSettings

    assert CropSettings(**p["crop"]) == CropSettings()  # the config's crop is the library default
    for key, value in (("choice", "mask"), ("points", "centres"), ("backend", "face_alignment")):
        other = copy.deepcopy(cfg)
        other["faces"][key] = value
        assert pconfig.faces_params(other) != p, key
    fa = copy.deepcopy(cfg)
    fa["faces"]["backend_options"] = {"detector": "blazeface", "weights_dir": "/models/fa"}
    assert pconfig.face_weights_params(fa) == {"detector": "blazeface", "dest": "/models/fa"}
    assert pconfig.face_weights_params(cfg) == {"detector": "sfd", "dest": "resources/weights/face_alignment"}
