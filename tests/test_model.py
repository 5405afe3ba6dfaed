"""Detector, LN-tuning, backbone loading and adapter files (tiny random CLIP, offline)."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from pipeline.model import (
    ADAPTER_FORMAT,
    CLIP_MEAN,
    CLIP_STD,
    Detector,
    autocast,
    load_backbone,
    load_detector,
    pick_device,
    save_adapter,
    save_random_backbone,
)

from conftest import TINY_CLIP as TINY




def pixels(n=3, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_clip_constants():
    assert CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073)
    assert CLIP_STD == (0.26862954, 0.26130258, 0.27577711)


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
