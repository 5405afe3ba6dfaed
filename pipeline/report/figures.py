"""The report's figures as inline SVG (matplotlib, text drawn as paths: no font or network needed).

Output is deterministic for given inputs (no dates; SVG ids from a fixed ``svg.hashsalt`` and a
per-figure prefix), so rebuilding an unchanged report gives the same bytes.
"""

from __future__ import annotations

import io
import math
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from markupsafe import Markup  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pipeline.evaluation import AXIS_LABELS, DECREASING
from .util import finite  # noqa: E402

RC = {
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
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 2)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
REAL_COLOR, FAKE_COLOR = "#1f77b4", "#d62728"


def model_styles(models: list[str]) -> dict[str, dict]:
    """Colour, line style and marker per model: curves stay apart even where they overlap."""
    cmap = matplotlib.colormaps["tab10"]
    return {m: {"color": matplotlib.colors.to_hex(cmap(i % 10)), "ls": LINESTYLES[i % len(LINESTYLES)],
                "marker": MARKERS[i % len(MARKERS)], "lw": max(2.4 - 0.35 * i, 1.0)}
            for i, m in enumerate(models)}


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
    svg = _REF_RE.sub(lambda m: f"{m.group(1)}{prefix}-", svg)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    return Markup(svg)


def roc_figure(bench: str, prefix: str, curves: list[dict], styles: dict) -> Markup:
    """Video-level ROC, one curve per model (``{model, fpr, tpr, auroc}``) in its own style."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(4.2, 4.0))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="#999999")
        for c in curves:
            st = styles[c["model"]]
            ax.plot(c["fpr"], c["tpr"], color=st["color"], ls=st["ls"], lw=st["lw"], marker=st["marker"],
                    ms=4, markevery=max(1, len(c["fpr"]) // 8), alpha=0.9, label=f"{c['model']} ({c['auroc']})")
        ax.set(xlim=(0, 1), ylim=(0, 1.005), aspect="equal", title=f"{bench}: video-level ROC",
               xlabel="false positive rate (real called fake)", ylabel="true positive rate (fake called fake)")
        if curves:
            ax.legend(loc="lower right", title="model (AUROC %)", title_fontsize=7)
        else:
            ax.text(0.5, 0.5, "no curve: needs real and fake videos", ha="center", va="center")
        return fig_to_svg(fig, prefix)


def score_bins(values: np.ndarray, n_min: int = 12, n_max: int = 40) -> np.ndarray:
    """Bin edges over the scores' own range (not 0-1), so scores bunched near one value still
    spread over many bins; about two bins per square root of the count, between ``n_min`` and ``n_max``."""
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if hi - lo < 1e-6:
        lo, hi = lo - 0.005, hi + 0.005
    n = int(np.clip(2 * math.sqrt(max(values.size, 1)), n_min, n_max))
    return np.linspace(lo, hi, n + 1)


def _hist_panel(ax, h: dict) -> None:
    edges = score_bins(h["p_fake"])
    for lab, name, color in ((0, "real", REAL_COLOR), (1, "fake", FAKE_COLOR)):
        v = h["p_fake"][h["label"] == lab]
        if v.size:
            ax.hist(v, bins=edges, histtype="stepfilled", alpha=0.35, color=color, edgecolor=color,
                    label=f"{name} ({v.size})")
    if edges[0] <= 0.5 <= edges[-1]:
        ax.axvline(0.5, ls=":", lw=0.8, color="#555555")
    ax.set_xlim(edges[0], edges[-1])
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    ax.set(title=h["model"], xlabel="video p(fake)", ylabel="videos")
    ax.legend(loc="best")


def hist_figure(prefix: str, hists: list[dict]) -> Markup:
    """Video score histograms of real and fake videos, one panel per model (``{model, label, p_fake}``)."""
    n = max(len(hists), 1)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.0 * ncols, 2.3 * nrows))
        for k, ax in enumerate(fig.subplots(nrows, ncols, squeeze=False).flat):
            if k < len(hists):
                _hist_panel(ax, hists[k])
            else:
                ax.set_visible(False)
        fig.tight_layout()
        return fig_to_svg(fig, prefix)


def _robust_panel(ax, kind: str, series: list[dict], styles: dict) -> None:
    for s in series:
        st = styles[s["model"]]
        x, y = np.asarray(s["strength"]), 100 * np.asarray(s["auroc"], dtype=float)
        lo, hi = (100 * np.asarray(s[k], dtype=float) for k in ("lo", "hi"))
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.fill_between(x[ok], lo[ok], hi[ok], color=st["color"], alpha=0.12, lw=0)
        ax.plot(x, y, color=st["color"], ls=st["ls"], marker=st["marker"], ms=4, lw=1.4, label=s["model"])
        if finite(s.get("clean")):
            ax.axhline(100 * s["clean"], color=st["color"], ls=":", lw=0.8)
    if DECREASING[kind]:
        ax.invert_xaxis()
    ax.set(title=kind, xlabel=AXIS_LABELS[kind] + " (stronger \u2192)", ylabel="video AUROC (%)")
    ax.legend(loc="best")


def robustness_figure(prefix: str, kinds: dict[str, list[dict]], styles: dict) -> Markup:
    """Video AUROC against strength, one panel per corruption kind, one line per model (band: 95 %
    bootstrap CI; dotted: the model's AUROC on the clean crops). ``kinds``: kind -> series
    ``{model, strength, auroc, lo, hi, clean}``."""
    n = max(len(kinds), 1)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(2.9 * ncols, 2.6 * nrows))
        axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
        for ax, (kind, series) in zip(axes, kinds.items()):
            _robust_panel(ax, kind, series, styles)
        for ax in axes[len(kinds):]:
            ax.set_visible(False)
        fig.tight_layout()
        return fig_to_svg(fig, prefix)


def _lines_panel(ax, panel: dict, styles: dict) -> None:
    for k, s in enumerate(panel["series"]):
        st = styles.get(s["label"]) or {"color": matplotlib.colormaps["tab10"](k % 10), "ls": LINESTYLES[k % 6],
                                        "marker": MARKERS[k % len(MARKERS)]}
        ax.plot(s["x"], s["y"], color=st["color"], ls=st["ls"], marker=st["marker"] if panel.get("markers", True)
                else None, ms=4, lw=1.4, label=s["label"])
    ax.set(title=panel["title"], xlabel=panel["xlabel"], ylabel=panel["ylabel"])
    if panel.get("integer_x"):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if panel["series"]:
        ax.legend(loc="best")


def lines_figure(prefix: str, panels: list[dict], styles: dict | None = None) -> Markup:
    """One panel per ``{title, xlabel, ylabel, series: [{label, x, y}], markers, integer_x}``, side by side; a
    series takes the style of the model it is named after when ``styles`` has one."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(3.8 * len(panels), 3.0))
        for ax, panel in zip(fig.subplots(1, len(panels), squeeze=False).flat, panels):
            _lines_panel(ax, panel, styles or {})
        fig.tight_layout()
        return fig_to_svg(fig, prefix)
