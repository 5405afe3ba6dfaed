"""What every adapter shares: the registry, the row shape, media listing and expected counts.

An adapter is a function ``(dataset, root, options) -> Iterator[row]`` registered under its
``adapter:`` name with :func:`register`. A row is a dict with ``video_id, path, label, method,
source_id, split`` (``pipeline.core.tables.VIDEOS``). ``path`` is a video file, or, for adapters that
``imports`` crops, a folder of frame images (one folder = one video).

Adapters that know their official test protocol declare it with ``protocol=``: a function
``options -> list[Protocol]`` (expected counts, and the expected video ids where an official list
names them), which the index compares with what the user's copy holds (``pipeline.datasets.index``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
REAL, FAKE = 0, 1


class DatasetLayoutError(FileNotFoundError):
    """The dataset tree is not where, or not what, the adapter expects."""


@dataclass(frozen=True)
class Protocol:
    """The official content of one split: counts per label and, where listed, the video ids."""

    name: str  # "CDFv2 test"
    split: str
    real: int | None = None
    fake: int | None = None
    total: int | None = None  # when only the total is known
    ids: frozenset | None = None  # video ids the official list names (None: counts only)


@dataclass(frozen=True)
class Adapter:
    name: str
    list: Callable[[str, Path, dict], Iterator[dict]]
    protocol: Callable[[dict], list[Protocol]] = field(default=lambda options: [])
    doc: str = ""


ADAPTERS: dict[str, Adapter] = {}


def register(name: str, protocol=None):
    """Decorator: register an adapter function under ``name`` (its module is named in ``REGISTRY``)."""
    def wrap(fn):
        ADAPTERS[name] = Adapter(name, fn, protocol or (lambda options: []),
                                 (fn.__doc__ or "").strip().split("\n")[0])
        return fn
    return wrap


def row(video_id: str, path, label: int, method: str | None = None, source_id: str | None = None,
        split: str = "test") -> dict:
    """One index row; reals default to method "real" and to being their own source."""
    if method is None:
        method = "real" if label == REAL else "fake"
    if label == REAL and source_id is None:
        source_id = video_id
    return {"video_id": video_id, "path": str(path), "label": label, "method": method,
            "source_id": source_id, "split": split}


# --------------------------------------------------------------------------------------------
# media: video files, or (DeepfakeBench trees) folders of frames next to where the videos were


def frames_mode(options: dict) -> bool:
    """Set by the DeepfakeBench importer: list ``frames/<stem>/`` folders instead of videos."""
    return bool(options.get("_frames"))


def frames_folder(video_folder: Path) -> Path:
    """Where DeepfakeBench wrote the frames of the videos in ``video_folder`` (``.../videos`` ->
    ``.../frames``; ``Celeb-real`` -> ``Celeb-real/frames``)."""
    return video_folder.parent / "frames" if video_folder.name == "videos" else video_folder / "frames"


def is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())


def media(folder: Path, options: dict, recursive: bool = False) -> dict[str, Path]:
    """``{stem: path}`` of the videos in ``folder`` (or their frame folders in frames mode); with
    ``recursive``, ``{relative path without suffix: path}`` of every video below it."""
    if frames_mode(options):
        base = frames_folder(folder)
        if not base.is_dir():
            return {}
        return {p.name: p for p in sorted(base.iterdir()) if is_frame_folder(p)}
    if not folder.is_dir():
        return {}
    if recursive:  # keyed by the path below folder, without suffix: names repeat across sub-folders
        return {p.relative_to(folder).with_suffix("").as_posix(): p for p in sorted(folder.rglob("*"))
                if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS}


def media_path(folder: Path, name: str, options: dict) -> Path:
    """Path of the video ``name`` (file name) in ``folder``, or of its frame folder."""
    return frames_folder(folder) / Path(name).stem if frames_mode(options) else folder / name


def find_dir(root: Path, names: tuple[str, ...], depth: int = 2) -> Path | None:
    """``root`` itself or the first folder at most ``depth`` levels below it named one of ``names``
    (case-insensitive): users point at a dataset's own folder or at the folder above it."""
    wanted = {n.lower() for n in names}
    if root.name.lower() in wanted:
        return root
    level = [root]
    for _ in range(depth):
        nxt = []
        for d in level:
            for p in sorted(d.iterdir()) if d.is_dir() else ():
                if p.is_dir():
                    if p.name.lower() in wanted:
                        return p
                    nxt.append(p)
        level = nxt
    return None


def listing(root: Path, depth: int = 2) -> str:
    """A short description of what is under ``root``, for error messages."""
    if not root.is_dir():
        return f"{root} does not exist"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    more = f", ... ({len(names)} entries)" if len(names) > 12 else ""
    return f"{root} holds: {', '.join(names[:12]) or 'nothing'}{more}"


def frame_number(path: Path) -> int | None:
    """The frame index written in an image file name (``012.png``, ``frame_0012.png``)."""
    m = re.search(r"(\d+)(?!.*\d)", path.stem)
    return int(m.group(1)) if m else None
