"""The ``face_alignment`` backend: the face-alignment package's detector (S3FD or BlazeFace) and its
2D-FAN 68-point landmark network, on the GPU when there is one, on the CPU otherwise.

Its weight files are not on PyPI: face-alignment downloads them at run time into
``$TORCH_HOME/hub/checkpoints``. The workflow fetches them once (rule ``download_face_weights``,
:mod:`pipeline.fetch.face_weights`) into ``resources/weights/face_alignment/hub/checkpoints`` and points
``TORCH_HOME`` at ``resources/weights/face_alignment`` for the faces jobs, so compute nodes never
reach the internet; :func:`require_weights` stops a job before any work, naming each missing file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from pipeline.core.layout import FACE_WEIGHTS
from .base import Face, FaceBackend, as_uint8, downscale

log = logging.getLogger("pipeline.faces")

DEFAULT_WEIGHTS_DIR = FACE_WEIGHTS  # the faces jobs' TORCH_HOME (pipeline.core.layout)
DETECTORS = ("sfd", "blazeface")


def weight_urls(detector: str = "sfd", mirror: str | None = None) -> dict[str, str]:
    """File name -> URL of every weight file the backend needs with ``detector``: the package's own URLs,
    or each file by its name under ``mirror`` (a base URL, the config's ``faces.weights_mirror``)."""
    if detector not in DETECTORS:
        raise ValueError(f"face_alignment backend: detector {detector!r} is not one of {', '.join(DETECTORS)}")
    from face_alignment.api import models_urls

    urls = [models_urls["2DFAN-4"]]
    if detector == "sfd":
        from face_alignment.detection.sfd.sfd_detector import models_urls as det
        urls.append(det["s3fd"])
    else:
        from face_alignment.detection.blazeface.blazeface_detector import models_urls as det
        urls += [det["blazeface_weights"], det["blazeface_anchors"]]
    names = [os.path.basename(urlparse(u).path) for u in urls]
    if mirror:
        urls = [f"{mirror.rstrip('/')}/{name}" for name in names]
    return dict(zip(names, urls))


def checkpoints_dir(weights_dir: str | os.PathLike = DEFAULT_WEIGHTS_DIR) -> Path:
    """Where face-alignment looks for its files when ``TORCH_HOME`` is ``weights_dir``."""
    return Path(weights_dir) / "hub" / "checkpoints"


def detector_files(detector: str, weights_dir: str | os.PathLike) -> dict[str, str]:
    """The detector's weight files passed by path: the package then loads them with
    ``torch.load(weights_only=True)`` (by URL it unpickles them with ``weights_only=False``)."""
    ckpt = checkpoints_dir(weights_dir).resolve()
    names = list(weight_urls(detector))[1:]  # after 2D-FAN's (loaded with weights_only=True)
    if detector == "sfd":
        return {"path_to_detector": str(ckpt / names[0])}
    return {"path_to_detector": str(ckpt / names[0]), "path_to_anchor": str(ckpt / names[1])}


def require_weights(options: dict) -> None:
    """Raise ``FileNotFoundError`` naming each missing weight file, its URL and where to put it."""
    weights_dir = options.get("weights_dir", DEFAULT_WEIGHTS_DIR)
    ckpt = checkpoints_dir(weights_dir)
    missing = {n: u for n, u in weight_urls(options.get("detector", "sfd")).items() if not (ckpt / n).is_file()}
    if missing:
        lines = "\n".join(f"  {ckpt / n}  <- {u}" for n, u in missing.items())
        raise FileNotFoundError(
            f"face_alignment backend: {len(missing)} weight file(s) missing from {ckpt}:\n{lines}\n"
            f"Fetch them on a machine with internet (snakemake {Path(weights_dir)}.done, or download each URL) "
            f"and copy them to {ckpt}; the faces jobs never download.")


class FaceAlignmentBackend(FaceBackend):
    """face-alignment's detector + 2D-FAN (68 iBUG points, same numbering as dlib's model).

    Options: ``detector`` (``sfd``, ``blazeface``), ``device`` (``auto``: CUDA when available),
    ``batch_size`` (frames per detector call and faces per FAN call), ``detect_side`` (shorter side
    of the detection image; None: full resolution), ``flip_input`` (FAN on the mirrored crop too,
    twice the cost), ``compile`` (``torch.compile`` of FAN), ``weights_dir`` (``TORCH_HOME`` of the
    job), ``threshold`` (minimum detector score).
    """

    name = "face_alignment"

    def __init__(self, detector: str = "sfd", device: str = "auto", batch_size: int = 8,
                 detect_side: int | None = 720, flip_input: bool = False, compile: bool = False,
                 weights_dir: str | os.PathLike = DEFAULT_WEIGHTS_DIR, threshold: float = 0.5):
        import torch

        require_weights({"detector": detector, "weights_dir": weights_dir})
        os.environ["TORCH_HOME"] = str(Path(weights_dir).resolve())
        torch.hub.set_dir(str(Path(weights_dir).resolve() / "hub"))
        import face_alignment

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device, self.batch_size, self.detect_side = device, int(batch_size), detect_side
        self.threshold = float(threshold)
        self.fa = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D, device=device, flip_input=flip_input, face_detector=detector,
            face_detector_kwargs=detector_files(detector, weights_dir), compile=compile,
            max_batch_size=self.batch_size)

    def _faces(self, boxes, f: float) -> list[Face]:
        """The detector's boxes of one detection image (``f`` times the frame) as faces in frame pixels.

        Boxes without extent are dropped: S3FD's NMS never suppresses them, and its batch call lists
        each candidate once per frame of the batch, so they would come out repeated."""
        out = []
        for b in boxes if boxes is not None else []:
            b = np.asarray(b, dtype=np.float64)
            if (b.size >= 5 and np.isfinite(b[:5]).all() and b[4] >= self.threshold
                    and b[2] > b[0] and b[3] > b[1]):
                out.append(Face(box=tuple(float(v) / f for v in b[:4]), score=float(b[4])))
        return out

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        small, f = downscale(as_uint8(image_rgb), self.detect_side)
        return self._faces(self.fa.face_detector.detect_from_image(small.copy()), f)

    def detect_batch(self, frames: list[np.ndarray]) -> list[list[Face]]:
        """One detector call for frames of the same size (one video); else frame by frame."""
        import torch

        if len(frames) < 2 or len({fr.shape for fr in frames}) != 1:
            return super().detect_batch(frames)
        small = [downscale(as_uint8(fr), self.detect_side) for fr in frames]
        try:
            batch = torch.from_numpy(np.stack([s for s, _ in small])).permute(0, 3, 1, 2).float().contiguous()
            boxes = self.fa.face_detector.detect_from_batch(batch.to(self.device))
        except Exception as exc:  # find the frame that fails: one by one
            log.warning("face_alignment batch detection failed (%r); detecting frame by frame", exc)
            return super().detect_batch(frames)
        return [self._faces(b, f) for b, (_, f) in zip(boxes, small)]

    def landmarks(self, image_rgb: np.ndarray, face: Face) -> np.ndarray:
        box = np.array([[*face.box, face.score]], dtype=np.float64)
        pts = self.fa.get_landmarks_from_image(as_uint8(image_rgb), detected_faces=box)
        if not pts:
            raise RuntimeError("face_alignment returned no landmarks for a given box")
        return np.asarray(pts[0], dtype=np.float64)[:, :2]
