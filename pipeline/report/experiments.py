"""Sections inferred from the models' settings, one per experiment of the papers.

* ``ablation``: each model whose settings are a step of the ladder (``rung``) beside both papers'
  numbers for that step.
* ``data-fraction``, ``paired-unpaired``, ``train-elsewhere``: models identical except one group of
  settings (``data.fraction``; ``data.subset``; the training dataset) form a group; a section appears
  when a group has at least two values. The seed never separates models: seeds of one setting are
  averaged where a value is plotted.
* ``clip-logreg``: the accuracy of each ``kind: logistic`` model.

Cross-dataset mean: over the benchmarks that are not the model's training dataset, as in the headline.
Settings are read with ``.get`` defaults, so settings without the newer keys (``data.subset``,
``data.methods``) work.
"""

from __future__ import annotations

import json

import numpy as np

from . import published
from .util import finite, get, pct

DATASET_KEYS = ("data.dataset", "data.train_split", "data.val_split", "data.val_sets")
SUBSET_TEXT = {None: "all data", "paired": "paired", "unpaired": "unpaired"}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _key(settings: dict, drop: tuple[str, ...]) -> str:
    """The settings without ``drop`` (dotted keys and what lies under them) and the seed, as one string."""
    drop = (*drop, "seed")
    kept = {k: v for k, v in _flat(settings).items() if not any(k == d or k.startswith(d + ".") for d in drop)}
    return json.dumps(kept, sort_keys=True, default=str)


def groups(settings: dict[str, dict], drop: tuple[str, ...], value) -> list[list[str]]:
    """Models identical except ``drop`` (and the seed) whose ``value(settings)`` takes >= 2 values."""
    by: dict[str, list[str]] = {}
    for m, s in settings.items():
        by.setdefault(_key(s, drop), []).append(m)
    return [ms for ms in by.values() if len({json.dumps(value(settings[m]), default=str) for m in ms}) >= 2]


def rung(s: dict) -> str | None:
    """The ladder step of a trained model's settings, or None when they are none of them."""
    if s.get("kind", "train") != "train" or "ln_tuning" not in s or "l2_norm" not in s:
        return None  # settings that do not say: no step
    unal = (get(s, "loss", "alignment") or 0) > 0 or (get(s, "loss", "uniformity") or 0) > 0
    slerp, ln, l2 = bool(get(s, "slerp", "enabled")), bool(s.get("ln_tuning")), bool(s.get("l2_norm"))
    if not ln:
        return "linear probe" if not (l2 or unal or slerp) else None
    if not l2:
        return "LN" if not (unal or slerp) else None
    if not unal:
        return "LN+L2" if not slerp else None
    return "LNCLIP-DF" if slerp else "LN+L2+UnAl"


def fraction(s: dict) -> float:
    return float(get(s, "data", "fraction", default=1.0))


def subset(s: dict):
    return get(s, "data", "subset")


def _full_data(s: dict) -> bool:
    """All of the training dataset: no fraction, subset or method filter."""
    return fraction(s) == 1.0 and subset(s) is None and get(s, "data", "methods") is None


def metric(ev: dict, model: str, bench: str, key: str = "auroc", level: str = "video"):
    v = get(ev.get((model, bench)), "metrics", level, key)
    return float(v) if finite(v) else None


def cross_mean(ev: dict, models: list[str], benches: list[str], key: str = "auroc"):
    """Mean over ``models`` of each one's mean over its cross-dataset benchmarks (None without any)."""
    means = []
    for m in models:
        vals = [metric(ev, m, b, key) for b in benches if (m, b) in ev and not ev[(m, b)].get("in_domain")]
        vals = [v for v in vals if v is not None]
        means += [float(np.mean(vals))] if vals else []
    return float(np.mean(means)) if means else None


def mean_of(ev: dict, models: list[str], bench: str, key: str = "auroc"):
    vals = [v for m in models if (v := metric(ev, m, bench, key)) is not None]
    return float(np.mean(vals)) if vals else None


def labels(settings: dict, group_list: list[list[str]]) -> list[str]:
    """A group's label: its ladder step (settings apart from the data) or its first model's name."""
    out = [rung({**settings[g[0]], "data": {}}) or g[0] for g in group_list]
    return [f"{lab} ({g[0]})" if out.count(lab) > 1 else lab for lab, g in zip(out, group_list)]


def _published_cells(r: str) -> list[dict]:
    cells = []
    for p in published.for_rung(r):
        d = p["digits"]
        for col, v in (("mean", p["mean"]), ("CDFv2", p["values"].get("CDFv2"))):
            if v is not None:
                cells.append({"source": p["source"], "source_text": p["source_text"], "column": col,
                              "row": p["row"], "value": f"{v:.6g}", "text": f"{v:.{d}f}"})
    return cells


LADDER_KEYS = ("ln_tuning", "l2_norm", "loss", "slerp.enabled")  # what the ladder's steps change


def _ladder(settings: dict) -> dict[str, str]:
    """Model -> its step, for the steps trained on all of their data that agree in everything else
    (seed aside); where models differ in more (another dataset, optimiser, order), those most of them
    share."""
    steps = {m: r for m, s in settings.items() if (r := rung(s)) and _full_data(s)}
    keys = {m: _key(settings[m], LADDER_KEYS) for m in steps}
    main = max(keys.values(), key=list(keys.values()).count, default=None)
    return {m: r for m, r in steps.items() if keys[m] == main}


def ablation(settings: dict, ev: dict, benches: list[str], columns: dict) -> dict | None:
    """One row per ladder step we have a model for: our cross-dataset mean and Celeb-DF v2, and the
    papers' numbers for that step. None when no model is a step."""
    cdf = next((b for b in benches if columns.get(b) == "CDFv2"), None)
    steps, rows = _ladder(settings), []
    for r in published.RUNGS:
        models = [m for m, s in steps.items() if s == r]
        if models:
            mean, c = cross_mean(ev, models, benches), mean_of(ev, models, cdf) if cdf else None
            rows.append({"rung": r, "models": models, "mean": pct(mean), "mean_value": "" if mean is None else
                         f"{100 * mean:.6g}", "cdf": pct(c), "published": _published_cells(r)})
    if not rows:
        return None
    heads = list(dict.fromkeys((p["source"], p["column"]) for r in rows for p in r["published"]))
    for r in rows:
        by = {(p["source"], p["column"]): p for p in r["published"]}
        r["published"] = [by.get(h) for h in heads]
    return {"rows": rows, "cdf": cdf, "dataset": str(get(settings[rows[0]["models"][0]], "data", "dataset")),
            "heads": [{"source": s, "column": c} for s, c in heads],
            "sources": list(dict.fromkeys(p["source_text"] for r in rows for p in r["published"] if p))}
