"""The faces stage: the DeepfakeBench face crop of sampled video frames, into WebDataset shards.

Per sampled frame: detect the faces (optionally on a downscaled copy), choose one (the largest, or
the one under the manipulation mask), fit the 68 iBUG landmarks at full resolution, take five
alignment points, fit a least-squares similarity onto the ArcFace template (+8 px on x, margin 1.3,
256 px) and warp bilinearly with a black border. Every sampled frame gets a ``status`` row.

Sub-modules, each usable without Snakemake:

* :mod:`.geometry`: template, similarity fit, warp, PSNR (stable public API);
* :mod:`.backends`: :class:`Face`, :class:`FaceBackend`, the dlib backend, the registry;
  :mod:`.fan`: the ``face_alignment`` backend and its weight files;
* :mod:`.choice`: which face of a frame;
* :mod:`.extract`: one frame (:func:`crop_frame`) and one video (:func:`extract_video`);
* :mod:`.chunk`: one chunk -> a tar shard + its Parquet table (:func:`extract_chunk`).
"""

from .backends import BACKENDS, DlibBackend, Face, FaceBackend, dlib_predictor_path, make_backend, preflight
from .choice import CHOICES, choose_face
from .chunk import extract_chunk
from .extract import CropSettings, FrameResult, crop_frame, extract_video
from .geometry import (
    ALIGN_POINTS,
    ARCFACE_112,
    POINT_SETS,
    align_crop,
    align_points,
    alignment_matrix,
    central_region,
    decompose,
    psnr,
    similarity_matrix,
    template_points,
    transform_points,
    warp,
)

__all__ = [
    "ALIGN_POINTS", "ARCFACE_112", "BACKENDS", "CHOICES", "POINT_SETS", "CropSettings", "DlibBackend", "Face",
    "FaceBackend", "FrameResult", "align_crop", "align_points", "alignment_matrix", "central_region",
    "choose_face", "crop_frame", "decompose", "dlib_predictor_path",
    "extract_chunk", "extract_video", "make_backend", "preflight", "psnr", "similarity_matrix",
    "template_points", "transform_points", "warp",
]
