"""``build_report``: gather the sections and render the page template."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from jinja2 import Environment, StrictUndefined, select_autoescape

from pipeline.core.files import write_text
from . import robust
from .benchmarks import METRIC_ROWS, bench_section
from .datastats import dataset_rows
from .figures import model_styles
from .data_experiments import elsewhere_section, fraction_section, logistic_section, subset_section
from .experiments import ablation
from .headline import headline_rows, published_rows, shared_benchmarks
from .provenance_section import provenance_context
from .tidy import write_metrics_csv
from .training import training_section
from .util import DASH, get, read_json, unique_slugs

DEMO_TEXT = "Demo on synthetic videos: these numbers say nothing about real deepfakes"


def _evaluations(evaluations: list[dict]) -> tuple[dict, list[str], list[str]]:
    """``(model, benchmark) -> entry with its metrics``, and models and benchmarks in first-seen order."""
    ev, models, benches = {}, [], []
    for e in evaluations:
        m, b = str(e["model"]), str(e["benchmark"])
        if (m, b) in ev:
            raise ValueError(f"report: two evaluations of model {m!r} on benchmark {b!r}")
        models += [m] if m not in models else []
        benches += [b] if b not in benches else []
        ev[(m, b)] = {**e, "model": m, "benchmark": b, "metrics": read_json(e["metrics_path"], f"metrics of {m} on {b}")}
    return ev, models, benches


def _render(context: dict) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    text = resources.files("pipeline").joinpath("templates/report.html").read_text(encoding="utf-8")
    return env.from_string(text).render(**context)


def _reduce_text(ev: dict) -> str:
    found = {str(get(e["metrics"], "settings", "video_reduce", default="mean")) for e in ev.values()}
    return " / ".join(sorted(found)) or "mean"


def _experiments(settings: dict, ev: dict, benches: list[str], columns: dict, trainings: list[dict],
                 styles: dict) -> dict:
    """The sections inferred from the models' settings (``experiments``, ``data_experiments``)."""
    logs = {str(t["model"]): t.get("log_path") for t in trainings}
    return {"ablation": ablation(settings, ev, benches, columns),
            "fraction": fraction_section(settings, ev, benches),
            "subsets": subset_section(settings, ev, benches, logs, styles),
            "elsewhere": elsewhere_section(settings, ev, benches),
            "logistic": logistic_section(settings, ev, benches)}


def build_report(
    out_html,
    *,
    evaluations: list[dict],
    datasets: list[dict],
    trainings: list[dict],
    provenance: dict,
    title: str,
    demo: bool,
    robustness: list[dict] = (),
    published: list[dict] = (),
    settings: dict | None = None,
    published_columns: dict | None = None,
    out_csv=None,
) -> dict:
    """Write the self-contained HTML report to ``out_html`` (and ``metrics.csv`` to ``out_csv``).

    ``evaluations``: ``{"model", "benchmark", "metrics_path", "scores_path"[, "in_domain",
    "incomplete"]}`` each (the outputs of ``pipeline.evaluation.benchmark.evaluate_model``); models and
    benchmarks appear in first-seen order. ``robustness``: ``{"model", "benchmark", "path"}``
    (``evaluate_robustness`` outputs). ``published``: ``pipeline.report.published.rows_for`` rows.
    ``datasets``: ``{"name", "stats_path", "checksums"}`` (checksums: a dict, or a JSON /
    ``sha256sum``-style file). ``trainings``: ``{"model", "log_path", "config"[, "adapter"]}``.
    ``provenance``: see :func:`provenance_context`. ``settings``: model -> its full settings
    (``model_config``; default: the trainings' ``config``), from which the experiment sections are
    inferred. ``published_columns``: benchmark -> published column (``published.columns_of``).
    An evaluation may carry ``shares_reals`` (its benchmark shares real videos with the model's
    training data): marked in the headline, counted in the mean, and a mean without them is shown.

    Returns the page's path and size, the seconds taken, the models and the benchmarks.
    """
    t0 = time.perf_counter()
    ev, models, benches = _evaluations(evaluations)
    models += [str(t["model"]) for t in trainings if str(t["model"]) not in models]
    styles = model_styles(models)
    bslugs, mslugs = unique_slugs(benches), unique_slugs(models)
    robust_entries = robust.load(list(robustness))
    data_rows, reasons = dataset_rows(datasets)
    auroc_rows = headline_rows(ev, models, benches, styles)
    if settings is None:
        settings = {str(t["model"]): t["config"] for t in trainings if isinstance(t.get("config"), dict)}
    settings = {m: settings[m] for m in models if m in settings}
    html = _render({
        "title": title, "demo": bool(demo), "demo_text": DEMO_TEXT, "dash": DASH, "benchmarks": benches,
        "incomplete": {b: e["incomplete"] for (_, b), e in ev.items() if e.get("incomplete")},
        "auroc_rows": auroc_rows, "shared_benches": shared_benchmarks(auroc_rows, benches),
        "experiments": _experiments(settings, ev, benches, dict(published_columns or {}), list(trainings), styles),
        "published_rows": published_rows(list(published), benches),
        "bench_sections": [bench_section(b, bslugs[b], models, ev, styles) for b in benches],
        "metric_labels": dict(METRIC_ROWS),
        "robust_sections": robust.sections(robust_entries, ev, bslugs, styles),
        "data_rows": data_rows, "reasons": reasons,
        "training_sections": [training_section(t, mslugs[str(t["model"])], styles[str(t["model"])]["color"])
                              for t in trainings],
        "provenance": provenance_context(provenance, datasets,
                                         [e["metrics"]["device"] for e in ev.values() if e["metrics"].get("device")]),
        "reduce_text": _reduce_text(ev),
    })
    out = Path(out_html)
    write_text(out, html)
    if out_csv is not None:
        write_metrics_csv(out_csv, list(ev.values()), robust_entries)
    return {"path": str(out), "bytes": len(html.encode("utf-8")), "seconds": time.perf_counter() - t0,
            "models": models, "benchmarks": benches}
