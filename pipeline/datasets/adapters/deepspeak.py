"""DeepSpeak v1.1 / v2.0 (``deepspeak``): the official ``test`` split; the method is the generator folder or
the engine a fake's name starts with."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .base import FAKE, REAL, DatasetLayoutError, find_dir, listing, media, register, row


REAL_WORDS = ("real", "original", "originals", "pristine", "genuine")
FAKE_WORDS = ("fake", "fakes", "deepfake", "deepfakes", "synthetic", "manipulated")


def label_from_parts(parts: tuple[str, ...]) -> tuple[int, str] | None:
    """(label, method) from path components: a real-word folder, or a fake-word folder followed by
    the generator's folder (``fake/<generator>/...``)."""
    low = [p.lower() for p in parts]
    for i, p in enumerate(low):
        if p in REAL_WORDS:
            return REAL, "real"
        if p in FAKE_WORDS:
            return FAKE, parts[i + 1] if i + 1 < len(parts) - 1 else "fake"
    return None


@register("deepspeak")
def adapter_deepspeak(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """DeepSpeak v1/v1.1/v2: ``<split>/{real,fake/<generator>}/...``; a fake named
    ``<engine>--<source>-<target>--...`` takes the engine as its method."""
    splits = options.get("splits", ["test"])
    found = False
    for split in splits:
        folder = find_dir(root, (split,), depth=3)
        if folder is None:
            continue
        for rel, path in media(folder, options, recursive=True).items():
            rel = Path(rel)
            labelled = label_from_parts(rel.parts)
            if "--" in path.stem and (labelled is None or labelled == (FAKE, "fake")):
                labelled = FAKE, path.stem.split("--")[0]  # fakes are named <engine>--<source>-<target>--...
            if labelled is None:
                raise DatasetLayoutError(f"dataset {dataset!r}: cannot tell whether {path} is real or fake: "
                                         f"expected a folder named one of {REAL_WORDS} or {FAKE_WORDS}/<generator> "
                                         f"in its path below {folder}")
            found = True
            label, method = labelled
            yield row(f"{split}/{rel.as_posix()}", path, label, method, split=split)
    if not found:
        raise DatasetLayoutError(f"dataset {dataset!r}: no videos in split folders {splits} at or below {root} "
                                 f"(expected <split>/real/... and <split>/fake/<generator>/...); {listing(root)}")
