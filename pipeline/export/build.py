"""One export: the model resolved as ``predict`` resolves it, written in a format, and checked on real face
crops against the pipeline's PyTorch model before it is handed over.

The reference is :func:`pipeline.evaluation.score_crops` on the CPU in float32 (the scoring of ``predict``
and of the evaluation); the exported files are scored by their own runtime (transformers in a fresh Python
that cannot import this package, or onnxruntime). Beyond :data:`BOUND` the export is refused and nothing is
left at ``--out``. The folder is written beside ``--out`` and moved there once checked; ``export.json``
records the check.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline.core import config as pconfig
from pipeline.core.files import write_json, write_text
from pipeline.core.markers import sha256_file
from pipeline.core.provenance import git_revision, package_versions
from .source import CheckCrops, ExportError, check_crops, workflow_config

FORMATS = ("hf", "onnx")
BOUND = 1e-4  # max |p(fake) exported - p(fake) PyTorch| on the check crops, float32
METADATA = "export.json"


def export_model(model: str | Path, fmt: str, out: str | Path, *, weights=None, config=None, crops=None,
                 max_crops: int = 512, bound: float = BOUND) -> dict:
    """Export ``model`` (a trained model's folder, as ``predict --model`` takes it) to ``out`` in ``fmt``
    (``hf`` or ``onnx``), check it, and return its metadata (also in ``out/export.json``)."""
    from pipeline.model import load_detector

    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    out = Path(out)
    _check_out(out)
    resolved, cfg, faces = _resolve(model, weights, config)
    check = check_crops(cfg, crops, max_crops)
    detector, meta = load_detector(resolved.adapter, resolved.weights, device="cpu")
    reference = _reference(detector, check)
    work = out.with_name(f".{out.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    try:
        spec, got, runtime = _write(fmt, detector, work, check)
        result = _compare(reference, got, check, runtime, bound)
        if result["max_abs_diff"] > bound:
            raise ExportError(f"the {fmt} export of {resolved.adapter} differs from the PyTorch model by up to "
                              f"{result['max_abs_diff']:.3g} in p(fake) on {check.source} (bound {bound:g}); it was "
                              "not written. Report this with the versions of torch, transformers, onnx and onnxruntime")
        if fmt == "hf":
            _write_card(work, resolved, faces, meta, cfg, spec, result)
        info = {"format": fmt, "model": resolved.name, "adapter": str(resolved.adapter),
                "adapter_sha256": sha256_file(resolved.adapter), "backbone": meta.get("backbone"),
                "backbone_folder": str(resolved.weights), "config": _text(resolved.config_path), "dtype": "float32",
                **spec, "check": result, "faces": faces, "video_reduce": resolved.video_reduce,
                "notes": resolved.notes, "code_version": git_revision(), "versions": _versions(fmt),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        write_json(work / METADATA, info, indent=2)
        shutil.rmtree(out, ignore_errors=True)
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return info


def _resolve(model, weights, config) -> tuple:
    """``(predict's ResolvedModel, the workflow config or None, the complete faces settings)``."""
    from pipeline.predict import PredictError, resolve_model

    try:
        resolved = resolve_model(model, weights=weights, config_path=config)
    except PredictError as err:
        raise ExportError(str(err)) from None
    default = pconfig.defaults("faces")  # what the faces stage uses where predict found no workflow settings
    crop = {**{k: default[k] for k in pconfig.FACES_CROP_KEYS}, **resolved.faces["crop"]}
    return resolved, workflow_config(resolved.config_path), {**resolved.faces, "crop": crop}


def _text(path) -> str | None:
    return None if path is None else str(path)


def _check_out(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier export."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / METADATA).is_file())):
        raise ExportError(f"--out {out} exists and is not an earlier export (no {METADATA} in it): give a new or "
                          "empty folder")


def _reference(detector, check: CheckCrops) -> list[float]:
    """The pipeline's p(fake) of the check crops: ``predict``'s scoring, on the CPU in float32."""
    from pipeline.evaluation import score_crops

    return score_crops(detector, check.crops, batch_size=32, device="cpu")


def _inputs(arrays: list, size: int) -> list[np.ndarray]:
    """Crops at the model's input size as the pipeline makes them (PIL bicubic), ``uint8 [S, S, 3]``."""
    from PIL import Image

    from pipeline.model import to_uint8

    return [to_uint8(Image.fromarray(a), size).permute(1, 2, 0).numpy() for a in arrays]


def _write(fmt: str, detector, work: Path, check: CheckCrops) -> tuple[dict, list[float], str]:
    """Write the format into ``work``; ``(its metadata, its p(fake) of the check crops, the runtime)``."""
    if fmt == "hf":
        from .hf import hf_scores, write_hf

        spec = write_hf(detector, work)
        got = hf_scores(work, check.arrays(), spec["model_class"], spec["l2_normalize_features"])
        return spec, got, "the model card's code (transformers + safetensors) in a fresh `python -I` without this package"
    _require_onnx()
    from .onnx import onnx_scores, write_onnx

    spec = write_onnx(detector, work)
    got = onnx_scores(work / spec["file"], _inputs(check.arrays(), detector.image_size))
    return spec, got, f"onnxruntime {importlib.metadata.version('onnxruntime')} (CPUExecutionProvider)"


def _compare(reference: list[float], got: list[float], check: CheckCrops, runtime: str, bound: float) -> dict:
    ref, new = np.asarray(reference, dtype=np.float64), np.asarray(got, dtype=np.float64)
    if ref.shape != new.shape or not np.isfinite(new).all():
        raise ExportError(f"the export gave {new.size} p(fake) values for {ref.size} crops (or non-finite ones)")
    diff = np.abs(ref - new)
    worst = int(diff.argmax())
    return {"crops": int(ref.size), "source": check.source, "runtime": runtime,
            "reference": "pipeline.evaluation.score_crops (the scoring of predict), CPU, float32",
            "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()), "worst_crop": check.names[worst],
            "bound": bound, "p_fake_range": [float(ref.min()), float(ref.max())]}


def _write_card(work: Path, resolved, faces: dict, meta: dict, cfg: dict | None, spec: dict, result: dict) -> None:
    from .card import model_card
    from .hf import snippet

    code = snippet(spec["model_class"], spec["l2_normalize_features"], "path/to/this/folder")
    write_text(work / "README.md", model_card(name=resolved.name, meta=meta, config=cfg, faces=faces,
                                              reduce=resolved.video_reduce, hf=spec, check=result, code=code))


def _versions(fmt: str) -> dict:
    return package_versions(("torch", "transformers", "safetensors", "numpy", "pillow")
                            + (("onnx", "onnxscript", "onnxruntime") if fmt == "onnx" else ()))


def _require_onnx() -> None:
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"--format onnx needs {', '.join(missing)}: pip install -e \".[export]\"")
