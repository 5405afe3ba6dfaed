"""FFIW-10K (``ffiw``): the released ``val`` split is the test set."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .base import FAKE, REAL, DatasetLayoutError, Protocol, find_dir, listing, media, register, row


def ffiw_protocol(options: dict) -> list[Protocol]:
    return [Protocol("FFIW test", "test", 250, 250)]


@register("ffiw", protocol=ffiw_protocol)
def adapter_ffiw(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """FFIW-10K: ``source/`` real, ``target/`` fake; the released val split is the test set."""
    base = root if (root / "source").is_dir() else find_dir(root, ("FFIW10K-v1-release",))
    if base is None or not (base / "target").is_dir():
        raise DatasetLayoutError(f"dataset {dataset!r}: expected FFIW10K-v1-release/{{source,target}}/"
                                 f"{{train,val}}/videos/*.mp4 at or below {root}; {listing(root)}")
    ours = {"val": "test", "train": "train"}
    for theirs in ("val", "train"):
        if ours[theirs] not in options.get("splits", ["test"]):
            continue
        reals = media(base / "source" / theirs / "videos", options)
        for stem, path in reals.items():
            yield row(f"source/{theirs}/{stem}", path, REAL, split=ours[theirs])
        for stem, path in media(base / "target" / theirs / "videos", options).items():
            source = f"source/{theirs}/{stem}" if stem in reals else None
            yield row(f"target/{theirs}/{stem}", path, FAKE, "FFIW", source, ours[theirs])
