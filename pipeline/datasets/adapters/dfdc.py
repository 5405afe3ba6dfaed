"""DFDC (``dfdc``) and its preview (``dfdcp``).

DFDC public test: ``test/videos/*.mp4`` + ``test/labels.csv`` (``filename,label``, **1 = fake**).
DFDC train parts (``dfdc_train_part_<k>/`` or the competition's ``train_sample_videos/``):
``metadata.json`` ``{file: {label: REAL|FAKE, original: <file>, split}}``, pairing each fake with
its original. DFDC preview: ``dataset.json`` ``{"<path>.mp4": {"label": real|fake, "set": train|test}}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from pipeline.datasets.adapters.base import FAKE, REAL, DatasetLayoutError, Protocol, listing, media_path, register, row
from pipeline.datasets.adapters.tabular import parse_label, read_table


def dfdc_protocol(options: dict) -> list[Protocol]:
    return [Protocol("DFDC test", "test", total=5000)]


def test_folder(root: Path) -> Path | None:
    for base in (root, root / "test", *sorted(root.glob("*/test"))):
        if (base / "labels.csv").is_file():
            return base
    return None


def train_parts(root: Path) -> list[Path]:
    return sorted({p.parent for pattern in ("metadata.json", "*/metadata.json") for p in root.glob(pattern)
                   if p.parent.name != "test"})


def dfdc_test(folder: Path, options: dict) -> Iterator[dict]:
    videos = folder / "videos" if (folder / "videos").is_dir() else folder
    for line, r in read_table(folder / "labels.csv", {"path": "filename"}):
        label = parse_label(r["label"], {}, f"{folder / 'labels.csv'} line {line}")
        yield row(f"test/{Path(r['path']).stem}", media_path(videos, r["path"], options), label,
                  None if label == REAL else "DFDC")


def dfdc_part(part: Path, split: str, options: dict) -> Iterator[dict]:
    meta = json.loads((part / "metadata.json").read_text())
    for name, entry in sorted(meta.items()):
        label = parse_label(entry.get("label", ""), {}, f"{part / 'metadata.json'} entry {name!r}")
        original = entry.get("original")
        yield row(f"{part.name}/{Path(name).stem}", media_path(part, name, options), label,
                  None if label == REAL else "DFDC",
                  f"{part.name}/{Path(original).stem}" if label == FAKE and original else None, split)


@register("dfdc", protocol=dfdc_protocol)
def adapter_dfdc(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """DFDC: the public test set (labels.csv, 1 = fake) and, with options.splits, the train parts."""
    splits = options.get("splits", ["test"])
    folder = test_folder(root)
    parts = train_parts(root) if "train" in splits else []
    if "test" in splits and folder is None:
        raise DatasetLayoutError(f"dataset {dataset!r}: expected the DFDC public test set as videos/ + "
                                 f"labels.csv (filename,label; 1 = fake) in {root} or {root}/test; "
                                 f"{listing(root)}")
    if "train" in splits and not parts:
        raise DatasetLayoutError(f"dataset {dataset!r}: options.splits asks for train, but no "
                                 f"dfdc_train_part_*/metadata.json is under {root}; {listing(root)}")
    if "test" in splits:
        yield from dfdc_test(folder, options)
    for part in parts:
        yield from dfdc_part(part, "train", options)


def dfdcp_protocol(options: dict) -> list[Protocol]:
    return [Protocol("DFDCP test", "test", 276, 501)]


@register("dfdcp", protocol=dfdcp_protocol)
def adapter_dfdcp(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """DFDC preview: dataset.json's ``set`` and ``label`` (method_A/method_B/original_videos)."""
    found = [root / "dataset.json", *sorted(root.glob("*/dataset.json"))]
    found = [p for p in found if p.is_file()]
    if not found:
        raise DatasetLayoutError(f"dataset {dataset!r}: expected dataset.json (the DFDC preview's "
                                 f"list, with 'set' and 'label' per video) in {root}; {listing(root)}")
    base = found[0].parent
    splits = options.get("splits", ["test"])
    for rel, entry in sorted(json.loads(found[0].read_text()).items()):
        split = "test" if entry.get("set") == "test" else "train"
        if split not in splits:
            continue
        label = parse_label(entry.get("label", ""), {}, f"{found[0]} entry {rel!r}")
        folder, name = (base / rel).parent, Path(rel).name
        yield row(Path(rel).with_suffix("").as_posix(), media_path(folder, name, options), label,
                  None if label == REAL else rel.split("/")[0], split=split)
