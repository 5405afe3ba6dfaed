"""``folder``: any dataset laid out as ``<root>/<class>/.../<video>``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .base import FAKE, REAL, DatasetLayoutError, listing, media, register, row


@register("folder")
def adapter_folder(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """Any dataset as ``<root>/<class>/.../<video>``: options.real names the real classes, options.methods
    (when given) the class folders read."""
    real = {n.lower() for n in options.get("real", ["real"])}
    keep = options.get("methods")
    classes = [p for p in sorted(root.iterdir()) if p.is_dir() and (keep is None or p.name in keep)]
    if not any(c.name.lower() in real for c in classes):
        raise DatasetLayoutError(f"dataset {dataset!r}: none of the folders in {root} is a real class "
                                 f"{sorted(real)} (set options.real to the names of the real folders); "
                                 f"{listing(root)}")
    for cls in classes:
        label = REAL if cls.name.lower() in real else FAKE
        for rel, path in media(cls, options, recursive=True).items():
            yield row(f"{cls.name}/{rel}", path, label, None if label == REAL else cls.name,
                      split=options.get("split", "test"))
