"""UADFV (``uadfv``): ``real/`` and ``fake/``, everything test."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .base import FAKE, REAL, DatasetLayoutError, Protocol, find_dir, listing, media, register, row


def uadfv_protocol(options: dict) -> list[Protocol]:
    return [Protocol("UADFV test", "test", 49, 49)]


@register("uadfv", protocol=uadfv_protocol)
def adapter_uadfv(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """UADFV: ``real/NNNN.mp4`` and ``fake/NNNN_fake.mp4`` (paired by number), all test."""
    real_dir, fake_dir = find_dir(root, ("real",)), find_dir(root, ("fake",))
    if real_dir is None or fake_dir is None:
        raise DatasetLayoutError(f"dataset {dataset!r}: expected the folders real/ and fake/ at or below {root}; "
                                 f"{listing(root)}")
    reals = media(real_dir, options)
    for stem, path in reals.items():
        yield row(f"real/{stem}", path, REAL)
    for stem, path in media(fake_dir, options).items():
        base = stem.removesuffix("_fake")
        yield row(f"fake/{stem}", path, FAKE, "UADFV", f"real/{base}" if base in reals else None)
