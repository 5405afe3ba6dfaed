"""The evaluation stage (``evaluate``, ``robustness`` rules): p(fake) of stored crops (:mod:`.scoring`),
metrics at frame and video level (:mod:`.metrics`), one benchmark's scores and metrics
(:mod:`.benchmark`) and its degraded copies (:mod:`.robustness`)."""

from pipeline import lazy_exports

_EXPORTS = {
    "evaluate_benchmark": "benchmark", "evaluate_model": "benchmark", "data_counts": "benchmark",
    "evaluate_robustness": "robustness", "Corruption": "robustness", "KINDS": "robustness",
    "DECREASING": "robustness", "AXIS_LABELS": "robustness", "derived_name": "robustness",
    "strength_text": "robustness",
    "binary_metrics": "metrics", "video_scores": "metrics", "evaluate_scores": "metrics",
    "bootstrap_ci": "metrics", "bootstrap_auroc": "metrics", "jsonable": "metrics",
    "predict_frames": "scoring", "predict_images": "scoring", "score_crops": "scoring",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
