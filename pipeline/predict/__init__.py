"""The predict stage (``python -m pipeline predict``): any video or photograph scored by a trained
detector through the workflow's own faces stage and model; and the same on the sets of files of the
config's ``predict`` section, as workflow jobs (:mod:`.bulk`).

* :mod:`.resolve`: a trained model as the command line names it (``results/models/<name>``): its
  adapter, the backbone it was trained on, and the faces settings of the workflow that made it;
* :mod:`.inputs`: the files behind ``PATH...`` (videos, images, folders of either);
* :mod:`.files`: the faces stage and the model on each input file -> one row per file (and per frame);
  the scoring service (:mod:`pipeline.serve`) loads them once and scores each upload with the same code;
* :mod:`.output`: the console table and the ``--out`` CSV / JSON files; :mod:`.cli`: the verb;
* :mod:`.bulk`: a ``predict`` set listed and dealt into chunks while the workflow plans, a chunk scored
  (``predict_chunk`` rule), the set's table gathered (``predict`` rule).

Scoring itself is the evaluation stage's (:mod:`pipeline.evaluation.scoring`), so a file gets the score
the evaluation gives the same crops.
"""

from pipeline import lazy_exports

_EXPORTS = {
    "resolve_model": "resolve", "PredictError": "resolve", "ResolvedModel": "resolve",
    "expand_inputs": "inputs", "kind_of": "inputs", "VIDEO_EXTENSIONS": "inputs", "IMAGE_EXTENSIONS": "inputs",
    "predict_files": "files", "FileResult": "files", "load_scorer": "files", "score_file": "files",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
