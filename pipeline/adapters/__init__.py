"""Dataset adapters: a dataset's own layout -> rows of ``videos.parquet``, one module per family.

``ADAPTERS`` maps each ``adapter:`` name of ``config.yaml`` to its :class:`Adapter` (listing
function, official test protocol, whether it imports crops instead of videos):

* ``csv`` (:mod:`.tabular`): any list of videos, with a column mapping;
* ``ffpp``, ``dfd`` (:mod:`.ffpp`); ``celebdf``, ``celebdf_pp`` (:mod:`.celebdf`);
  ``dfdc``, ``dfdcp`` (:mod:`.dfdc`); ``ffiw``, ``deepspeak``, ``uadfv``, ``dfdm``, ``fakeavceleb``,
  ``folder`` (:mod:`.catalogue`);
* importers of face crops: ``deepfakebench``, ``crops``, ``wilddeepfake`` (:mod:`.preprocessed`).
"""

from pipeline.adapters import catalogue, celebdf, dfdc, ffpp, preprocessed, tabular  # noqa: F401  (register)
from pipeline.adapters.base import ADAPTERS, Adapter, DatasetLayoutError, Protocol

__all__ = ["ADAPTERS", "Adapter", "DatasetLayoutError", "Protocol", "get", "imports"]


def get(dataset: str, name: str) -> Adapter:
    if name not in ADAPTERS:
        raise ValueError(f"dataset {dataset!r}: unknown adapter {name!r} (known: {', '.join(sorted(ADAPTERS))})")
    return ADAPTERS[name]


def imports(name: str) -> bool:
    """Whether datasets with this adapter bring their own face crops (no faces stage)."""
    return name in ADAPTERS and ADAPTERS[name].imports
