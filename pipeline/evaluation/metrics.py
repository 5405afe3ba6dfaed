"""Detection metrics at frame and video level.

Conventions
-----------
* The positive class is *fake* (label 1); the score is ``p_fake``.
* Threshold metrics (``acc``, ``balanced_acc``, ``f1``) predict *fake* when ``p_fake > 0.5``, as the
  reference does (argmax of the softmax with ties going to real). ``f1`` is the F1 of the fake class
  (the reference logs the macro F1; ``f1_macro`` holds that one too).
* ``ap`` is the average precision of the fake class. The reference's ``mAP`` (mean of the AP of the
  real class scored by ``1 - p_fake`` and the AP of the fake class) is ``ap_macro``.
* Video score: the mean (or median) of the video's frame scores; the video label is the label of its
  frames, which must agree.
* All ranking metrics come from scikit-learn (``roc_auc_score``, ``average_precision_score``,
  ``roc_curve``); only the EER and TPR@FPR read points off sklearn's ROC curve, as described in
  :func:`binary_metrics`.
* With only one class present, ranking metrics (AUROC, AP, EER, TPR@FPR) are NaN, not an exception;
  counts and the threshold-0.5 metrics are still given, and ``notes`` says why the others are NaN.
* ``sample_weight`` (optional) weights every sample in every metric, as scikit-learn does; the counts
  stay counts of samples.
* TPR at FPR *x* is only meaningful with at least ``1 / x`` real samples (with fewer, the only FPR
  below *x* is 0); such values are kept and flagged in ``notes``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    roc_auc_score,
    roc_curve,
)

NAN = float("nan")


# --------------------------------------------------------------------------------------------------
# Input checks


def _as_arrays(labels, p_fake) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(p_fake, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"labels and p_fake must be 1-D, got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise ValueError(f"labels ({y.size}) and p_fake ({s.size}) differ in length")
    if y.size:
        if y.dtype == object or not np.issubdtype(y.dtype, np.number) and y.dtype != bool:
            raise ValueError(f"labels must be 0 (real) / 1 (fake), got dtype {y.dtype}")
        bad = ~np.isin(y, (0, 1))
        if bad.any():
            raise ValueError(f"labels must be 0 (real) / 1 (fake); found {np.unique(y[bad])[:5].tolist()}")
        if not np.isfinite(s).all():
            raise ValueError(f"p_fake has {int((~np.isfinite(s)).sum())} non-finite value(s)")
    return y.astype(np.int64), s


# --------------------------------------------------------------------------------------------------
# EER and TPR@FPR read off sklearn's ROC curve


def _eer_from_roc(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    """Equal error rate on the piecewise-linear ROC curve, and the threshold of the nearest vertex.

    ``g = FPR - FNR = FPR + TPR - 1`` is non-decreasing along sklearn's ROC curve (from (0, 0) to
    (1, 1)); it goes from -1 to +1. The EER is the point where ``g = 0``: at the first vertex with
    ``g >= 0`` if ``g`` is exactly 0 there, else linearly interpolated on the segment that crosses zero
    (FPR and TPR are interpolated together, so FPR = FNR at that point). This is the same point as the
    reference's ``brentq(1 - x - interp(fpr, tpr)(x))`` but exact and defined on vertical segments.

    The threshold is that of the ROC vertex (computed without dropping intermediate points) with the
    smallest ``|FPR - FNR|`` (the first one on ties); a frame is called fake when ``p_fake >= thr``
    (sklearn's convention). It is ``inf`` when calling everything real is the closest vertex.
    """
    g = fpr + tpr - 1.0
    i = int(np.argmax(g >= 0))  # g[-1] == 1 so a crossing exists
    if g[i] == 0 or i == 0:
        eer = float(fpr[i])
    else:
        t = -g[i - 1] / (g[i] - g[i - 1])
        eer = float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
    j = int(np.argmin(np.abs(g)))
    return eer, float(thresholds[j])


def _tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """The highest TPR of an operating point (a threshold) whose FPR is at most ``target``.

    No interpolation: this is a TPR that some threshold actually achieves with FPR <= target.
    """
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


# --------------------------------------------------------------------------------------------------
# Public API

RANKING_KEYS = ("auroc", "ap", "ap_macro", "eer", "eer_threshold", "acc_at_eer", "balanced_acc_at_eer",
                "f1_at_eer", "tpr_at_fpr_1", "tpr_at_fpr_5")
THRESHOLD_KEYS = ("acc", "balanced_acc", "f1", "f1_macro")
FPR_TARGETS = {"tpr_at_fpr_1": 0.01, "tpr_at_fpr_5": 0.05}


def _weights(sample_weight, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"sample_weight must be {n} finite non-negative values, got shape {w.shape}")
    return w


def _threshold_metrics(y: np.ndarray, pred: np.ndarray, w: np.ndarray | None, suffix: str = "") -> dict:
    with warnings.catch_warnings():
        # One class present: balanced accuracy warns that y_pred has classes y_true lacks.
        warnings.simplefilter("ignore")
        out = {
            "acc" + suffix: float(accuracy_score(y, pred, sample_weight=w)),
            "balanced_acc" + suffix: float(balanced_accuracy_score(y, pred, sample_weight=w)),
            "f1" + suffix: float(f1_score(y, pred, pos_label=1, zero_division=0.0, sample_weight=w)),
        }
        if not suffix:
            out["f1_macro"] = float(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0.0,
                                             sample_weight=w))
    return out


def _ranking_metrics(y: np.ndarray, s: np.ndarray, w: np.ndarray | None) -> dict:
    out = {"auroc": float(roc_auc_score(y, s, sample_weight=w)),
           "ap": float(average_precision_score(y, s, pos_label=1, sample_weight=w))}
    ap_real = average_precision_score(1 - y, 1.0 - s, pos_label=1, sample_weight=w)
    out["ap_macro"] = float(0.5 * (out["ap"] + ap_real))
    fpr, tpr, thr = roc_curve(y, s, pos_label=1, drop_intermediate=False, sample_weight=w)
    out["eer"], out["eer_threshold"] = _eer_from_roc(fpr, tpr, thr)
    out.update(_threshold_metrics(y, (s >= out["eer_threshold"]).astype(np.int64), w, "_at_eer"))
    for key, target in FPR_TARGETS.items():
        out[key] = _tpr_at_fpr(fpr, tpr, target)
    return out


def _notes(n_real: int, n_fake: int) -> dict:
    """Why a metric is NaN or not to be trusted, by metric name."""
    if n_real == 0 or n_fake == 0:
        have = "no samples" if n_real == n_fake == 0 else (
            f"only fake samples ({n_fake})" if n_real == 0 else f"only real samples ({n_real})")
        why = f"{have}: needs both real and fake"
        return {k: why for k in (RANKING_KEYS if n_real + n_fake else RANKING_KEYS + THRESHOLD_KEYS)}
    notes = {}
    for key, target in FPR_TARGETS.items():
        if n_real * target < 1:
            notes[key] = (f"only {n_real} real samples: an FPR of {100 * target:g} % needs at least "
                          f"{math.ceil(1 / target)} (one false positive is {100 / n_real:.1f} %)")
    return notes


def binary_metrics(labels, p_fake, sample_weight=None) -> dict:
    """Metrics of fake-vs-real scores (labels 0 real / 1 fake, ``p_fake`` in [0, 1]).

    Keys: ``n, n_real, n_fake, auroc, ap, ap_macro, eer, eer_threshold, acc, balanced_acc, f1,
    f1_macro, acc_at_eer, balanced_acc_at_eer, f1_at_eer, tpr_at_fpr_1, tpr_at_fpr_5, notes``. Values
    are Python floats/ints; undefined values are NaN (one class present, or no samples), and
    ``notes`` (metric -> reason) says why, and flags a TPR@FPR computed from too few reals.

    * threshold 0.5: fake when ``p_fake > 0.5``;
    * at the EER threshold: fake when ``p_fake >= eer_threshold`` (see ``_eer_from_roc``);
    * ``tpr_at_fpr_1`` / ``tpr_at_fpr_5``: the best TPR of a threshold with FPR <= 1 % / 5 %.
    """
    y, s = _as_arrays(labels, p_fake)
    w = _weights(sample_weight, y.size)
    n, n_fake = int(y.size), int(y.sum())
    out: dict = {"n": n, "n_real": n - n_fake, "n_fake": n_fake}
    out.update({k: NAN for k in RANKING_KEYS + THRESHOLD_KEYS})
    if n:
        out.update(_threshold_metrics(y, (s > 0.5).astype(np.int64), w))
    if n_fake and n - n_fake:
        out.update(_ranking_metrics(y, s, w))
    out["notes"] = _notes(n - n_fake, n_fake)
    return out


def _resample_curves(y: np.ndarray, s: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative true and false positives per resample (rows) at each distinct score, highest first.

    ``idx`` holds the resampled item indices (one row per resample); a resample is the items'
    multiplicities, so its curve is the weighted ROC of the original items at the same thresholds.
    """
    order = np.argsort(-s, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(s[order])) + 1]  # first item of each distinct score
    counts = np.zeros((idx.shape[0], y.size))
    np.add.at(counts, (np.arange(idx.shape[0])[:, None], idx), 1.0)
    counts = counts[:, order]
    tp = np.cumsum(np.add.reduceat(counts * y[order], starts, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(counts * (1 - y[order]), starts, axis=1), axis=1)
    return tp, fp


def _curve_metrics(tp: np.ndarray, fp: np.ndarray) -> dict[str, np.ndarray]:
    """AUROC (trapezoids, ties half-counted) and AP (sum of recall steps x precision), as sklearn's
    ``roc_auc_score`` and ``average_precision_score`` define them, for every row at once."""
    pos, neg = tp[:, -1:], fp[:, -1:]
    tpr, fpr = np.c_[np.zeros(len(tp)), tp / pos], np.c_[np.zeros(len(fp)), fp / neg]
    auroc = (np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
    ap = (np.diff(tpr, axis=1) * precision).sum(axis=1)
    return {"auroc": auroc, "ap": ap}


def bootstrap_ci(labels, scores, n: int = 1000, seed: int = 0, alpha: float = 0.05, chunk: int = 200) -> dict:
    """Percentile bootstrap ``(1 - alpha)`` confidence intervals of the AUROC and the AP.

    Resamples the given items (videos) with replacement ``n`` times, ``numpy.random.default_rng(seed)``
    drawing the item indices of each resample in turn; both metrics are computed on the same
    resamples, and a resample with only one class is skipped. Each resample's AUROC and AP are
    scikit-learn's definitions computed for all resamples at once (the tests compare them with
    ``roc_auc_score`` and ``average_precision_score`` resample by resample). Returns
    ``{"auroc": (lo, hi), "ap": (lo, hi)}``, ``(nan, nan)`` when both classes are not present or
    ``n <= 0``.
    """
    y, s = _as_arrays(labels, scores)
    values: dict[str, list] = {"auroc": [], "ap": []}
    if n > 0 and y.size and y.min() != y.max():
        rng = np.random.default_rng(seed)
        for start in range(0, int(n), chunk):
            idx = rng.integers(0, y.size, size=(min(chunk, int(n) - start), y.size))
            tp, fp = _resample_curves(y, s, idx)
            ok = (tp[:, -1] > 0) & (fp[:, -1] > 0)
            for k, v in _curve_metrics(tp[ok], fp[ok]).items():
                values[k].extend(v.tolist())
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    return {k: tuple(float(x) for x in np.percentile(v, q)) if v else (NAN, NAN) for k, v in values.items()}


def bootstrap_auroc(labels, scores, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """The AUROC's interval of :func:`bootstrap_ci`."""
    return bootstrap_ci(labels, scores, n=n, seed=seed, alpha=alpha)["auroc"]


def _to_polars(frame_df) -> pl.DataFrame:
    if isinstance(frame_df, pl.DataFrame):
        return frame_df
    if hasattr(frame_df, "to_dict") and hasattr(frame_df, "columns"):  # pandas
        return pl.from_pandas(frame_df)
    raise TypeError(f"expected a polars or pandas DataFrame, got {type(frame_df).__name__}")


def video_scores(frame_df, reduce: str = "mean") -> pl.DataFrame:
    """One row per video: ``[dataset,] video_id, label, [method,] p_fake, n_frames``.

    ``p_fake`` is the mean (``reduce="mean"``, the reference) or the median of the video's frame
    scores. Videos are keyed by ``(dataset, video_id)`` when a ``dataset`` column is present; the
    result is sorted by that key. A video whose frames disagree on the label raises ``ValueError``
    naming it; a null ``p_fake`` or label raises too.
    """
    df = _to_polars(frame_df)
    missing = [c for c in ("video_id", "label", "p_fake") if c not in df.columns]
    if missing:
        raise ValueError(f"video_scores: missing column(s) {missing}; have {df.columns}")
    if reduce not in ("mean", "median"):
        raise ValueError(f"video_scores: reduce must be 'mean' or 'median', got {reduce!r}")
    for col in ("label", "p_fake"):
        nulls = df.get_column(col).null_count()
        if nulls:
            raise ValueError(f"video_scores: {nulls} frame(s) have a null {col}")
    keys = ["dataset", "video_id"] if "dataset" in df.columns else ["video_id"]
    agg_p = pl.col("p_fake").cast(pl.Float64)
    aggs = [
        pl.col("label").first().alias("label"),
        pl.col("label").n_unique().alias("_n_labels"),
        (agg_p.mean() if reduce == "mean" else agg_p.median()).alias("p_fake"),
        pl.len().alias("n_frames"),
    ]
    if "method" in df.columns:
        aggs.insert(1, pl.col("method").first().alias("method"))
    out = df.group_by(keys, maintain_order=True).agg(aggs)
    bad = out.filter(pl.col("_n_labels") > 1)
    if bad.height:
        names = ["/".join(str(v) for v in row) for row in bad.select(keys).rows()]
        raise ValueError(
            f"video_scores: frames of {bad.height} video(s) disagree on the label: {names[:10]}"
        )
    cols = keys + ["label"] + (["method"] if "method" in df.columns else []) + ["p_fake", "n_frames"]
    return out.select(cols).with_columns(pl.col("n_frames").cast(pl.Int64)).sort(keys)


def _labels_scores(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return df.get_column("label").to_numpy(), df.get_column("p_fake").to_numpy()


def _method_col(df: pl.DataFrame) -> pl.DataFrame:
    if "method" not in df.columns:
        return df.with_columns(pl.lit(None, dtype=pl.String).alias("method"))
    return df


def _levels(frames: pl.DataFrame, videos: pl.DataFrame, bootstrap: int, seed: int) -> dict:
    """Frame and video metrics of one subset, with the video AUROC's and AP's bootstrap CIs."""
    out = {"frame": binary_metrics(*_labels_scores(frames)), "video": binary_metrics(*_labels_scores(videos))}
    ci = bootstrap_ci(*_labels_scores(videos), n=bootstrap, seed=seed)
    out["video"]["auroc_ci"], out["video"]["ap_ci"] = list(ci["auroc"]), list(ci["ap"])
    return out


def _by_method(t: pl.DataFrame) -> dict:
    if t.height == 0:
        return {}
    return {str(k): int(v) for k, v in t.group_by("method").len().sort("method").rows()}


def _counts(df: pl.DataFrame, vid: pl.DataFrame) -> dict:
    return {
        "frames": int(df.height),
        "videos": int(vid.height),
        "real_videos": int((vid.get_column("label") == 0).sum()),
        "fake_videos": int((vid.get_column("label") == 1).sum()),
        "frames_by_method": _by_method(df),
        "videos_by_method": _by_method(vid),
        "frames_per_video_min": int(vid.get_column("n_frames").min()) if vid.height else 0,
        "frames_per_video_max": int(vid.get_column("n_frames").max()) if vid.height else 0,
    }


def evaluate_scores(scores_df, *, video_reduce: str = "mean", bootstrap: int = 1000, seed: int = 0) -> dict:
    """All metrics of one model on one benchmark from its frame scores (a SCORES table).

    Returns ``{"frame": ..., "video": ..., "per_method": {m: {"frame", "video"}}, "counts": ...,
    "settings": ..., ["per_dataset": ...]}``.

    Per method: that method's fake frames/videos against **all** real ones of the benchmark (the
    usual FF++ per-method protocol), so every method's AUROC uses the same negatives. Fakes with a
    null method are grouped under ``"unknown"``. ``per_dataset`` appears only when the scores pool
    several datasets. Every ``video`` entry (overall, per method, per dataset) holds ``auroc_ci`` and
    ``ap_ci``: ``bootstrap``-resample percentile 95 % intervals over videos, seeded by ``seed``
    (``[nan, nan]`` when undefined or ``bootstrap == 0``).

    The result holds only dicts, lists, str, int and float (NaN where undefined); pass it through
    :func:`jsonable` to write strict JSON.
    """
    df = _method_col(_to_polars(scores_df)).with_columns(pl.col("method").fill_null("unknown"))
    vid = video_scores(df, reduce=video_reduce)
    out = _levels(df, vid, bootstrap, seed)
    fakes = sorted(set(df.filter(pl.col("label") == 1).get_column("method").to_list()))
    sel = {m: (pl.col("label") == 0) | (pl.col("method") == m) for m in fakes}
    out["per_method"] = {m: _levels(df.filter(sel[m]), vid.filter(sel[m]), bootstrap, seed) for m in fakes}
    if "dataset" in df.columns and df.get_column("dataset").n_unique() > 1:
        names = sorted(df.get_column("dataset").unique().drop_nulls().to_list())
        out["per_dataset"] = {str(d): _levels(df.filter(pl.col("dataset") == d), vid.filter(pl.col("dataset") == d),
                                              bootstrap, seed) for d in names}
    out["counts"] = _counts(df, vid)
    out["settings"] = {"video_reduce": video_reduce, "bootstrap": int(bootstrap), "seed": int(seed), "alpha": 0.05}
    return out


def jsonable(obj):
    """``obj`` with NaN/inf floats replaced by ``None`` and numpy scalars/tuples made plain (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
