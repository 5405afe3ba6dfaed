"""The web application: the page (``GET /``), the model it serves (``GET /info``) and the JSON API
(``POST /predict``, multipart files in the field ``files``).

Every answer an upload can get is JSON with a message a person can act on: a file that is not a
video or an image, or that has no face, is a file of the answer with its ``status`` and ``message``; a
request over the size limit gets 413, one without files 400, and an unexpected error 500 with no
stack trace (the server's log has it). The service keeps serving after each of them.
"""

from __future__ import annotations

import logging
from importlib import resources

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse

from .service import ScoringService

log = logging.getLogger("pipeline.serve")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class UploadLimit:
    """ASGI middleware: a ``POST`` whose body is larger than ``max_bytes`` (or that does not say its
    size) is answered 413 (411) before anything parses it. The body is read and dropped first, so that
    a browser still sending it gets the answer instead of a broken connection."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is None or not length.isdigit():
            problem = _error(411, "send the upload with a Content-Length header (a browser, curl -F and "
                                  "requests do)")
        elif int(length) > self.max_bytes:
            problem = _error(413, f"upload of {int(length) / 1e6:.1f} MB is over this service's limit of "
                                  f"{self.max_bytes / 1e6:.1f} MB: send fewer or smaller files, or start "
                                  "the service with a larger --max-upload-mb")
        else:
            return await self.app(scope, receive, send)
        while (await receive()).get("more_body", False):
            pass
        await problem(scope, receive, send)


def create_app(service: ScoringService, *, max_upload_bytes: int) -> FastAPI:
    """The FastAPI application around a loaded :class:`ScoringService`; a request larger than
    ``max_upload_bytes`` is refused."""
    # no /docs: FastAPI's interactive docs load their script from a CDN, which an offline machine lacks
    app = FastAPI(title="LNCLIP-DF scoring service", docs_url=None, redoc_url=None)
    page = resources.files("pipeline.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/info")
    def info() -> dict:
        """The model served, its faces settings, the accepted file extensions and the upload limit."""
        return {**service.info(), "max_upload_bytes": max_upload_bytes}

    @app.post("/predict")
    async def predict(files: list[UploadFile] = File(..., description="videos and images"),
                      crops: bool = Query(False, description="include each frame's face crop (PNG data URL)")
                      ) -> dict:
        """p(fake) of each uploaded file and of each of its sampled frames, as ``predict`` gives them."""
        uploads = [(f.filename or "", f.file) for f in files]
        return await service.score(uploads, crops=crops)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, err: RequestValidationError) -> JSONResponse:
        return _error(400, "send the videos and images as multipart form data in the field 'files' (curl -F "
                           "files=@clip.mp4 ...)")

    @app.exception_handler(Exception)
    async def failed(request: Request, err: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return _error(500, f"the service failed on this request ({type(err).__name__}); it keeps running, "
                           "the server's log has the details")

    app.add_middleware(UploadLimit, max_bytes=max_upload_bytes)
    return app
