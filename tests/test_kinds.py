"""Model kinds besides gradient training: the frozen-features logistic-regression baseline (cached
features, scikit-learn) and published GenD weights mapped onto the detector."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from PIL import Image
from transformers import CLIPModel

from pipeline.evaluation.benchmark import evaluate_benchmark
from pipeline.model.features import extract_features, read_features
from pipeline.model.features import score_features_file
from pipeline.training.logistic import train_logistic
from pipeline.model.detector import Detector, load_backbone, load_detector
from pipeline.evaluation import predict_frames
from pipeline.evaluation.scoring import score_crops
from pipeline.training.released import ReleasedError, convert_released, map_gend
from pipeline.training import LOG_SCHEMA

from released_helpers import LinearProbe, crops
from test_train import toy  # noqa: F401  (the separable toy crops: 16 train + 8 val videos)


@pytest.fixture(scope="module")
def features(toy, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("features")
    for split in ("train", "val"):
        extract_features(toy["frames"], split, toy["backbone"], out / f"{split}.parquet", batch_size=7)
    return {split: out / f"{split}.parquet" for split in ("train", "val")}


def test_features_are_the_backbone_output_in_frames_order(toy, features):  # noqa: F811
    rows, x = read_features(features["val"])
    frames = pl.read_parquet(toy["frames"])
    crops = frames.filter((pl.col("split") == "val") & pl.col("key").is_not_null())
    assert rows["key"].to_list() == crops["key"].to_list() and x.shape == (32, 32) and x.dtype == np.float32
    detector = Detector(load_backbone(toy["backbone"]), ln_tuning=False, l2_norm=False).eval()
    from pipeline.model.inputs import shard_dataset

    ds = shard_dataset([crops["shard"][0]], {crops["key"][0]}, train=False, image_size=32, seed=0, epoch=0,
                       augment=None)
    sample = next(iter(torch.utils.data.DataLoader(ds, batch_size=1)))
    with torch.no_grad():
        direct = detector.features(detector.normalize(sample["pixel_values"]))[0].numpy()
    assert np.allclose(x[0], direct, atol=1e-5)
    again = features["val"].with_name("again.parquet")
    extract_features(toy["frames"], "val", toy["backbone"], again, batch_size=32)
    assert again.read_bytes() == features["val"].read_bytes()  # same inputs, same bytes


def test_logistic_baseline_equals_scikit_learn_on_the_cached_features(toy, features, tmp_path):  # noqa: F811
    cfg = {"backbone": "tiny", "logistic": {"C": 0.5, "max_iter": 2000}}
    summary = train_logistic(features["train"], {"toy/val": features["val"]}, toy["backbone"], cfg,
                             tmp_path / "a.safetensors", tmp_path / "log.parquet", seed=3)
    rows, x = read_features(features["train"])
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000, random_state=3))
    ref.fit(x, rows["label"].to_numpy())
    val_rows, xv = read_features(features["val"])
    expected = ref.predict_proba(xv)[:, 1]

    scores = score_features_file(tmp_path / "a.safetensors", features["val"])
    assert scores["key"].to_list() == val_rows["key"].to_list()
    assert np.allclose(scores["p_fake"].to_numpy(), expected, atol=1e-5)
    assert summary["val"]["frame_auroc"] == pytest.approx(roc_auc_score(val_rows["label"], expected))
    assert summary["val"]["frame_auroc"] > 0.9  # the toy fakes are separable
    log = pl.read_parquet(tmp_path / "log.parquet")
    assert log.columns == list(LOG_SCHEMA) and log["kind"].to_list() == ["val"]

    # The adapter is an ordinary one: the detector over the crops gives the same p(fake).
    detector, meta = load_detector(tmp_path / "a.safetensors", toy["backbone"])
    assert meta["selected_by"] == "logistic" and set(load_file(str(tmp_path / "a.safetensors"))) == {
        "head.weight", "head.bias"}
    frames = pl.read_parquet(toy["frames"]).filter(pl.col("split") == "val")
    direct = predict_frames(detector, frames, batch_size=8)
    assert np.allclose(direct["p_fake"].to_numpy(), expected, atol=1e-4)

    # Evaluation from the cached features equals evaluation over the crops.
    via_features = evaluate_benchmark(tmp_path / "a.safetensors", toy["backbone"], toy["frames"],
                                      tmp_path / "s1.parquet", tmp_path / "m1.json", model="lr", benchmark="b",
                                      dataset="toy", split="val", bootstrap=10, features_path=features["val"])
    via_crops = evaluate_benchmark(tmp_path / "a.safetensors", toy["backbone"], toy["frames"],
                                   tmp_path / "s2.parquet", tmp_path / "m2.json", model="lr", benchmark="b",
                                   dataset="toy", split="val", bootstrap=10)
    assert via_features["video"]["auroc"] == pytest.approx(via_crops["video"]["auroc"], abs=1e-9)
    assert via_features["data"] == via_crops["data"]


def test_logistic_refuses_one_class(toy, features, tmp_path):  # noqa: F811
    rows = pl.read_parquet(features["train"]).filter(pl.col("label") == 0)
    rows.write_parquet(tmp_path / "reals.parquet")
    with pytest.raises(ValueError, match="all one class"):
        train_logistic(tmp_path / "reals.parquet", {}, toy["backbone"], {"backbone": "t"}, tmp_path / "a",
                       tmp_path / "l", seed=0)


# ---------------------------------------------------------------------------- released GenD weights


def gend_checkpoint(folder, backbone_dir, head="LinearNorm", seed=1):
    """A GenD `save_pretrained` folder in the published naming, from a tiny CLIP with tuned LayerNorms.

    Returns the in-memory CLIP model and head: the reference forward pass of the published model."""
    torch.manual_seed(seed)
    clip = CLIPModel.from_pretrained(str(backbone_dir)).eval()
    with torch.no_grad():
        for module in clip.vision_model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.add_(0.2 * torch.randn_like(module.weight))
                module.bias.add_(0.2 * torch.randn_like(module.bias))
    linear = torch.nn.Linear(clip.config.vision_config.hidden_size, 2)
    tensors = {f"feature_extractor.vision_model.{k}": v.contiguous()
               for k, v in clip.vision_model.state_dict().items() if "position_ids" not in k}
    tensors["feature_extractor.visual_projection.weight"] = clip.visual_projection.weight.detach().contiguous()
    tensors["model.linear.weight"] = linear.weight.detach().contiguous()
    tensors["model.linear.bias"] = linear.bias.detach().contiguous()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({"model_type": "GenD", "backbone": "openai/clip-vit-large-patch14",
                                                    "head": head, "architectures": ["GenD"]}))
    return clip, linear


@pytest.mark.parametrize("head", ["LinearNorm", "linear"])
def test_released_gend_maps_exactly_onto_the_detector(backbone_dir, tmp_path, head):
    clip, linear = gend_checkpoint(tmp_path / "gend", backbone_dir, head=head)
    cfg = {"kind": "released", "backbone": "openai/clip-vit-large-patch14", "checkpoint": "yermandy/GenD_CLIP_L_14"}
    summary = convert_released(tmp_path / "gend", backbone_dir, cfg, tmp_path / "a.safetensors", tmp_path / "l.parquet")
    n_ln = sum(isinstance(m, torch.nn.LayerNorm) for m in clip.vision_model.modules())
    assert summary["trainable_parameters"] == n_ln * 2 * 32 + 32 * 2 + 2
    assert summary["mapping"]["unused"] == ["feature_extractor.visual_projection.weight"]
    assert summary["mapping"]["frozen_max_diff"] == 0.0

    detector, meta = load_detector(tmp_path / "a.safetensors", backbone_dir)
    assert meta["model"]["l2_norm"] is (head == "LinearNorm") and meta["released"] == "yermandy/GenD_CLIP_L_14"
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        feat = clip.vision_model(pixel_values=x).pooler_output
        ref = linear(F.normalize(feat, dim=1) if head == "LinearNorm" else feat).softmax(1)[:, 1]
        ours = detector(x)[0].softmax(1)[:, 1]
    assert torch.allclose(ours, ref, atol=1e-6)


def test_released_checkpoints_that_do_not_fit_are_refused(backbone_dir, tmp_path):
    gend_checkpoint(tmp_path / "g", backbone_dir)
    cfg = json.loads((tmp_path / "g" / "config.json").read_text())
    tensors = load_file(str(tmp_path / "g" / "model.safetensors"))
    backbone = lambda: load_backbone(backbone_dir)  # noqa: E731

    changed = dict(tensors)
    key = "feature_extractor.vision_model.encoder.layers.0.mlp.fc1.weight"
    changed[key] = changed[key] + 0.1
    with pytest.raises(ReleasedError, match="fc1.weight: frozen tensor differs"):
        map_gend(cfg, changed, backbone())
    with pytest.raises(ReleasedError, match="missing .*head.weight"):
        map_gend(cfg, {k: v for k, v in tensors.items() if k != "model.linear.weight"}, backbone())
    with pytest.raises(ReleasedError, match="unknown \\['extra.thing'\\]"):
        map_gend(cfg, {**tensors, "extra.thing": torch.zeros(1)}, backbone())
    with pytest.raises(ReleasedError, match="vit_pe_core_large_patch14_336' is a Perception Encoder, which GenD "
                                            "builds with timm .*transformers provides no such model"):
        map_gend({**cfg, "backbone": "vit_pe_core_large_patch14_336"}, tensors, backbone())
    with pytest.raises(ReleasedError, match="neither a CLIP vision tower nor a DINOv3 ViT"):
        map_gend({**cfg, "backbone": "facebook/dinov2-with-registers-base"}, tensors, backbone())
    with pytest.raises(ReleasedError, match="unknown GenD head 'MLP'"):
        map_gend({**cfg, "head": "MLP"}, tensors, backbone())


# A GenD model with a DINOv3 backbone, as the authors' code builds it: GenD.feature_extractor is a
# DINOEncoder whose `backbone` is AutoModel.from_pretrained(<dinov3 id>); GenD.model is a LinearProbe
# whose `linear` is nn.Linear(hidden, 2), applied to the L2-normalised feature for the LinearNorm head.
class DINOEncoder(torch.nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(x).last_hidden_state[:, 0]


class GenD(torch.nn.Module):
    def __init__(self, backbone, head):
        super().__init__()
        self.feature_extractor = DINOEncoder(backbone)
        self.model = LinearProbe(backbone.config.hidden_size, head == "LinearNorm")

    def forward(self, x):
        return self.model(self.feature_extractor(x))


def gend_dinov3_checkpoint(folder, dinov3_dir, head="LinearNorm", naming="4.56", seed=1):
    """A GenD_DINOv3 `save_pretrained` folder: the in-memory GenD (returned) with LayerNorms moved
    away from the backbone's, saved as safetensors + config.json. ``naming``: the published
    checkpoints were saved with transformers 4.56, whose DINOv3ViTModel keeps its blocks at
    ``layer.N`` (5.x holds them at ``model.layer.N`` and renames old names on load)."""
    from transformers import DINOv3ViTModel

    torch.manual_seed(seed)
    gend = GenD(DINOv3ViTModel.from_pretrained(str(dinov3_dir)), head).eval()
    with torch.no_grad():
        for module in gend.feature_extractor.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.add_(0.2 * torch.randn_like(module.weight))
                module.bias.add_(0.2 * torch.randn_like(module.bias))
    tensors = {k: v.contiguous() for k, v in gend.state_dict().items()}
    if naming == "4.56":
        tensors = {k.replace("feature_extractor.backbone.model.layer.", "feature_extractor.backbone.layer."): v
                   for k, v in tensors.items()}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({
        "model_type": "GenD", "backbone": "facebook/dinov3-vitl16-pretrain-lvd1689m", "head": head,
        "architectures": ["GenD"]}))
    return gend


@pytest.mark.parametrize("head,naming", [("LinearNorm", "4.56"), ("linear", "4.56"), ("LinearNorm", "5.x")])
def test_released_gend_dinov3_gives_the_published_models_scores(dinov3_dir, tmp_path, head, naming):

    gend = gend_dinov3_checkpoint(tmp_path / "gend", dinov3_dir, head=head, naming=naming)
    keys = load_file(str(tmp_path / "gend" / "model.safetensors"))
    assert ("feature_extractor.backbone.layer.0.norm1.weight" in keys) is (naming == "4.56")
    cfg = {"kind": "released", "backbone": "facebook/dinov3-vitl16-pretrain-lvd1689m",
           "checkpoint": "yermandy/GenD_DINOv3_L"}
    summary = convert_released(tmp_path / "gend", dinov3_dir, cfg, tmp_path / "a.safetensors", tmp_path / "l.parquet")
    assert summary["trainable_parameters"] == (2 * 2 + 1) * 2 * 32 + 32 * 2 + 2  # 5 LayerNorms + head
    assert summary["mapping"] == {"loaded": len(keys), "unused": [], "frozen_max_diff": 0.0}

    detector, meta = load_detector(tmp_path / "a.safetensors", dinov3_dir)
    assert meta["model"]["l2_norm"] is (head == "LinearNorm") and meta["released"] == "yermandy/GenD_DINOv3_L"
    pngs, images = crops()  # real and generated face-sized images, scored by the product path
    ours = score_crops(detector, pngs, batch_size=2)
    # Reference: the published model's forward on the same crops, ImageNet mean/std (DINOv3's processor).
    u8 = torch.stack([torch.from_numpy(np.array(i.convert("RGB").resize((32, 32), Image.BICUBIC))) for i in images])
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = ((u8.double() / 255 - mean.double()) / std.double()).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        ref = gend(x).softmax(1)[:, 1]
    assert np.allclose(ours, ref.numpy(), atol=1e-5)
    assert max(ours) - min(ours) > 1e-3  # the images get different scores: the comparison has teeth


def test_released_dinov3_checkpoints_that_do_not_fit_are_refused(dinov3_dir, backbone_dir, tmp_path):
    gend_dinov3_checkpoint(tmp_path / "g", dinov3_dir)
    cfg = json.loads((tmp_path / "g" / "config.json").read_text())
    tensors = load_file(str(tmp_path / "g" / "model.safetensors"))
    backbone = lambda: load_backbone(dinov3_dir)  # noqa: E731

    for key in ("feature_extractor.backbone.layer.1.layer_scale2.lambda1",  # layer scale is frozen, not tuned
                "feature_extractor.backbone.embeddings.register_tokens"):
        changed = {**tensors, key: tensors[key] + 0.1}
        with pytest.raises(ReleasedError, match=f"{key.split('.', 3)[-1]}: frozen tensor differs"):
            map_gend(cfg, changed, backbone())
    with pytest.raises(ReleasedError, match="unknown \\['extra.thing'\\]"):
        map_gend(cfg, {**tensors, "extra.thing": torch.zeros(1)}, backbone())
    with pytest.raises(ReleasedError, match="unknown \\['feature_extractor.visual_projection.weight'\\]"):
        map_gend(cfg, {**tensors, "feature_extractor.visual_projection.weight": torch.zeros(1)}, backbone())
    with pytest.raises(ReleasedError, match="missing \\['model.layer.0.norm1.weight'\\]"):
        map_gend(cfg, {k: v for k, v in tensors.items() if not k.endswith("layer.0.norm1.weight")}, backbone())
    with pytest.raises(ReleasedError, match="missing \\['head.bias'\\]"):
        map_gend(cfg, {k: v for k, v in tensors.items() if k != "model.linear.bias"}, backbone())
    with pytest.raises(ReleasedError, match="head.weight: checkpoint shape \\(2, 48\\), detector \\(2, 32\\)"):
        map_gend(cfg, {**tensors, "model.linear.weight": torch.zeros(2, 48)}, backbone())
    wrong = {**tensors, "feature_extractor.backbone.norm.weight": torch.ones(48)}
    with pytest.raises(ReleasedError, match="checkpoint does not match the backbone \\(DINOv3ViTModel"):
        map_gend(cfg, wrong, backbone())
    with pytest.raises(ReleasedError, match="is a dinov3_vit model but the backbone weights given for it are "
                                            "clip_vision_model"):
        map_gend(cfg, tensors, load_backbone(backbone_dir))
