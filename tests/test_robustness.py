"""pipeline.robustness and evaluate_robustness: corruptions that degrade, deterministically per frame."""

from __future__ import annotations

import io
import json
import random

import numpy as np
import polars as pl
import pytest
import webdataset as wds
from PIL import Image
from skimage import data as skdata

from pipeline.core import tables
from pipeline.core.config import ConfigError, check_config
from pipeline.evaluation.robustness import evaluate_robustness
from pipeline.evaluation.metrics import evaluate_scores, jsonable
from pipeline.model.detector import Detector, load_backbone, load_detector, save_adapter
from pipeline.evaluation import predict_frames
from pipeline.core.config import corruptions
from pipeline.evaluation.robustness import Corruption, check, derived_name


@pytest.fixture(scope="module")
def crop() -> Image.Image:
    """A 256-px face crop of scikit-image's astronaut (a real photograph)."""
    return Image.fromarray(skdata.astronaut()[20:220, 150:350]).resize((256, 256), Image.BICUBIC)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("kind,strengths", [("jpeg", [100, 60, 20, 10]), ("blur", [0.5, 1, 2, 4]),
                                            ("noise", [5, 10, 20, 30]), ("resize", [0.75, 0.5, 0.25, 0.125])])
def test_each_kind_degrades_more_as_it_gets_stronger(crop, kind, strengths):
    psnr = [_psnr(crop, Corruption(kind, s, seed=3)(crop, random.Random(1))) for s in strengths]
    assert all(a > b for a, b in zip(psnr, psnr[1:])), psnr
    out = Corruption(kind, strengths[0])(crop, random.Random(1))
    assert out.size == crop.size and out.mode == "RGB"
    assert np.isfinite(psnr[0]) and psnr[0] > 25 and psnr[-1] < 32  # visibly changed, not destroyed


def test_noise_is_fixed_per_frame_and_differs_between_frames(crop):
    c = Corruption("noise", 20.0, seed=7)
    a, b = c(crop, random.Random(11)), c(crop, random.Random(11))
    assert np.array_equal(np.asarray(a), np.asarray(b))
    other = c(crop, random.Random(12))
    assert not np.array_equal(np.asarray(a), np.asarray(other))
    reseeded = Corruption("noise", 20.0, seed=8)(crop, random.Random(11))
    assert not np.array_equal(np.asarray(a), np.asarray(reseeded))
    residual = np.asarray(a, np.float64) - np.asarray(crop, np.float64)
    assert residual.std() == pytest.approx(20.0, rel=0.1)  # std in grey levels (a little clipping)


def test_bad_strengths_and_kinds_are_named():
    for kind, s, msg in (("jpeg", 0, "integer quality 1-100"), ("jpeg", 50.5, "integer quality"),
                         ("resize", 1.0, "between 0 and 1"), ("blur", 0, "sigma > 0"), ("noise", -1, "std > 0")):
        with pytest.raises(ValueError, match=rf"robustness\.{kind}: .*{msg}"):
            check(kind, s)
    with pytest.raises(ValueError, match="unknown kind 'fog'"):
        Corruption("fog", 1)


def test_plan_names_and_config_check():
    none = {"benchmarks": [], "jpeg": [], "blur": [], "noise": [], "resize": []}  # the schema's defaults
    cfg = {"benchmarks": {"cdf": {"dataset": "d", "split": "test"}},
           "robustness": {**none, "benchmarks": ["cdf"], "jpeg": [80, 40], "resize": [0.5]}}
    assert corruptions(cfg) == {"cdf": {"jpeg": [80.0, 40.0], "resize": [0.5]}}
    assert corruptions({"robustness": none}) == {} and corruptions({"robustness": {**none, "benchmarks": ["cdf"]}}) == {}
    assert derived_name("cdf", "jpeg", 40.0) == "cdf@jpeg=40" and derived_name("cdf", "resize", 0.5) == "cdf@resize=0.5"
    full = {"datasets": {"d": {"adapter": "csv", "source": {"path": "x"}}}, "weights": {}, "models": {},
            "training": {}, **cfg, "robustness": {**none, "benchmarks": ["nope"], "jpeg": [50]}}
    with pytest.raises(ConfigError, match="robustness.benchmarks: 'nope' is not a name under benchmarks"):
        check_config(full)


# ------------------------------------------------------------------------ through the model


@pytest.fixture(scope="module")
def bench(tmp_path_factory, backbone_dir, crop):
    """10 videos x 2 frames of the astronaut crop (fakes with a pasted bright patch), one shard, and
    an adapter of a randomly initialised detector."""
    root = tmp_path_factory.mktemp("robust")
    rows, sink = [], wds.TarWriter(str(root / "s-00000.tar"))
    rng = np.random.default_rng(0)
    for v in range(10):
        label = v % 2
        vid = f"{'DF' if label else 'real'}/{v:03d}"
        for f in (0, 5):
            img = np.asarray(crop).copy()
            img = np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
            if label:
                img[60:140, 80:170] = 240
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            key = tables.sample_key(vid, f)
            sink.write({"__key__": key, "png": buf.getvalue(),
                        "json": json.dumps({"video_id": vid, "label": label}).encode()})
            rows.append({"dataset": "d", "video_id": vid, "split": "test", "label": label,
                         "method": "DF" if label else "real", "frame_idx": f, "shard": str(root / "s-00000.tar"),
                         "key": key, "status": "ok"})
    sink.close()
    tables.write_parquet(pl.DataFrame(rows), root / "frames.parquet", tables.FRAMES, "frames")
    det = Detector(load_backbone(backbone_dir), ln_tuning=True, l2_norm=True)
    save_adapter(det, root / "adapter.safetensors", meta={"backbone": "tiny"})
    return {"root": root, "frames": root / "frames.parquet", "adapter": root / "adapter.safetensors",
            "backbone": backbone_dir}


def test_robustness_evaluation_scores_the_degraded_crops(bench, tmp_path):
    kw = dict(model="m", benchmark="b", dataset="d", split="test", corruptions={"noise": [10, 40], "jpeg": [20]},
              bootstrap=20, batch_size=8, seed=5, device="cpu")
    res = evaluate_robustness(bench["adapter"], bench["backbone"], bench["frames"], tmp_path / "a.json", **kw)
    assert [(p["kind"], p["strength"]) for p in res["points"]] == [("noise", 10.0), ("noise", 40.0), ("jpeg", 20.0)]
    assert [p["benchmark"] for p in res["points"]] == ["b@noise=10", "b@noise=40", "b@jpeg=20"]
    assert res["device"].startswith("cpu: ") and len(res["adapter_sha256"]) == 64
    # each point is evaluate_scores of the frames scored through the same corruption
    detector, _ = load_detector(bench["adapter"], bench["backbone"])
    frames = pl.read_parquet(bench["frames"])
    clean = predict_frames(detector, frames, batch_size=8)
    for p in res["points"]:
        sc = predict_frames(detector, frames, batch_size=8, transform=Corruption(p["kind"], p["strength"], seed=5))
        assert not np.allclose(sc["p_fake"].to_numpy(), clean["p_fake"].to_numpy())
        want = jsonable(evaluate_scores(sc, bootstrap=20, seed=5))
        got = json.loads((tmp_path / "a.json").read_text())["points"][res["points"].index(p)]
        assert got["video"] == want["video"] and got["per_method"] == want["per_method"]
        assert got["counts"]["videos"] == 10 and got["counts"]["frames"] == 20
    # deterministic per frame: a second run writes the same bytes
    evaluate_robustness(bench["adapter"], bench["backbone"], bench["frames"], tmp_path / "b.json", **kw)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
