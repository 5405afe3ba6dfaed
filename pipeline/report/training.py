"""Training section: every loss term, the learning rate and validation AUROC from ``train_log.parquet``.

Epochs are numbered as in the log (its ``epoch`` column, from 0). The evaluated checkpoint is the one
the adapter's metadata names (``best_epoch``, ``selected_by``; ``selection`` says how, in words here), and
the selection rule's record says what its validation videos were checked against; when its validation AUROC is at or
below chance (0.5) the section carries a visible warning.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
import polars as pl
from markupsafe import Markup
from matplotlib.figure import Figure

from .figures import RC, fig_to_svg
from .util import DASH, dump_config, num, pct

MAX_TRAIN_POINTS = 1500  # plotted points per curve; longer logs: 500 bin means + min-max band
LOSS_TERMS = {"loss": "total loss", "ce": "cross-entropy", "align": "alignment", "unif": "uniformity"}


def _col(df: pl.DataFrame, name: str) -> np.ndarray | None:
    if name not in df.columns:
        return None
    return df.get_column(name).cast(pl.Float64, strict=False).to_numpy()


def _bins(x: np.ndarray, y: np.ndarray, nbins: int):
    """Mean x, mean y, min y and max y of ``nbins`` consecutive, equally sized groups of points."""
    edges = np.linspace(0, x.size, nbins + 1).astype(int)
    parts = [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    xs = np.array([x[a:b].mean() for a, b in parts])
    stats = np.array([(y[a:b].mean(), y[a:b].min(), y[a:b].max()) for a, b in parts])
    return xs, stats[:, 0], stats[:, 1], stats[:, 2]


def _series(df: pl.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Finite (x, y) points of two columns, sorted by x; empty when a column is missing."""
    xs, ys = _col(df, x), _col(df, y)
    if xs is None or ys is None:
        return np.empty(0), np.empty(0)
    ok = np.isfinite(xs) & np.isfinite(ys)
    order = np.argsort(xs[ok], kind="stable")
    return xs[ok][order], ys[ok][order]


def _split(log: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    if "kind" not in log.columns:
        return log, log.clear()
    return log.filter(pl.col("kind") == "train"), log.filter(pl.col("kind") == "val")


def _plot_term(ax, train, val, term: str, color: str) -> None:
    step, y = _series(train, "step", term)
    label = "train"
    if step.size > MAX_TRAIN_POINTS:
        step, y, lo, hi = _bins(step, y, MAX_TRAIN_POINTS // 3)
        ax.fill_between(step, lo, hi, color=color, alpha=0.2, lw=0)
        label = "train (bin mean, min-max)"
    ax.plot(step, y, lw=1.0, color=color, label=label)
    vstep, vy = _series(val, "step", term)
    if vy.size:
        ax.plot(vstep, vy, "o-", ms=3, lw=1.0, color="#333333", label="val")
    ax.set(xlabel="step", title=LOSS_TERMS[term])
    ax.legend()


def _plot_lr(ax, train, color: str) -> None:
    xs, ys = _series(train, "step", "lr")
    if xs.size > MAX_TRAIN_POINTS:  # a smooth schedule: every k-th point is enough
        keep = np.unique(np.r_[np.arange(0, xs.size, xs.size // MAX_TRAIN_POINTS + 1), xs.size - 1])
        xs, ys = xs[keep], ys[keep]
    ax.plot(xs, ys, lw=1.0, color=color)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax.set(xlabel="step", title="learning rate")


def _val_sets(log: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Per validation set rows (``kind`` ``val:<dataset/split>``, logged when a model has several)."""
    if "kind" not in log.columns:
        return {}
    kinds = sorted(k for k in log.get_column("kind").unique().drop_nulls().to_list() if k.startswith("val:"))
    return {k[4:]: log.filter(pl.col("kind") == k) for k in kinds}


def _plot_val(ax, val, color: str, chosen, sets: dict) -> None:
    for name, rows in sets.items():
        ep, va = _series(rows, "epoch", "video_auroc")
        ax.plot(ep, 100 * va, ":", lw=0.9, marker=".", label=f"{name} video AUROC")
    ep, fa = _series(val, "epoch", "frame_auroc")
    if fa.size:
        ax.plot(ep, 100 * fa, "s--", ms=2.5, lw=0.8, color="#777777", label="frame AUROC")
    ep, va = _series(val, "epoch", "video_auroc")
    if va.size:
        ax.plot(ep, 100 * va, "o-", ms=3, lw=1.0, color=color, label="video AUROC" + (" (mean)" if sets else ""))
    if chosen is not None and chosen in ep:
        y = 100 * va[list(ep).index(chosen)]
        ax.plot([chosen], [y], "*", ms=10, color="#222222", label=f"evaluated: epoch {chosen:g}")
    ax.axhline(50, ls=":", lw=0.8, color="#a33")
    ax.set(xlabel="epoch (as in the log)", ylabel="AUROC (%)", title="validation AUROC")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if ax.lines:
        ax.legend(loc="lower right")


def training_figure(prefix: str, log: pl.DataFrame, color: str, chosen) -> Markup:
    """One panel per loss term the log has (finite values), then learning rate, then val AUROC."""
    train, val = _split(log)
    terms = [t for t in LOSS_TERMS if (c := _col(train, t)) is not None and np.isfinite(c).any()]
    n = len(terms) + 2
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.4 * ncols, 2.6 * nrows))
        axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
        for ax, term in zip(axes, terms):
            _plot_term(ax, train, val, term, color)
        _plot_lr(axes[len(terms)], train, color)
        _plot_val(axes[len(terms) + 1], val, color, chosen, _val_sets(log))
        for ax in axes[n:]:
            ax.set_visible(False)
        fig.tight_layout()
        return fig_to_svg(fig, prefix)


def checkpoint(adapter_meta: dict | None, val: pl.DataFrame) -> dict:
    """The evaluated checkpoint: its epoch (log numbering), how it was selected and its val AUROC."""
    meta = adapter_meta or {}
    epoch = meta.get("best_epoch")
    if epoch is None:  # no metadata: the best validation video AUROC, as the default selection does
        ep, va = _series(val, "epoch", "video_auroc")
        epoch = float(ep[int(np.argmax(va))]) if va.size else None
        meta = {"selected_by": "video_auroc (best in the log; adapter metadata not available)"}
    ep, va = _series(val, "epoch", "video_auroc")
    auroc = float(va[list(ep).index(epoch)]) if epoch is not None and epoch in ep else None
    return {"epoch": epoch, "selected_by": meta.get("selected_by"), "val_video_auroc": auroc}


METRIC_WORDS = {"video_auroc": "video AUROC", "video_ap": "video AP", "frame_auroc": "frame AUROC"}


def selection_text(sel: dict | None) -> str | None:
    """How the evaluated epoch was chosen, in words, from the adapter's ``selection`` metadata."""
    if not sel or sel.get("epoch") is None:
        return None
    epoch = f"epoch {sel['epoch']:g} of {sel['epochs']} (numbered from 0)"
    if sel.get("metric") == "last":
        return f"{epoch}: the last one (select_metric: last)"
    sets = ", ".join(f"{s['name']} ({s['videos']} videos: {s['real']} real + {s['fake']} fake"
                     f"{'; a sample of at most ' + str(s['max_videos']) if s.get('max_videos') else ''})"
                     for s in sel.get("val_sets") or [])
    metric = METRIC_WORDS.get(sel["metric"], sel["metric"])
    tie = sel.get("tiebreak")
    ties = f"ties \u2192 {METRIC_WORDS.get(tie, tie)}, then the later epoch" if tie else "ties \u2192 the later epoch"
    return f"{epoch}, by {'the mean ' if len(sel.get('val_sets') or []) > 1 else ''}{metric} on {sets}; {ties}"


def disjointness_text(record: dict | None) -> str | None:
    """What the selection rule checked the validation videos against (``selection.json``)."""
    if not record:
        return None
    against = ", ".join(f"{'the training split' if c['role'] == 'training' else 'benchmark ' + c['role']} "
                        f"({c['dataset']}/{c['split']}, {c['videos']} videos)" for c in record.get("checked_against") or [])
    return (f"none of the validation videos is among: {against} (compared by "
            f"{', '.join(record.get('identities') or [])})")


def _summary_rows(train, val, chosen: dict, adapter: dict, selection: dict | None = None) -> list[tuple[str, str]]:
    ep = np.unique(_col(val, "epoch")[np.isfinite(_col(val, "epoch"))]) if _col(val, "epoch") is not None else []
    step, _ = _series(train, "step", "loss")
    rows = [("epochs in the log", f"{len(ep)} ({ep[0]:g}\u2013{ep[-1]:g})" if len(ep) else DASH),
            ("last step", num(int(step.max())) if step.size else DASH)]
    for term, name in LOSS_TERMS.items():
        _, y = _series(train, "step", term)
        if y.size:
            rows.append((f"final train {name}", f"{y[-1]:.4f}"))
    rows += [("evaluated checkpoint", _checkpoint_text(chosen, adapter)),
             ("its val video AUROC (%)", pct(chosen["val_video_auroc"]))]
    words = selection_text((adapter.get("meta") or {}).get("selection"))
    checked = disjointness_text(selection)
    return rows + ([("checkpoint selection", words)] if words else []) + (
        [("validation videos checked", checked)] if checked else [])


def _checkpoint_text(chosen: dict, adapter: dict) -> str:
    where = adapter.get("path") or "adapter"
    sha = f", sha256 {adapter['sha256'][:16]}\u2026" if adapter.get("sha256") else ""
    if chosen["epoch"] is None:
        return f"{where}{sha}"
    return f"{where}: epoch {chosen['epoch']:g} (selected by {chosen['selected_by']}){sha}"


def training_section(t: dict, slug: str, color: str) -> dict:
    """Context of one model's training subsection. ``t``: ``{model, log_path, config, adapter, selection}``
    (``adapter``: ``{path, sha256, meta}``, optional; ``selection``: the selection rule's record, optional)."""
    adapter = t.get("adapter") or {}
    base = {"model": str(t["model"]), "slug": slug, "config": dump_config(t.get("config")), "svg": Markup(""),
            "summary": [], "warning": None, "missing": None}
    log_path = t.get("log_path")
    if log_path is None or not Path(log_path).exists():
        return {**base, "missing": str(log_path)}
    log = pl.read_parquet(log_path)
    train, val = _split(log)
    chosen = checkpoint(adapter.get("meta"), val)
    warning = None
    if chosen["val_video_auroc"] is not None and chosen["val_video_auroc"] <= 0.5:
        warning = (f"The evaluated checkpoint's validation video AUROC is {pct(chosen['val_video_auroc'])} %, "
                   "at or below chance (50 %): this model has not learned to separate real from fake videos.")
    return {**base, "svg": training_figure(f"train-{slug}", log, color, chosen["epoch"]), "warning": warning,
            "summary": _summary_rows(train, val, chosen, adapter, t.get("selection")), "selected": chosen}
