"""FakeAVCeleb (``fakeavceleb``): visual fakes against ``RealVideo-RealAudio``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .base import FAKE, REAL, DatasetLayoutError, Protocol, find_dir, listing, media, register, row


def fakeavceleb_protocol(options: dict) -> list[Protocol]:
    return [Protocol("FakeAVCeleb test", "test", real=500)]


@register("fakeavceleb", protocol=fakeavceleb_protocol)
def adapter_fakeavceleb(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """FakeAVCeleb: visual fakes (FakeVideo-*) against RealVideo-RealAudio; RealVideo-FakeAudio left out."""
    categories = options.get("fakes", ["FakeVideo-RealAudio", "FakeVideo-FakeAudio"])
    real_dir = find_dir(root, ("RealVideo-RealAudio",))
    if real_dir is None:
        raise DatasetLayoutError(f"dataset {dataset!r}: expected RealVideo-RealAudio/ and "
                                 f"{'/, '.join(categories)}/ at or below {root}; {listing(root)}")
    base = real_dir.parent
    for category in ["RealVideo-RealAudio", *categories]:
        label = REAL if category.startswith("RealVideo") else FAKE
        for rel, path in media(base / category, options, recursive=True).items():
            yield row(f"{category}/{rel}", path, label, None if label == REAL else category)
