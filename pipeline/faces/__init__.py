"""The faces stage: the DeepfakeBench face crop of sampled video frames, into WebDataset shards.

Per sampled frame: detect the faces (optionally on a downscaled copy), choose one (the largest, or
the one under the manipulation mask), fit the 68 iBUG landmarks at full resolution, take five
alignment points, fit a least-squares similarity onto the ArcFace template (+8 px on x, margin 1.3,
256 px) and warp bilinearly with a black border. Every sampled frame gets a ``status`` row.

Modules, each usable without Snakemake:

* :mod:`.geometry`: template, similarity fit, warp, PSNR;
* :mod:`.base`: the one interface of the backends (:class:`Face`, :class:`FaceBackend`);
  :mod:`.backends`: their registry; :mod:`.dlib_hog`: the ``dlib`` backend; :mod:`.fan`: the
  ``face_alignment`` backend and where its weight files must be;
* :mod:`.choice`: which face of a frame;
* :mod:`.extract`: one frame (:func:`crop_frame`) and one video (:func:`extract_video`);
* :mod:`.chunk`: one chunk -> a tar shard + its Parquet table (:func:`extract_chunk`).
"""

from pipeline import lazy_exports

_EXPORTS = {
    "BACKENDS": "backends", "make_backend": "backends", "preflight": "backends",
    "Face": "base", "FaceBackend": "base", "DlibBackend": "dlib_hog", "dlib_predictor_path": "dlib_hog",
    "CHOICES": "choice", "choose_face": "choice",
    "extract_chunk": "chunk",
    "CropSettings": "extract", "FrameResult": "extract", "crop_frame": "extract", "extract_video": "extract",
    "weight_urls": "fan", "checkpoints_dir": "fan", "require_weights": "fan",
    "ALIGN_POINTS": "geometry", "ARCFACE_112": "geometry", "POINT_SETS": "geometry", "align_crop": "geometry",
    "align_points": "geometry", "alignment_matrix": "geometry", "central_region": "geometry",
    "decompose": "geometry", "psnr": "geometry", "similarity_matrix": "geometry",
    "template_points": "geometry", "transform_points": "geometry", "warp": "geometry",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
