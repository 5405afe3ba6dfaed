"""Shared fixtures. Every test runs offline on the CPU; nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# CI's rules for skips and the time limit of slow tests (see ci_policy.py).
from ci_policy import pytest_collection_modifyitems, pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401

REPO = Path(__file__).resolve().parents[1]

# Tests must never reach a hub or the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


# A tiny CLIP vision config: real architecture, random weights, fast on a CPU.
TINY_CLIP = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=32,
    patch_size=8,
)


@pytest.fixture(scope="session")
def tiny_clip() -> dict:
    return dict(TINY_CLIP)


@pytest.fixture(scope="session")
def backbone_dir(tmp_path_factory, tiny_clip) -> Path:
    """A tiny random CLIP saved with save_pretrained (the hub checkpoint's format: CLIPModel)."""
    from pipeline.model.detector import save_random_backbone

    return save_random_backbone(tmp_path_factory.mktemp("clip") / "tiny", tiny_clip, seed=0, with_text=True)


# A tiny DINOv3 ViT config of the same size (with register tokens and layer scale, as the released
# models), random weights.
TINY_DINOV3 = dict(TINY_CLIP, model_type="dinov3_vit", num_register_tokens=2)


@pytest.fixture(scope="session")
def dinov3_dir(tmp_path_factory) -> Path:
    """A tiny random DINOv3ViTModel saved with save_pretrained (the hub checkpoint's format)."""
    from pipeline.model.detector import save_random_backbone

    return save_random_backbone(tmp_path_factory.mktemp("dinov3") / "tiny", TINY_DINOV3, seed=0)
