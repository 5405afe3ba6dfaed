"""Robustness section: video AUROC against corruption strength, per base benchmark and model."""

from __future__ import annotations

from pipeline.evaluation import KINDS
from .figures import robustness_figure
from .util import get, read_json


def load(robustness: list[dict]) -> list[dict]:
    """Read each ``{"model", "benchmark", "path"}`` entry's JSON (``evaluate_robustness``)."""
    return [{**r, "result": read_json(r["path"], f"robustness of {r['model']} on {r['benchmark']}")}
            for r in robustness]


def _series(entry: dict, kind: str, clean: float | None) -> dict:
    points = [p for p in entry["result"].get("points") or [] if p.get("kind") == kind]
    ci = [get(p, "video", "auroc_ci", default=[None, None]) or [None, None] for p in points]
    nan = float("nan")
    return {"model": entry["model"], "strength": [p["strength"] for p in points],
            "auroc": [nan if get(p, "video", "auroc") is None else get(p, "video", "auroc") for p in points],
            "lo": [nan if c[0] is None else c[0] for c in ci], "hi": [nan if c[1] is None else c[1] for c in ci],
            "clean": clean}


def sections(entries: list[dict], ev: dict, slugs: dict, styles: dict) -> list[dict]:
    """One figure per base benchmark (panels: corruption kinds), in the benchmarks' order."""
    out = []
    for bench in dict.fromkeys(e["benchmark"] for e in entries):
        kinds: dict[str, list[dict]] = {}
        for kind in KINDS:
            for e in (e for e in entries if e["benchmark"] == bench):
                if any(p.get("kind") == kind for p in e["result"].get("points") or []):
                    clean = get(ev.get((e["model"], bench)), "metrics", "video", "auroc")
                    kinds.setdefault(kind, []).append(_series(e, kind, clean))
        slug = slugs.get(bench, bench)
        out.append({"benchmark": bench, "slug": slug, "kinds": list(kinds),
                    "svg": robustness_figure(f"robust-{slug}", kinds, styles)})
    return out
