"""Config errors in a few lines, and the warnings given while the workflow is planned."""

from __future__ import annotations

import copy

import yaml

import pytest

from pipeline.core import config as pconfig
from pipeline.workflow import warnings as planning


@pytest.fixture
def demo_cfg(repo):
    return pconfig.load(repo / "config/demo.yaml")


@pytest.fixture
def real_cfg(repo, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no resources/ here: every download is still to do
    return pconfig.validate_config(pconfig.load(repo / "config.yaml"))


def _error(cfg) -> str:
    with pytest.raises(pconfig.ConfigError) as err:
        pconfig.validate_config(cfg, source="config/x.yaml")
    return str(err.value)


def test_unknown_key_is_named_with_the_closest_allowed_one(demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg["faces"]["num_frame"] = cfg["faces"].pop("num_frames")
    cfg["faces"].pop("chunk_size")
    cfg["evaluat"] = {}
    lines = _error(cfg).splitlines()
    assert lines[0] == "config/x.yaml does not match config.schema.yaml:"
    assert "  evaluat: unknown key; did you mean evaluate? allowed: base, benchmarks," in lines[1]
    assert lines[2] == "  faces.chunk_size: missing; this key is required"
    assert lines[3].startswith("  faces.num_frame: unknown key; did you mean num_frames? allowed: backend,")
    assert len(lines) == 4 and max(map(len, lines)) < 300  # a list of allowed keys, no schema or config dump


@pytest.mark.parametrize("path, value, expected", [
    (("faces", "num_frames"), "many", "faces.num_frames: 'many' is not of type 'integer'"),
    (("faces", "backend"), "haar", "faces.backend: 'haar' is not one of dlib, face_alignment"),
    (("training", "optim", "lr"), -1, "training.optim.lr: -1 is less than or equal to the minimum of 0"),
    (("datasets", "demo", "source", "pth"), "/x", "datasets.demo.source.pth: unknown key; did you mean path?"),
])
def test_wrong_value_is_one_line_naming_the_key(demo_cfg, path, value, expected):
    cfg = copy.deepcopy(demo_cfg)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    text = _error(cfg)
    assert expected in text and len(text.splitlines()) <= 3


def test_valid_config_gets_the_schema_defaults(demo_cfg):
    cfg = pconfig.validate_config(copy.deepcopy(demo_cfg))
    assert (cfg["faces"]["points"], cfg["faces"]["min_side"], cfg["faces"]["png_level"]) == ("deepfakebench", 64, 1)


def test_kaggle_source_without_credentials_is_named_not_its_values(real_cfg, tmp_path):
    msgs = planning.missing_credentials(real_cfg, env={}, home=tmp_path)
    assert msgs == [m for m in msgs if m.startswith("datasets.ffpp_c23.source.kaggle:")]
    assert len(msgs) == 1 and "'xdxd003/ff-c23' needs Kaggle credentials" in msgs[0]
    env = {"KAGGLE_USERNAME": "someone", "KAGGLE_KEY": "s3cr3t-value"}
    assert planning.missing_credentials(real_cfg, env=env, home=tmp_path) == []


def test_a_finished_download_needs_no_credentials(real_cfg, tmp_path):
    marker = tmp_path / "resources/datasets/ffpp_c23.done"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    assert planning.missing_credentials(real_cfg, env={}, home=tmp_path) == []


def test_hub_weights_offline_or_gated_without_token(real_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored `hf auth login` token
    monkeypatch.delenv("HF_TOKEN", raising=False)
    creds = {"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}
    assert planning.missing_credentials(real_cfg, env=creds, home=tmp_path) == []  # openai CLIP is public
    offline = planning.missing_credentials(real_cfg, env={**creds, "HF_HUB_OFFLINE": "1"}, home=tmp_path)
    assert len(offline) == 1 and "HF_HUB_OFFLINE is set" in offline[0]
    cfg = copy.deepcopy(real_cfg)
    (name,) = {pconfig.model_config(cfg, m)["weights"] for m in cfg["models"]}
    cfg["weights"][name] = {"hub": "someone/gated-clip"}
    gated = planning.missing_credentials(cfg, env=creds, home=tmp_path)
    assert len(gated) == 1 and gated[0].startswith(f"weights.{name}.hub: no Hugging Face token found")
    assert planning.missing_credentials(cfg, env={**creds, "HF_TOKEN": "hf_xyz"}, home=tmp_path) == []


def test_planning_warnings_hold_missing_folders_and_credentials(real_cfg, tmp_path):
    msgs = planning.planning_warnings(real_cfg, env={}, home=tmp_path)
    assert any("needs dataset 'celebdf_v2', but its folder" in m for m in msgs)
    assert any("needs Kaggle credentials" in m for m in msgs)
    secret = {"KAGGLE_USERNAME": "someone", "KAGGLE_KEY": "s3cr3t-value", "HF_TOKEN": "hf_s3cr3t"}
    assert not any("s3cr3t" in m or "someone" in m for m in planning.planning_warnings(real_cfg, env=secret))


def test_command_line_reports_a_bad_config_in_a_few_lines(demo_cfg, tmp_path, capsys):
    from pipeline.__main__ import main

    cfg = copy.deepcopy(demo_cfg)
    cfg["evaluate"]["video_reduce"] = "max"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["report", "--config", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"python -m pipeline report: {tmp_path / 'bad.yaml'} does not match config.schema.yaml:",
                   "  evaluate.video_reduce: 'max' is not one of mean, median"]


def test_every_verb_has_help(capsys):
    from pipeline.__main__ import build_parser

    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices
    assert {"demo", "index", "faces", "import", "manifest", "train", "evaluate", "predict", "report"} <= set(verbs)
    for name, sub in verbs.items():
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: python -m pipeline {name}")
        undocumented = [a.dest for a in sub._actions if not a.help]
        assert undocumented == [], (name, undocumented)
