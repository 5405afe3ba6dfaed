"""The headline table: video AUROC (%) per model x benchmark, the cross-dataset mean, the best per
column marked, and the papers' published numbers as separate, marked rows.

A benchmark that shares its real videos with the model's training data without being its training
dataset (FaceShifter beside FF++ c23) counts in the mean, as the papers count it among their
cross-dataset benchmarks; it is marked, and ``mean_wo`` is the mean without such benchmarks.
A model trained with several seeds (runs ``<model>-seed<N>``) has one row: per column the mean over
its seeds, ± their standard deviation (n - 1 in the denominator) and n, the seeds evaluated; the best
marking compares these means. Its runs' own rows are kept in the row (``runs``), shown on demand."""

from __future__ import annotations

import numpy as np

from pipeline.core.config import run_of

from .util import ci_text, finite, get, pct


def _cell(ev: dict, model: str, bench: str) -> dict:
    e = ev.get((model, bench))
    a = get(e, "metrics", "video", "auroc") if e else None
    in_domain = bool(e and e.get("in_domain"))
    return {"benchmark": bench, "in_domain": in_domain, "auroc": a if finite(a) else None,
            "shares_reals": bool(e and e.get("shares_reals")) and not in_domain,
            "value": f"{100.0 * a:.6g}" if finite(a) else "", "text": pct(a) if e else "",
            "ci": ci_text(get(e, "metrics", "video", "auroc_ci")) if e else "", "missing": e is None, "best": False,
            "spread": ""}


def _row(ev: dict, model: str, benches: list[str], color: str) -> dict:
    cells = [_cell(ev, model, b) for b in benches]
    vals = [c["auroc"] for c in cells if c["auroc"] is not None and not c["in_domain"]]
    cross = [c for c in cells if not c["in_domain"]]
    mean = float(np.mean(vals)) if vals else None
    wo = [c["auroc"] for c in cells if c["auroc"] is not None and not c["in_domain"] and not c["shares_reals"]]
    return {"model": model, "color": color, "cells": cells, "mean": mean,
            "mean_wo_value": f"{100.0 * np.mean(wo):.6g}" if wo else "", "mean_wo_text": pct(float(np.mean(wo)) if wo else None),
            "mean_value": f"{100.0 * mean:.6g}" if mean is not None else "",
            "mean_text": pct(mean) + ("*" if mean is not None and len(vals) < len(cross) else ""),
            "mean_n": len(vals), "mean_best": False, "mean_complete": len(vals) == len(cross),
            "evaluated": any((model, b) in ev for b in benches), "mean_spread": "", "seeds": 0, "runs": []}


def _spread(vals: list[float]) -> tuple[float | None, float | None, str]:
    """Mean, sample standard deviation (None for one value) and ``± std · n = k`` of AUROCs."""
    if not vals:
        return None, None, ""
    std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
    return float(np.mean(vals)), std, (f"\u00b1 {pct(std)} \u00b7 " if std is not None else "") + f"n = {len(vals)}"


def _spread_cell(cells: list[dict], bench: str) -> dict:
    """A seeded model's cell: the mean of its runs' values, their spread and count."""
    mean, std, text = _spread([c["auroc"] for c in cells if c["auroc"] is not None])
    in_domain = any(c["in_domain"] for c in cells)
    return {"benchmark": bench, "in_domain": in_domain, "auroc": mean, "std": std,
            "shares_reals": any(c["shares_reals"] for c in cells) and not in_domain,
            "value": f"{100.0 * mean:.6g}" if mean is not None else "", "text": pct(mean),
            "ci": "", "spread": text, "missing": all(c["missing"] for c in cells), "best": False}


def _seeded_row(ev: dict, model: str, runs: list[tuple[str, int]], benches: list[str], styles: dict) -> dict:
    """One row for a model's seeds (see the module's docstring), its runs' rows under ``runs``."""
    color = styles[runs[0][0]]["color"]
    per_run = [{**_row(ev, run, benches, styles[run]["color"]), "seed": seed} for run, seed in runs]
    done = [r for r in per_run if r["evaluated"]]
    cells = [_spread_cell([r["cells"][j] for r in done], b) for j, b in enumerate(benches)]
    mean, _, spread = _spread([r["mean"] for r in done if r["mean"] is not None])
    complete = bool(done) and all(r["mean_complete"] for r in done)
    wo = [c["auroc"] for c in cells if c["auroc"] is not None and not c["in_domain"] and not c["shares_reals"]]
    return {"model": model, "color": color, "cells": cells, "mean": mean,
            "mean_wo_value": f"{100.0 * np.mean(wo):.6g}" if wo else "", "mean_wo_text": pct(float(np.mean(wo)) if wo else None),
            "mean_value": f"{100.0 * mean:.6g}" if mean is not None else "",
            "mean_text": pct(mean) + ("*" if mean is not None and not complete else ""), "mean_spread": spread,
            "mean_n": max((r["mean_n"] for r in done), default=0), "mean_best": False, "mean_complete": complete,
            "evaluated": bool(done), "seeds": len(runs), "runs": per_run}


def _groups(runs: list[str]) -> dict[str, list[tuple[str, int | None]]]:
    """Model -> its runs with their seeds, in first-seen order."""
    out: dict[str, list] = {}
    for run in runs:
        model, seed = run_of(run)
        out.setdefault(model, []).append((run, seed))
    return out


def _mark_best(rows: list[dict], n_cols: int) -> None:
    """Mark the highest value of each column (and of the mean) when at least two models have one."""
    for j in range(n_cols):
        col = [r["cells"][j]["auroc"] for r in rows if r["cells"][j]["auroc"] is not None]
        for r in rows:
            r["cells"][j]["best"] = len(col) > 1 and r["cells"][j]["auroc"] == max(col)
    # means over different sets of benchmarks are not compared: only complete ones compete
    means = [r["mean"] for r in rows if r["mean"] is not None and r["mean_complete"]]
    for r in rows:
        r["mean_best"] = len(means) > 1 and r["mean_complete"] and r["mean"] == max(means)


def headline_rows(ev: dict, models: list[str], benches: list[str], styles: dict) -> list[dict]:
    """One row per model (``models``: runs' names, a seeded model's runs grouped into one row)."""
    rows = [_seeded_row(ev, m, runs, benches, styles) if runs[0][1] is not None
            else _row(ev, runs[0][0], benches, styles[runs[0][0]]["color"]) for m, runs in _groups(models).items()]
    rows = [r for r in rows if r["evaluated"]]
    _mark_best(rows, len(benches))
    return rows


def shared_benchmarks(rows: list[dict], benches: list[str]) -> list[str]:
    """The benchmarks that share real videos with some model's training data (outside its training set)."""
    return [b for j, b in enumerate(benches) if any(r["cells"][j]["shares_reals"] for r in rows)]


def _published_cell(v, digits: int) -> dict:
    return {"value": "" if v is None else f"{v:.6g}", "text": "" if v is None else f"{v:.{digits}f}"}


def published_rows(published: list[dict], benches: list[str]) -> list[dict]:
    """Rows of the papers' numbers in the headline's columns (``published.rows_for``), never marked best;
    ``mean`` is the paper's own mean over its own benchmark set where it gives one."""
    out = []
    for p in published:
        digits = p.get("digits", 2)
        cells = [{"benchmark": b, **_published_cell(p["values"].get(b), digits)} for b in benches]
        out.append({"row": p["row"], "source": p["source"], "source_text": p.get("source_text", p["source"]),
                    "cells": cells, "mean": _published_cell(p.get("mean"), digits)})
    return out
