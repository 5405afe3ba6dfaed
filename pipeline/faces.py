"""Face crops: the DeepfakeBench crop (DATA.md "Face crops", DATA_REFERENCE.md §1).

Per sampled frame: detect all faces, keep the largest box, fit the 68 iBUG landmarks in it, take
the five points ``ALIGN_POINTS = (37, 44, 30, 49, 55)``, fit a least-squares similarity transform
(no reflection) onto the ArcFace template (+8 on x, margin 1.3, 256 px) and warp bilinearly with a
black border. A frame without a face is skipped and recorded with ``reason = "no_face"``.

Layers, each usable without Snakemake:

* geometry: :func:`template_points`, :func:`similarity_matrix`, :func:`alignment_matrix`,
  :func:`align_crop` (stable public API);
* detection backends: :class:`Face`, :class:`FaceBackend`, :class:`DlibBackend`,
  :func:`make_backend` (a registry, so another backend such as face-alignment can slot in);
* one video: :func:`extract_video` -> one record per sampled frame (+ the PNG crop);
* one chunk: :func:`extract_chunk` -> a WebDataset tar shard and its per-shard Parquet
  (``tables.FRAMES``).
"""

from __future__ import annotations

import abc
import contextlib
import importlib.util
import json
import logging
import multiprocessing
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import polars as pl

from . import tables
from .video import probe, read_frames, sample_indices

log = logging.getLogger("pipeline.faces")

# The 5-point ArcFace/insightface template for 112x112 crops (DATA_REFERENCE.md §1.5).
ARCFACE_112 = np.array(
    [
        [30.2946, 51.6963],
        [65.5318, 51.5014],
        [48.0252, 71.7366],
        [33.5493, 92.3655],
        [62.7299, 92.2041],
    ],
    dtype=np.float64,
)

# DeepfakeBench's five 68-point indices (0-based): upper eyelids, nose tip, outer upper/lower lip
# points next to the mouth corners. Not eye centres / mouth corners, but they define the crop.
ALIGN_POINTS = (37, 44, 30, 49, 55)

PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def template_points(size: int = 256, scale: float = 1.3) -> np.ndarray:
    """The five destination points (5x2 float64) of the DeepfakeBench crop at ``size`` px.

    Closed form of DeepfakeBench's ``img_align_crop``: ``x' = ((x+8)/112 + (scale-1)/2)/scale *
    size``, ``y' = (y/112 + (scale-1)/2)/scale * size`` applied to the ArcFace 112 template.
    At 256 px and margin 1.3: (96.870,120.433) (158.825,120.090) (128.044,155.669)
    (102.592,191.939) (153.899,191.656).
    """
    pts = ARCFACE_112.copy()
    pts[:, 0] += 8.0
    margin = (scale - 1.0) / 2.0
    return (pts / 112.0 + margin) / scale * size


def similarity_matrix(src, dst) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation; no reflection).

    Returns the 2x3 matrix ``M`` minimising ``sum |M @ [src_i, 1] - dst_i|^2`` (Umeyama 1991,
    the estimator behind ``skimage.transform.SimilarityTransform``). ``src`` and ``dst`` are Nx2,
    N >= 2. Raises ``ValueError`` for degenerate input (all source points identical).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"similarity_matrix needs two Nx2 arrays (N>=2), got {src.shape}, {dst.shape}")
    mu_s = src.mean(axis=0)
    mu_d = dst.mean(axis=0)
    s0 = src - mu_s
    d0 = dst - mu_d
    var_s = (s0**2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("similarity_matrix: source points are all identical")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # would be a reflection: flip the weakest axis
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    c = (sig * d).sum() / var_s
    m = np.empty((2, 3), dtype=np.float64)
    m[:, :2] = c * rot
    m[:, 2] = mu_d - c * rot @ mu_s
    return m


def alignment_matrix(points5, size: int = 256, scale: float = 1.3) -> np.ndarray:
    """2x3 matrix mapping the five alignment points (source frame) onto the crop template."""
    return similarity_matrix(
        np.asarray(points5, dtype=np.float64).reshape(5, 2), template_points(size, scale)
    )


def align_points(landmarks68) -> np.ndarray:
    """The five alignment points (5x2 float64) taken from 68 iBUG landmarks (``ALIGN_POINTS``)."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] < 68:
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    return lm[list(ALIGN_POINTS)]


def align_crop(
    image_rgb: np.ndarray, landmarks68: np.ndarray, size: int = 256, scale: float = 1.3
) -> np.ndarray:
    """The DeepfakeBench face crop: ``size``x``size``x3 ``uint8``.

    Takes the five ``ALIGN_POINTS`` from the 68 landmarks (source-frame coordinates), fits the
    least-squares similarity onto :func:`template_points` and warps with ``cv2.warpAffine``
    (bilinear, constant black border). Stable public API.
    """
    m = alignment_matrix(align_points(landmarks68), size, scale)
    img = np.ascontiguousarray(image_rgb)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.warpAffine(
        img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def transform_points(m: np.ndarray, points) -> np.ndarray:
    """Apply a 2x3 affine matrix to Nx2 points."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ np.asarray(m, dtype=np.float64)[:, :2].T + np.asarray(m, dtype=np.float64)[:, 2]


def encode_png(image_rgb: np.ndarray) -> bytes:
    """Lossless PNG bytes of an RGB ``uint8`` image (stored with normal colours)."""
    ok, buf = cv2.imencode(
        ".png", cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR), PNG_PARAMS
    )
    if not ok:  # pragma: no cover - cv2 fails only on invalid images
        raise RuntimeError("cv2.imencode('.png') failed")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """RGB ``uint8`` image from PNG bytes written by :func:`encode_png`."""
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a decodable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------


@dataclass
class Face:
    """One detected face: box ``(x0, y0, x1, y1)`` in frame pixels, detector score, landmarks."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None  # (68, 2) float, frame coordinates

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


class FaceBackend(abc.ABC):
    """A face detector + 68-point landmark model.

    Subclasses implement :meth:`detect` (all faces, boxes and scores; landmarks may be None) and
    :meth:`landmarks` (68 iBUG points for one face). :meth:`largest_face` is the DeepfakeBench
    choice of face: the largest box by area, ties broken by detection order.
    """

    name = "abstract"

    @abc.abstractmethod
    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """All faces in an RGB ``uint8`` frame."""

    @abc.abstractmethod
    def landmarks(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        """The 68 iBUG landmarks (68x2 float, frame coordinates) of ``face``."""

    def largest_face(self, image_rgb: np.ndarray) -> tuple[Face | None, int]:
        """``(face, n_faces)``: the largest detected face with its landmarks filled, or None."""
        faces = self.detect(image_rgb)
        if not faces:
            return None, 0
        best = max(faces, key=lambda f: f.area)  # max keeps the first of equal areas
        if best.landmarks is None:
            best.landmarks = np.asarray(self.landmarks(image_rgb, best), dtype=np.float64)
        return best, len(faces)


def dlib_predictor_path() -> Path:
    """Path of dlib's 68-point shape predictor shipped in ``face-recognition-models``.

    The package is located without importing it (its ``__init__`` needs ``pkg_resources``).
    Raises ``FileNotFoundError`` naming the package to install when it is absent.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / "models" / "shape_predictor_68_face_landmarks.dat"
        if path.is_file():
            return path
    raise FileNotFoundError(
        "dlib's 68-point landmark model (shape_predictor_68_face_landmarks.dat) was not found: "
        "install the 'face-recognition-models' package (pip install face-recognition-models)"
    )


class DlibBackend(FaceBackend):
    """dlib HOG frontal face detector + 68-point shape predictor (DeepfakeBench's tools).

    ``upsample`` is the detector's upsampling count (DeepfakeBench: 1). The models are loaded
    once per instance; an instance is not shared between processes.
    """

    name = "dlib"

    def __init__(self, upsample: int = 1, predictor_path: str | os.PathLike | None = None):
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the dlib face backend needs dlib: install 'dlib-bin' (or 'dlib')") from exc
        self._dlib = dlib
        self.upsample = int(upsample)
        self.predictor_path = Path(predictor_path) if predictor_path else dlib_predictor_path()
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.predictor_path))

    @staticmethod
    def _prepare(image_rgb: np.ndarray) -> np.ndarray:
        img = np.ascontiguousarray(image_rgb)
        if img.dtype != np.uint8:
            img = np.clip(img, 0, 255).astype(np.uint8)
        return img

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        img = self._prepare(image_rgb)
        rects, scores, _ = self._detector.run(img, self.upsample, 0)
        return [
            Face(box=(float(r.left()), float(r.top()), float(r.right()), float(r.bottom())), score=float(s))
            for r, s in zip(rects, scores)
        ]

    def landmarks(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        img = self._prepare(image_rgb)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        shape = self._predictor(img, self._dlib.rectangle(x0, y0, x1, y1))
        return np.array(
            [[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float64
        )


BACKENDS: dict[str, Callable[..., FaceBackend]] = {"dlib": DlibBackend}


def make_backend(name: str, **options) -> FaceBackend:
    """Build a face backend by name (``"dlib"``); ``options`` go to its constructor."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"unknown face backend {name!r}; known backends: {', '.join(sorted(BACKENDS))}"
        ) from None
    return factory(**options)


# --------------------------------------------------------------------------------------------
# One video
# --------------------------------------------------------------------------------------------

_VIDEO_FIELDS = ("dataset", "video_id", "split", "label", "method", "source_id")


def _record(
    video: dict, frame_idx, reason, key=None, face: Face | None = None, n_faces=None, points5=None
) -> dict:
    rec = {f: video.get(f) for f in _VIDEO_FIELDS}
    box = face.box if face is not None else (None, None, None, None)
    rec.update(
        frame_idx=None if frame_idx is None else int(frame_idx),
        key=key,
        reason=reason,
        n_faces=n_faces,
        det_score=float(face.score) if face is not None else None,
        box_x0=box[0],
        box_y0=box[1],
        box_x1=box[2],
        box_y1=box[3],
        points5=points5,
    )
    return rec


def extract_video(
    video: dict, backend: FaceBackend, num_frames: int = 32, size: int = 256, scale: float = 1.3
) -> list[tuple[dict, bytes | None]]:
    """Crop the faces of one video (a row of ``videos.parquet`` as a dict).

    Returns one ``(record, png)`` per sampled frame, in frame order. ``record`` holds the
    ``tables.FRAMES`` columns except ``shard`` plus ``points5`` (the five alignment points in
    source-frame coordinates, for the shard JSON); ``png`` is the lossless crop or None.

    * crop stored: ``key = tables.sample_key(video_id, frame_idx)``, ``reason`` None;
    * no face in the frame: ``reason = "no_face"``, ``n_faces = 0``;
    * decoding stopped before the frame: ``reason = "read_failed"``;
    * the video has an ``error``, cannot be opened, or no frame decodes: a single record with
      ``frame_idx`` None and ``reason = "decode_error"``.

    Never raises for a bad video.
    """

    def video_failure():
        return [(_record(video, None, tables.REASON_DECODE_ERROR), None)]

    if video.get("error"):
        return video_failure()
    path = video.get("path")
    if not path:
        return video_failure()
    n = video.get("frame_count")
    if n is None:
        info = probe(path)
        if info["error"]:
            return video_failure()
        n = info["frame_count"]
    indices = sample_indices(n, num_frames)
    if len(indices) == 0:
        return video_failure()

    out: list[tuple[dict, bytes | None]] = []
    seen: set[int] = set()
    for idx, frame in read_frames(path, indices):
        seen.add(idx)
        face, n_faces = backend.largest_face(frame)
        if face is None:
            out.append((_record(video, idx, tables.REASON_NO_FACE, n_faces=0), None))
            continue
        pts = align_points(face.landmarks)
        crop = align_crop(frame, face.landmarks, size, scale)
        key = tables.sample_key(video["video_id"], idx)
        rec = _record(video, idx, None, key=key, face=face, n_faces=n_faces, points5=pts.tolist())
        out.append((rec, encode_png(crop)))
    if not seen:
        return video_failure()
    for idx in indices:
        if int(idx) not in seen:
            out.append((_record(video, int(idx), tables.REASON_READ_FAILED), None))
    out.sort(key=lambda item: item[0]["frame_idx"])
    return out


# --------------------------------------------------------------------------------------------
# One chunk -> one shard
# --------------------------------------------------------------------------------------------

_worker_state: dict = {}


@contextlib.contextmanager
def _main_not_reimported():
    """Start worker processes without re-running the parent's ``__main__`` script.

    ``spawn``/``forkserver`` children re-execute the parent's main *script* (found through
    ``__main__.__file__``) before unpickling their task. Snakemake ``script:`` files and other
    unguarded scripts would then run ``extract_chunk`` again in every worker and fail. The
    workers only need :mod:`pipeline.faces`, so the main script's path is hidden while the pool
    starts. (A main *module* run with ``-m`` is imported by name and is left alone.)
    """
    main = sys.modules.get("__main__")
    hide = main is not None and getattr(main, "__spec__", None) is None and hasattr(main, "__file__")
    saved = main.__file__ if hide else None
    if hide:
        del main.__file__
    try:
        yield
    finally:
        if hide:
            main.__file__ = saved


def _worker_init(backend: str, backend_options: dict, params: dict) -> None:
    """Pool initializer: build this worker's backend once."""
    cv2.setNumThreads(1)
    _worker_state["backend"] = make_backend(backend, **backend_options)
    _worker_state["params"] = params


def _worker_run(video: dict) -> list[tuple[dict, bytes | None]]:
    return extract_video(video, _worker_state["backend"], **_worker_state["params"])


def _shard_json(rec: dict) -> bytes:
    meta = {
        "dataset": rec["dataset"],
        "video_id": rec["video_id"],
        "frame_idx": rec["frame_idx"],
        "label": None if rec["label"] is None else int(rec["label"]),
        "method": rec["method"],
        "split": rec["split"],
        "source_id": rec["source_id"],
        "box": [rec["box_x0"], rec["box_y0"], rec["box_x1"], rec["box_y1"]],
        "score": rec["det_score"],
        "n_faces": rec["n_faces"],
        "points5": rec["points5"],
    }
    return json.dumps(meta).encode("utf-8")


def _log_video(video_id: str, records: list[dict]) -> None:
    reasons = Counter(r["reason"] for r in records if r["reason"] is not None)
    if not reasons:
        return
    if tables.REASON_DECODE_ERROR in reasons:
        log.warning("%s: %s", video_id, tables.REASON_DECODE_ERROR)
        return
    detail = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    log.info(
        "%s: %d/%d sampled frames without crop (%s)", video_id, sum(reasons.values()), len(records), detail
    )


def extract_chunk(
    videos: pl.DataFrame,
    tar_path,
    parquet_path,
    backend: str = "dlib",
    backend_options: dict | None = None,
    num_frames: int = 32,
    size: int = 256,
    scale: float = 1.3,
    threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
    mp_context: str = "spawn",
) -> dict:
    """Crop all videos of one chunk into a WebDataset tar and its per-shard Parquet.

    Videos are processed sorted by ``video_id`` (deterministic output). With ``threads > 1`` a
    ``multiprocessing`` pool of that many workers (each builds its own backend once) runs
    :func:`extract_video`; ``imap`` keeps the output order, so the result is identical to
    ``threads=1``. ``mp_context`` is the start method (``spawn`` avoids forking a process whose
    OpenCV/polars thread pools are running); workers never re-run the caller's main script, so
    unguarded scripts (Snakemake ``script:`` files) can call this.

    Writes:

    * ``tar_path``: one sample per crop, ``{"__key__", "png", "json"}`` with the JSON fields
      dataset, video_id, frame_idx, label, method, split, source_id, box, score, n_faces, points5;
      written with ``mtime=0`` to a temp name and renamed at the end (byte-reproducible, never half
      written);
    * ``parquet_path``: every sampled frame (``tables.FRAMES``); ``shard`` is ``str(tar_path)`` on
      every row of this chunk, ``key`` is null where no crop was stored.

    ``progress(done, total)`` is called after each video. Failures are logged (logger
    ``pipeline.faces``, one line per affected video). Returns stats: ``videos``,
    ``frames_sampled`` (rows with a frame index), ``crops``, ``failures`` (rows per reason).
    """
    import webdataset as wds

    if backend not in BACKENDS:
        raise ValueError(f"unknown face backend {backend!r}; known backends: {', '.join(sorted(BACKENDS))}")
    tar_path = Path(tar_path)
    parquet_path = Path(parquet_path)
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    backend_options = dict(backend_options or {})
    params = {"num_frames": num_frames, "size": size, "scale": scale}

    rows = videos.sort("video_id").to_dicts() if videos.height else []
    total = len(rows)

    if threads > 1 and total > 1:
        ctx = multiprocessing.get_context(mp_context)
        with _main_not_reimported():
            pool = ctx.Pool(
                min(threads, total), initializer=_worker_init, initargs=(backend, backend_options, params)
            )
        results = pool.imap(_worker_run, rows, chunksize=1)
    elif total:
        pool = None
        be = make_backend(backend, **backend_options)
        results = (extract_video(v, be, **params) for v in rows)
    else:
        pool, results = None, iter(())

    records: list[dict] = []
    crops = 0
    tmp_tar = tar_path.with_name(tar_path.name + ".tmp")
    try:
        with open(tmp_tar, "wb") as fh:
            writer = wds.TarWriter(fh, mtime=0, encoder=False)
            try:
                for done, (video, items) in enumerate(zip(rows, results), start=1):
                    for rec, png in items:
                        if png is not None:
                            writer.write({"__key__": rec["key"], "png": png, "json": _shard_json(rec)})
                            crops += 1
                        records.append(rec)
                    _log_video(video["video_id"], [r for r, _ in items])
                    if progress is not None:
                        progress(done, total)
            finally:
                writer.close()
        if pool is not None:
            pool.close()
            pool.join()
    except BaseException:
        if pool is not None:
            pool.terminate()
            pool.join()
        tmp_tar.unlink(missing_ok=True)
        raise

    frames_cols = [c for c in tables.FRAMES if c != "shard"]
    if records:
        df = pl.DataFrame(
            {c: [r[c] for r in records] for c in frames_cols},
            schema={c: tables.FRAMES[c] for c in frames_cols},
        ).with_columns(pl.lit(str(tar_path), dtype=pl.String).alias("shard"))
    else:
        df = tables.empty(tables.FRAMES)
    tables.write_parquet(df, parquet_path, tables.FRAMES, "frames")
    tmp_tar.replace(tar_path)

    failures = Counter(r["reason"] for r in records if r["reason"] is not None)
    return {
        "videos": total,
        "frames_sampled": sum(1 for r in records if r["frame_idx"] is not None),
        "crops": crops,
        "failures": dict(sorted(failures.items())),
    }
