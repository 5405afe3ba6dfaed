"""Trainable parameters of each variant on the real ViT-L/14, built from its config without weights."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from pipeline.model.detector import Detector

VIT_L_14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                image_size=224, patch_size=14, hidden_act="quick_gelu")

# (ln_tuning, l2_norm): losses and slerp add no parameters, so UnAl, LNCLIP-DF and GenD count as LN+L2.
VARIANTS = {
    "linear_probe": ((False, False), 2_050),
    "ln": ((True, False), 104_450),
    "ln_l2": ((True, True), 104_450),
    "ln_l2_unal": ((True, True), 104_450),
    "lnclip_df": ((True, True), 104_450),
    "gend": ((True, True), 104_450),
}


@pytest.fixture(scope="module")
def vit_l_14():
    with torch.device("meta"):  # shapes only: no 1.2 GB of random weights
        return CLIPVisionModel(CLIPVisionConfig(**VIT_L_14))


def test_vision_tower_size(vit_l_14):
    assert sum(p.numel() for p in vit_l_14.parameters()) == 303_179_776
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in vit_l_14.modules()) == 50


@pytest.mark.parametrize("variant", VARIANTS)
def test_trainable_parameters_per_variant(vit_l_14, variant):
    (ln_tuning, l2_norm), expected = VARIANTS[variant]
    with torch.device("meta"):
        detector = Detector(vit_l_14, ln_tuning=ln_tuning, l2_norm=l2_norm)
    trainable = detector.trainable_parameters()
    assert sum(p.numel() for p in trainable.values()) == expected
    assert sum(p.numel() for n, p in trainable.items() if n.startswith("head.")) == 2_050
