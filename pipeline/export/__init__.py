"""The export stage (``python -m pipeline export``): a trained detector as files that run without this package.

* :mod:`.source`: the model as ``predict`` resolves it, and the real face crops every export is checked on
  (the test crops of the workflow's benchmarks, or crops the user gives);
* :mod:`.hf`: ``--format hf``: a folder that ``transformers`` loads with no remote code (the backbone with
  the tuned LayerNorms in it, the head as ``head.safetensors``, the preprocessing) and the scoring code that
  its model card shows; :mod:`.card`: that model card;
* :mod:`.onnx`: ``--format onnx``: the whole detector, ``uint8`` crops in and p(fake) out;
* :mod:`.build`: one export, checked against the PyTorch model and refused beyond the bound;
  :mod:`.cli`: the verb.

No workflow job runs this code.
"""

from pipeline import lazy_exports

_EXPORTS = {
    "export_model": "build", "ExportError": "source", "FORMATS": "build", "BOUND": "build",
    "CheckCrops": "source", "check_crops": "source",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
