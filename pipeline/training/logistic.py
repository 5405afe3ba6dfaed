"""The frozen-features baseline (``kind: logistic``): scikit-learn's ``LogisticRegression`` on the
backbone's cached features (``pipeline.model.features``), standardised first.

The fitted scaler and classifier fold into one linear head on the raw feature, written as an ordinary
adapter (``head.weight``/``head.bias`` of a detector without LN-tuning or L2 norm), so it is evaluated,
reported and used by ``predict`` like any trained model: p(fake) = softmax(W f + b)[1] equals the
pipeline's ``predict_proba`` exactly up to float rounding.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from pipeline.datasets import select_training
from pipeline.model import head_scores, read_features, write_adapter
from pipeline.evaluation import binary_metrics, video_scores
from .records import write_log

log = logging.getLogger("pipeline.logistic")

def fit(features: np.ndarray, labels: np.ndarray, options: dict, seed: int):
    """The fitted scikit-learn pipeline (StandardScaler -> LogisticRegression); ``options``: the model's
    ``logistic`` settings (``C``, ``max_iter``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = LogisticRegression(C=float(options["C"]), max_iter=int(options["max_iter"]), random_state=seed)
    return make_pipeline(StandardScaler(), clf).fit(features, labels)


def fold_head(pipeline) -> dict[str, torch.Tensor]:
    """The scaler and classifier as one 2-class linear head on the raw feature: logit 1 minus logit 0
    equals the classifier's decision function, so softmax(...)[1] is its probability of class 1."""
    scaler, clf = pipeline.steps[0][1], pipeline.steps[1][1]
    w = clf.coef_[0] / scaler.scale_
    b = clf.intercept_[0] - float(np.dot(w, scaler.mean_))
    weight = np.stack([np.zeros_like(w), w]).astype(np.float64)
    return {"head.weight": torch.tensor(weight, dtype=torch.float32),
            "head.bias": torch.tensor([0.0, b], dtype=torch.float32)}


def _val_metrics(scores: pl.DataFrame) -> dict:
    if scores.height == 0:
        return {"frame_auroc": math.nan, "video_auroc": math.nan, "n_frames": 0, "n_videos": 0}
    videos = video_scores(scores)
    return {"frame_auroc": binary_metrics(scores["label"], scores["p_fake"])["auroc"],
            "video_auroc": binary_metrics(videos["label"], videos["p_fake"])["auroc"],
            "n_frames": scores.height, "n_videos": videos.height}


def image_size(backbone_dir) -> int:
    """The input size of the backbone saved in ``backbone_dir`` (full CLIP or vision-only config)."""
    cfg = json.loads((Path(backbone_dir) / "config.json").read_text())
    return int(cfg.get("vision_config", cfg).get("image_size", 224))


def _selected(path, data: dict, subsets_path=None) -> tuple[pl.DataFrame, np.ndarray]:
    """The rows and features of a features table that ``data.methods`` / ``data.subset`` keep."""
    rows, x = read_features(path)
    if not (data.get("methods") or data.get("subset")):
        return rows, x
    kept = select_training(rows.with_row_index("_row"), data, subsets_path)
    return kept.drop("_row"), x[kept["_row"].to_numpy()]


def train_logistic(train_features, val_features: dict, backbone_dir, cfg: dict, adapter_path, log_path, *,
                   seed: int, subsets_path=None) -> dict:
    """Fit the baseline on the train split's features (of ``data.methods`` and ``data.subset`` when set),
    score each validation set (the training dataset's of ``data.methods``), write the adapter and a
    training log (one ``val`` row: the mean over the sets, plus one row per set when several)."""
    t0 = time.time()
    d = cfg.get("data") or {}
    rows, x = _selected(train_features, d, subsets_path)
    if rows.height == 0:
        raise ValueError(f"{train_features}: no training crops"
                         + (f" of methods {d['methods']}" if d.get("methods") else ""))
    if rows.get_column("label").n_unique() < 2:
        raise ValueError(f"{train_features}: the training crops are all one class; the baseline needs both")
    model = fit(x, rows.get_column("label").to_numpy(), cfg["logistic"], seed)
    head = fold_head(model)
    same = {"methods": d.get("methods")}
    per_set = {name: _val_metrics(head_scores(*_selected(path, same if name.split("/")[0] == d.get("dataset") else {}),
                                              head)) for name, path in val_features.items()}
    scored = [m for m in per_set.values() if m["n_frames"]]
    mean = {k: (float(np.mean([m[k] for m in scored])) if scored else math.nan)
            for k in ("frame_auroc", "video_auroc")}
    mean.update({k: sum(m[k] for m in per_set.values()) for k in ("n_frames", "n_videos")})
    seconds = time.time() - t0
    log_rows = [{"kind": "val", "epoch": 0, "step": 0, "seconds": seconds, **mean}]
    if len(per_set) > 1:
        log_rows += [{"kind": f"val:{n}", "epoch": 0, "step": 0, "seconds": seconds, **m} for n, m in per_set.items()]
    write_log(log_rows, log_path)
    flags = {"ln_tuning": False, "l2_norm": False, "num_classes": 2, "hidden_size": int(x.shape[1]),
             "image_size": image_size(backbone_dir)}
    summary = {"backbone": cfg["backbone"], "cfg": cfg, "seed": seed, "best_epoch": 0, "selected_by": "logistic",
               "val": mean, "epochs": 1, "n_train_crops": rows.height, "trainable_parameters": 2 * (x.shape[1] + 1),
               "iterations": int(model.steps[1][1].n_iter_[0])}
    write_adapter(head, flags, adapter_path, summary)
    log.info("logistic regression on %d crops: %d iterations, val video AUROC %.4f", rows.height,
             summary["iterations"], mean["video_auroc"])
    return summary
