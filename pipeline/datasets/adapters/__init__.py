"""Dataset adapters: a dataset's own layout -> rows of ``videos.parquet``, one module per family.

:data:`REGISTRY` is the one list of them: each ``adapter:`` name of ``config.yaml`` -> the module that
reads that layout, and whether the dataset brings its own face crops (importers: the faces stage is
skipped). A module is imported only when a dataset uses one of its adapters (:func:`get`), so an edit
to the adapter of a family the config does not use changes no job.
"""

from __future__ import annotations

import importlib

from .base import ADAPTERS, Adapter, DatasetLayoutError, Protocol

__all__ = ["ADAPTERS", "REGISTRY", "Adapter", "DatasetLayoutError", "Protocol", "get", "imports", "module"]

# adapter name -> (module, imports face crops instead of videos)
REGISTRY = {
    "csv": ("tabular", False),
    "folder": ("folders", False),
    "ffpp": ("ffpp", False),
    "dfd": ("ffpp", False),
    "celebdf": ("celebdf", False),
    "celebdf_pp": ("celebdf", False),
    "dfdc": ("dfdc", False),
    "dfdcp": ("dfdc", False),
    "ffiw": ("ffiw", False),
    "deepspeak": ("deepspeak", False),
    "uadfv": ("uadfv", False),
    "dfdm": ("dfdm", False),
    "fakeavceleb": ("fakeavceleb", False),
    "deepfakebench": ("preprocessed", True),
    "crops": ("preprocessed", True),
    "wilddeepfake": ("preprocessed", True),
}


def get(dataset: str, name: str) -> Adapter:
    """The adapter ``name`` (importing its module); ``dataset`` names the entry in the message for an
    unknown name."""
    if name not in REGISTRY:
        raise ValueError(f"dataset {dataset!r}: unknown adapter {name!r} (known: {', '.join(sorted(REGISTRY))})")
    importlib.import_module(f"{__name__}.{REGISTRY[name][0]}")
    return ADAPTERS[name]


def module(name: str) -> str:
    """The module that reads layout ``name`` (what an index of such a dataset runs besides the stage's own)."""
    return f"{__name__}.{REGISTRY[name][0]}"


def imports(name: str) -> bool:
    """Whether datasets with this adapter bring their own face crops (no faces stage)."""
    return name in REGISTRY and REGISTRY[name][1]
