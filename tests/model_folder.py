"""A workflow folder as training leaves it, for the tests of the commands that use a trained model
(predict, serve): the demo config (tiny random CLIP), its backbone fetched into ``resources/weights``,
an adapter with the metadata training writes, and a few demo videos."""

from __future__ import annotations

import torch
import yaml

from pipeline.core import config as pconfig
from pipeline.core import layout
from pipeline.fetch import demo
from pipeline.fetch.weights import fetch_weights
from pipeline.model.detector import Detector, load_backbone, save_adapter
from pipeline.training import kinds


def trained_model_folder(work, repo, tiny_clip, model: str, test_videos: int) -> dict:
    """``work`` laid out as the workflow leaves it after training ``model``; its ``videos`` folder holds
    ``test_videos`` real and as many fake demo videos. Returns the config, layout, backbone and videos."""
    cfg = pconfig.load(repo / "config/demo.yaml")
    cfg["weights"] = {"tiny_clip": {"random": dict(tiny_clip)}}
    cfg["faces"]["num_frames"] = 4
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    cfg = pconfig.validate_config(cfg)
    L = layout.from_config(cfg)
    videos = demo.make_demo_dataset(work / "videos", seed=3, counts={"test": test_videos}, frames=8, corrupt=0)
    weights = work / L.weights_download("tiny_clip")
    fetch_weights("tiny_clip", cfg["weights"]["tiny_clip"], weights, work / L.weights_marker("tiny_clip"),
                  seed=cfg["seed"])
    train = kinds.settings(cfg, model)["model"]
    torch.manual_seed(0)
    detector = Detector(load_backbone(weights), ln_tuning=True, l2_norm=True)
    detector.head.weight.data.normal_(0, 3.0)  # scores spread away from 0.5
    save_adapter(detector, work / L.adapter(model), meta={"backbone": train["backbone"], "cfg": train, "seed": 7})
    return {"cfg": cfg, "L": L, "weights": weights, "videos": videos}
