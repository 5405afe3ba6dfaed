"""The face backends' registry: :data:`BACKENDS` (``dlib``, ``face_alignment``), :func:`make_backend` and
:func:`preflight`. Their one interface is :mod:`.base`; each backend has its module (:mod:`.dlib_hog`,
:mod:`.fan`)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import FaceBackend


# name -> (module of this package, class), imported only when a job uses that backend; or a backend class
BACKENDS = {"dlib": ("dlib_hog", "DlibBackend"), "face_alignment": ("fan", "FaceAlignmentBackend")}


def module(name: str) -> str:
    """The module of backend ``name`` (what a faces job with it runs besides the stage's own code)."""
    return f"{__package__}.{BACKENDS[name][0]}"


def preflight(name: str, options: dict) -> None:
    """Check that backend ``name`` has its model files, before a job opens any video.

    Raises ``FileNotFoundError`` naming each missing file and where to put it.
    """
    if name == "dlib":
        path = options.get("predictor_path")
        if path and not Path(path).is_file():
            raise FileNotFoundError(f"dlib backend: predictor_path {path} does not exist")
        if not path:
            from .dlib_hog import dlib_predictor_path

            dlib_predictor_path()
    elif name == "face_alignment":
        from .fan import require_weights

        require_weights(options)


def make_backend(name: str, **options) -> FaceBackend:
    """Build a face backend by name (``dlib``, ``face_alignment``); ``options`` go to its constructor."""
    try:
        entry = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown face backend {name!r}; known backends: {', '.join(sorted(BACKENDS))}") from None
    factory = entry if callable(entry) else getattr(importlib.import_module(f".{entry[0]}", __package__), entry[1])
    return factory(**options)
