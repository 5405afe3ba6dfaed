"""The data experiments' sections: data fraction, paired / unpaired training data, training on other
datasets, and the logistic-regression baseline's accuracy (groups from :mod:`.experiments`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .experiments import DATASET_KEYS, SUBSET_TEXT, cross_mean, fraction, groups, labels, mean_of, subset
from .figures import lines_figure
from .training import _series, _split
from .util import get, num, pct, slug

FRACTION_X = "share of the training videos (data.fraction)"


def _bench_cell(ev: dict, models: list[str], bench: str, key: str = "auroc") -> dict:
    e = ev.get((models[0], bench)) or {}
    v = mean_of(ev, models, bench, key)
    return {"benchmark": bench, "text": pct(v), "value": "" if v is None else f"{100 * v:.6g}",
            "in_domain": bool(e.get("in_domain")), "shares_reals": bool(e.get("shares_reals")) and not e.get("in_domain")}


def _fraction_points(settings: dict, group: list[str], ev: dict, benches: list[str]) -> list[dict]:
    by: dict[float, list[str]] = {}
    for m in group:
        by.setdefault(fraction(settings[m]), []).append(m)
    return [{"fraction": f, "models": ms, "auroc": cross_mean(ev, ms, benches),
             "bacc": cross_mean(ev, ms, benches, "balanced_acc"),
             "cells": [{**_bench_cell(ev, ms, b), "bacc": pct(mean_of(ev, ms, b, "balanced_acc"))} for b in benches]}
            for f, ms in sorted(by.items())]


def _fraction_svg(key: str, title: str, series: list[dict]) -> object:
    """The plot, or None when no point has a value (no benchmark outside the training data: no mean)."""
    lines = [{"label": s["label"], "x": [p["fraction"] for p in s["points"] if p[key] is not None],
              "y": [100 * p[key] for p in s["points"] if p[key] is not None]} for s in series]
    if not any(line["x"] for line in lines):
        return None
    return lines_figure(f"fraction-{key}", [{"title": title, "xlabel": FRACTION_X, "ylabel": f"{title} (%)",
                                             "series": lines}])


def fraction_section(settings: dict, ev: dict, benches: list[str]) -> dict | None:
    """Models identical except ``data.fraction``: cross-dataset mean video AUROC and balanced accuracy
    (at 0.5) against the fraction, one line per group; per benchmark in a table."""
    gs = groups(settings, ("data.fraction",), fraction)
    if not gs:
        return None
    series = [{"label": lab, "points": _fraction_points(settings, g, ev, benches)}
              for lab, g in zip(labels(settings, gs), gs)]
    return {"groups": series,
            "auroc_svg": _fraction_svg("auroc", "cross-dataset mean video AUROC", series),
            "bacc_svg": _fraction_svg("bacc", "cross-dataset mean video balanced accuracy", series)}


def _curves(prefix: str, models: list[str], names: dict, logs: dict, styles: dict) -> object:
    loss, val = [], []
    for m in models:
        if logs.get(m) is None or not Path(logs[m]).is_file():
            continue
        train, v = _split(pl.read_parquet(logs[m]))
        x, y = _series(train, "step", "loss")
        loss.append({"label": names[m], "x": x, "y": y})
        x, y = _series(v, "epoch", "video_auroc")
        val.append({"label": names[m], "x": x, "y": 100 * y})
    st = {names[m]: styles[m] for m in models if m in styles}
    return lines_figure(prefix, [
        {"title": "train loss", "xlabel": "step", "ylabel": "total loss", "series": loss, "markers": False},
        {"title": "validation video AUROC", "xlabel": "epoch (as in the log)", "ylabel": "AUROC (%)", "series": val,
         "integer_x": True}],
        st)


def _model_row(ev: dict, m: str, benches: list[str], **extra) -> dict:
    return {"model": m, "cells": [_bench_cell(ev, [m], b) for b in benches], "mean": pct(cross_mean(ev, [m], benches)),
            **extra}


def subset_section(settings: dict, ev: dict, benches: list[str], logs: dict, styles: dict) -> list[dict]:
    """Models identical except ``data.subset`` (paired / unpaired / all): their training curves side by
    side and their test AUROCs."""
    out = []
    gs = groups(settings, ("data.subset",), subset)
    for k, (lab, g) in enumerate(zip(labels(settings, gs), gs)):
        names = {m: f"{m} ({SUBSET_TEXT.get(subset(settings[m]), subset(settings[m]))})" for m in g}
        rows = [_model_row(ev, m, benches, subset=SUBSET_TEXT.get(subset(settings[m]), str(subset(settings[m]))))
                for m in g]
        out.append({"label": lab, "slug": f"{k}-{slug(lab)}", "rows": rows,
                    "svg": _curves(f"subset-{k}", g, names, logs, styles)})
    return out


def elsewhere_section(settings: dict, ev: dict, benches: list[str]) -> list[dict]:
    """Models identical except their training dataset (and its splits): trained-on x benchmark video
    AUROC, in-domain cells marked."""
    out = []
    gs = groups(settings, DATASET_KEYS, lambda s: get(s, "data", "dataset"))
    for lab, g in zip(labels(settings, gs), gs):
        g = sorted(g, key=lambda m: str(get(settings[m], "data", "dataset")))
        out.append({"label": lab, "rows": [_model_row(ev, m, benches, dataset=str(get(settings[m], "data", "dataset")))
                                           for m in g]})
    return out


def _accuracy_row(bench: str, method: str, group: dict) -> dict:
    return {"benchmark": bench, "method": method, "n": num(get(group, "video", "n")),
            **{f"{lv}_{k}": pct(get(group, lv, k)) for lv in ("frame", "video") for k in ("acc", "balanced_acc")}}


def logistic_section(settings: dict, ev: dict, benches: list[str]) -> list[dict]:
    """Each ``kind: logistic`` model: frame and video accuracy and balanced accuracy at 0.5 per
    benchmark and per manipulation method (its fakes against all reals)."""
    out = []
    for m in [m for m, s in settings.items() if s.get("kind") == "logistic"]:
        rows = []
        for b in [b for b in benches if (m, b) in ev]:
            met = ev[(m, b)]["metrics"]
            rows += [_accuracy_row(b, "all", met)] + [_accuracy_row(b, k, g) for k, g in
                                                      sorted((met.get("per_method") or {}).items())]
        out.append({"model": m, "rows": rows})
    return out
