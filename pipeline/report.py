"""Report stage: one self-contained ``report.html`` (README, Stages and outputs).

The page needs no network: figures are inline SVG made by matplotlib (text drawn as paths, so no font
is needed), CSS is inline, there is no JavaScript. Everything taken from inputs is escaped by Jinja's
autoescape; only the SVG produced here is inserted as markup.

Output is deterministic for given inputs (no timestamps; SVG ids from a fixed ``svg.hashsalt`` and a
per-figure prefix), so rebuilding an unchanged report gives the same bytes.

Stable hooks for tests and readers:
``#demo-banner`` (only for demo reports), ``table#auroc-table`` with ``td[data-model][data-benchmark]``
cells (``data-value`` = video AUROC in %) and ``td.mean[data-model][data-mean]``,
``section#bench-{slug}`` per benchmark holding ``figure.roc`` / ``figure.hist`` and
``table.per-method`` / ``table.metrics``, ``table#data-table`` (``tr[data-dataset]``),
``section#train-{slug}`` per trained model, ``section#provenance``.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from jinja2 import Environment, StrictUndefined, select_autoescape  # noqa: E402
from markupsafe import Markup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from .files import write_text  # noqa: E402
from .metrics import video_scores  # noqa: E402

DEMO_TEXT = "Demo on synthetic videos: these numbers say nothing about real deepfakes"
DASH = "\u2014"
MAX_TRAIN_POINTS = 1500  # plotted train-loss points per model; longer logs: 500 bin means + min-max band
MAX_CHECKSUM_ROWS = 500  # per dataset

_RC = {
    "svg.hashsalt": "lnclip-df-report",
    "svg.fonttype": "path",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "path.simplify": True,
}


# --------------------------------------------------------------------------------------------------
# Small helpers


def slug(name: str) -> str:
    """An HTML id fragment for ``name`` (letters, digits, ``_`` and ``-``; others become ``-``)."""
    s = re.sub(r"[^A-Za-z0-9_\-]+", "-", str(name)).strip("-")
    return s or "x"


def _unique_slugs(names: list[str], taken: set[str] | None = None) -> dict[str, str]:
    """``slug`` of each name, with ``-2``, ``-3``, ... appended where two names share a slug."""
    out, used = {}, set(taken or ())
    for n in names:
        base = s = slug(n)
        k = 2
        while s in used:
            s, k = f"{base}-{k}", k + 1
        used.add(s)
        out[n] = s
    return out


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x, digits: int = 2) -> str:
    """``x`` (a fraction) as a percentage string; missing/NaN -> an em dash."""
    return f"{100.0 * x:.{digits}f}" if _finite(x) else DASH


def _num(x) -> str:
    if isinstance(x, bool) or x is None:
        return DASH if x is None else str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.0f}" if x.is_integer() else f"{x:,.3g}"
    return str(x)


def _get(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def _read_json(path, what: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"report: {what} not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"report: {what} {path} is not valid JSON: {exc}") from exc


def _model_colors(models: list[str]) -> dict[str, str]:
    cmap = matplotlib.colormaps["tab10"]
    return {m: matplotlib.colors.to_hex(cmap(i % 10)) for i, m in enumerate(models)}


_REF_RE = re.compile(r'(\bid="|\bhref="#|url\(#)')


def fig_to_svg(fig: Figure, prefix: str) -> Markup:
    """Serialise ``fig`` as inline SVG markup (no XML prolog) with ids prefixed by ``prefix``.

    matplotlib names glyphs and clip paths with ids that repeat across figures; prefixing keeps the
    ids of the page unique.
    """
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    # Every id in the SVG is defined in it, so every definition and local reference is prefixed.
    svg = _REF_RE.sub(lambda m: f"{m.group(1)}{prefix}-", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    return Markup(svg)


# --------------------------------------------------------------------------------------------------
# Figures


def _roc_figure(bench: str, bslug: str, curves: list[dict]) -> Markup:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.2, 4.0))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="#999999")
        for c in curves:
            ax.plot(c["fpr"], c["tpr"], lw=1.5, color=c["color"], label=f"{c['model']} ({c['auroc']})", drawstyle="default")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.005)
        ax.set_aspect("equal")
        ax.set_xlabel("false positive rate (real called fake)")
        ax.set_ylabel("true positive rate (fake called fake)")
        ax.set_title(f"{bench}: video-level ROC")
        if curves:
            ax.legend(loc="lower right", title="model (AUROC %)", title_fontsize=7)
        else:
            ax.text(0.5, 0.5, "no curve: needs real and fake videos", ha="center", va="center")
        return fig_to_svg(fig, f"roc-{bslug}")


def _hist_figure(bench: str, bslug: str, hists: list[dict]) -> Markup:
    n = max(len(hists), 1)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    bins = np.linspace(0.0, 1.0, 26)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(3.0 * ncols, 2.3 * nrows))
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= len(hists):
                ax.set_visible(False)
                continue
            h = hists[k]
            for lab, name, color in ((0, "real", "#1f77b4"), (1, "fake", "#d62728")):
                v = h["p_fake"][h["label"] == lab]
                if v.size:
                    ax.hist(np.clip(v, 0, 1), bins=bins, histtype="stepfilled", alpha=0.35, color=color,
                            edgecolor=color, label=f"{name} ({v.size})")
            ax.axvline(0.5, ls=":", lw=0.8, color="#555555")
            ax.set_xlim(0, 1)
            ax.set_title(h["model"])
            ax.set_xlabel("video p(fake)")
            ax.set_ylabel("videos")
            ax.legend(loc="best")
        fig.tight_layout()
        return fig_to_svg(fig, f"hist-{bslug}")


def _bins(x: np.ndarray, y: np.ndarray, nbins: int):
    """Mean x, mean y, min y and max y of ``nbins`` consecutive, equally sized groups of points."""
    edges = np.linspace(0, x.size, nbins + 1).astype(int)
    parts = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    xs = np.array([x[a:b].mean() for a, b in parts])
    stats = np.array([(y[a:b].mean(), y[a:b].min(), y[a:b].max()) for a, b in parts])
    return xs, stats[:, 0], stats[:, 1], stats[:, 2]


def _col(df: pl.DataFrame, name: str) -> np.ndarray | None:
    if name not in df.columns:
        return None
    return df.get_column(name).cast(pl.Float64, strict=False).to_numpy()


def _training_figure(model: str, mslug: str, log: pl.DataFrame, color: str) -> tuple[Markup, dict]:
    kind = log.get_column("kind") if "kind" in log.columns else pl.Series([None] * log.height, dtype=pl.String)
    train = log.filter(kind == "train") if "kind" in log.columns else log
    val = log.filter(kind == "val") if "kind" in log.columns else log.clear()
    summary: dict = {"train_rows": train.height, "val_rows": val.height}
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(10.0, 2.8))
        ax_loss, ax_lr, ax_auc = fig.subplots(1, 3)
        # loss vs step
        step, loss = _col(train, "step"), _col(train, "loss")
        note = ""
        if step is not None and loss is not None and train.height:
            ok = np.isfinite(step) & np.isfinite(loss)
            step, loss = step[ok], loss[ok]
            order = np.argsort(step, kind="stable")
            step, loss = step[order], loss[order]
            if step.size > MAX_TRAIN_POINTS:
                # Long logs: mean of consecutive bins, with the bins' min-max as a band (keeps the SVG small).
                step, loss, lo, hi = _bins(step, loss, MAX_TRAIN_POINTS // 3)
                ax_loss.fill_between(step, lo, hi, color=color, alpha=0.2, lw=0)
                note = " (bin mean, min-max)"
            ax_loss.plot(step, loss, lw=1.0, color=color, label="train" + note)
            summary["steps"] = int(step.max()) if step.size else None
            summary["final_train_loss"] = float(loss[-1]) if loss.size else None
        vstep, vloss = _col(val, "step"), _col(val, "loss")
        if vstep is not None and vloss is not None and val.height and np.isfinite(vloss).any():
            ax_loss.plot(vstep, vloss, "o-", ms=3, lw=1.0, color="#333333", label="val")
        ax_loss.set_xlabel("step")
        ax_loss.set_ylabel("loss")
        ax_loss.set_title("loss")
        if ax_loss.lines:
            ax_loss.legend()
        # learning rate vs step
        lr = _col(train, "lr")
        step_all = _col(train, "step")
        if lr is not None and step_all is not None and train.height:
            ok = np.isfinite(lr) & np.isfinite(step_all)
            o = np.argsort(step_all[ok], kind="stable")
            xs, ys = step_all[ok][o], lr[ok][o]
            if xs.size > MAX_TRAIN_POINTS:  # a smooth schedule: every k-th point is enough
                keep = np.unique(np.r_[np.arange(0, xs.size, xs.size // MAX_TRAIN_POINTS + 1), xs.size - 1])
                xs, ys = xs[keep], ys[keep]
            ax_lr.plot(xs, ys, lw=1.0, color=color)
            ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax_lr.set_xlabel("step")
        ax_lr.set_ylabel("learning rate")
        ax_lr.set_title("learning rate")
        # val video AUROC vs epoch
        ep, auc = _col(val, "epoch"), _col(val, "video_auroc")
        if ep is not None and auc is not None and val.height:
            ok = np.isfinite(ep) & np.isfinite(auc)
            ep, auc = ep[ok], auc[ok]
            o = np.argsort(ep, kind="stable")
            ep, auc = ep[o], auc[o]
            fa = _col(val, "frame_auroc")
            if fa is not None and np.isfinite(fa).any():
                fok = np.isfinite(fa) & np.isfinite(_col(val, "epoch"))
                fo = np.argsort(_col(val, "epoch")[fok], kind="stable")
                ax_auc.plot(_col(val, "epoch")[fok][fo], 100 * fa[fok][fo], "s--", ms=2.5, lw=0.8, color="#777777",
                            label="frame AUROC")
            if auc.size:
                ax_auc.plot(ep, 100 * auc, "o-", ms=3, lw=1.0, color=color, label="video AUROC")
                b = int(np.argmax(auc))
                ax_auc.plot([ep[b]], [100 * auc[b]], "*", ms=9, color="#222222", label=f"best {100 * auc[b]:.2f} (epoch {ep[b]:g})")
                ax_auc.legend(loc="lower right")
                summary["best_val_video_auroc"] = float(auc[b])
                summary["best_epoch"] = float(ep[b])
                summary["epochs"] = int(np.unique(ep).size)
        ax_auc.set_xlabel("epoch")
        ax_auc.set_ylabel("video AUROC (%)")
        ax_auc.set_title("validation AUROC")
        ax_auc.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        fig.tight_layout()
        return fig_to_svg(fig, f"train-{mslug}"), summary


# --------------------------------------------------------------------------------------------------
# Sections


def _checksum_rows(checksums) -> tuple[list[tuple[str, str]], int]:
    """(item, checksum) rows from a dict or a file (JSON, or ``sha256sum``-style text)."""
    if checksums is None:
        return [], 0
    if isinstance(checksums, (str, Path)):
        p = Path(checksums)
        if not p.exists():
            return [("(file missing)", str(p))], 0
        text = p.read_text(encoding="utf-8", errors="replace")
        try:
            checksums = json.loads(text)
        except json.JSONDecodeError:
            rows = []
            for line in text.splitlines():
                parts = line.strip().split(None, 1)
                if len(parts) == 2:
                    rows.append((parts[1].lstrip("*"), parts[0]))
                elif parts:
                    rows.append((parts[0], ""))
            return rows[:MAX_CHECKSUM_ROWS], max(0, len(rows) - MAX_CHECKSUM_ROWS)
    rows: list[tuple[str, str]] = []

    def walk(obj, prefix=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{prefix}{k}" if not prefix else f"{prefix}/{k}")
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{prefix}[{i}]")
        else:
            rows.append((prefix or "(value)", str(obj)))

    walk(checksums)
    return rows[:MAX_CHECKSUM_ROWS], max(0, len(rows) - MAX_CHECKSUM_ROWS)


def _inline_counts(d) -> str:
    if not isinstance(d, dict) or not d:
        return DASH
    return " · ".join(f"{k} {_num(v)}" for k, v in d.items())


STD_FAILURES = ("no_face", "decode_error", "read_failed")


def _dataset_rows(datasets: list[dict]) -> tuple[list[dict], list[str]]:
    stats_list = []
    for ds in datasets:
        path = ds.get("stats_path")
        stats: dict = {}
        missing = None
        if path is not None:
            try:
                stats = _read_json(path, "stats.json")
            except FileNotFoundError:
                missing = str(path)
        stats_list.append((ds, stats if isinstance(stats, dict) else {}, missing))
    reasons = list(STD_FAILURES)
    for _, st, _ in stats_list:
        for r in (st.get("failures") or {}) if isinstance(st.get("failures"), dict) else {}:
            if r not in reasons:
                reasons.append(r)
    rows = []
    for ds, st, missing in stats_list:
        fails = st.get("failures") if isinstance(st.get("failures"), dict) else {}
        frames = st.get("frames_sampled")
        faces = st.get("faces")
        rate = f"{100.0 * faces / frames:.1f} %" if _finite(frames) and _finite(faces) and frames else DASH
        by_label = st.get("videos_by_label") if isinstance(st.get("videos_by_label"), dict) else {}
        rows.append(
            {
                "name": str(ds.get("name") or st.get("dataset") or "?"),
                "missing": missing,
                "videos": _num(st.get("videos")),
                "real": _num(by_label.get("real")),
                "fake": _num(by_label.get("fake")),
                "by_split": _inline_counts(st.get("videos_by_split")),
                "by_method": _inline_counts(st.get("videos_by_method")),
                "unreadable": _num(st.get("unreadable_videos")),
                "frames": _num(frames),
                "faces": _num(faces),
                "face_rate": rate,
                "failures": [_num(fails.get(r)) if r in fails else DASH for r in reasons],
                "without_crops": _num(st.get("videos_without_crops")),
                "incomplete": [c["message"] for c in st.get("completeness") or [] if not c.get("complete")],
            }
        )
    return rows, reasons


def _dump_config(cfg) -> str:
    if cfg is None:
        return ""
    if isinstance(cfg, str):
        return cfg
    try:
        import yaml

        class NoAliases(yaml.SafeDumper):  # shared objects (schema defaults) print in full, no &id001
            def ignore_aliases(self, data):
                return True

        return yaml.dump(cfg, Dumper=NoAliases, sort_keys=False, default_flow_style=False, allow_unicode=True,
                         width=100)
    except Exception:  # not YAML-representable: fall back to JSON
        return json.dumps(cfg, indent=2, default=str)


METRIC_COLUMNS = [
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


def _ci_text(ci) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_finite(v) for v in ci):
        return f"[{pct(ci[0])}, {pct(ci[1])}]"
    return ""


# --------------------------------------------------------------------------------------------------
# Public API


def build_report(
    out_html,
    *,
    evaluations: list[dict],
    datasets: list[dict],
    trainings: list[dict],
    provenance: dict,
    title: str,
    demo: bool,
) -> dict:
    """Write the self-contained HTML report to ``out_html``; return a small summary dict.

    ``evaluations``: ``{"model", "benchmark", "metrics_path", "scores_path"}`` each (the outputs of
    ``pipeline.evaluate.evaluate_model``); models and benchmarks appear in first-seen order.
    ``datasets``: ``{"name", "stats_path", "checksums"}`` (checksums: a dict, or a JSON /
    ``sha256sum``-style file). ``trainings``: ``{"model", "log_path", "config"}``.
    ``provenance``: ``{"config", "code_version", "packages", ...}`` (other keys are listed as-is).

    The headline table is the video-level AUROC (%) per model x benchmark, with the mean over the
    benchmarks a model was evaluated on (marked ``*`` when that is not all of them) and the 95 %
    bootstrap CI. The summary returned holds the seconds taken and the page's size in bytes.
    """
    t0 = time.perf_counter()
    models: list[str] = []
    benches: list[str] = []
    ev: dict[tuple[str, str], dict] = {}
    for e in evaluations:
        m, b = str(e["model"]), str(e["benchmark"])
        if (m, b) in ev:
            raise ValueError(f"report: two evaluations of model {m!r} on benchmark {b!r}")
        if m not in models:
            models.append(m)
        if b not in benches:
            benches.append(b)
        ev[(m, b)] = {**e, "metrics": _read_json(e["metrics_path"], f"metrics of {m} on {b}")}
    for t in trainings:
        if str(t["model"]) not in models:
            models.append(str(t["model"]))
    colors = _model_colors(models)
    bslugs = _unique_slugs(benches)
    mslugs = _unique_slugs(models)

    # Headline table
    auroc_rows = []
    for m in models:
        cells, vals = [], []
        for b in benches:
            e = ev.get((m, b))
            a = _get(e, "metrics", "video", "auroc") if e else None
            ci = _get(e, "metrics", "video", "auroc_ci") if e else None
            in_domain = bool(e and e.get("in_domain"))
            if _finite(a) and not in_domain:
                vals.append(a)
            cells.append(
                {
                    "benchmark": b,
                    "in_domain": in_domain,
                    "value": f"{100.0 * a:.6g}" if _finite(a) else "",
                    "text": pct(a) if e else "",
                    "ci": _ci_text(ci),
                    "missing": e is None,
                }
            )
        mean = float(np.mean(vals)) if vals else None
        cross = [b for b in benches if not (ev.get((m, b)) or {}).get("in_domain")]
        auroc_rows.append(
            {
                "model": m,
                "color": colors[m],
                "cells": cells,
                "mean_value": f"{100.0 * mean:.6g}" if mean is not None else "",
                "mean_text": pct(mean) + ("*" if mean is not None and len(vals) < len(cross) else ""),
                "mean_n": len(vals),
                "evaluated": any((m, b) in ev for b in benches),
            }
        )
    auroc_rows = [r for r in auroc_rows if r["evaluated"]]
    for j in range(len(benches)):
        col = [float(r["cells"][j]["value"]) for r in auroc_rows if r["cells"][j]["value"]]
        best = max(col) if col else None
        for r in auroc_rows:
            r["cells"][j]["best"] = len(col) > 1 and r["cells"][j]["value"] != "" and float(r["cells"][j]["value"]) == best

    # Per-benchmark sections
    bench_sections = []
    for b in benches:
        curves, hists, metric_rows = [], [], []
        methods: list[str] = []
        data_rows = []
        for m in models:
            e = ev.get((m, b))
            if e is None:
                continue
            met = e["metrics"]
            reduce = _get(met, "settings", "video_reduce", default="mean")
            sc = pl.read_parquet(e["scores_path"])
            sc = sc.select([c for c in ("dataset", "video_id", "label", "method", "p_fake") if c in sc.columns])
            vid = video_scores(sc, reduce=reduce) if sc.height else None
            if vid is not None and vid.get_column("label").n_unique() == 2:
                fpr, tpr, _ = roc_curve(vid.get_column("label").to_numpy(), vid.get_column("p_fake").to_numpy())
                curves.append({"model": m, "fpr": fpr, "tpr": tpr, "color": colors[m], "auroc": pct(_get(met, "video", "auroc"))})
            if vid is not None:
                hists.append({"model": m, "label": vid.get_column("label").to_numpy(), "p_fake": vid.get_column("p_fake").to_numpy()})
            for level in ("video", "frame"):
                d = met.get(level) or {}
                metric_rows.append(
                    {
                        "model": m,
                        "level": level,
                        "n": f"{_num(d.get('n'))} ({_num(d.get('n_real'))} / {_num(d.get('n_fake'))})",
                        "vals": [pct(d.get(k)) for k, _ in METRIC_COLUMNS],
                        "ci": _ci_text(d.get("auroc_ci")) if level == "video" else "",
                    }
                )
            for meth in met.get("per_method") or {}:
                if meth not in methods:
                    methods.append(meth)
            dc = met.get("data") or {}
            data_rows.append(
                {
                    "model": m,
                    "videos": _num(dc.get("videos")),
                    "scored": _num(dc.get("videos_scored", _get(met, "counts", "videos"))),
                    "without_crops": _num(dc.get("videos_without_crops")),
                    "frames_sampled": _num(dc.get("frames_sampled")),
                    "crops": _num(dc.get("crops")),
                    "frames_scored": _num(dc.get("frames_scored", _get(met, "counts", "frames"))),
                    "failures": _inline_counts(dc.get("failures")),
                }
            )
        bench_models = [m for m in models if (m, b) in ev]
        method_rows = []
        for meth in methods:
            cells = []
            for m in bench_models:
                pm = _get(ev[(m, b)], "metrics", "per_method", meth) or {}
                cells.append(
                    {
                        "model": m,
                        "video": pct(_get(pm, "video", "auroc")),
                        "frame": pct(_get(pm, "frame", "auroc")),
                        "n_fake": _num(_get(pm, "video", "n_fake")),
                    }
                )
            method_rows.append({"method": meth, "cells": cells})
        bench_sections.append(
            {
                "name": b,
                "slug": bslugs[b],
                "models": bench_models,
                "roc_svg": _roc_figure(b, bslugs[b], curves),
                "hist_svg": _hist_figure(b, bslugs[b], hists),
                "metric_rows": metric_rows,
                "method_rows": method_rows,
                "data_rows": data_rows,
            }
        )

    # Data statistics
    data_rows, reasons = _dataset_rows(datasets)

    # Training
    training_sections = []
    for t in trainings:
        m = str(t["model"])
        log_path = t.get("log_path")
        svg, summary, missing = Markup(""), {}, None
        if log_path is not None and Path(log_path).exists():
            svg, summary = _training_figure(m, mslugs[m], pl.read_parquet(log_path), colors[m])
        else:
            missing = str(log_path)
        training_sections.append(
            {
                "model": m,
                "slug": mslugs[m],
                "svg": svg,
                "missing": missing,
                "summary": [
                    ("epochs", _num(summary.get("epochs"))),
                    ("last step", _num(summary.get("steps"))),
                    ("final train loss", f"{summary['final_train_loss']:.4f}" if _finite(summary.get("final_train_loss")) else DASH),
                    ("best val video AUROC (%)", pct(summary.get("best_val_video_auroc"))),
                    ("best epoch", _num(summary.get("best_epoch"))),
                ],
                "config": _dump_config(t.get("config")),
            }
        )

    # Provenance
    prov = dict(provenance or {})
    packages = prov.pop("packages", None) or {}
    checksums = []
    for ds in datasets:
        rows, more = _checksum_rows(ds.get("checksums"))
        checksums.append({"name": str(ds.get("name")), "rows": rows, "more": more})
    provenance_ctx = {
        "config": _dump_config(prov.pop("config", None)),
        "code_version": str(prov.pop("code_version", "") or DASH),
        "packages": sorted((str(k), str(v)) for k, v in packages.items()) if isinstance(packages, dict) else [],
        "other": [(str(k), v if isinstance(v, str) else json.dumps(v, default=str, sort_keys=True)) for k, v in prov.items()],
        "checksums": checksums,
    }

    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(resources.files("pipeline").joinpath("templates/report.html").read_text(encoding="utf-8"))
    html = template.render(
        title=title,
        demo=bool(demo),
        demo_text=DEMO_TEXT,
        benchmarks=benches,
        incomplete={b: e["incomplete"] for (_, b), e in ev.items() if e.get("incomplete")},
        auroc_rows=auroc_rows,
        bench_sections=bench_sections,
        metric_columns=[label for _, label in METRIC_COLUMNS],
        data_rows=data_rows,
        reasons=reasons,
        training_sections=training_sections,
        provenance=provenance_ctx,
        dash=DASH,
        reduce_text=" / ".join(sorted({str(_get(e["metrics"], "settings", "video_reduce", default="mean")) for e in ev.values()}))
        or "mean",
    )
    out = Path(out_html)
    write_text(out, html)
    return {"path": str(out), "bytes": len(html.encode("utf-8")), "seconds": time.perf_counter() - t0,
            "models": models, "benchmarks": benches}


def _incomplete_copy(stats_path: str, split: str) -> str | None:
    """The index's message when the user's copy of a benchmark's split misses official videos."""
    if not Path(stats_path).is_file():
        return None
    checks = json.loads(Path(stats_path).read_text()).get("completeness") or []
    msgs = [c["message"] for c in checks if c.get("split") == split and not c.get("complete")]
    return "; ".join(msgs) or None


def report_from_workflow(out_html, config: dict, *, require_all: bool = True) -> dict:
    """Gather a config's workflow outputs (paths from ``pipeline.layout``) into :func:`build_report`.

    ``require_all=False`` (the command line's ``report`` verb) reports whatever has been computed so
    far and leaves out evaluations, training logs and statistics that do not exist yet.
    """
    from . import __version__
    from .config import model_config, report_params, used_datasets
    from .layout import from_config
    from .provenance import git_revision, package_versions

    L = from_config(config)
    models, benchmarks = list(config["models"]), list(config["benchmarks"])

    def have(path: str) -> bool:
        if Path(path).is_file():
            return True
        if require_all:
            raise FileNotFoundError(f"report: {path} does not exist; run the workflow to produce it")
        return False

    # A benchmark on the dataset a model trained on is in-domain: shown, marked, left out of its mean.
    trained_on = {m: model_config(config, m)["data"]["dataset"] for m in models}
    evaluations = [{"model": m, "benchmark": b, "metrics_path": L.metrics(m, b), "scores_path": L.scores(m, b),
                    "in_domain": config["benchmarks"][b]["dataset"] == trained_on[m],
                    "incomplete": _incomplete_copy(L.stats(config["benchmarks"][b]["dataset"]),
                                                   config["benchmarks"][b]["split"])}
                   for m in models for b in benchmarks if have(L.metrics(m, b)) and have(L.scores(m, b))]
    dataset_entries = [{"name": ds, "stats_path": L.stats(ds),
                        "checksums": L.dataset_marker(ds) if Path(L.dataset_marker(ds)).is_file() else {}}
                       for ds in used_datasets(config) if have(L.stats(ds))]
    trainings = [{"model": m, "log_path": L.train_log(m), "config": model_config(config, m)}
                 for m in models if have(L.train_log(m))]
    provenance = {"config": config, "code_version": git_revision(), "pipeline_version": __version__,
                  "packages": package_versions()}
    return build_report(out_html, evaluations=evaluations, datasets=dataset_entries, trainings=trainings,
                        provenance=provenance, **report_params(config))
