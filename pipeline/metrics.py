"""Detection metrics at frame and video level (the protocol of DeepfakeBench and LNCLIP-DF).

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
  counts and the threshold-0.5 metrics are still given.
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


def binary_metrics(labels, p_fake) -> dict:
    """Metrics of fake-vs-real scores (labels 0 real / 1 fake, ``p_fake`` in [0, 1]).

    Keys: ``n, n_real, n_fake, auroc, ap, ap_macro, eer, eer_threshold, acc, balanced_acc, f1,
    f1_macro, acc_at_eer, balanced_acc_at_eer, f1_at_eer, tpr_at_fpr_1, tpr_at_fpr_5``. Values are
    Python floats/ints; undefined values are NaN (one class present, or no samples).

    * threshold 0.5: fake when ``p_fake > 0.5``;
    * at the EER threshold: fake when ``p_fake >= eer_threshold`` (see ``_eer_from_roc``);
    * ``tpr_at_fpr_1`` / ``tpr_at_fpr_5``: the best TPR of a threshold with FPR <= 1 % / 5 %.
    """
    y, s = _as_arrays(labels, p_fake)
    n = int(y.size)
    n_fake = int(y.sum())
    n_real = n - n_fake
    out: dict = {"n": n, "n_real": n_real, "n_fake": n_fake}
    keys = (
        "auroc ap ap_macro eer eer_threshold acc balanced_acc f1 f1_macro acc_at_eer "
        "balanced_acc_at_eer f1_at_eer tpr_at_fpr_1 tpr_at_fpr_5"
    ).split()
    out.update({k: NAN for k in keys})
    if n == 0:
        return out

    with warnings.catch_warnings():
        # One class present: balanced accuracy warns that y_pred has classes y_true lacks.
        warnings.simplefilter("ignore")
        pred = (s > 0.5).astype(np.int64)
        out["acc"] = float(accuracy_score(y, pred))
        out["balanced_acc"] = float(balanced_accuracy_score(y, pred))
        out["f1"] = float(f1_score(y, pred, pos_label=1, zero_division=0.0))
        out["f1_macro"] = float(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0.0))

    if n_real == 0 or n_fake == 0:
        return out

    out["auroc"] = float(roc_auc_score(y, s))
    out["ap"] = float(average_precision_score(y, s, pos_label=1))
    out["ap_macro"] = float(0.5 * (out["ap"] + average_precision_score(1 - y, 1.0 - s, pos_label=1)))
    fpr, tpr, thr = roc_curve(y, s, pos_label=1, drop_intermediate=False)
    eer, eer_thr = _eer_from_roc(fpr, tpr, thr)
    out["eer"] = eer
    out["eer_threshold"] = eer_thr
    pred_eer = (s >= eer_thr).astype(np.int64)
    out["acc_at_eer"] = float(accuracy_score(y, pred_eer))
    out["balanced_acc_at_eer"] = float(balanced_accuracy_score(y, pred_eer))
    out["f1_at_eer"] = float(f1_score(y, pred_eer, pos_label=1, zero_division=0.0))
    out["tpr_at_fpr_1"] = _tpr_at_fpr(fpr, tpr, 0.01)
    out["tpr_at_fpr_5"] = _tpr_at_fpr(fpr, tpr, 0.05)
    return out


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


def bootstrap_auroc(labels, scores, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` confidence interval of the AUROC.

    Resamples the given items (videos) with replacement ``n`` times using
    ``numpy.random.default_rng(seed)``; a resample with only one class is skipped. Returns
    ``(nan, nan)`` when both classes are not present or ``n <= 0``.
    """
    y, s = _as_arrays(labels, scores)
    if n <= 0 or y.size == 0 or y.min() == y.max():
        return (NAN, NAN)
    rng = np.random.default_rng(seed)
    m = y.size
    aucs = []
    for _ in range(int(n)):
        idx = rng.integers(0, m, size=m)
        yy = y[idx]
        if yy.min() == yy.max():
            continue
        aucs.append(roc_auc_score(yy, s[idx]))
    if not aucs:
        return (NAN, NAN)
    lo, hi = np.percentile(np.asarray(aucs), [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(lo), float(hi))


def _labels_scores(df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return df.get_column("label").to_numpy(), df.get_column("p_fake").to_numpy()


def _method_col(df: pl.DataFrame) -> pl.DataFrame:
    if "method" not in df.columns:
        return df.with_columns(pl.lit(None, dtype=pl.String).alias("method"))
    return df


def evaluate_scores(scores_df, *, video_reduce: str = "mean", bootstrap: int = 1000, seed: int = 0) -> dict:
    """All metrics of one model on one benchmark from its frame scores (a SCORES table).

    Returns ``{"frame": ..., "video": ... (+ "auroc_ci"), "per_method": {m: {"frame", "video"}},
    "counts": ..., ["per_dataset": ...]}``.

    Per method: that method's fake frames/videos against **all** real ones of the benchmark (the
    usual FF++ per-method protocol), so every method's AUROC uses the same negatives. Fakes with a
    null method are grouped under ``"unknown"``. ``per_dataset`` appears only when the scores pool
    several datasets. The video AUROC's ``auroc_ci`` is a ``bootstrap``-resample percentile 95 %
    interval over videos (``[nan, nan]`` when undefined or ``bootstrap == 0``).

    The result holds only dicts, lists, str, int and float (NaN where undefined); pass it through
    :func:`jsonable` to write strict JSON.
    """
    df = _method_col(_to_polars(scores_df))
    df = df.with_columns(pl.col("method").fill_null("unknown"))
    vid = video_scores(df, reduce=video_reduce)

    def both(frames: pl.DataFrame, videos: pl.DataFrame) -> dict:
        return {"frame": binary_metrics(*_labels_scores(frames)), "video": binary_metrics(*_labels_scores(videos))}

    out = both(df, vid)
    lo, hi = bootstrap_auroc(*_labels_scores(vid), n=bootstrap, seed=seed)
    out["video"]["auroc_ci"] = [lo, hi]

    fake_methods = sorted(set(df.filter(pl.col("label") == 1).get_column("method").to_list()))
    per_method = {}
    for m in fake_methods:
        sel = (pl.col("label") == 0) | (pl.col("method") == m)
        per_method[m] = both(df.filter(sel), vid.filter(sel))
    out["per_method"] = per_method

    if "dataset" in df.columns and df.get_column("dataset").n_unique() > 1:
        out["per_dataset"] = {
            str(d): both(df.filter(pl.col("dataset") == d), vid.filter(pl.col("dataset") == d))
            for d in sorted(df.get_column("dataset").unique().drop_nulls().to_list())
        }

    def by_method(t: pl.DataFrame) -> dict:
        if t.height == 0:
            return {}
        g = t.group_by("method").len().sort("method")
        return {str(k): int(v) for k, v in g.rows()}

    out["counts"] = {
        "frames": int(df.height),
        "videos": int(vid.height),
        "real_videos": int((vid.get_column("label") == 0).sum()),
        "fake_videos": int((vid.get_column("label") == 1).sum()),
        "frames_by_method": by_method(df),
        "videos_by_method": by_method(vid),
        "frames_per_video_min": int(vid.get_column("n_frames").min()) if vid.height else 0,
        "frames_per_video_max": int(vid.get_column("n_frames").max()) if vid.height else 0,
    }
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
