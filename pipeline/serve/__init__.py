"""The serve stage (``python -m pipeline serve``): a trained detector behind a web page and a JSON API.
No workflow job runs this code; it needs the ``serve`` extra (FastAPI, uvicorn, python-multipart).

* :mod:`.service`: the model loaded once, each upload scored with ``predict``'s own functions
  (:func:`pipeline.predict.score_file`) in one worker thread;
* :mod:`.app`: the FastAPI application: the page, ``GET /info``, ``POST /predict`` and the upload limit;
* :mod:`.cli`: the verb; ``static/index.html``: the page.

FastAPI with one static page, rather than Gradio: the page is a single file with no build step and no
assets from the network, the JSON API is the same endpoint the page uses, and the extra installs a few
small packages instead of Gradio's tree.
"""

from pipeline import lazy_exports

_EXPORTS = {"ScoringService": "service", "create_app": "app", "UploadLimit": "app"}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
