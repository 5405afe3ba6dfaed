"""Scoring with a trained detector.

* :mod:`.scoring`: p(fake) of stored crops (:func:`predict_frames`, used by the workflow's ``evaluate``
  and ``train`` stages) and of crop images or PNG bytes;
* :mod:`.resolve`: a trained model as the command line names it (``results/models/<name>``): its
  adapter, the backbone it was trained on, and the faces settings of the workflow that made it;
* :mod:`.inputs`: the files behind ``PATH...`` (videos, images, folders of either);
* :mod:`.files`: the faces stage and the model on each input file -> one row per file (and per frame);
* :mod:`.output`: the console table and the ``--out`` CSV / JSON files; :mod:`.cli`: the verb.

Only :mod:`.scoring` is imported here: the workflow's rules rerun when a module their scripts import
changes, and evaluation does not depend on the faces stage that ``predict`` also runs.
"""

from .scoring import predict_frames, predict_images, score_crops

__all__ = ["predict_frames", "predict_images", "score_crops"]
