"""``python -m pipeline serve``: its arguments, and the server started with the model loaded once.

Importing this module (as ``python -m pipeline`` does for every verb) needs none of the serve extra."""

from __future__ import annotations

import sys

HELP = "a scoring service: a web page and a JSON API (POST /predict) that score uploaded videos and images"

EPILOG = """\
Run it from the workflow's folder, as predict: the backbone, the faces settings and the file score are
those of the workflow that trained the model, and an upload gets the p(fake) predict gives the same
file. Open http://HOST:PORT/ for the page; programs post files to /predict:

  python -m pipeline serve --model results/models/lnclip_df --port 8000
  curl -F files=@clip.mp4 -F files=@photo.jpg http://127.0.0.1:8000/predict

It needs the serve extra: pip install -e ".[serve]". The service has no login: it listens on
127.0.0.1 unless --host says otherwise.
"""


DEFAULT_MAX_UPLOAD_MB = 200


def add_arguments(p) -> None:
    from pipeline.predict.cli import add_model_arguments

    add_model_arguments(p)
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for every network)")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help=f"largest upload (all files of a request together) in MB (default {DEFAULT_MAX_UPLOAD_MB})")


def _say(text: str) -> None:
    print(f"serve: {text}", file=sys.stderr)


def run(a) -> int:
    missing = _missing_packages()
    if missing:
        _say(f"{', '.join(missing)} not installed: the service needs the serve extra, pip install -e \".[serve]\"")
        return 2
    import uvicorn

    from pipeline.predict import PredictError, resolve_model
    from .app import create_app
    from .service import ScoringService

    if a.max_upload_mb <= 0:
        _say(f"--max-upload-mb {a.max_upload_mb}: give a size above 0")
        return 2
    try:
        model = resolve_model(a.model, weights=a.weights, config_path=a.config)
    except PredictError as err:
        _say(str(err))
        return 2
    for note in model.notes:
        _say(f"note: {note}")
    try:
        service = ScoringService(model, device=a.device, batch_size=a.batch_size)
    except (OSError, RuntimeError, ValueError) as err:  # a missing face model, no CUDA, a mismatched backbone
        _say(f"cannot load the model {model.adapter}: {err}")
        return 2
    app = create_app(service, max_upload_bytes=int(a.max_upload_mb * 10**6))
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        _say(f"note: listening on {a.host}: whoever reaches this address can upload files (the service has no login)")
    _say(f"model {model.adapter} on {service.scorer.device}; page http://{a.host}:{a.port}/, "
         f"API POST http://{a.host}:{a.port}/predict")
    uvicorn.run(app, host=a.host, port=a.port, log_level="info")
    return 0


def _missing_packages() -> list[str]:
    from importlib.util import find_spec

    needed = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python-multipart": "python_multipart"}
    return [pkg for pkg, mod in needed.items() if find_spec(mod) is None]
