"""Scoring with a trained detector.

* :mod:`.scoring`: p(fake) of stored crops (:func:`predict_frames`, the workflow's ``evaluate``
  stage) and of crop images or PNG bytes;
* :mod:`.resolve`: a trained model as the command line names it (``results/models/<name>``): its
  adapter, the backbone it was trained on, and the faces settings of the workflow that made it;
* :mod:`.inputs`: the files behind ``PATH...`` (videos, images, folders of either);
* :mod:`.files`: the faces stage and the model on each input file -> one row per file (and per frame);
* :mod:`.output`: the console table and the ``--out`` CSV / JSON files.
"""

from .files import FileResult, predict_files
from .inputs import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, expand_inputs
from .resolve import PredictError, ResolvedModel, resolve_model
from .scoring import predict_frames, predict_images, score_pngs

__all__ = ["FileResult", "IMAGE_EXTENSIONS", "PredictError", "ResolvedModel", "VIDEO_EXTENSIONS", "expand_inputs",
           "predict_files", "predict_frames", "predict_images", "resolve_model", "score_pngs"]
