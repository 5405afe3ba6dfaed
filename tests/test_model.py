"""Detector, LN-tuning, backbone loading and adapter files (tiny random CLIP and DINOv3, offline)."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from pipeline.model.detector import ADAPTER_FORMAT, CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD, Detector, autocast, load_backbone, load_detector, pick_device, save_adapter, save_random_backbone

from conftest import TINY_CLIP as TINY
from conftest import TINY_DINOV3




def pixels(n=3, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_clip_constants():
    assert CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073)
    assert CLIP_STD == (0.26862954, 0.26130258, 0.27577711)
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)


def crops_u8(n=3, seed=0):
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_each_backbone_normalises_with_its_processors_statistics(backbone_dir, dinov3_dir):
    u8 = crops_u8()
    clip = Detector(load_backbone(backbone_dir), ln_tuning=True, l2_norm=True)
    # CLIP: bit for bit the arithmetic the pipeline always used (scores stay byte-identical).
    old = (u8.to(torch.float32) / 255.0 - torch.tensor(CLIP_MEAN).view(3, 1, 1)) / torch.tensor(CLIP_STD).view(3, 1, 1)
    assert torch.equal(clip.normalize(u8), old)
    dino = Detector(load_backbone(dinov3_dir), ln_tuning=True, l2_norm=True)
    x = dino.normalize(u8)
    for c in range(3):
        expected = (u8[:, c].double() / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(x[:, c].double(), expected, atol=1e-5)
    assert not torch.allclose(x, old)  # the two families really differ
    assert not any(n.startswith("pixel_") for n in dino.state_dict())  # constants, never saved


def test_dinov3_backbone_feature_is_the_cls_token_after_its_final_norm(dinov3_dir):
    backbone = load_backbone(dinov3_dir)
    assert type(backbone).__name__ == "DINOv3ViTModel" and backbone.config.num_register_tokens == 2
    det = Detector(backbone, ln_tuning=True, l2_norm=True).eval()
    assert det.image_size == 32 and det.hidden_size == 32
    x = pixels()
    with torch.no_grad():
        out = backbone(pixel_values=x)
        feats = det.features(x)
    assert torch.equal(feats, out.last_hidden_state[:, 0])  # what GenD's DINOEncoder takes
    # last_hidden_state is already normed: the CLS token of the un-normed sequence, through `norm`.
    hidden = {}
    hook = backbone.norm.register_forward_hook(lambda m, inp, out: hidden.setdefault("in", inp[0]))
    with torch.no_grad():
        backbone(pixel_values=x)
    hook.remove()
    assert torch.allclose(feats, backbone.norm(hidden["in"][:, 0]), atol=1e-6)


def test_dinov3_ln_tuning_is_gends_norm_rule(dinov3_dir):
    hidden, layers = TINY_DINOV3["hidden_size"], TINY_DINOV3["num_hidden_layers"]
    det = Detector(load_backbone(dinov3_dir), ln_tuning=True, l2_norm=True)
    trainable = det.trainable_parameters()
    n_ln = 2 * layers + 1  # norm1/norm2 per layer, final norm
    assert sum(p.numel() for p in trainable.values()) == n_ln * 2 * hidden + hidden * 2 + 2
    # GenD unfreezes every parameter whose name holds "norm1", "norm2" or "norm": the same set.
    gend = {f"backbone.{n}" for n, _ in det.backbone.named_parameters() if "norm" in n}
    assert set(trainable) == gend | {"head.weight", "head.bias"}
    frozen = {n for n, p in det.named_parameters() if not p.requires_grad}
    assert {"backbone.model.layer.0.layer_scale1.lambda1", "backbone.embeddings.register_tokens",
            "backbone.embeddings.cls_token"} <= frozen


def test_random_backbone_rejects_unknown_families(tmp_path):
    with pytest.raises(ValueError, match="model_type 'dinov2'"):
        save_random_backbone(tmp_path / "x", dict(TINY_DINOV3, model_type="dinov2"), seed=0)


def test_trainable_parameter_counts(backbone_dir):
    hidden, layers = TINY["hidden_size"], TINY["num_hidden_layers"]
    n_ln = 2 * layers + 2  # pre_layrnorm, layer_norm1/2 per layer, post_layernorm
    det = Detector(load_backbone(backbone_dir), ln_tuning=True, l2_norm=True)
    trainable = det.trainable_parameters()
    assert sum(p.numel() for p in trainable.values()) == n_ln * 2 * hidden + hidden * 2 + 2
    assert (
        "backbone.pre_layrnorm.weight" in trainable
        and "backbone.encoder.layers.1.layer_norm2.bias" in trainable
    )
    assert all(("norm" in n) or n.startswith("head.") for n in trainable)
    assert det.image_size == 32

    probe = Detector(load_backbone(backbone_dir), ln_tuning=False, l2_norm=False)
    assert set(probe.trainable_parameters()) == {"head.weight", "head.bias"}
    assert not probe.features(pixels()).requires_grad  # no graph through a frozen backbone


def test_features_are_pooler_output_and_head(backbone_dir):
    backbone = load_backbone(backbone_dir)
    det = Detector(backbone, ln_tuning=True, l2_norm=True).eval()
    x = pixels()
    with torch.no_grad():
        out = backbone(pixel_values=x)
        cls_post_ln = backbone.post_layernorm(out.last_hidden_state[:, 0, :])
        feats = det.features(x)
        logits, z = det(x)
    assert torch.allclose(feats, cls_post_ln, atol=1e-6)
    assert torch.allclose(z, F.normalize(feats, dim=1)) and torch.allclose(z.norm(dim=1), torch.ones(3))
    assert torch.allclose(logits, z @ det.head.weight.T + det.head.bias, atol=1e-6)

    raw = Detector(load_backbone(backbone_dir), ln_tuning=False, l2_norm=False).eval()
    with torch.no_grad():
        logits_raw, z_raw = raw(x)
    assert torch.allclose(logits_raw, feats @ raw.head.weight.T + raw.head.bias, atol=1e-5)
    assert torch.allclose(z_raw, z, atol=1e-6)


def test_clipmodel_and_visionmodel_checkpoints_load_identically(backbone_dir, tmp_path):
    full = load_backbone(backbone_dir)
    full.save_pretrained(tmp_path / "vision_only")
    vision = load_backbone(tmp_path / "vision_only")
    assert [n for n, _ in vision.named_children()] == [
        "embeddings",
        "pre_layrnorm",
        "encoder",
        "post_layernorm",
    ]
    x = pixels()
    with torch.no_grad():
        assert torch.equal(full(pixel_values=x).pooler_output, vision(pixel_values=x).pooler_output)
    # Both checkpoint kinds written by save_random_backbone load too.
    bare = load_backbone(save_random_backbone(tmp_path / "bare", TINY, seed=0, with_text=False))
    assert bare.config.hidden_size == 32
    with pytest.raises(Exception):
        load_backbone(tmp_path / "does_not_exist")


def test_backbone_checkpoints_must_be_complete_and_of_a_known_family(dinov3_dir, tmp_path):
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig

    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((dinov3_dir / "config.json").read_text())
    tensors = load_file(str(dinov3_dir / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if k != "norm.weight"}, str(partial / "model.safetensors"))
    with pytest.raises(ValueError, match="not a complete DINOv3ViTModel checkpoint; missing \\['norm.weight'\\]"):
        load_backbone(partial)
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(
        tmp_path / "bert")
    with pytest.raises(ValueError, match="model_type 'bert' is not a supported backbone"):
        load_backbone(tmp_path / "bert")


def test_adapter_round_trip(backbone_dir, tmp_path):
    torch.manual_seed(0)
    det = Detector(load_backbone(backbone_dir), ln_tuning=True, l2_norm=True)
    with torch.no_grad():  # move the trainable tensors away from their initial values
        for p in det.trainable_parameters().values():
            p.add_(torch.randn_like(p) * 0.1)
    path = tmp_path / "adapter.safetensors"
    save_adapter(det, path, meta={"backbone": "tiny", "seed": 3})
    assert not (tmp_path / "adapter.safetensors.tmp").exists()

    with safe_open(str(path), framework="pt") as f:
        names = set(f.keys())
        md = f.metadata()
    assert names == set(det.trainable_parameters())
    assert md["format"] == ADAPTER_FORMAT
    meta = json.loads(md["meta"])
    assert (
        meta["backbone"] == "tiny" and meta["model"]["ln_tuning"] is True and meta["model"]["l2_norm"] is True
    )

    loaded, meta2 = load_detector(path, backbone_dir)
    assert meta2 == meta and not loaded.training
    x = pixels(4, seed=1)
    det.eval()
    with torch.no_grad():
        assert torch.equal(det(x)[0], loaded(x)[0])

    # A linear-probe adapter holds only the head.
    probe = Detector(load_backbone(backbone_dir), ln_tuning=False, l2_norm=False)
    save_adapter(probe, tmp_path / "probe.safetensors", meta={})
    with safe_open(str(tmp_path / "probe.safetensors"), framework="pt") as f:
        assert set(f.keys()) == {"head.weight", "head.bias"}
    loaded_probe, _ = load_detector(tmp_path / "probe.safetensors", backbone_dir)
    assert loaded_probe.l2_norm is False and loaded_probe.ln_tuning is False


def test_adapter_mismatch_is_a_clear_error(backbone_dir, tmp_path):
    det = Detector(load_backbone(backbone_dir), ln_tuning=True, l2_norm=True)
    save_adapter(det, tmp_path / "a.safetensors", meta={})
    wider = save_random_backbone(tmp_path / "wide", dict(TINY, hidden_size=48, num_attention_heads=2), seed=0)
    with pytest.raises(ValueError, match="shape"):
        load_detector(tmp_path / "a.safetensors", wider)
    deeper = save_random_backbone(tmp_path / "deep", dict(TINY, num_hidden_layers=3), seed=0)
    with pytest.raises(ValueError, match="missing tensors"):
        load_detector(tmp_path / "a.safetensors", deeper)


def test_devices():
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu").type == "cpu"
    with autocast("cpu"):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32
