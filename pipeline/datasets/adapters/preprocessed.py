"""Importers of face crops someone already made: each video is a folder of frame images.

* ``deepfakebench``: DeepfakeBench trees (``.../frames/<video>/<idx>.png`` next to where the videos
  were). Labels and splits from its ``dataset_json/<Dataset>.json`` (options.json), or else from the
  dataset's own folders and official lists, as the video adapter named by options.dataset knows them.
* ``crops``: the reference code's ``datasets/<ds>/<source>/<video>/<frame>.png``; label 0 when the
  source folder's name contains "real"; FF++ sources get the official splits, others options.split.
* ``wilddeepfake``: WildDeepfake's face sequences (``{real,fake}_{train,test}/.../<seq>/<n>.png``).

Rows point at folders; ``pipeline.datasets.imports`` copies their images into shards (no face detection).
"""

from __future__ import annotations

import json
from pathlib import Path, PureWindowsPath
from typing import Iterator

from . import REGISTRY, get, imports
from .base import FAKE, REAL, DatasetLayoutError, find_dir, is_frame_folder, listing, register, row
from .celebdf import celeb_source
from .ffpp import FFPP_FOLDERS, ffpp_splits

SPLIT_PRIORITY = ("test", "val", "train")  # DeepfakeBench copies DFD/Celeb-DF test videos into train too
LABEL_METHODS = {"FF-real": "real", "FF-DF": "DF", "FF-F2F": "F2F", "FF-FS": "FS", "FF-NT": "NT", "FF-FH": "FSh",
                 "DFD_fake": "DFD"}


def matching_adapter(dataset: str, options: dict):
    name = options.get("dataset")
    if name not in REGISTRY or imports(name):
        videos = sorted(n for n in REGISTRY if not imports(n))
        raise DatasetLayoutError(f"dataset {dataset!r}: adapter deepfakebench needs options.json (its "
                                 f"dataset_json/<Dataset>.json) or options.dataset, the layout the tree was "
                                 f"made from (one of {', '.join(videos)}); got {name!r}")
    return get(dataset, name)


def deepfakebench_protocol(options: dict):
    name = options.get("dataset")
    return get("", name).protocol(options) if name in REGISTRY and "json" not in options else []


def frame_folder(root: Path, frame_path: str) -> Path | None:
    """The folder of a JSON frame path (Windows or POSIX separators, any prefix) under ``root``."""
    parts = PureWindowsPath(frame_path.replace("/", "\\")).parts[:-1]
    for i in range(len(parts)):
        candidate = root.joinpath(*parts[i:])
        if candidate.is_dir():
            return candidate
    return None


def json_videos(path: Path) -> dict[tuple[str, str], dict]:
    """``(label key, video) -> {label key, splits, frames}`` from DeepfakeBench's nested JSON
    (dataset -> label key -> split -> [compression ->] video -> record)."""
    data = json.loads(path.read_text())
    out: dict[tuple[str, str], dict] = {}
    for by_label in data.values():
        for key, by_split in by_label.items():
            for split, level in by_split.items():
                if level and all(isinstance(v, dict) and "frames" not in v for v in level.values()):
                    level = {k: v for comp in level.values() for k, v in comp.items()}  # compression level
                for video, record in level.items():
                    entry = out.setdefault((key, video), {"key": record.get("label", key), "splits": set(),
                                                          "frames": record.get("frames") or []})
                    entry["splits"].add(split)
    return out


def json_rows(dataset: str, root: Path, path: Path) -> Iterator[dict]:
    videos = json_videos(path)
    reals = {video for (key, video), e in videos.items() if "real" in e["key"].lower()}
    for (key, video), entry in sorted(videos.items()):
        label = REAL if "real" in entry["key"].lower() else FAKE
        method = "real" if label == REAL else LABEL_METHODS.get(entry["key"], entry["key"])
        folder = frame_folder(root, entry["frames"][0]) if entry["frames"] else None
        if folder is None:
            raise DatasetLayoutError(f"dataset {dataset!r}: {path} lists {video!r} ({entry['key']}) with frames "
                                     f"{entry['frames'][:1]}, but no such folder is under {root}")
        split = next(s for s in SPLIT_PRIORITY if s in entry["splits"])
        target = video.split("_")[0]
        source = f"real/{target}" if label == FAKE and "_" in video and target in reals else None
        yield row(f"{method}/{video}", folder, label, method, source, split)


@register("deepfakebench", protocol=deepfakebench_protocol)
def adapter_deepfakebench(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """DeepfakeBench crops: from its dataset JSON, or from the tree as a video adapter reads it."""
    if "json" in options:
        path = Path(options["json"])
        if not path.is_file():
            raise DatasetLayoutError(f"dataset {dataset!r}: options.json {path} does not exist (expected "
                                     "DeepfakeBench's preprocessing/dataset_json/<Dataset>.json)")
        yield from json_rows(dataset, root, path)
        return
    adapter = matching_adapter(dataset, options)
    yield from adapter.list(dataset, root, {**options, "_frames": True})


def sequences(folder: Path) -> dict[str, Path]:
    """``{relative path: folder}`` of every folder below ``folder`` that holds images directly."""
    return {p.relative_to(folder).as_posix(): p for p in sorted([folder, *folder.rglob("*")])
            if p.is_dir() and is_frame_folder(p) and p != folder}


FF_SOURCES = {m for m in FFPP_FOLDERS.values()} | set(FFPP_FOLDERS)


def crops_split(source: str, video: str, options: dict) -> str:
    if source in FF_SOURCES and options.get("split") is None:
        split = ffpp_splits().get(video.split("_")[0])
        if split:
            return split
    return options.get("split") or "test"


@register("crops")
def adapter_crops(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """The reference code's ``datasets/<ds>/<source>/<video>/<frame>.png`` crops (root = ``<ds>``)."""
    sources = [p for p in sorted(root.iterdir()) if p.is_dir() and sequences(p)]
    if not sources:
        raise DatasetLayoutError(f"dataset {dataset!r}: expected <source>/<video>/<frame>.png folders in {root} "
                                 f"(e.g. FF/real/000/000.png, FF/DF/000_003/000.png); {listing(root)}")
    real_videos = {v for s in sources if "real" in s.name.lower() for v in sequences(s)}
    for src in sources:
        label = REAL if "real" in src.name.lower() else FAKE
        method = "real" if label == REAL else FFPP_FOLDERS.get(src.name, src.name)
        for video, folder in sequences(src).items():
            source = None
            if label == FAKE and src.name in FF_SOURCES and video.split("_")[0] in real_videos:
                source = f"real/{video.split('_')[0]}"
            elif label == FAKE and celeb_source(video) in {f"Celeb-real/{v}" for v in real_videos}:
                source = celeb_source(video)
            vid = f"{'real' if label == REAL and src.name in FF_SOURCES else src.name}/{video}"
            yield row(vid, folder, label, method, source, crops_split(src.name, video, options))


WILD_CLASSES = {"real": REAL, "fake": FAKE}


def wild_folders(root: Path) -> dict[tuple[str, str], Path]:
    """(class, split) -> folder, for ``real_test``/``real test``/``real-test`` or ``test/real`` or ``real/test``."""
    out = {}
    for cls in WILD_CLASSES:
        for split in ("train", "test"):
            for rel in (f"{cls}_{split}", f"{cls} {split}", f"{cls}-{split}", f"{split}/{cls}", f"{cls}/{split}"):
                base = find_dir(root, (rel.split("/")[0],), depth=2)
                folder = base / rel.split("/")[1] if base and "/" in rel else base
                if folder is not None and folder.is_dir():
                    out[(cls, split)] = folder
                    break
    return out


@register("wilddeepfake")
def adapter_wilddeepfake(dataset: str, root: Path, options: dict) -> Iterator[dict]:
    """WildDeepfake face sequences; the ``test`` folders are its test split."""
    folders = wild_folders(root)
    splits = options.get("splits", ["test"])
    wanted = {k: v for k, v in folders.items() if k[1] in splits}
    if not wanted:
        raise DatasetLayoutError(f"dataset {dataset!r}: expected the folders real_test/ and fake_test/ (or "
                                 f"'real test', test/real, ...) at or below {root}; {listing(root)}")
    for (cls, split), folder in sorted(wanted.items()):
        seqs = sequences(folder)
        if not seqs:
            archives = sorted(p.name for p in folder.glob("*.tar.gz"))
            hint = (f"it holds the archives {archives[:3]}...: extract them in place (tar -xzf) first"
                    if archives else listing(folder))
            raise DatasetLayoutError(f"dataset {dataset!r}: no face-sequence folders in {folder}; {hint}")
        for rel, seq in seqs.items():
            label = WILD_CLASSES[cls]
            yield row(f"{cls}_{split}/{rel}", seq, label, None if label == REAL else "WildDeepfake", None, split)
