"""``metrics.csv``: every metric of every evaluation as one tidy row.

Columns ``model,seed,benchmark,level,method,metric,value``: ``model`` is the model's name and ``seed``
the run's seed for a model with ``seeds`` (its run ``<model>-seed<N>``), empty for an unseeded run (so
rows group by model); ``level`` is ``frame`` or ``video``, ``method``
``all`` for the overall row or a manipulation method (its fakes against all reals), ``metric`` a key
of ``metrics.json`` (``auroc_ci`` becomes ``auroc_ci_low`` / ``auroc_ci_high``). Undefined values
(null in the JSON) are empty. Robustness points are rows of their derived benchmark
(``celebdf_v2@jpeg=40``).
"""

from __future__ import annotations

import csv
import io
import math

from pipeline.core.config import run_of
from pipeline.core.files import write_text

COLUMNS = ("model", "seed", "benchmark", "level", "method", "metric", "value")
LEVELS = ("frame", "video")


def _values(d: dict):
    """(metric, value) pairs of one level's metrics: numbers only, intervals split in two."""
    for k, v in d.items():
        if k.endswith("_ci") and isinstance(v, list) and len(v) == 2:
            yield f"{k}_low", v[0]
            yield f"{k}_high", v[1]
        elif v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            yield k, v


def metric_rows(model: str, benchmark: str, metrics: dict) -> list[tuple]:
    """Tidy rows of one ``metrics.json`` (overall and ``per_method``)."""
    groups = [("all", metrics)] + sorted((metrics.get("per_method") or {}).items())
    return [(model, benchmark, level, method, k, v)
            for method, group in groups for level in LEVELS for k, v in _values(group.get(level) or {})]


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return repr(float(v)) if isinstance(v, float) else str(v)


def _model_seed(run: str) -> tuple[str, str]:
    model, seed = run_of(run)
    return model, "" if seed is None else str(seed)


def write_metrics_csv(path, evaluations: list[dict], robustness: list[dict]) -> int:
    """Write ``metrics.csv`` from evaluations (``{model, benchmark, metrics}``) and robustness results
    (``{model, result}``), ``model`` being a run's name; returns the number of rows."""
    rows = [r for e in evaluations for r in metric_rows(e["model"], e["benchmark"], e["metrics"])]
    rows += [r for e in robustness for p in e["result"].get("points") or []
             for r in metric_rows(e["model"], p["benchmark"], p)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    w.writerows([*_model_seed(r[0]), *r[1:5], _cell(r[5])] for r in rows)
    write_text(path, buf.getvalue())
    return len(rows)
