"""One section per benchmark: ROC curves, score histograms, the metrics table (metrics as rows, so it
reads at 800 px), per-method AUROC with confidence intervals, and the evaluation's own data counts."""

from __future__ import annotations

import polars as pl
from sklearn.metrics import roc_curve

from pipeline.evaluation import video_scores
from .figures import hist_figure, roc_figure
from .util import ci_text, get, inline_counts, num, pct

METRIC_ROWS = [
    ("auroc", "AUROC"),
    ("ap", "AP"),
    ("eer", "EER"),
    ("acc", "Acc@0.5"),
    ("balanced_acc", "BalAcc@0.5"),
    ("f1", "F1@0.5"),
    ("acc_at_eer", "Acc@EER"),
    ("balanced_acc_at_eer", "BalAcc@EER"),
    ("f1_at_eer", "F1@EER"),
    ("tpr_at_fpr_1", "TPR@FPR1%"),
    ("tpr_at_fpr_5", "TPR@FPR5%"),
]
LEVELS = ("video", "frame")


def _videos(e: dict) -> pl.DataFrame | None:
    sc = pl.read_parquet(e["scores_path"])
    sc = sc.select([c for c in ("dataset", "video_id", "label", "method", "p_fake") if c in sc.columns])
    reduce = get(e["metrics"], "settings", "video_reduce", default="mean")
    return video_scores(sc, reduce=reduce) if sc.height else None


def _curve(model: str, vid: pl.DataFrame, met: dict) -> dict | None:
    if vid.get_column("label").n_unique() != 2:
        return None
    fpr, tpr, _ = roc_curve(vid.get_column("label").to_numpy(), vid.get_column("p_fake").to_numpy())
    return {"model": model, "fpr": fpr, "tpr": tpr, "auroc": pct(get(met, "video", "auroc"))}


def _metric_cell(d: dict, key: str, level: str) -> dict:
    ci = ci_text(d.get(f"{key}_ci")) if level == "video" else ""
    return {"text": pct(d.get(key)), "ci": ci, "note": (d.get("notes") or {}).get(key)}


def metric_table(bench_models: list[str], ev: dict, bench: str) -> dict:
    """Rows = metrics, columns = model x level (video, frame); n as the first row."""
    cols = [(m, lv) for m in bench_models for lv in LEVELS]
    data = {(m, lv): ev[(m, bench)]["metrics"].get(lv) or {} for m, lv in cols}
    n_row = {"label": "n (real / fake)", "key": "n",
             "cells": [{"text": f"{num(d.get('n'))} ({num(d.get('n_real'))} / {num(d.get('n_fake'))})", "ci": "",
                        "note": None} for d in data.values()]}
    rows = [n_row] + [{"label": label, "key": key, "cells": [_metric_cell(data[c], key, c[1]) for c in cols]}
                      for key, label in METRIC_ROWS]
    return {"models": bench_models, "levels": list(LEVELS), "rows": rows}


def _method_rows(bench_models: list[str], ev: dict, bench: str) -> list[dict]:
    methods: list[str] = []
    for m in bench_models:
        methods += [k for k in get(ev[(m, bench)], "metrics", "per_method", default={}) if k not in methods]
    rows = []
    for meth in methods:
        cells = []
        for m in bench_models:
            pm = get(ev[(m, bench)], "metrics", "per_method", meth) or {}
            cells.append({"model": m, "video": pct(get(pm, "video", "auroc")),
                          "ci": ci_text(get(pm, "video", "auroc_ci")), "frame": pct(get(pm, "frame", "auroc")),
                          "n_fake": num(get(pm, "video", "n_fake"))})
        rows.append({"method": meth, "cells": cells})
    return rows


def _data_row(model: str, met: dict) -> dict:
    dc = met.get("data") or {}
    return {"model": model, "videos": num(dc.get("videos")),
            "scored": num(dc.get("videos_scored", get(met, "counts", "videos"))),
            "dropped": num(dc.get("videos_dropped")), "without_crops": num(dc.get("videos_without_crops")),
            "frames_sampled": num(dc.get("frames_sampled")), "crops": num(dc.get("crops")),
            "frames_scored": num(dc.get("frames_scored", get(met, "counts", "frames"))),
            "failures": inline_counts(dc.get("failures"))}


def bench_section(bench: str, bslug: str, models: list[str], ev: dict, styles: dict) -> dict:
    bench_models = [m for m in models if (m, bench) in ev]
    curves, hists = [], []
    for m in bench_models:
        vid = _videos(ev[(m, bench)])
        if vid is None:
            continue
        if (c := _curve(m, vid, ev[(m, bench)]["metrics"])) is not None:
            curves.append(c)
        hists.append({"model": m, "label": vid.get_column("label").to_numpy(),
                      "p_fake": vid.get_column("p_fake").to_numpy()})
    return {"name": bench, "slug": bslug, "models": bench_models,
            "roc_svg": roc_figure(bench, f"roc-{bslug}", curves, styles),
            "hist_svg": hist_figure(f"hist-{bslug}", hists),
            "metric_table": metric_table(bench_models, ev, bench),
            "method_rows": _method_rows(bench_models, ev, bench),
            "data_rows": [_data_row(m, ev[(m, bench)]["metrics"]) for m in bench_models]}
